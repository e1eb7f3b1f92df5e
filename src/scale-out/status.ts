/**
 * A scale-out job's state as the queue holds it: the parent (join) job and one child per
 * segment, each waiting, active on a named worker with its progress, done, retrying or failed.
 * Read by `esrvid status` and by a waiting `esrvid submit`.
 */
import { Queue, type Job } from 'bullmq';
import type { SegmentRecord } from '../encode/work-dir.js';
import { describeSegment, JOIN_QUEUE, QUEUE_PREFIX, SEGMENT_QUEUE, segmentJobId, type JobSpec, type JoinResult, type SegmentJobData } from './job.js';
import { connectionOptions } from './redis.js';
import type { SegmentProgress } from './worker.js';

export type SegmentState = 'waiting' | 'active' | 'retrying' | 'done' | 'failed';
export type JobState = 'running' | 'joining' | 'done' | 'failed';

export interface SegmentStatus {
  index: number;
  /** Frames [start, end) of the source. */
  start: number;
  end: number;
  state: SegmentState;
  /** Frames upscaled so far (all of them when done). */
  frames: number;
  worker?: string;
  /** Attempts that failed so far. */
  failedAttempts: number;
  error?: string;
}

export interface JobStatus {
  id: string;
  state: JobState;
  input: string;
  output: string;
  frames: number;
  framesDone: number;
  segments: SegmentStatus[];
  /** Workers connected to the queue now. */
  workers: string[];
  /** For a failed job: which segment failed and why. */
  failure?: string;
  result?: JoinResult;
  planMs: number;
  submittedAt: number;
  model: string;
  precision: string;
  video: JobSpec['video'];
}

export class JobQueues {
  readonly segments: Queue<SegmentJobData, SegmentRecord>;
  readonly joins: Queue<JobSpec, JoinResult>;
  constructor(redis: string) {
    const opts = { connection: connectionOptions(redis), prefix: QUEUE_PREFIX };
    this.segments = new Queue(SEGMENT_QUEUE, opts);
    this.joins = new Queue(JOIN_QUEUE, opts);
    // Reconnects are ioredis's business; a command issued meanwhile waits for it.
    this.segments.on('error', () => {});
    this.joins.on('error', () => {});
  }
  /** Bounded: with Redis gone, closing would wait for it (the caller is exiting anyway). */
  async close(withinMs = 3000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all([this.segments.close(), this.joins.close()]), new Promise((r) => (timer = setTimeout(r, withinMs)))]);
    clearTimeout(timer);
  }
}

const segmentState = (state: string, job: Job): SegmentState => {
  if (state === 'completed') return 'done';
  if (state === 'failed') return 'failed';
  if (state === 'active') return 'active';
  if (state === 'delayed' || ((state === 'waiting' || state === 'prioritized') && job.attemptsMade > 0)) return 'retrying';
  return 'waiting';
};

/** undefined when the queue knows no such job. */
export async function jobStatus(q: JobQueues, id: string): Promise<JobStatus | undefined> {
  const parent = await q.joins.getJob(id);
  if (!parent) return undefined;
  const spec = parent.data;
  const parentState = await parent.getState();
  const segments = await Promise.all(spec.segments.map(async (seg): Promise<SegmentStatus> => {
    const total = seg.end - seg.start;
    const base = { index: seg.index, start: seg.start, end: seg.end };
    const job = await q.segments.getJob(segmentJobId(id, seg.index));
    if (!job) return { ...base, state: parentState === 'completed' ? 'done' : 'waiting', frames: parentState === 'completed' ? total : 0, failedAttempts: 0 };
    const state = segmentState(await job.getState(), job);
    const p = (typeof job.progress === 'object' ? job.progress : undefined) as SegmentProgress | undefined;
    const frames = state === 'done' ? total : state === 'active' ? Math.min(p?.frames ?? 0, total) : 0;
    return {
      ...base, state, frames, worker: state === 'active' || state === 'done' ? p?.worker ?? job.processedBy : undefined,
      failedAttempts: Math.max(0, job.attemptsMade - (state === 'done' ? 1 : 0)), error: job.failedReason || undefined,
    };
  }));
  let state: JobState = 'running';
  let failure: string | undefined;
  if (parentState === 'completed') state = 'done';
  else if (parentState === 'failed') {
    state = 'failed';
    const bad = segments.find((s) => s.state === 'failed');
    const seg = bad && spec.segments[bad.index]!;
    failure = bad && seg
      ? `${describeSegment(seg)} failed ${bad.failedAttempts} time${bad.failedAttempts === 1 ? '' : 's'}: ${bad.error ?? 'no reason given'}`
      : `joining failed: ${parent.failedReason || 'no reason given'}`;
  } else if (parentState === 'active' || parentState === 'waiting' || parentState === 'prioritized') state = 'joining';
  // Each worker's connection is named "<prefix>:<queue>:w:<worker name>" (CLIENT LIST).
  const workers = (await q.segments.getWorkers()).map((w) => w.rawname?.split(':w:')[1]).filter((n): n is string => !!n);
  return {
    id, state, input: spec.input, output: spec.output, frames: spec.frames,
    framesDone: segments.reduce((n, s) => n + s.frames, 0), segments, workers: [...new Set(workers)].sort(),
    failure, result: parentState === 'completed' ? parent.returnvalue : undefined, planMs: spec.planMs, submittedAt: spec.submittedAt,
    model: spec.settings.model, precision: spec.settings.precision, video: spec.video,
  };
}

/** The status as text: a line per segment, totals and the workers seen. */
export function formatStatus(s: JobStatus): string {
  const lines = [`job ${s.id}: ${s.state}, ${s.framesDone}/${s.frames} frames (${s.frames ? ((100 * s.framesDone) / s.frames).toFixed(1) : '0.0'}%), ${s.input} -> ${s.output}`];
  for (const g of s.segments) {
    const total = g.end - g.start;
    let what: string = g.state;
    if (g.state === 'active') what = `active on ${g.worker ?? '?'}, ${g.frames}/${total} frames (${Math.floor((100 * g.frames) / total)}%)`;
    if (g.state === 'done' && g.worker) what = `done by ${g.worker}`;
    if (g.state === 'retrying') what = `retrying after ${g.failedAttempts} failed attempt(s): ${g.error ?? ''}`;
    if (g.state === 'failed') what = `failed after ${g.failedAttempts} attempt(s): ${g.error ?? ''}`;
    lines.push(`  segment ${String(g.index).padStart(3)}  frames ${g.start}-${g.end - 1}  ${what}`);
  }
  const count = (st: SegmentState) => s.segments.filter((g) => g.state === st).length;
  lines.push(`segments: ${count('done')} done, ${count('active')} active, ${count('waiting')} waiting, ${count('retrying')} retrying, ${count('failed')} failed, of ${s.segments.length}`);
  lines.push(`workers: ${s.workers.length ? s.workers.join(', ') : 'none connected'}`);
  if (s.failure) lines.push(`failed: ${s.failure}`);
  if (s.result) lines.push(`output: ${s.result.output} (${s.result.frames} frames, joined by ${s.result.joinedBy} in ${(s.result.joinMs / 1000).toFixed(2)} s)`);
  return lines.join('\n');
}
