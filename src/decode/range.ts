/**
 * What part of the source a job covers, on the source's own clock. --start/--end are relative to
 * the container's start, as players show them; --frames numbers are resolved to exact timestamps
 * by a demux-only scan, so ranges (and resume points) are frame-exact even with variable rates.
 */
import { InputError } from '../errors.js';
import type { Binary } from '../ffmpeg/binaries.js';
import { videoFrameTimes, type MediaInfo } from '../ffmpeg/probe.js';

export interface RangeRequest {
  start?: number;
  end?: number;
  frames?: [number, number | undefined];
}

export interface RangePlan {
  /** Input seek for the decoder and the audio source, seconds from the start (undefined: whole file). */
  seekSeconds?: number;
  durationSeconds?: number;
  /** Frames with a source timestamp at or after this (µs) are not taken. */
  endUs: number;
  /** Exactly this many frames (for --frames). */
  frameCount?: number;
  /** Subtracted from every source timestamp so the output starts at 0. */
  shiftUs: number;
}

/**
 * Turns --start/--end/--frames into seek points on the source's clock. Times are relative to the
 * container's start, as players show them; frame numbers are resolved to exact timestamps by a
 * demux-only scan, so a range is frame-exact even with variable frame rates.
 */
export async function planRange(o: RangeRequest, info: MediaInfo, ffprobe: Binary): Promise<RangePlan> {
  const base = info.startTime;
  const length = info.duration ?? info.video.duration;
  const whole: RangePlan = { endUs: Infinity, shiftUs: Math.round(Math.max(0, base) * 1e6) };
  let start = o.start;
  let end = o.end;
  let frameCount: number | undefined;
  if (o.frames) {
    const times = await videoFrameTimes(ffprobe, info.path, info.video.index);
    const [a, b] = o.frames;
    if (a >= times.length) throw new InputError(`--frames starts at frame ${a}, but the video has ${times.length} frames`, `use a start below ${times.length}`);
    start = times[a]! / 1e6 - base;
    end = b !== undefined && b < times.length ? times[b]! / 1e6 - base : undefined;
    frameCount = Math.min(b ?? times.length, times.length) - a;
  }
  if (start === undefined && end === undefined) return whole;
  const s = start ?? 0;
  if (length !== undefined && s >= length) {
    throw new InputError(`--start ${s.toFixed(3)} s is beyond the end of the video (${length.toFixed(3)} s)`, `use a start below ${length.toFixed(3)}`);
  }
  return {
    seekSeconds: s,
    durationSeconds: end !== undefined ? end - s : undefined,
    endUs: end !== undefined ? Math.round((base + end) * 1e6) : Infinity,
    frameCount,
    shiftUs: Math.round((base + s) * 1e6),
  };
}


/**
 * Timestamps (µs, source clock) of the frames a job covers, in order: where a resumed job must
 * pick up. Same selection rules as the decoding loop: [start, end) or the --frames slice.
 */
export async function rangeFrameTimes(o: RangeRequest, info: MediaInfo, ffprobe: Binary, plan: RangePlan): Promise<number[]> {
  const times = await videoFrameTimes(ffprobe, info.path, info.video.index);
  if (o.frames) return times.slice(o.frames[0], o.frames[1]);
  const startUs = plan.seekSeconds !== undefined ? plan.shiftUs : -Infinity;
  return times.filter((t) => t >= startUs && t < plan.endUs);
}
