/**
 * The real compact models, arranged for the CPU as the inference worker loads them: the same
 * 8-bit frames as the canonical file on a real photo, and, in the graph ONNX Runtime actually
 * runs after its own optimisations, no layout reorders between the convolutions (the reason for
 * the rewrite; BENCHMARKS.md has the speed).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { afterAll, describe, expect, it } from 'vitest';
import { arrangeForCpu } from '../../src/models/onnx/arrange-for-cpu.js';
import { pullModel } from '../../src/models/pull.js';
import { onnxPath } from '../../src/models/store.js';
import { byteDifference, upscaleOnCpu } from '../helpers/frame-model.js';
import { crop, readRgb } from '../helpers/image.js';

const tmp = mkdtempSync(join(tmpdir(), 'esrvid-cpu-arr-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Op types of the graph ONNX Runtime runs, after its optimisations for this CPU. */
async function optimizedOps(model: Uint8Array, name: string): Promise<Map<string, number>> {
  const file = join(tmp, `${name}.opt.onnx`);
  const s = await ort.InferenceSession.create(model, { intraOpNumThreads: 1, graphOptimizationLevel: 'all', optimizedModelFilePath: file, logSeverityLevel: 3 });
  await s.release();
  const counts = new Map<string, number>();
  for (const n of onnxProto.onnx.ModelProto.decode(readFileSync(file)).graph!.node!) counts.set(n.opType!, (counts.get(n.opType!) ?? 0) + 1);
  return counts;
}

const upscale = (model: Uint8Array, img: { data: Uint8Array; width: number; height: number }) => upscaleOnCpu(model, img.data, 1, img.height, img.width);

describe.each([
  // name, PReLUs, scalar Muls (RRDB residual scaling), output fold, crop size
  ['realesr-general-x4v3', 33, 0, 'shuffle', 96],
  ['realesr-animevideov3-x4', 17, 0, 'shuffle', 96],
  ['realesrgan-x4plus', 0, 23, 'plain', 36],
] as const)('%s arranged for the CPU', (name, prelus, scales, fold, size) => {
  it('gives the same frames as the canonical model and runs without layout reorders', async () => {
    await pullModel(name);
    const canonical = new Uint8Array(readFileSync(onnxPath(name)));
    const r = arrangeForCpu(canonical);
    expect(r).toMatchObject({ depthwise: prelus, leaky: 0, kept: 0, scales, output: fold });
    // The trained slopes include values above 1: the sign folding is exercised on real weights.
    if (prelus) expect(r.negatedChannels).toBeGreaterThan(0);

    const h = (size * 2) / 3;
    const photo = crop(await readRgb('test/fixtures/photos/chelsea.png'), 40, 20, size, h);
    const [a, b] = [await upscale(canonical, photo), await upscale(r.bytes!, photo)];
    expect(b.length).toBe(size * h * 48);
    const { worst, share } = byteDifference(a, b);
    // Float rounding may move a value sitting on .5 by one level, nothing more.
    expect(worst).toBeLessThanOrEqual(1);
    expect(share).toBeLessThan(1e-3);

    const before = await optimizedOps(canonical, `${name}-canonical`);
    const after = await optimizedOps(r.bytes!, `${name}-cpu`);
    const reorders = (m: Map<string, number>) => (m.get('ReorderInput') ?? 0) + (m.get('ReorderOutput') ?? 0);
    expect(before.get('PRelu') ?? 0).toBe(prelus);
    // Before: out of the blocked layout and back around every PReLU, and (RRDB) around the
    // residual stream and every dense-block Concat after the first residual scaling.
    expect(reorders(before)).toBeGreaterThanOrEqual(2 * (prelus + scales));
    expect(after.get('PRelu')).toBeUndefined();
    // One reorder into the blocked layout at the first conv, one out (to NHWC) after the last.
    expect(reorders(after)).toBeLessThanOrEqual(2);
    // The output tail left no float pass but Clip and Cast: no Round, and for the pixel shuffle no
    // DepthToSpace or Resize (RRDBNet's body upsamples with Resize itself).
    expect(after.get('Round')).toBeUndefined();
    if (fold === 'shuffle') for (const op of ['Resize', 'Upsample', 'DepthToSpace']) expect(after.get(op)).toBeUndefined();
    expect(before.get('DepthToSpace') ?? 0).toBe(fold === 'shuffle' ? 1 : 0);
  });
});
