/**
 * The encoders' command lines, as data. Video is encoded in segments (one ffmpeg per segment,
 * reading esrvid's Matroska stream of upscaled RGB frames with the source's timestamps), so a
 * killed job keeps its finished segments. The final mux joins the segments by stream copy and
 * takes everything else (audio, subtitles, attachments, chapters, metadata) from the source.
 */
import { passthroughTiming, type Binary } from '../ffmpeg/binaries.js';
import type { ColourPlan } from '../ffmpeg/colour.js';
import { HDR_ENCODER, x265HdrParams, type HdrMetadata } from '../ffmpeg/hdr.js';
import type { Container, StreamPlan } from './containers.js';
import type { RawFormat } from './matroska-writer.js';

export interface EncoderSettings {
  codec: string;
  crf?: number;
  preset?: string;
  pixFmt: string;
}

export interface EncoderArgsInput {
  ffmpeg: Binary;
  source: string;
  output: string;
  container: Container;
  /** Size of the frames esrvid writes (the network's output). */
  frameWidth: number;
  frameHeight: number;
  /**
   * What those frames are: RGB (default), converted here to the output's pixel format, or I420
   * that the native kernel converted already (src/native/yuv.h: as this filter would, within a
   * level), for a yuv420p output of the frames' own size only.
   */
  frameFormat?: RawFormat;
  /** Size of the encoded video; differs from the frames when --scale is not the model's scale. */
  outWidth: number;
  outHeight: number;
  settings: EncoderSettings;
  colour: ColourPlan;
  /** The source's HDR10 metadata, written back where the encoder can (HDR_ENCODER). */
  hdr?: HdrMetadata;
  streams: StreamPlan[];
  sourceVideoIndex: number;
  /** The source video stream's time base, kept so timestamps survive exactly. */
  timeBase: [number, number];
  sampleAspectRatio?: string;
  /** Only this span of the source feeds audio/subtitles (seconds from the start). */
  range?: { start: number; duration?: number };
  /** Subtracted from the source's timestamps (µs), as from the video frames, so both start near 0. */
  shiftUs: number;
}

const FORMAT: Record<Container, string> = { mp4: 'mp4', mov: 'mov', matroska: 'matroska', webm: 'webm' };

export function defaultCrf(codec: string): number | undefined {
  if (codec === 'libx264' || codec === 'libx264rgb') return 18;
  if (codec === 'libx265') return 20;
  if (codec === 'libvpx-vp9') return 30;
  if (codec === 'libaom-av1') return 30;
  return undefined;
}

/** Encodes one segment: Matroska RGB (or I420) frames on stdin -> a video-only NUT file. */
export function segmentArgs(a: Pick<EncoderArgsInput, 'ffmpeg' | 'frameWidth' | 'frameHeight' | 'frameFormat' | 'outWidth' | 'outHeight' | 'settings' | 'colour' | 'hdr' | 'sampleAspectRatio' | 'timeBase'>, output: string): string[] {
  const { settings: s } = a;
  const converted = a.frameFormat === 'yuv420p';
  if (converted && (s.pixFmt !== 'yuv420p' || a.outWidth !== a.frameWidth || a.outHeight !== a.frameHeight)) {
    throw new Error(`internal: I420 frames encode only as yuv420p at their own size, not ${s.pixFmt} ${a.outWidth}x${a.outHeight}`);
  }
  const vf: string[] = [];
  if (a.outWidth !== a.frameWidth || a.outHeight !== a.frameHeight) {
    vf.push(`scale=${a.outWidth}:${a.outHeight}:flags=lanczos+accurate_rnd+full_chroma_int`);
  }
  const rgbOut = /^(rgb|bgr|gbr)/.test(s.pixFmt);
  if (!rgbOut && !converted) vf.push(`scale=out_color_matrix=${a.colour.matrix}:out_range=${a.colour.range}:flags=accurate_rnd+full_chroma_int`);
  vf.push(`format=${s.pixFmt}`);
  if (a.sampleAspectRatio) vf.push(`setsar=${a.sampleAspectRatio.replace(':', '/')}`);
  const crf = s.crf ?? defaultCrf(s.codec);
  return [
    '-hide_banner', '-nostdin', '-nostats', '-loglevel', 'error', '-y',
    '-f', 'matroska', '-i', 'pipe:0',
    '-map', '0:v:0',
    '-vf', vf.join(','),
    '-c:v', s.codec,
    ...(crf !== undefined ? ['-crf', String(crf)] : []),
    ...(s.codec === 'libvpx-vp9' ? ['-b:v', '0', '-row-mt', '1'] : []),
    ...(s.preset && (s.codec === 'libx264' || s.codec === 'libx265' || s.codec === 'libx264rgb') ? ['-preset', s.preset] : []),
    ...(a.hdr && s.codec === HDR_ENCODER ? ['-x265-params', x265HdrParams(a.hdr)] : []),
    ...(rgbOut ? [] : [
      '-colorspace', a.colour.tags.colorspace, '-color_primaries', a.colour.tags.primaries,
      '-color_trc', a.colour.tags.trc, '-color_range', a.colour.tags.range,
    ]),
    // Every frame keeps the timestamp it had in the source, in the source's own time base.
    ...passthroughTiming(a.ffmpeg), '-copyts',
    '-enc_time_base:v', `${a.timeBase[0]}:${a.timeBase[1]}`,
    // NUT keeps the source's time base exactly (Matroska would round every timestamp to 1 ms).
    '-f', 'nut', output,
  ];
}

