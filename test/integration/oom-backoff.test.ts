/**
 * Out of memory on the device never costs a frame: the pipeline halves the batch, then tiles,
 * then halves the tiles, and runs the same frames again. A fake inference worker
 * (test/helpers/fake-infer-worker.mjs) throws ONNX Runtime's CUDA out-of-memory message for calls
 * above a size and otherwise repeats pixels, so every output frame can be checked exactly
 * against its own input frame, with the real decoder, encoder and Upscaler around it.
 */
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DeviceError, ExitCode } from '../../src/errors.js';
import type { PipelineEvent } from '../../src/events.js';
import { InferenceError, Upscaler } from '../../src/infer/upscaler.js';
import { pullModel } from '../../src/models/pull.js';
import { upscaleVideo } from '../../src/pipeline.js';
import { decodeRgb, ffmpeg, ffprobeJson, tempDir } from '../helpers/media.js';

const MODEL = 'realesr-animevideov3-x4';
const FAKE = new URL('../helpers/fake-infer-worker.mjs', import.meta.url);
const W = 96;
const H = 64;
const FRAMES = 13;
const { dir, cleanup } = tempDir('esrvid-oom-');
const src = join(dir, 'src.mkv');
let input: Buffer;

beforeAll(async () => {
  // Lossless RGB in and out, every frame different (the pattern moves), an odd frame count.
  await ffmpeg(['-f', 'lavfi', '-i', `testsrc2=size=${W}x${H}:rate=10`, '-frames:v', String(FRAMES), '-c:v', 'ffv1', '-pix_fmt', 'bgr0', src]);
  input = await decodeRgb(src);
  await pullModel(MODEL); // the fake ignores it, but the pipeline resolves it as usual
});
afterAll(cleanup);
afterEach(() => {
  delete process.env.ESRVID_FAKE_MAX_BATCH;
  delete process.env.ESRVID_FAKE_MAX_PIXELS;
  delete process.env.ESRVID_FAKE_JITTER_MS;
});

/** Each input frame with every pixel repeated 4x4: what the fake computes, tiled or not. */
function expected(): Buffer {
  const out = Buffer.alloc(FRAMES * W * H * 48);
  for (let f = 0; f < FRAMES; f++) {
    for (let y = 0; y < H * 4; y++) {
      for (let x = 0; x < W * 4; x++) {
        input.copy(out, ((f * H * 4 + y) * W * 4 + x) * 3, ((f * H + (y >> 2)) * W + (x >> 2)) * 3, ((f * H + (y >> 2)) * W + (x >> 2)) * 3 + 3);
      }
    }
  }
  return out;
}

async function run(name: string, o: { batch: number; tile?: number; tilePad?: number; lanes?: number }) {
  const events: PipelineEvent[] = [];
  const output = join(dir, `${name}.mkv`);
  await upscaleVideo({
    input: src, output, model: MODEL, device: 'cpu', batch: o.batch, tile: o.tile ?? 0, tilePad: o.tilePad, lanes: o.lanes, codec: 'ffv1', pixFmt: 'bgr0', overwrite: true,
    inferenceWorker: FAKE, onEvent: (e) => events.push(e),
  });
  const warnings = events.filter((e) => e.type === 'warning').map((e) => (e as { message: string }).message);
  return { output, warnings, done: events.find((e) => e.type === 'done') as { frames: number } };
}

