/**
 * A waiting `esrvid submit` shows the job on the single-job dashboard: the job's status becomes
 * the pipeline's events, with the segments and workers in place of the stage figures.
 */
import type { ClusterProgress, DoneEvent, ProgressEvent, StartEvent } from '../events.js';
import type { JobStatus } from './status.js';

export function startEventOf(s: JobStatus): StartEvent {
  return {
    type: 'start', input: s.input, output: s.output, inputSize: [s.video.width, s.video.height], outputSize: [s.video.outWidth, s.video.outHeight],
    model: s.model, device: 'workers', precision: s.precision, batch: 1, tile: 0, totalFrames: s.frames, fps: s.video.fps, distributed: true,
  };
}

export function clusterOf(s: JobStatus): ClusterProgress {
  const count = (...states: string[]) => s.segments.filter((g) => states.includes(g.state)).length;
  return { segments: s.segments.length, done: count('done'), active: count('active'), waiting: count('waiting', 'retrying'), failed: count('failed'), workers: s.workers };
}

export function progressEventOf(s: JobStatus, elapsedMs: number): ProgressEvent {
  return {
    type: 'progress', frames: s.framesDone, totalFrames: s.frames, elapsedMs,
    decodeQueue: 0, decodeCapacity: 0, encodeQueue: 0, encodeCapacity: 0, decodeMs: 0, inferMs: 0, encodeMs: 0, cluster: clusterOf(s),
  };
}

export function doneEventOf(s: JobStatus, elapsedMs: number): DoneEvent {
  return {
    type: 'done', frames: s.result?.frames ?? s.frames, elapsedMs, output: s.result?.output ?? s.output, bytes: s.result?.bytes ?? 0,
    damagedFrames: 0, peakRssBytes: 0, stageMs: { decode: 0, infer: 0, encode: 0 },
  };
}
