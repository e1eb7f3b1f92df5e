/**
 * Architecture detection and the ONNX graphs built from it, on synthetic state dicts with random
 * weights covering every layout and scale: the float32 graph must match the independent
 * reference forward pass (test/helpers/reference-forward.ts) to float rounding, and the uint8
 * frame model must match the reference's rounded output to one level.
 */
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { ModelError } from '../../src/errors.js';
import { buildFromStateDict, emitNetwork } from '../../src/models/arch/build.js';
import { detectArchitecture, type Architecture } from '../../src/models/arch/detect.js';
import type { StateDict } from '../../src/models/arch/state-dict.js';
import { GraphBuilder } from '../../src/models/onnx/graph-builder.js';
import { crop, readRgb, type RgbImage } from '../helpers/image.js';
import { forward, fromRgb, maxAbsDiff, toRgb } from '../helpers/reference-forward.js';
import { makeRrdb, makeSrvgg, toStateDict, type FakeStateDict } from '../helpers/torch-files.js';

function detectionError(fake: FakeStateDict): string {
  try {
    detectArchitecture(toStateDict(fake), 'm.pth');
  } catch (e) {
    expect(e).toBeInstanceOf(ModelError);
    const line = (e as ModelError).oneLine();
    expect(line).not.toMatch(/\n/);
    return line;
  }
  throw new Error('detected');
}

/** The network alone, float NCHW in and out, for comparison with the reference at full precision. */
async function runFloat(arch: Architecture, sd: StateDict, x: { c: number; h: number; w: number; d: Float32Array }): Promise<Float32Array> {
  const g = new GraphBuilder();
  g.inputs.push({ name: g.claim('x'), elemType: 'float', shape: [1, 3, 'h', 'w'] });
  const out = emitNetwork(g, 'x', arch, sd);
  g.node('Identity', [out], {}, g.claim('y'));
  g.outputs.push({ name: 'y', elemType: 'float', shape: [1, 3, 'oh', 'ow'] });
  const s = await ort.InferenceSession.create(g.serialize('fp32'), { intraOpNumThreads: 2 });
  const r = await s.run({ x: new ort.Tensor('float32', x.d, [1, 3, x.h, x.w]) });
  await s.release();
  return r.y!.data as Float32Array;
}

let photo: RgbImage;
beforeAll(async () => {
  // An odd-sized crop of a real photo (pixel-unshuffle models must pad it).
  photo = crop(await readRgb(join(import.meta.dirname, '..', 'fixtures', 'photos', 'chelsea.png')), 30, 20, 13, 11);
});

const configs: [string, FakeStateDict, Partial<Record<string, unknown>>][] = [
  ['SRVGGNetCompact x4', makeSrvgg({ convs: 3, feat: 8, scale: 4 }), { type: 'SRVGGNetCompact', convs: 3, features: 8, scale: 4 }],
  ['SRVGGNetCompact x3', makeSrvgg({ convs: 2, feat: 6, scale: 3, seed: 5 }), { type: 'SRVGGNetCompact', convs: 2, scale: 3 }],
  ['SRVGGNetCompact x1', makeSrvgg({ convs: 1, feat: 4, scale: 1, seed: 6 }), { type: 'SRVGGNetCompact', convs: 1, scale: 1 }],
  ['RRDBNet, ESRGAN layout, x4', makeRrdb({ layout: 'esrgan', blocks: 2, feat: 8, growth: 4, ups: 2 }), { type: 'RRDBNet', layout: 'esrgan', blocks: 2, features: 8, growth: 4, scale: 4, unshuffle: 1 }],
  ['RRDBNet, ESRGAN layout, x1 (no upsampling)', makeRrdb({ layout: 'esrgan', blocks: 1, feat: 6, growth: 3, ups: 0, seed: 3 }), { layout: 'esrgan', scale: 1, upsamples: 0 }],
  ['RRDBNet, ESRGAN layout, x8', makeRrdb({ layout: 'esrgan', blocks: 1, feat: 4, growth: 2, ups: 3, seed: 4 }), { layout: 'esrgan', scale: 8, upsamples: 3 }],
  ['RRDBNet, ESRGAN trunk layout, x2', makeRrdb({ layout: 'esrgan-trunk', blocks: 1, feat: 6, growth: 4, ups: 1, seed: 7 }), { layout: 'esrgan-trunk', scale: 2 }],
  ['RRDBNet, BasicSR layout, x4', makeRrdb({ layout: 'basicsr', blocks: 2, feat: 8, growth: 4, ups: 2, seed: 8 }), { layout: 'basicsr', blocks: 2, scale: 4 }],
  ['RRDBNet, BasicSR x2 (pixel-unshuffle 2)', makeRrdb({ layout: 'basicsr', blocks: 1, feat: 8, growth: 4, ups: 2, unshuffle: 2, seed: 9 }), { layout: 'basicsr', unshuffle: 2, scale: 2, inChannels: 3 }],
  ['RRDBNet, BasicSR x1 (pixel-unshuffle 4)', makeRrdb({ layout: 'basicsr', blocks: 1, feat: 8, growth: 4, ups: 2, unshuffle: 4, seed: 10 }), { layout: 'basicsr', unshuffle: 4, scale: 1 }],
];

