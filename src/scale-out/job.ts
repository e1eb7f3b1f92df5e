/**
 * A scale-out job as the queue and the shared storage hold it: one plan (the source's frames cut
 * into segments on keyframes, every setting that changes the pixels) and one BullMQ flow, a
 * parent "join" job whose children are the segments. BullMQ moves the parent to its queue only
 * when every child has completed (atomically, in Redis), so exactly one party joins; a child
 * that fails on every attempt fails the parent.
 */
import { createHash } from 'node:crypto';
import type { JobIdentity } from '../encode/work-dir.js';
import type { PlannedSegment } from './plan.js';

/** BullMQ's key prefix for esrvid's queues. */
export const QUEUE_PREFIX = 'esrvid';
export const SEGMENT_QUEUE = 'segments';
export const JOIN_QUEUE = 'join';

/** What a worker needs to upscale a segment exactly as every other worker does. */
export interface JobSettings {
  model: string;
  scale?: number;
  precision: 'fp32' | 'fp16';
  tile: number | 'auto';
  tilePad: number;
  codec?: string;
  crf?: number;
  preset: string;
  pixFmt?: string;
  segmentSeconds: number;
}

export interface JobSpec {
  id: string;
  /** Absolute paths on the submitter's host (workers map them with --map-path). */
  input: string;
  output: string;
  /** The job's folder on shared storage. */
  folder: string;
  source: JobIdentity['input'];
  settings: JobSettings;
  frames: number;
  /** The source's frame size and average rate, and the output's size (for progress displays). */
  video: { width: number; height: number; fps: number; outWidth: number; outHeight: number };
  segments: PlannedSegment[];
  attempts: number;
  backoffMs: number;
  /** ms since the epoch. */
  submittedAt: number;
  /** Time spent planning (probing the keyframes), ms. */
  planMs: number;
}

/** The part of the spec each segment job carries (everything but the other segments). */
export type SegmentJobData = { spec: Omit<JobSpec, 'segments'>; segment: PlannedSegment };

/** What the join job returns. */
export interface JoinResult {
  output: string;
  frames: number;
  bytes: number;
  joinMs: number;
  joinedBy: string;
}

/**
 * The job's id: the same input file (fingerprint), settings and output give the same id, so
 * submitting a job again attaches to it instead of starting a second one.
 */
export function jobIdFor(source: JobIdentity['input'], settings: JobSettings, outputAbs: string): string {
  const h = createHash('sha256').update(JSON.stringify({ source, settings, output: outputAbs })).digest('hex');
  return `j${h.slice(0, 12)}`;
}

export const segmentJobId = (jobId: string, index: number) => `${jobId}-s${String(index).padStart(5, '0')}`;

/** "segment 3 (frames 36-47)": how messages name a segment (frame numbers counted from 0, inclusive). */
export const describeSegment = (s: PlannedSegment) => `segment ${s.index} (frames ${s.start}-${s.end - 1})`;
