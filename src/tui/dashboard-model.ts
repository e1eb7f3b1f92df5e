/**
 * The dashboard's model: pipeline events in, numbers to show out. Pure (no React, no clock of its
 * own: every function takes `now`, a monotonic ms clock), so it is tested without a terminal and
 * the plain progress lines can share its ETA.
 *
 * What the pipeline reports (src/events.ts) and what is derived here:
 * - `frames` are frames encoded. Frames inferred ~= frames + batches waiting for the encoder x
 *   batch; frames decoded ~= frames inferred + decoded frames waiting in the pool. Both are
 *   estimates (a batch half written to the encoder counts twice), good to a batch.
 * - `inferMs`/`encodeMs` are the time those stages were busy, so frames / busy seconds is what
 *   the stage alone could sustain (its capacity). Both are taken over the recent past (smoothed
 *   rate / smoothed busy share), so the first batch's warm-up fades out. The stage closest to
 *   100% busy is the bottleneck.
 * - `decodeMs` is not decoder work but the time inference sat waiting for decoded frames: the
 *   decoder's capacity is unknown, so the decode row shows its observed rate and, as its load,
 *   that waiting share (high means decoding holds inference back).
 */
import { isAbsolute, resolve } from 'node:path';
import type { ClusterProgress, DoneEvent, PipelineEvent, ProgressEvent, StartEvent } from '../events.js';

/** Time constant of the smoothed rates: long enough to ride out batch-sized steps. */
export const RATE_TAU_MS = 5000;
/** The sparkline covers the last minute, one value per second. */
export const HISTORY_MS = 60_000;
export const HISTORY_STEP_MS = 1000;
/** Warnings are kept in view; beyond this many only a count of the older ones is shown. */
export const MAX_WARNINGS_SHOWN = 3;

export type StageName = 'decode' | 'infer' | 'encode';
export const STAGES: readonly StageName[] = ['decode', 'infer', 'encode'];

/**
 * An exponential moving average over irregular samples, bias-corrected: until a few time
 * constants have passed it is the time-weighted mean of what was seen, not a drift up from 0.
 */
export interface Ema {
  sum: number;
  weight: number;
}
export const emptyEma: Ema = { sum: 0, weight: 0 };

export function emaAdd(e: Ema, value: number, dtMs: number, tauMs = RATE_TAU_MS): Ema {
  if (!(dtMs > 0) || !Number.isFinite(value)) return e;
  const a = 1 - Math.exp(-dtMs / tauMs);
  return { sum: (1 - a) * e.sum + a * value, weight: (1 - a) * e.weight + a };
}

export function emaValue(e: Ema): number | undefined {
  return e.weight > 0 ? e.sum / e.weight : undefined;
}

export interface DashboardState {
  start?: StartEvent;
  /** Clock time the start event arrived: elapsed time before the first progress event. */
  startAt?: number;
  progress?: ProgressEvent;
  /** Clock time the last progress event arrived: elapsed and ETA keep moving between events. */
  progressAt?: number;
  /** Output frames/s. */
  rate: Ema;
  /** Frames/s leaving each stage (observed). */
  stageRate: Record<StageName, Ema>;
  /** Share of wall time each stage was busy (decode: inference waiting for it), 0-1. */
  load: Record<StageName, Ema>;
  /** (elapsedMs, frames) of the progress events of the last minute and one before it. */
  history: { t: number; frames: number }[];
  warnings: string[];
  done?: DoneEvent;
  /** The user asked to stop; the pipeline is winding down. */
  stopping: boolean;
}

export function initialDashboardState(): DashboardState {
  const perStage = { decode: emptyEma, infer: emptyEma, encode: emptyEma };
  return { rate: emptyEma, stageRate: perStage, load: perStage, history: [], warnings: [], stopping: false };
}

function batchOf(s: DashboardState): number {
  return s.start?.batch ?? 1;
}

/** Frames that have left each stage (see the header comment for how estimated). */
export function stageFrames(p: ProgressEvent, batch: number): Record<StageName, number> {
  const cap = (n: number) => (p.totalFrames ? Math.min(p.totalFrames, n) : n);
  const inferred = cap(p.frames + p.encodeQueue * batch);
  return { encode: p.frames, infer: inferred, decode: cap(inferred + p.decodeQueue) };
}

