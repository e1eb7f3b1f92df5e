/**
 * Levers: one change to esrvid's inference stage at a time, measured against the same stage
 * without it, alternating run by run in the same suite (as the PyTorch comparison is), so
 * BENCHMARKS.md shows what each kept change buys on the machine at hand, not on the day it was
 * made.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { otherLoad, snapshot } from './contention.js';
import { realFrames } from './frames.js';
import { alternate } from './alternate.js';
import { OrtStage, type StageChanges } from './ort-stage.js';
import { framesPerSecond, median, pairedRatio } from './stats.js';

export interface Lever {
  name: string;
  /** What the lever changes, for the report. */
  description: string;
  /** The stage with the lever on (default: the pipeline's own). */
  on?: StageChanges;
  /** The stage with the lever off. */
  off: StageChanges;
  /** Frames per call it is measured at (default 1). */
  batch?: number;
  /** Only for models whose registry architecture starts with this (default: every model). */
  architecture?: string;
}

/** The ONNX Runtime levers are measured on ONNX Runtime, not on the fused kernel that replaces it for compact models. */
const ORT = { nativeCpu: false } as const;

export const LEVERS: readonly Lever[] = [
  {
    name: 'lanes',
    description: 'one session per core, each upscaling its own frames (src/infer/device.ts cpuLanes), against one session with every thread',
    on: { session: ORT },
    off: { lanes: 1, session: ORT },
  },
  {
    name: 'CPU graph arrangement',
    description: 'PReLU as depthwise conv + ReLU + Add, RRDB residual scaling as a depthwise conv, the output tail folded into the last convolution, so ONNX Runtime keeps its blocked layout (src/models/onnx/arrange-for-cpu.ts)',
    on: { session: ORT },
    off: { session: { ...ORT, arrangeForCpu: false } },
  },
  {
    name: 'no thread spinning',
    description: 'ONNX Runtime\'s intra-op threads sleep instead of spinning between operators and runs, leaving the cores to FFmpeg (measured with one lane: a one-thread session has no threads to spin)',
    on: { lanes: 1 },
    off: { lanes: 1, session: { extra: {} } },
  },
  {
    name: 'frame per call',
    description: 'a batch runs as one ONNX Runtime call per frame in its lane, whose tensors stay the size of one frame, against one call for the whole batch (measured at batch 4)',
    on: { session: ORT },
    off: { session: { ...ORT, framePerCall: false } },
    batch: 4,
  },
  {
    name: 'fused kernel',
    description: 'esrvid\'s own 3x3 convolution with each channel\'s PReLU fused (AVX-512 or AVX2; src/native/srvgg.c) against ONNX Runtime with the arranged graph, in the suite\'s one-thread lanes',
    off: { session: ORT },
    architecture: 'SRVGGNetCompact',
  },
];

export interface LeverResult {
  lever: string;
  model: string;
  width: number;
  height: number;
  batch: number;
  onFps: number;
  offFps: number;
  /** Median over pairs of on fps / off fps. */
  speedup: number;
  runs: number;
  otherLoad?: number;
}

/** One line for a lever's result, in the suite's progress log and its summary. */
export function describeLever(l: LeverResult): string {
  return `lever "${l.lever}" ${l.model} ${l.width}x${l.height}${l.batch > 1 ? ` batch ${l.batch}` : ''}: ${l.onFps.toFixed(2)} fps with, ${l.offFps.toFixed(2)} without (${l.speedup.toFixed(2)}x)`;
}

export async function measureLever(
  lever: Lever,
  model: { name: string; path: string; scale: number },
  c: { width: number; height: number; batch: number },
  o: { threads: number; lanes?: number; runs: number; warmup: number; pauseMs: number },
): Promise<LeverResult> {
  const frames = realFrames(c.batch, c.width, c.height);
  const on = await OrtStage.open(model.path, model.scale, o.threads, { lanes: o.lanes, ...lever.on });
  let off: OrtStage | undefined;
  try {
    off = await OrtStage.open(model.path, model.scale, o.threads, { lanes: o.lanes, ...lever.off });
    const time = async (s: OrtStage) => {
      await sleep(o.pauseMs);
      return s.time(c.batch, c.width, c.height, frames);
    };
    let before: ReturnType<typeof snapshot>;
    const { a: onMs, b: offMs } = await alternate(() => time(on), () => time(off!), { warmup: o.warmup, runs: o.runs, onMeasuring: () => (before = snapshot()) });
    const fps = (ms: number[]) => ms.map((t) => framesPerSecond(c.batch, t));
    const load = otherLoad(before, snapshot());
    return {
      lever: lever.name, model: model.name, ...c,
      onFps: median(fps(onMs)), offFps: median(fps(offMs)), speedup: pairedRatio(fps(onMs), fps(offMs)), runs: onMs.length,
      ...(load === undefined ? {} : { otherLoad: load }),
    };
  } finally {
    await on.close();
    await off?.close();
  }
}