describe('out-of-memory back-off', () => {
  it('halves the batch until it fits and runs the same frames again: all out, in order, once', async () => {
    process.env.ESRVID_FAKE_MAX_BATCH = '2';
    const r = await run('batch', { batch: 8 });
    expect(r.warnings.filter((w) => /out of memory/.test(w))).toEqual([
      'inference ran out of memory at batch 8: running the same frames again at batch 4',
      'inference ran out of memory at batch 4: running the same frames again at batch 2',
    ]);
    expect(r.done.frames).toBe(FRAMES);
    const probe = await ffprobeJson(r.output, ['-count_frames', '-show_streams']);
    expect(Number(probe.streams[0].nb_read_frames)).toBe(FRAMES);
    expect(Buffer.compare(await decodeRgb(r.output), expected())).toBe(0);
  });

  it('tiles once one frame is too much, halving the tiles until they fit', async () => {
    // A frame is 6144 pixels; 48 px tiles with 4 px of context make 56x56 windows (3136 pixels),
    // 32 px tiles 40x40 windows (1600): only those fit under 2000.
    process.env.ESRVID_FAKE_MAX_PIXELS = '2000';
    const warnings: string[] = [];
    const r = await upscaleVideo({
      input: src, output: join(dir, 'tiles.mkv'), model: MODEL, device: 'cpu', batch: 4, tile: 0, tilePad: 4, codec: 'ffv1', pixFmt: 'bgr0', overwrite: true,
      inferenceWorker: FAKE, onEvent: (e) => {
        if (e.type === 'warning') warnings.push(e.message);
      },
    });
    expect(warnings.filter((w) => /out of memory/.test(w))).toEqual([
      'inference ran out of memory at batch 4: running the same frames again at batch 2',
      'inference ran out of memory at batch 2: running the same frames again at batch 1',
      'inference ran out of memory at batch 1: running the same frames again at batch 1 in tiles of 48 px',
      'inference ran out of memory at batch 1 in tiles of 48 px: running the same frames again at batch 1 in tiles of 32 px',
    ]);
    expect(r.frames).toBe(FRAMES);
    expect(Buffer.compare(await decodeRgb(r.output), expected())).toBe(0);
  });

  it('gives up with one line (exit 8) when even the smallest tiles do not fit', async () => {
    process.env.ESRVID_FAKE_MAX_PIXELS = '10';
    const err = await upscaleVideo({
      input: src, output: join(dir, 'never.mkv'), model: MODEL, device: 'cpu', batch: 1, tile: 0, codec: 'ffv1', pixFmt: 'bgr0', overwrite: true, inferenceWorker: FAKE,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeviceError);
    expect((err as DeviceError).exitCode).toBe(ExitCode.device);
    expect((err as DeviceError).oneLine()).toMatch(/^inference ran out of memory even at batch 1 in tiles of 32 px \(Non-zero status code .*Failed to allocate memory for requested buffer of size 2147483648\); /);
  });
});

describe('lanes', () => {
  it.each([[1, 2], [2, 3], [1, 4]])('batch %i on %i lanes answering out of order: every frame out once, in order', async (batch, lanes) => {
    process.env.ESRVID_FAKE_JITTER_MS = '15';
    const r = await run(`lanes-${batch}-${lanes}`, { batch, lanes });
    expect(r.done.frames).toBe(FRAMES);
    expect(Buffer.compare(await decodeRgb(r.output), expected())).toBe(0);
  });

  it('three lanes running out of memory at once step down once per size, not once per lane', async () => {
    process.env.ESRVID_FAKE_MAX_BATCH = '1';
    process.env.ESRVID_FAKE_JITTER_MS = '5';
    const r = await run('lanes-oom', { batch: 4, lanes: 3 });
    expect(r.warnings.filter((w) => /out of memory/.test(w))).toEqual([
      'inference ran out of memory at batch 4: running the same frames again at batch 2',
      'inference ran out of memory at batch 2: running the same frames again at batch 1',
    ]);
    expect(Buffer.compare(await decodeRgb(r.output), expected())).toBe(0);
  });

  it('out of memory down to tiles while other lanes still hold batches: frames stay in order', async () => {
    process.env.ESRVID_FAKE_MAX_PIXELS = '2000';
    process.env.ESRVID_FAKE_JITTER_MS = '5';
    const r = await run('lanes-oom-tiles', { batch: 2, tilePad: 4, lanes: 3 });
    expect(r.warnings.filter((w) => /out of memory/.test(w)).at(-1)).toMatch(/in tiles of 32 px$/);
    expect(r.done.frames).toBe(FRAMES);
    expect(Buffer.compare(await decodeRgb(r.output), expected())).toBe(0);
  });

  it('tiles of one frame run on every lane and are stitched in place', async () => {
    process.env.ESRVID_FAKE_JITTER_MS = '5';
    const r = await run('lanes-tiles', { batch: 1, tile: 32, tilePad: 4, lanes: 3 });
    expect(r.done.frames).toBe(FRAMES);
    expect(Buffer.compare(await decodeRgb(r.output), expected())).toBe(0);
  });
});

describe('Upscaler after an out-of-memory error', () => {
  it('hands the slot back with the frames still in it, and reuses it: no new buffers', async () => {
    process.env.ESRVID_FAKE_MAX_BATCH = '2';
    // No model file to arrange: the fake worker never reads one.
    const up = await Upscaler.start({ modelPath: 'unused.onnx', scale: 2, workerUrl: FAKE, session: { arrangeForCpu: false } });
    try {
      const slot = up.allocateSlot(4, 3, 2);
      const frames = Uint8Array.from({ length: 4 * 3 * 2 * 3 }, (_, i) => i);
      new Uint8Array(slot.input).set(frames);
      const err = await up.run(slot, 4, 3, 2).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InferenceError);
      expect((err as InferenceError).outOfMemory).toBe(true);
      const back = (err as InferenceError).slot!;
      expect(back.input.byteLength).toBe(4 * 3 * 2 * 3);
      expect(back.output.byteLength).toBe(4 * 3 * 2 * 3 * 4);
      expect(Buffer.compare(Buffer.from(back.input), Buffer.from(frames))).toBe(0);
      const { slot: again } = await up.run(back, 2, 3, 2);
      expect(new Uint8Array(again.output)[0]).toBe(0);
      expect(new Uint8Array(again.output).subarray(6 * 4 * 3 - 3, 6 * 4 * 3)).toEqual(Uint8Array.from([15, 16, 17]));
      expect(up.allocations).toBe(1);
    } finally {
      await up.close();
    }
  });
});