export function reduceDashboard(s: DashboardState, e: PipelineEvent, now: number): DashboardState {
  switch (e.type) {
    case 'start':
      return { ...initialDashboardState(), start: e, startAt: now, warnings: s.warnings };
    case 'warning':
      return s.warnings.includes(e.message) ? s : { ...s, warnings: [...s.warnings, e.message] };
    case 'done':
      return { ...s, done: e };
    case 'progress': {
      const prev = s.progress;
      const next: DashboardState = { ...s, progress: e, progressAt: now };
      const cutoff = e.elapsedMs - HISTORY_MS;
      // One sample older than the window stays, so the oldest second can be interpolated.
      const kept = s.history.filter((h, i, all) => h.t >= cutoff || (all[i + 1]?.t ?? Infinity) >= cutoff);
      next.history = [...kept, { t: e.elapsedMs, frames: e.frames }];
      const dt = prev ? e.elapsedMs - prev.elapsedMs : 0;
      if (!prev || dt <= 0) return next;
      const perS = (d: number) => d / (dt / 1000);
      next.rate = emaAdd(s.rate, perS(e.frames - prev.frames), dt);
      const after = stageFrames(e, batchOf(s));
      const before = stageFrames(prev, batchOf(s));
      next.stageRate = {
        decode: emaAdd(s.stageRate.decode, perS(after.decode - before.decode), dt),
        infer: emaAdd(s.stageRate.infer, perS(after.infer - before.infer), dt),
        encode: emaAdd(s.stageRate.encode, perS(after.encode - before.encode), dt),
      };
      const share = (d: number) => Math.min(1, Math.max(0, d / dt));
      next.load = {
        decode: emaAdd(s.load.decode, share(e.decodeMs - prev.decodeMs), dt),
        infer: emaAdd(s.load.infer, share(e.inferMs - prev.inferMs), dt),
        encode: emaAdd(s.load.encode, share(e.encodeMs - prev.encodeMs), dt),
      };
      return next;
    }
  }
}

export function markStopping(s: DashboardState): DashboardState {
  return { ...s, stopping: true };
}

export interface StageView {
  name: StageName;
  /** Frames/s: the capacity (frames / busy seconds) for infer and encode, the observed rate for decode. */
  fps?: number;
  /** Share of time busy (decode: inference waiting for frames), 0-1. */
  load?: number;
  /** Items waiting in the queue after this stage's input side, and its size (decode: frame pool; encode: batch slots). */
  queue?: [number, number];
}

export interface DashboardView {
  start?: StartEvent;
  frames: number;
  /** Of `frames`, those identical to the frame before (not upscaled again). */
  reusedFrames: number;
  totalFrames?: number;
  /** Done / total, 0-1, when the total is known. */
  fraction?: number;
  elapsedMs: number;
  etaMs?: number;
  fpsNow?: number;
  fpsAvg?: number;
  /** Output megapixels per second, now and on average. */
  mpsNow?: number;
  mpsAvg?: number;
  stages: StageView[];
  bottleneck?: StageName;
  /** Scale-out: segments and workers instead of stages. */
  cluster?: ClusterProgress;
  /** Output frames/s per second of the last minute, oldest first; undefined before the first event. */
  history: (number | undefined)[];
  warnings: string[];
  hiddenWarnings: number;
  stopping: boolean;
  done?: DoneEvent & { fps: number; path: string };
}

/** Frames encoded at elapsed time t, by linear interpolation between progress events. */
function framesAt(history: DashboardState['history'], t: number): number | undefined {
  const first = history[0];
  if (!first || t < first.t) return undefined;
  for (let i = 1; i < history.length; i++) {
    const a = history[i - 1]!;
    const b = history[i]!;
    if (t <= b.t) return b.t === a.t ? b.frames : a.frames + ((b.frames - a.frames) * (t - a.t)) / (b.t - a.t);
  }
  return history.at(-1)!.frames;
}

