/**
 * Backing off when the device runs out of memory: the same frames are run again with half the
 * batch, down to one frame per call, then in tiles whose size halves each time, down to 32 px.
 * No frame is ever skipped (Real-ESRGAN's own video script drops a frame on OOM and the audio
 * drifts); only when even the smallest tiles do not fit does the job stop, with its finished
 * segments kept for a resume.
 */

/** How frames are fed to the network: `batch` frames (or tile windows) per call; `tile` 0 = whole frames. */
export interface InferencePlan {
  batch: number;
  tile: number;
}

/** Smallest tile tried: below this the context padding is most of the work. */
export const MIN_TILE = 32;

/**
 * ONNX Runtime's messages for a call too large for the device: an allocation that failed (the
 * CUDA allocator's "CUDA failure 2: out of memory", the BFC arena's "Failed to allocate memory for
 * requested buffer of size N", cuDNN/cuBLAS workspaces' *_STATUS_ALLOC_FAILED, WebGPU buffers, the
 * CPU's std::bad_alloc), or a tensor beyond what the CUDA kernels index with 32-bit integers
 * ("output element count exceeds int range", seen on an H100): smaller calls cure both.
 */
export function isOutOfMemory(message: string): boolean {
  return /out of memory|Failed to allocate memory|BFCArena|bfc_arena|cudaErrorMemoryAllocation|STATUS_ALLOC_FAILED|\bbad_alloc\b|OutOfMemory/i.test(message) || exceedsIndexRange(message);
}

/** The kernels' 32-bit indexing, not memory, refused the call (src/infer/batch-plan.ts MAX_TENSOR_ELEMENTS). */
export function exceedsIndexRange(message: string): boolean {
  return /exceeds int range/i.test(message);
}

/**
 * The plan to retry with after running out of memory on `plan` for width x height frames, or
 * undefined when nothing smaller is left. Batches halve first (they multiply memory without
 * changing a pixel); then whole frames become tiles of half the longer side (rounded down to a
 * multiple of 16), and tiles halve, the last try being MIN_TILE.
 */
export function nextPlan(plan: InferencePlan, width: number, height: number): InferencePlan | undefined {
  if (plan.batch > 1) return { batch: Math.floor(plan.batch / 2), tile: plan.tile };
  const side = Math.max(width, height);
  const current = plan.tile > 0 && plan.tile < side ? plan.tile : side;
  const tile = Math.max(MIN_TILE, Math.floor(current / 2 / 16) * 16);
  return tile < current ? { batch: 1, tile } : undefined;
}

/** "batch 4", "batch 1 in tiles of 480 px": for warnings. */
export function describePlan(p: InferencePlan): string {
  return p.tile > 0 ? `batch ${p.batch} in tiles of ${p.tile} px` : `batch ${p.batch}`;
}
