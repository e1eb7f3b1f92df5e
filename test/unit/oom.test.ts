/**
 * The out-of-memory back-off planner and the automatic batch size: pure arithmetic, no device.
 * (The retry loop itself runs in test/integration/oom-backoff.test.ts.)
 */
import { describe, expect, it } from 'vitest';
import { autoBatch, gpuBytesPerPixel, gpuMemoryBudget, GPU_RESERVE_BYTES, indexablePixels, LANE_RESERVE_BYTES, MAX_AUTO_BATCH, MAX_TENSOR_ELEMENTS, peakElementsPerPixel } from '../../src/infer/batch-plan.js';
import { describePlan, isOutOfMemory, nextPlan, type InferencePlan } from '../../src/infer/oom.js';

describe('isOutOfMemory', () => {
  it.each([
    "Non-zero status code returned while running Conv node. Name:'Conv_7' Status Message: /onnxruntime_src/onnxruntime/core/framework/bfc_arena.cc:359 void* onnxruntime::BFCArena::AllocateRawInternal(size_t, bool, onnxruntime::Stream*, bool, onnxruntime::WaitNotificationFn) Failed to allocate memory for requested buffer of size 2147483648",
    'CUDA failure 2: out of memory ; GPU=0 ; hostname=gpu1 ; file=/onnxruntime_src/onnxruntime/core/providers/cuda/cuda_allocator.cc ; line=50 ; expr=cudaMalloc((void**)&p, size);',
    'CUBLAS failure 3: CUBLAS_STATUS_ALLOC_FAILED ; GPU=0',
    'CUDNN failure 2: CUDNN_STATUS_ALLOC_FAILED ; GPU=0',
    'std::bad_alloc',
  ])('recognises %s', (message) => {
    expect(isOutOfMemory(message)).toBe(true);
  });

  it.each([
    'OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library',
    "Got invalid dimensions for input: frames for the following indices index: 3 Got: 4 Expected: 3",
    'CUDA failure 100: no CUDA-capable device is detected',
  ])('leaves other failures alone: %s', (message) => {
    expect(isOutOfMemory(message)).toBe(false);
  });
});

describe('nextPlan', () => {
  /** Every plan tried from `start` until nothing smaller is left. */
  const chain = (start: InferencePlan, w: number, h: number) => {
    const plans = [start];
    for (let p = nextPlan(start, w, h); p; p = nextPlan(p, w, h)) plans.push(p);
    return plans.map(describePlan);
  };

  it('1080p at batch 8: batches halve to 1, then tiles of half the frame, halving to 32 px', () => {
    expect(chain({ batch: 8, tile: 0 }, 1920, 1080)).toEqual([
      'batch 8', 'batch 4', 'batch 2', 'batch 1',
      'batch 1 in tiles of 960 px', 'batch 1 in tiles of 480 px', 'batch 1 in tiles of 240 px',
      'batch 1 in tiles of 112 px', 'batch 1 in tiles of 48 px', 'batch 1 in tiles of 32 px',
    ]);
  });

  it('already tiled with several windows a call: fewer windows first, then smaller tiles', () => {
    expect(chain({ batch: 3, tile: 256 }, 1280, 720)).toEqual([
      'batch 3 in tiles of 256 px', 'batch 1 in tiles of 256 px', 'batch 1 in tiles of 128 px',
      'batch 1 in tiles of 64 px', 'batch 1 in tiles of 32 px',
    ]);
  });

  it('a tile larger than the frame counts as the whole frame; small frames end sooner', () => {
    expect(nextPlan({ batch: 1, tile: 4096 }, 640, 360)).toEqual({ batch: 1, tile: 320 });
    expect(chain({ batch: 1, tile: 0 }, 40, 30)).toEqual(['batch 1', 'batch 1 in tiles of 32 px']);
    expect(nextPlan({ batch: 1, tile: 0 }, 24, 16)).toBeUndefined();
  });
});