/** Frames/s in each second of the minute ending at the last progress event. */
export function rateHistory(history: DashboardState['history'], steps = HISTORY_MS / HISTORY_STEP_MS): (number | undefined)[] {
  const end = history.at(-1)?.t;
  const out: (number | undefined)[] = [];
  for (let i = steps; i > 0; i--) {
    if (end === undefined) {
      out.push(undefined);
      continue;
    }
    const a = framesAt(history, end - i * HISTORY_STEP_MS);
    const b = framesAt(history, end - (i - 1) * HISTORY_STEP_MS);
    out.push(a === undefined || b === undefined ? undefined : (b - a) / (HISTORY_STEP_MS / 1000));
  }
  return out;
}

export function dashboardView(s: DashboardState, now: number): DashboardView {
  const p = s.progress;
  const frames = s.done?.frames ?? p?.frames ?? 0;
  const totalFrames = p?.totalFrames ?? s.start?.totalFrames;
  const sinceEvent = p && s.progressAt !== undefined ? Math.max(0, now - s.progressAt) : 0;
  const elapsedMs = s.done?.elapsedMs ?? (p ? p.elapsedMs + sinceEvent : s.startAt !== undefined ? now - s.startAt : 0);
  const fpsNow = emaValue(s.rate);
  const fpsAvg = p && p.elapsedMs > 0 ? (p.frames / p.elapsedMs) * 1000 : undefined;
  const pixels = s.start ? (s.start.outputSize[0] * s.start.outputSize[1]) / 1e6 : undefined;
  const fraction = totalFrames ? Math.min(1, frames / totalFrames) : undefined;
  // The ETA uses the smoothed rate and counts down between events (a slow batch should not
  // freeze it), but never below the time the frames after the next batch need: a stalled job's
  // ETA stops rather than reaching 0. Stopping, there is nothing to estimate.
  const remaining = totalFrames ? Math.max(0, totalFrames - frames) : undefined;
  const etaMs = s.done ? 0
    : remaining === undefined || !fpsNow || fpsNow <= 0 || s.stopping ? undefined
    : Math.max((Math.max(0, remaining - batchOf(s)) / fpsNow) * 1000, (remaining / fpsNow) * 1000 - sinceEvent);

  // Frames through per second of busy time: (frames/s) / (busy s per s).
  const capacity = (st: StageName) => {
    const rate = emaValue(s.stageRate[st]);
    const load = emaValue(s.load[st]);
    return rate !== undefined && load !== undefined && load > 0.001 ? Math.max(0, rate) / load : undefined;
  };
  const observed = (st: StageName) => {
    const rate = emaValue(s.stageRate[st]);
    return rate === undefined ? undefined : Math.max(0, rate);
  };
  const stages: StageView[] = [
    { name: 'decode', fps: observed('decode'), load: emaValue(s.load.decode), queue: p ? [p.decodeQueue, p.decodeCapacity] : undefined },
    { name: 'infer', fps: capacity('infer'), load: emaValue(s.load.infer) },
    { name: 'encode', fps: capacity('encode'), load: emaValue(s.load.encode), queue: p ? [p.encodeQueue, p.encodeCapacity] : undefined },
  ];
  let bottleneck: StageName | undefined;
  let most = 0;
  for (const st of stages) {
    if (st.load !== undefined && st.load > most) {
      most = st.load;
      bottleneck = st.name;
    }
  }

  const shown = s.warnings.slice(-MAX_WARNINGS_SHOWN);
  return {
    start: s.start, frames, reusedFrames: s.done?.reusedFrames ?? p?.reusedFrames ?? 0, totalFrames, fraction, elapsedMs, etaMs,
    fpsNow, fpsAvg,
    mpsNow: pixels !== undefined && fpsNow !== undefined ? fpsNow * pixels : undefined,
    mpsAvg: pixels !== undefined && fpsAvg !== undefined ? fpsAvg * pixels : undefined,
    stages, bottleneck, cluster: p?.cluster,
    history: rateHistory(s.history),
    warnings: shown, hiddenWarnings: s.warnings.length - shown.length,
    stopping: s.stopping,
    done: s.done && {
      ...s.done,
      fps: s.done.elapsedMs > 0 ? (s.done.frames / s.done.elapsedMs) * 1000 : 0,
      path: isAbsolute(s.done.output) ? s.done.output : resolve(s.done.output),
    },
  };
}
