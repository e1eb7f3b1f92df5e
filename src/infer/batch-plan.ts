/**
 * How many frames go into one GPU call when `--batch` is not given: as many as the GPU's free
 * memory holds for this frame size, as a power of two up to MAX_AUTO_BATCH. The per-pixel need is
 * the CPU figure measured for the architecture (src/infer/tiling.ts), halved for fp16; on a GPU it
 * is an estimate until measured there (scripts/gpu-measure.sh records peak GPU memory), and the
 * out-of-memory back-off (src/infer/oom.ts) catches an estimate that was too low.
 */
import type { Precision } from '../models/onnx/graph-builder.js';

/** Beyond 8 frames a call, a GPU gains little and host buffers grow. */
export const MAX_AUTO_BATCH = 8;

/** CUDA context, cuDNN workspaces and fragmentation, kept out of the budget. */
export const GPU_RESERVE_BYTES = 1.5 * 2 ** 30;

/** Device memory inference may plan with: most of what is free, less the weights and the reserve. */
export function gpuMemoryBudget(freeBytes: number, modelBytes: number): number {
  return Math.max(0, freeBytes * 0.85 - 2 * modelBytes - GPU_RESERVE_BYTES);
}

export function gpuBytesPerPixel(cpuBytesPerPixel: number, precision: Precision): number {
  return precision === 'fp16' ? cpuBytesPerPixel / 2 : cpuBytesPerPixel;
}

/** Frames per call for width x height frames within `budget` bytes: at least 1. */
export function autoBatch(width: number, height: number, bytesPerPixel: number, budget: number, max = MAX_AUTO_BATCH): number {
  const fit = Math.floor(budget / (width * height * bytesPerPixel));
  let batch = 1;
  while (batch * 2 <= Math.min(fit, max)) batch *= 2;
  return batch;
}
