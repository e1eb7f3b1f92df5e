/**
 * The inference stage's buffer discipline: batch slots are allocated once and cycle between the
 * pipeline and the worker thread by transfer (no copies, no new buffers per batch), and ONNX
 * Runtime writes each result into the slot's pre-allocated output.
 */
import { readFile } from 'node:fs/promises';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Upscaler } from '../../src/infer/upscaler.js';
import { arrangeForCpu } from '../../src/models/onnx/arrange-for-cpu.js';
import { pullModel } from '../../src/models/pull.js';
import { onnxPath } from '../../src/models/store.js';

const MODEL = 'realesr-general-x4v3';
const W = 24;
const H = 16;
let upscaler: Upscaler;
let reference: ort.InferenceSession;

beforeAll(async () => {
  await pullModel(MODEL);
  // ONNX Runtime's lanes (the fused kernel, which would otherwise run this model, has its own tests:
  // native-cpu.test.ts). The worker runs the model as arranged for the CPU (PReLU rewritten); so does the reference.
  upscaler = await Upscaler.start({ modelPath: onnxPath(MODEL), scale: 4, threads: 2, session: { nativeCpu: false } });
  const arranged = arrangeForCpu(await readFile(onnxPath(MODEL)));
  expect(arranged.depthwise).toBe(33);
  reference = await ort.InferenceSession.create(arranged.bytes!, { intraOpNumThreads: 2 });
});
afterAll(async () => {
  await upscaler.close();
  await reference.release();
});

const frame = (seed: number) => Uint8Array.from({ length: W * H * 3 }, (_, i) => (i * 31 + seed * 57) % 256);

describe('Upscaler', () => {
  it('reuses two slots for eight batches and returns exactly the model output', async () => {
    let slots = [upscaler.allocateSlot(2, W, H), upscaler.allocateSlot(2, W, H)];
    const outBytes = W * H * 3 * 16;
    for (let b = 0; b < 8; b++) {
      const slot = slots[b % 2]!;
      const input = new Uint8Array(slot.input);
      input.set(frame(2 * b), 0);
      input.set(frame(2 * b + 1), W * H * 3);
      const { slot: back } = await upscaler.run(slot, 2, W, H);
      // Transferred, not copied: the references we sent are now detached.
      expect(slot.input.byteLength).toBe(0);
      expect(slot.output.byteLength).toBe(0);
      expect(back.output.byteLength).toBe(2 * outBytes);
      const expected = await reference.run({ frames: new ort.Tensor('uint8', Uint8Array.from([...frame(2 * b), ...frame(2 * b + 1)]), [2, H, W, 3]) });
      expect(Buffer.compare(Buffer.from(back.output), Buffer.from((expected.upscaled!.data as Uint8Array).buffer))).toBe(0);
      slots = b % 2 === 0 ? [back, slots[1]!] : [slots[0]!, back];
    }
    expect(upscaler.allocations).toBe(2);
  });

  it('a batch smaller than the slot uses the front of the same buffers', async () => {
    const slot = upscaler.allocateSlot(4, W, H);
    new Uint8Array(slot.input).set(frame(99));
    const { slot: back } = await upscaler.run(slot, 1, W, H);
    expect(back.output.byteLength).toBe(4 * W * H * 3 * 16);
    const expected = await reference.run({ frames: new ort.Tensor('uint8', frame(99), [1, H, W, 3]) });
    const got = new Uint8Array(back.output, 0, W * H * 3 * 16);
    expect(Buffer.compare(Buffer.from(got), Buffer.from(expected.upscaled!.data as Uint8Array))).toBe(0);
  });
});

describe('Upscaler.load on an open Upscaler (a scale-out worker between segments)', () => {
  it('keeps the sessions for the same file and configuration, and loads again when anything changes', async () => {
    const { copyFile, mkdtemp, rm, utimes } = await import('node:fs/promises');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const dir = await mkdtemp(join(tmpdir(), 'esrvid-reuse-'));
    const u = await Upscaler.open({ device: 'cpu', threads: 1, lanes: 1 });
    try {
      const model = join(dir, 'm.onnx');
      await copyFile(onnxPath(MODEL), model);
      const outputOf = async () => {
        let slot = u.allocateSlot(1, W, H);
        new Uint8Array(slot.input).set(frame(5));
        slot = (await u.run(slot, 1, W, H)).slot;
        return Buffer.from(slot.output);
      };
      await u.load(model, 4, 'fp32');
      expect(u.reused).toBe(false);
      expect(u.loadMs).toBeGreaterThan(0);
      const first = await outputOf();

      await u.load(model, 4, 'fp32');
      expect(u.reused).toBe(true);
      expect(u.loadMs).toBe(0);
      expect((await outputOf()).equals(first)).toBe(true);

      // The file replaced (a new modification time): sessions made again.
      await utimes(model, new Date(), new Date(Date.now() + 5000));
      await u.load(model, 4, 'fp32');
      expect(u.reused).toBe(false);
      // Another precision's configuration: made again too.
      await u.load(model, 4, 'int8');
      expect(u.reused).toBe(false);
      await u.load(model, 4, 'fp32');
      expect(u.reused).toBe(false);
      expect((await outputOf()).equals(first)).toBe(true);
    } finally {
      await u.close();
      await rm(dir, { recursive: true, force: true });
    }
    expect(u.usable).toBe(false);
  });
});