describe.each(configs)('%s', (_label, fake, expected) => {
  const sd = toStateDict(fake);

  it('is detected with its hyper-parameters', () => {
    expect(detectArchitecture(sd, 'm.pth')).toMatchObject(expected);
  });

  it('the float32 graph matches the reference forward pass; the frame model matches to one level', async () => {
    const arch = detectArchitecture(sd, 'm.pth');
    const x = fromRgb(photo.data, photo.width, photo.height);
    const ref = forward(sd, x);
    expect([ref.h, ref.w]).toEqual([photo.height * arch.scale, photo.width * arch.scale]);
    const ours = await runFloat(arch, sd, x);
    expect(maxAbsDiff(ours, ref.d)).toBeLessThan(1e-4);

    const built = buildFromStateDict(sd, 'm.pth');
    const s = await ort.InferenceSession.create(built.graph.serialize('fp32'));
    const r = await s.run({ frames: new ort.Tensor('uint8', photo.data, [1, photo.height, photo.width, 3]) });
    await s.release();
    expect(r.upscaled!.dims).toEqual([1, photo.height * arch.scale, photo.width * arch.scale, 3]);
    expect(maxAbsDiff(r.upscaled!.data as Uint8Array, toRgb(ref))).toBeLessThanOrEqual(1);
  });
});

describe('the reference itself can tell a wrong network', () => {
  it('a different residual scaling changes the result far beyond the tolerance', async () => {
    const fake = makeRrdb({ layout: 'basicsr', blocks: 1, feat: 8, growth: 4, ups: 2, seed: 8 });
    const sd = toStateDict(fake);
    const x = fromRgb(photo.data, photo.width, photo.height);
    const ref = forward(sd, x);
    // The same weights with one conv's bias nudged: the comparison must notice.
    const nudged = toStateDict({ ...fake, 'conv_hr.bias': { shape: [8], data: fake['conv_hr.bias']!.data.map((v) => v + 0.05) } });
    expect(maxAbsDiff(await runFloat(detectArchitecture(nudged, 'm'), nudged, x), ref.d)).toBeGreaterThan(1e-3);
  });
});

describe('refusals name what is wrong, in one line', () => {
  const srvgg = makeSrvgg({ convs: 2, feat: 4, scale: 2 });
  const rrdb = makeRrdb({ layout: 'esrgan', blocks: 2, feat: 8, growth: 4, ups: 2 });
  const without = (fake: FakeStateDict, key: string) => Object.fromEntries(Object.entries(fake).filter(([k]) => k !== key));

  it('a missing tensor', () => {
    expect(detectionError(without(rrdb, 'model.1.sub.1.RDB2.conv3.0.bias'))).toMatch(/m\.pth: RRDBNet \(esrgan layout\): missing tensor model\.1\.sub\.1\.RDB2\.conv3\.0\.bias/);
    expect(detectionError(without(srvgg, 'body.3.weight'))).toMatch(/SRVGGNetCompact: missing tensor body\.3\.weight \(the PReLU after body\.2\)/);
  });

  it('a wrong shape', () => {
    const bad = { ...rrdb, 'model.1.sub.0.RDB1.conv2.0.weight': { shape: [4, 8, 3, 3], data: new Float32Array(288) } };
    expect(detectionError(bad)).toMatch(/model\.1\.sub\.0\.RDB1\.conv2\.0\.weight has shape \[4,8,3,3\], expected \[4,12,3,3\] \(block 0, dense block 1, conv 2 with 8 features and growth 4\)/);
  });

  it('a scale that cannot be inferred', () => {
    const odd = { ...srvgg, 'body.6.weight': { shape: [10, 4, 3, 3], data: new Float32Array(360) }, 'body.6.bias': { shape: [10], data: new Float32Array(10) } };
    expect(detectionError(odd)).toMatch(/cannot infer the scale: the last conv body\.6 gives 10 channels, not 3 x a square number/);
    const gap = without(without(rrdb, 'model.3.weight'), 'model.3.bias');
    expect(detectionError(gap)).toMatch(/cannot infer the scale from the layers after the RRDB trunk \(model\.6, model\.8, model\.10\)/);
    const first = { ...rrdb, 'model.0.weight': { shape: [8, 7, 3, 3], data: new Float32Array(504) } };
    expect(detectionError(first)).toMatch(/cannot infer the input: model\.0 takes 7 channels and model\.10 gives 3/);
  });

  it('tensors that are not part of the detected architecture', () => {
    expect(detectionError({ ...rrdb, 'extra.weight': { shape: [1], data: new Float32Array(1) } })).toMatch(/looks like RRDBNet but has 1 tensors that are not part of it \(extra\.weight\)/);
  });

  it('an SRVGGNetCompact without PReLU weights', () => {
    const relu = Object.fromEntries(Object.entries(srvgg).filter(([k]) => !/^body\.\d*[13579]\.weight$/.test(k)));
    expect(detectionError(relu)).toMatch(/body\.1 has no weights, so its activation is ReLU or LeakyReLU/);
  });

  it('an unknown architecture lists what was recognised', () => {
    const swin = {
      'conv_first.weight': { shape: [16, 3, 3, 3], data: new Float32Array(432) },
      'layers.0.residual_group.blocks.0.attn.relative_position_bias_table': { shape: [225, 2], data: new Float32Array(450) },
      'conv_last.weight': { shape: [3, 16, 3, 3], data: new Float32Array(432) },
    };
    const line = detectionError(swin);
    expect(line).toMatch(/^m\.pth: unknown architecture: 3 tensors in 3 top-level groups/);
    expect(line).toMatch(/input conv conv_first\.weight 3->16 3x3/);
    expect(line).toMatch(/it looks like a Swin transformer/);
    expect(line).toMatch(/esrvid converts RRDBNet \(ESRGAN, Real-ESRGAN\) and SRVGGNetCompact/);
  });
});