describe('automatic batch size', () => {
  it('the budget: 85% of free memory less twice the weights and a reserve, never negative', () => {
    expect(gpuMemoryBudget(80 * 2 ** 30, 32 * 2 ** 20)).toBe(80 * 2 ** 30 * 0.85 - 64 * 2 ** 20 - GPU_RESERVE_BYTES);
    expect(gpuMemoryBudget(2 ** 30, 0)).toBe(0);
  });

  it('several sessions on one GPU: each its weights, each further one a reserve', () => {
    const one = gpuMemoryBudget(80 * 2 ** 30, 32 * 2 ** 20);
    expect(gpuMemoryBudget(80 * 2 ** 30, 32 * 2 ** 20, 1)).toBe(one);
    expect(gpuMemoryBudget(80 * 2 ** 30, 32 * 2 ** 20, 3)).toBe(one - 2 * (64 * 2 ** 20 + LANE_RESERVE_BYTES));
    expect(gpuMemoryBudget(4 * 2 ** 30, 0, 8)).toBe(0);
  });

  it('fp16 needs half the memory per pixel', () => {
    expect(gpuBytesPerPixel(16_000, 'fp16')).toBe(8000);
    expect(gpuBytesPerPixel(16_000, 'fp32')).toBe(16_000);
  });

  it('enough frames to fill the GPU (two 640x360 frames), as a power of two within memory', () => {
    const budget = gpuMemoryBudget(80 * 2 ** 30, 32 * 2 ** 20); // an idle H100
    expect(autoBatch(640, 360, 8000, budget)).toBe(2);
    expect(autoBatch(1920, 1080, 8000, budget)).toBe(1);
    expect(autoBatch(320, 180, 425, budget)).toBe(8);
    expect(autoBatch(480, 270, 425, budget)).toBe(4); // 3.6 would fill it: the power of two below
    expect(autoBatch(160, 90, 425, budget)).toBe(MAX_AUTO_BATCH); // 16 would fill it: capped
    expect(autoBatch(320, 180, 425, budget, { max: 2 })).toBe(2);
    expect(autoBatch(320, 180, 8000, 1e9)).toBe(2); // 461 MB a frame: memory decides
    expect(autoBatch(1920, 1080, 8000, 0)).toBe(1); // tiling takes it from there
  });

  it('never more input pixels a call than the widest tensor can index with 32-bit integers', () => {
    expect(peakElementsPerPixel('RRDBNet (ESRGAN): 23 RRDB blocks, 64 features, growth 32', 4)).toBe(1024);
    expect(peakElementsPerPixel('SRVGGNetCompact: 32 convolutions + PReLU', 4)).toBe(64);
    const rrdb = indexablePixels(1024);
    // The H100 failure: 2 x 1920x1080 frames of realesrgan-x4plus = 4.2e9 elements in Resize.
    expect(2 * 1920 * 1080 * 1024).toBeGreaterThan(MAX_TENSOR_ELEMENTS);
    expect(1920 * 1080).toBeLessThanOrEqual(rrdb);
    expect(autoBatch(160, 90, 8000, 1e12, { maxPixels: rrdb })).toBe(8);
    expect(autoBatch(160, 90, 8000, 1e12, { maxPixels: 5 * 160 * 90 })).toBe(4);
    // A frame wider than the limit still gets batch 1: the pipeline tiles it.
    expect(autoBatch(3840, 2160, 8000, 1e12, { maxPixels: rrdb })).toBe(1);
  });

  it('a tensor beyond the int range is handled as out of memory: the batch halves, then tiles', () => {
    expect(isOutOfMemory("Non-zero status code returned while running Resize node. Name:'Resize_1090' Status Message: resize_impl.cu:729 ResizeNearestImpl ResizeNearestImpl: output element count exceeds int range.")).toBe(true);
    expect(isOutOfMemory('Invalid input shape')).toBe(false);
  });
});
