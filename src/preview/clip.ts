/**
 * `esrvid preview --range a-b`: a short clip for judging motion. It is the main job itself
 * (upscaleVideo with --start/--end or --frames), so the clip is exactly what the full run will
 * give for those frames, audio included and in sync.
 */
import { basename, extname, join } from 'node:path';
import { InputError } from '../errors.js';
import { findFfmpeg } from '../ffmpeg/binaries.js';
import { probe } from '../ffmpeg/probe.js';
import { upscaleVideo, type UpscaleOptions, type UpscaleResult } from '../pipeline.js';
import { fileTime, type ClipRange } from './spec.js';

/** The main command's options, with a clip range in place of --start/--end/--frames. */
export interface ClipOptions extends Omit<UpscaleOptions, 'output' | 'start' | 'end' | 'frames'> {
  range: ClipRange;
  /** Video file; default `<input name>-<start>-<end>.mp4` in `cwd`. */
  output?: string;
  cwd?: string;
}

export function defaultClipName(input: string, r: ClipRange, cwd = process.cwd()): string {
  const stamp = r.kind === 'frame' ? `f${r.start}-f${r.end}` : `${fileTime(r.start)}-${fileTime(r.end)}`;
  return join(cwd, `${basename(input, extname(input))}-${stamp}.mp4`);
}

/** The upscaleVideo() options for a clip: only the range differs from the main command. */
export function clipJob(o: ClipOptions): UpscaleOptions {
  const { range, cwd, output, ...job } = o;
  const span = range.kind === 'time' ? { start: range.start, end: range.end } : { frames: [range.start, range.end] as [number, number] };
  return { ...job, output: output ?? defaultClipName(o.input, range, cwd), ...span };
}

export async function previewClip(o: ClipOptions): Promise<UpscaleResult> {
  if (o.range.kind === 'time') {
    // Said in --range's terms (the pipeline would speak of --start).
    const tools = await findFfmpeg({ ffmpeg: o.ffmpegPath, ffprobe: o.ffprobePath });
    const info = await probe(tools.ffprobe, o.input);
    const length = info.duration ?? info.video.duration;
    if (length !== undefined && o.range.start >= length) {
      throw new InputError(`--range starts at ${o.range.start.toFixed(3)} s, beyond the end of the video (${length.toFixed(3)} s)`, `use a start below ${length.toFixed(3)}`);
    }
  }
  return upscaleVideo(clipJob(o));
}