export interface MuxArgsInput extends Pick<EncoderArgsInput, 'source' | 'output' | 'container' | 'streams' | 'sourceVideoIndex' | 'timeBase' | 'shiftUs'> {
  /** ffconcat list of the segments (with exact durations). */
  concatList: string;
  /** Timestamp of the first frame (µs on the output clock): concat starts its output at 0. */
  firstPtsUs: number;
  /** Rotation tag to write (MP4/MOV), 0 for none. ffmpeg honours it only on a stream copy like this one. */
  rotationTag: number;
  /** For a range: the source's other streams already cut to it by rangeCutArgs (they start at 0). */
  cutFile?: string;
  /**
   * Every input moved this much later (µs; whole files into Matroska/WebM, see join.ts): a source
   * stream that starts before the video then has no negative timestamp for the muxer to move on
   * its own.
   */
  leadUs?: number;
}

const SPEC = { audio: 'a', subtitle: 's', attachment: 't' } as const;

/** -map/-c/-map_metadata for the carried streams, taken from `input` (stream k of a cut file is the k-th carried one). */
function carriedStreams(streams: StreamPlan[], input: number, fromCut: boolean): string[] {
  const args: string[] = [];
  const counters = { audio: 0, subtitle: 0, attachment: 0 };
  streams.forEach((st, k) => {
    const n = counters[st.type]++;
    const from = fromCut ? k : st.index;
    // Naming any stream's metadata source turns off ffmpeg's automatic per-stream copy, so each
    // carried stream names its own (language, title, handler).
    args.push('-map', `${input}:${from}`, `-c:${SPEC[st.type]}:${n}`, fromCut ? 'copy' : st.codec, `-map_metadata:s:${SPEC[st.type]}:${n}`, `${input}:s:${from}`);
  });
  return args;
}

/**
 * For a range: cuts the source's carried streams to [start, end) on the source clock, rebased to
 * start at 0, into a file of the output's container. Stream-copied packets are cut one by one on
 * their timestamps (output -ss/-to under -copyts). This is a separate pass because the same
 * options in the final mux would also apply to (and drop) the joined video.
 */
export function rangeCutArgs(a: { source: string; output: string; container: Container; streams: StreamPlan[]; seekSeconds: number; startUs: number; endUs: number }): string[] {
  return [
    '-hide_banner', '-nostdin', '-nostats', '-loglevel', 'error', '-y', '-copyts',
    '-ss', a.seekSeconds.toFixed(6), '-i', a.source,
    ...carriedStreams(a.streams, 0, false),
    '-map_chapters', '0',
    '-ss', (a.startUs / 1e6).toFixed(6),
    ...(Number.isFinite(a.endUs) ? ['-to', (a.endUs / 1e6).toFixed(6)] : []),
    '-f', FORMAT[a.container], a.output,
  ];
}

/** Joins the segments (stream copy) and muxes in the source's other streams, chapters and metadata. */
export function muxArgs(a: MuxArgsInput): string[] {
  const mp4like = a.container === 'mp4' || a.container === 'mov';
  // Whole file: streams come straight from the source, shifted onto the frames' clock.
  // Range: from the cut file (already on it); global metadata still from the source.
  const lead = a.cutFile ? 0 : (a.leadUs ?? 0);
  const inputs = a.cutFile
    ? ['-i', a.cutFile, '-i', a.source]
    : [...(lead - a.shiftUs !== 0 ? ['-itsoffset', ((lead - a.shiftUs) / 1e6).toFixed(6)] : []), '-i', a.source];
  const meta = a.cutFile ? 2 : 1;
  return [
    '-hide_banner', '-nostdin', '-nostats', '-loglevel', 'error', '-y',
    '-f', 'concat', '-safe', '0', ...(a.firstPtsUs + lead !== 0 ? ['-itsoffset', ((a.firstPtsUs + lead) / 1e6).toFixed(6)] : []), '-i', a.concatList,
    ...inputs,
    '-map', '0:v:0',
    ...carriedStreams(a.streams, 1, !!a.cutFile),
    '-map_metadata', String(meta),
    '-map_metadata:s:v:0', `${meta}:s:${a.sourceVideoIndex}`,
    '-map_chapters', '1',
    '-c:v', 'copy',
    '-copyts',
    ...(mp4like && a.timeBase[0] === 1 ? ['-video_track_timescale', String(a.timeBase[1])] : []),
    ...(mp4like ? ['-movflags', '+faststart', '-metadata:s:v:0', `rotate=${a.rotationTag}`] : []),
    '-f', FORMAT[a.container],
    a.output,
  ];
}
