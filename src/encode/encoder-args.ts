/**
 * The encoder's command line, as data. Input 0 is esrvid's Matroska stream of upscaled RGB frames
 * (carrying the source's timestamps); input 1 is the source file, read only for the streams that
 * are copied across (audio, subtitles, attachments), chapters and metadata.
 */
import { passthroughTiming, type Binary } from '../ffmpeg/binaries.js';
import type { ColourPlan } from '../ffmpeg/colour.js';
import type { Container, StreamPlan } from './containers.js';

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
  /** Size of the encoded video; differs from the frames when --scale is not the model's scale. */
  outWidth: number;
  outHeight: number;
  settings: EncoderSettings;
  colour: ColourPlan;
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

export function encoderArgs(a: EncoderArgsInput): string[] {
  const { settings: s } = a;
  const vf: string[] = [];
  if (a.outWidth !== a.frameWidth || a.outHeight !== a.frameHeight) {
    vf.push(`scale=${a.outWidth}:${a.outHeight}:flags=lanczos+accurate_rnd+full_chroma_int`);
  }
  const rgbOut = s.pixFmt.startsWith('rgb') || s.pixFmt.startsWith('bgr') || s.pixFmt.startsWith('gbr');
  if (!rgbOut) vf.push(`scale=out_color_matrix=${a.colour.matrix}:out_range=${a.colour.range}:flags=accurate_rnd+full_chroma_int`);
  vf.push(`format=${s.pixFmt}`);
  if (a.sampleAspectRatio) vf.push(`setsar=${a.sampleAspectRatio.replace(':', '/')}`);

  const crf = s.crf ?? defaultCrf(s.codec);
  const mp4like = a.container === 'mp4' || a.container === 'mov';
  const streamArgs: string[] = [];
  const counters = { audio: 0, subtitle: 0, attachment: 0 };
  const spec = { audio: 'a', subtitle: 's', attachment: 't' } as const;
  for (const st of a.streams) {
    const n = counters[st.type]++;
    // Naming any stream's metadata source turns off ffmpeg's automatic per-stream copy, so each
    // carried stream names its own (language, title, handler).
    streamArgs.push('-map', `1:${st.index}`, `-c:${spec[st.type]}:${n}`, st.codec, `-map_metadata:s:${spec[st.type]}:${n}`, `1:s:${st.index}`);
  }
  // The source is seeked (fast), then shifted onto the frames' clock. The copied streams are cut
  // on output time: packets before 0 and after the range's length are dropped. (Input -ss/-t do
  // not cut stream-copied packets under -copyts.)
  const rangeIn = [
    ...(a.range ? ['-ss', a.range.start.toFixed(6)] : []),
    ...(a.shiftUs !== 0 ? ['-itsoffset', (-a.shiftUs / 1e6).toFixed(6)] : []),
  ];
  const rangeOut = a.range ? ['-ss', '0', ...(a.range.duration !== undefined ? ['-t', a.range.duration.toFixed(6)] : [])] : [];
  return [
    '-hide_banner', '-nostdin', '-nostats', '-loglevel', 'error', '-y',
    '-f', 'matroska', '-i', 'pipe:0',
    ...rangeIn, '-i', a.source,
    '-map', '0:v:0',
    ...streamArgs,
    '-map_metadata', '1',
    '-map_metadata:s:v:0', `1:s:${a.sourceVideoIndex}`,
    '-map_chapters', '1',
    ...rangeOut,
    '-vf', vf.join(','),
    '-c:v', s.codec,
    ...(crf !== undefined ? ['-crf', String(crf)] : []),
    ...(s.codec === 'libvpx-vp9' ? ['-b:v', '0', '-row-mt', '1'] : []),
    ...(s.preset && (s.codec === 'libx264' || s.codec === 'libx265' || s.codec === 'libx264rgb') ? ['-preset', s.preset] : []),
    ...(rgbOut ? [] : [
      '-colorspace', a.colour.tags.colorspace, '-color_primaries', a.colour.tags.primaries,
      '-color_trc', a.colour.tags.trc, '-color_range', a.colour.tags.range,
    ]),
    // Every frame keeps the timestamp it had in the source, in the source's own time base.
    ...passthroughTiming(a.ffmpeg), '-copyts',
    '-enc_time_base:v', `${a.timeBase[0]}:${a.timeBase[1]}`,
    ...(mp4like && a.timeBase[0] === 1 ? ['-video_track_timescale', String(a.timeBase[1])] : []),
    ...(mp4like ? ['-movflags', '+faststart'] : []),
    '-f', FORMAT[a.container],
    a.output,
  ];
}
