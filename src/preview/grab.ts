/**
 * Decodes the few frames a preview needs, by seeking: the main pipeline's Decoder with an input
 * seek (-ss before -i jumps to the keyframe before the point and decodes from there), so a
 * preview near the end of a film costs what one near the start does. Timestamps stay on the
 * source clock (-copyts), as in the main pipeline.
 *
 * A time T means the frame on screen at T, as in a player: the last frame that starts at or
 * before T (the first frame, if T is before it). A frame number means that frame, counted from 0
 * in presentation order; its timestamp comes from a demux-only packet scan, as for --frames.
 */
import { Decoder } from '../decode/decoder.js';
import { CancelledError, InputError } from '../errors.js';
import type { Binary } from '../ffmpeg/binaries.js';
import { planColour } from '../ffmpeg/colour.js';
import { videoFrameTimes, type MediaInfo } from '../ffmpeg/probe.js';
import type { RgbImage } from './layout.js';
import { describePoint, type PreviewPoint } from './spec.js';

export interface Target {
  /** Input seek, seconds from the container's start. */
  seekSeconds: number;
  /** The frame wanted is the last one at or before this timestamp (µs, source clock). */
  targetUs: number;
}

export interface GrabbedFrame extends RgbImage {
  /** Presentation time, µs on the source's clock. */
  ptsUs: number;
  /** Seconds from the container's start, as players show it. */
  seconds: number;
}

/** The displayed frame size (frames are decoded upright, rotation applied). */
export function displaySize(info: MediaInfo): [number, number] {
  const v = info.video;
  return v.rotation === 90 || v.rotation === 270 ? [v.height, v.width] : [v.width, v.height];
}

/**
 * Where to seek for a point. Times seek a little earlier than asked (two frame intervals, or 2 s
 * for variable-rate video) so the frame that started just before T is decoded too.
 */
export async function locate(point: PreviewPoint, info: MediaInfo, ffprobe: Binary): Promise<Target> {
  const base = info.startTime;
  if (point.kind === 'frame') {
    const times = await videoFrameTimes(ffprobe, info.path, info.video.index);
    if (point.index >= times.length) {
      throw new InputError(`frame ${point.index} is beyond the end of the video (it has ${times.length} frames, f0 to f${times.length - 1})`,
        `use a frame number below ${times.length}`);
    }
    const t = times[point.index]!;
    return { seekSeconds: Math.max(0, t / 1e6 - base), targetUs: t };
  }
  const length = info.duration ?? info.video.duration;
  if (length !== undefined && point.seconds >= length) {
    throw new InputError(`${describePoint(point)} is beyond the end of the video (${length.toFixed(3)} s)`, `use a time below ${length.toFixed(3)}`);
  }
  const fps = info.video.avgFrameRate || info.video.rFrameRate;
  const lookback = info.video.variableFrameRate || !(fps > 0) ? 2 : 2 / fps;
  return { seekSeconds: Math.max(0, point.seconds - lookback), targetUs: Math.round((base + point.seconds) * 1e6) };
}

/**
 * `count` consecutive frames from the target on (fewer when the video ends first), copied out of
 * the decoder's pool. Stopping the loop stops the decoder.
 */
export async function grabFrames(o: { ffmpeg: Binary; info: MediaInfo; target: Target; count: number; signal?: AbortSignal }): Promise<GrabbedFrame[]> {
  const [width, height] = displaySize(o.info);
  const decoder = new Decoder({
    ffmpeg: o.ffmpeg, input: o.info.path, streamIndex: o.info.video.index, width, height, colour: planColour(o.info.video),
    noAutorotate: false, poolSize: 2, signal: o.signal, startSeconds: o.target.seekSeconds,
  });
  const base = o.info.startTime;
  const toFrame = (data: Buffer, ptsUs: number): GrabbedFrame => ({
    data: new Uint8Array(data), width, height, ptsUs, seconds: ptsUs / 1e6 - base,
  });
  let candidate: GrabbedFrame | undefined;
  const out: GrabbedFrame[] = [];
  for await (const f of decoder.frames()) {
    const frame = toFrame(f.data, f.ptsUs);
    decoder.pool.release(f.data);
    if (out.length === 0 && frame.ptsUs <= o.target.targetUs) {
      candidate = frame; // on screen at the target time, unless a later frame also starts by then
      continue;
    }
    if (out.length === 0 && candidate) out.push(candidate);
    if (out.length < o.count) out.push(frame);
    if (out.length >= o.count) break;
  }
  if (o.signal?.aborted) throw new CancelledError();
  if (out.length === 0 && candidate) out.push(candidate); // the video's last frame
  if (out.length === 0) throw new InputError(`no frame could be decoded at ${(o.target.targetUs / 1e6 - base).toFixed(3)} s of ${o.info.path}`, 'check that the video plays there');
  return out;
}
