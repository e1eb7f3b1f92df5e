/**
 * What esrvid needs to know about an input before any work: its video stream (size, timing,
 * colour, rotation), the streams to carry over, and whether it can be processed at all.
 * Problems are reported as InputError before a single frame is decoded.
 */
import { execFile } from 'node:child_process';
import { statSync } from 'node:fs';
import { promisify } from 'node:util';
import { InputError } from '../errors.js';
import type { Binary } from './binaries.js';
import { mayCarryHdr, probeHdr, type HdrMetadata } from './hdr.js';

export interface VideoStreamInfo {
  index: number;
  codec: string;
  width: number;
  height: number;
  pixFmt: string;
  /** Bits per component of the source (8, 10, 12). */
  bitDepth: number;
  timeBase: [number, number];
  /** Nominal rate (r_frame_rate) and average rate; they differ for variable-frame-rate video. */
  rFrameRate: number;
  avgFrameRate: number;
  startTime: number;
  duration: number | undefined;
  frameCount: number | undefined;
  sampleAspectRatio: string | undefined;
  colorSpace: string | undefined;
  colorTransfer: string | undefined;
  colorPrimaries: string | undefined;
  colorRange: string | undefined;
  /** Clockwise display rotation in degrees from the display matrix or rotate tag (0, 90, 180, 270). */
  rotation: number;
  /** A single still image (png, jpeg, ...), handled as a one-frame video. */
  stillImage: boolean;
  /** Frame intervals vary (measured on the first packets; r_frame_rate often hides it). */
  variableFrameRate: boolean;
  /** HDR10 mastering display and content light level of the first frame (HDR sources only). */
  hdr?: HdrMetadata;
}

export interface StreamInfo {
  index: number;
  type: 'audio' | 'subtitle' | 'data' | 'attachment' | 'video';
  codec: string;
  attachedPic: boolean;
}

export interface MediaInfo {
  path: string;
  formatName: string;
  duration: number | undefined;
  /** The container's start time in seconds (where the earliest stream begins; may be < 0). */
  startTime: number;
  video: VideoStreamInfo;
  streams: StreamInfo[];
  chapters: number;
}

/**
 * The nominal duration of one frame, µs: from the average rate, else the stream's rate, else 25
 * frames/s. The segments' last frames get it, so the single-process pipeline and the scale-out
 * joiner must use the same figure.
 */
export function frameDurationUs(v: VideoStreamInfo): number {
  const fps = v.avgFrameRate || v.rFrameRate;
  return fps > 0 ? 1e6 / fps : 40_000;
}

const rate = (s: string | undefined): number => {
  if (!s) return 0;
  const [n, d] = s.split('/').map(Number);
  return d ? n! / d : Number(n) || 0;
};
const num = (s: unknown): number | undefined => {
  const n = typeof s === 'number' ? s : typeof s === 'string' ? Number(s) : NaN;
  return Number.isFinite(n) ? n : undefined;
};

function bitDepthOf(pixFmt: string, bitsPerRaw: number | undefined): number {
  if (bitsPerRaw && bitsPerRaw > 0) return bitsPerRaw;
  const m = /p(9|10|12|14|16)(le|be)?$/.exec(pixFmt);
  return m ? Number(m[1]) : 8;
}

function rotationOf(stream: Record<string, any>): number {
  let deg = 0;
  const tag = num(stream.tags?.rotate);
  if (tag !== undefined) deg = tag;
  for (const sd of stream.side_data_list ?? []) {
    if (typeof sd.rotation === 'number') deg = -sd.rotation; // display matrix rotation is counter-clockwise
  }
  return ((Math.round(deg / 90) * 90) % 360 + 360) % 360;
}

