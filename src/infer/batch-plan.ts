/**
 * How many frames go into one GPU call when `--batch` is not given: enough input pixels to keep
 * the GPU busy (FILL_PIXELS), as a power of two up to MAX_AUTO_BATCH, within the GPU's free
 * memory for this frame size and within the tensor size its kernels can index. The per-pixel
 * need is the CPU figure measured for the architecture (src/infer/tiling.ts), halved for fp16; the
 * out-of-memory back-off (src/infer/oom.ts) catches an estimate that was too low.
 */
import type { Precision } from '../models/onnx/graph-builder.js';

/** Beyond 8 frames a call, a GPU gains nothing and host buffers grow. */
export const MAX_AUTO_BATCH = 8;

/**
 * Input pixels per call that keep a GPU busy: two 640x360 frames. On an H100 (BENCHMARKS.md, GPU
 * section) realesr-general-x4v3 fp16 at 640x360 ran batch 2 at 1.20x the frames/s of batch 1 (20
 * runs each) and 0.83x in a shorter run of 5; fp32, 1.38x. Batches of 4 and 8 were never faster
 * than 2 (0.76-1.01x), and realesrgan-x4plus was flat (8.26-8.53 frames/s from batch 1 to 8), so
 * larger batches only delay the first frame and take memory. Smaller frames are batched up to this.
 */
export const FILL_PIXELS = 2 * 640 * 360;

/**
 * ONNX Runtime's CUDA kernels index tensors with 32-bit integers: on an H100, realesrgan-x4plus
 * with 2 frames of 1920x1080 failed in Resize ("output element count exceeds int range": 2 x 64
 * x 4320 x 7680 = 4.2e9 elements). No tensor of a call may exceed this.
 */
export const MAX_TENSOR_ELEMENTS = 2 ** 31 - 1;

/** CUDA context, cuDNN workspaces and fragmentation, kept out of the budget. */
export const GPU_RESERVE_BYTES = 1.5 * 2 ** 30;

/**
 * What each further session (lane) on the same GPU holds besides its activations: its cuDNN
 * workspace and arena slack (the CUDA context is shared). An estimate; the out-of-memory back-off
 * covers the rest.
 */
export const LANE_RESERVE_BYTES = 0.5 * 2 ** 30;

/**
 * Device memory the activations of all `lanes` sessions may plan with: most of what is free, less
 * each session's weights (twice: the file's and the arranged copy while loading) and the reserves.
 */
export function gpuMemoryBudget(freeBytes: number, modelBytes: number, lanes = 1): number {
  return Math.max(0, freeBytes * 0.85 - lanes * 2 * modelBytes - GPU_RESERVE_BYTES - (lanes - 1) * LANE_RESERVE_BYTES);
}

export function gpuBytesPerPixel(cpuBytesPerPixel: number, precision: Precision): number {
  return precision === 'fp16' ? cpuBytesPerPixel / 2 : cpuBytesPerPixel;
}

/**
 * Elements of the widest tensor per input pixel: RRDBNet upsamples its 64 features to the
 * output's resolution (64 x scale²); the compact models keep 64 features at the input's
 * resolution and widen only to 3 x scale² output channels.
 */
export function peakElementsPerPixel(architecture: string, scale: number): number {
  return /SRVGG/i.test(architecture) ? Math.max(64, 3 * scale * scale) : 64 * scale * scale;
}

/** Input pixels one call may hold before a tensor exceeds MAX_TENSOR_ELEMENTS. */
export function indexablePixels(elementsPerPixel: number): number {
  return Math.floor(MAX_TENSOR_ELEMENTS / elementsPerPixel);
}

/**
 * Frames per call for width x height frames: up to FILL_PIXELS of input, within `budget` bytes
 * and `maxPixels` input pixels a call; at least 1 (a frame too large for one call is tiled).
 */
export function autoBatch(width: number, height: number, bytesPerPixel: number, budget: number, o: { max?: number; maxPixels?: number } = {}): number {
  const pixels = width * height;
  const limit = Math.min(
    o.max ?? MAX_AUTO_BATCH,
    Math.max(1, Math.ceil(FILL_PIXELS / pixels)),
    Math.floor(budget / (pixels * bytesPerPixel)),
    Math.floor((o.maxPixels ?? Infinity) / pixels),
  );
  let batch = 1;
  while (batch * 2 <= limit) batch *= 2;
  return batch;
}