export async function probe(ffprobe: Binary, path: string): Promise<MediaInfo> {
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new InputError(`input ${path} does not exist`, 'check the path');
  }
  if (st.isDirectory()) throw new InputError(`input ${path} is a directory`, 'give a video file');
  if (st.size === 0) throw new InputError(`input ${path} is empty (0 bytes)`, 'give a video file');

  // The frame-rate sample runs beside the main probe ('V:0' is the stream chosen below: the first
  // video stream that is not an attached picture), one process's start-up sooner.
  const variableRate = sampleIsVariableRate(ffprobe, path, 'V:0');
  let json: Record<string, any>;
  try {
    const { stdout } = await promisify(execFile)(ffprobe.path,
      ['-v', 'error', '-show_streams', '-show_format', '-show_chapters', '-of', 'json', path],
      { maxBuffer: 64 << 20, timeout: 60_000 });
    json = JSON.parse(stdout);
  } catch (err) {
    const stderr = String((err as { stderr?: string }).stderr ?? '').trim().split('\n').pop() ?? '';
    throw new InputError(`input ${path} is not a readable video (${stderr.replace(/^.*?: /, '') || 'ffprobe failed'})`,
      'check that the file is complete and is a video', err);
  }
  const streams: Record<string, any>[] = json.streams ?? [];
  const formatName: string = json.format?.format_name ?? '';
  const isImageFormat = /(^|,)(image2|png_pipe|jpeg_pipe|webp_pipe|bmp_pipe|tiff_pipe|gif)(,|$)/.test(formatName);
  const v = streams.find((s) => s.codec_type === 'video' && !s.disposition?.attached_pic);
  if (!v) {
    const kinds = [...new Set(streams.map((s) => s.codec_type))].join(', ') || 'no streams';
    throw new InputError(`input ${path} has no video stream (${kinds})`, 'esrvid upscales video; give a file with a video track');
  }
  const width = num(v.width) ?? 0;
  const height = num(v.height) ?? 0;
  if (width <= 0 || height <= 0) throw new InputError(`input ${path}: the video stream has no frame size`, 'the file may be damaged');
  const tb = String(v.time_base ?? '1/1000').split('/').map(Number) as [number, number];
  const video: VideoStreamInfo = {
    index: v.index,
    codec: v.codec_name ?? 'unknown',
    width,
    height,
    pixFmt: v.pix_fmt ?? 'unknown',
    bitDepth: bitDepthOf(v.pix_fmt ?? '', num(v.bits_per_raw_sample)),
    timeBase: tb,
    rFrameRate: rate(v.r_frame_rate),
    avgFrameRate: rate(v.avg_frame_rate),
    startTime: num(v.start_time) ?? 0,
    duration: num(v.duration) ?? num(json.format?.duration),
    frameCount: num(v.nb_frames),
    sampleAspectRatio: v.sample_aspect_ratio && v.sample_aspect_ratio !== '0:1' ? v.sample_aspect_ratio : undefined,
    colorSpace: v.color_space,
    colorTransfer: v.color_transfer,
    colorPrimaries: v.color_primaries,
    colorRange: v.color_range,
    rotation: rotationOf(v),
    stillImage: isImageFormat,
    variableFrameRate: await variableRate,
  };
  if (mayCarryHdr(video.colorTransfer, video.colorPrimaries)) {
    const hdr = await probeHdr(ffprobe, path, 'V:0');
    if (hdr) video.hdr = hdr;
  }
  return {
    path,
    formatName,
    duration: num(json.format?.duration),
    startTime: num(json.format?.start_time) ?? 0,
    video,
    streams: streams.map((s) => ({ index: s.index, type: s.codec_type, codec: s.codec_name ?? 'unknown', attachedPic: !!s.disposition?.attached_pic })),
    chapters: (json.chapters ?? []).length,
  };
}

/**
 * Reads the timestamps of the first 300 video packets (demux only, no decoding: milliseconds even
 * for a film) and calls the rate variable when the gaps between frames differ by more than 5%.
 */
async function sampleIsVariableRate(ffprobe: Binary, path: string, stream: string): Promise<boolean> {
  try {
    const { stdout } = await promisify(execFile)(ffprobe.path,
      ['-v', 'error', '-select_streams', stream, '-read_intervals', '%+#300', '-show_entries', 'packet=pts', '-of', 'csv=p=0', path],
      { maxBuffer: 8 << 20, timeout: 60_000 });
    const pts = stdout.split('\n').filter((l) => /^-?\d+$/.test(l.trim())).map(Number).sort((a, b) => a - b);
    const gaps = pts.slice(1).map((p, i) => p - pts[i]!).filter((g) => g > 0);
    if (gaps.length < 2) return false;
    return Math.max(...gaps) > Math.min(...gaps) * 1.05 + 1;
  } catch {
    return false;
  }
}

/**
 * The earliest presentation time (µs) of each stream among the file's first packets (demux only):
 * where a stream really starts, which the streams' start_time may not say (MP4's AAC priming
 * packet sits at -21 ms while its edit list makes start_time 0).
 */
export async function firstPacketTimes(ffprobe: Binary, path: string): Promise<Map<number, number>> {
  const { stdout } = await promisify(execFile)(ffprobe.path,
    ['-v', 'error', '-read_intervals', '%+#64', '-show_entries', 'packet=stream_index,pts_time', '-of', 'csv=p=0', path],
    { maxBuffer: 8 << 20, timeout: 60_000 });
  const first = new Map<number, number>();
  for (const line of stdout.split('\n')) {
    const [index, time] = line.trim().split(',');
    const us = Math.round(Number(time) * 1e6);
    if (index === undefined || !/^\d+$/.test(index) || !Number.isFinite(us)) continue;
    first.set(Number(index), Math.min(first.get(Number(index)) ?? us, us));
  }
  return first;
}

/**
 * Presentation times (µs, on the source's clock) of every packet of a video stream, sorted: the
 * timestamp of frame N for exact `--frames a:b` ranges. Demuxing only, no decoding.
 */
export async function videoFrameTimes(ffprobe: Binary, path: string, index: number): Promise<number[]> {
  return (await videoKeyframes(ffprobe, path, index)).times;
}

/**
 * Every frame's presentation time (µs, source clock, sorted, as videoFrameTimes) and which of
 * them are keyframes (the packet's K flag), from one demux-only pass: what a scale-out job is
 * split on.
 */
export async function videoKeyframes(ffprobe: Binary, path: string, index: number): Promise<{ times: number[]; keyframes: number[] }> {
  const { stdout } = await promisify(execFile)(ffprobe.path,
    ['-v', 'error', '-select_streams', String(index), '-show_entries', 'packet=pts_time,flags', '-of', 'csv=p=0', path],
    { maxBuffer: 512 << 20, timeout: 600_000 });
  const times: number[] = [];
  const keyframes: number[] = [];
  for (const line of stdout.split('\n')) {
    const [t, flags] = line.trim().split(',');
    if (!t || !/^-?[\d.]+$/.test(t)) continue;
    const us = Math.round(Number(t) * 1e6);
    times.push(us);
    if (flags?.includes('K')) keyframes.push(us);
  }
  return { times: times.sort((a, b) => a - b), keyframes: keyframes.sort((a, b) => a - b) };
}
