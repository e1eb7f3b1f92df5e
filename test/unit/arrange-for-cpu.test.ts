/**
 * The CPU arrangement of PReLU (src/models/onnx/arrange-for-cpu.ts) must compute the same function
 * as the plain graph: checked on small float graphs run by ONNX Runtime, with slopes on both
 * sides of 1 (the sign-folding case), exactly 1, 0 and negative, a single slope, and neighbours
 * that forbid the sign folding.
 */
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { describe, expect, it } from 'vitest';
import { buildFrameModel, GraphBuilder } from '../../src/models/onnx/graph-builder.js';
import { arrangeForCpu } from '../../src/models/onnx/arrange-for-cpu.js';

const C = 16;
const H = 9;
const W = 11;

/** Deterministic pseudo-random floats in [-scale, scale]. */
function noise(n: number, seed: number, scale = 0.3): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return ((s / 2 ** 32) * 2 - 1) * scale;
  });
}

const SLOPES = Float32Array.from({ length: C }, (_, k) => [-1.6, -0.2, 0, 0.05, 0.25, 0.5, 0.99, 1, 1.01, 1.5, 1.9, 3][k % 12]!);

function graph(body: (g: GraphBuilder, x: string) => string): Uint8Array {
  const g = new GraphBuilder();
  const x = g.claim('x');
  g.inputs.push({ name: 'x', elemType: 'float', shape: [1, 3, H, W] });
  const y = body(g, x);
  g.outputs.push({ name: y, elemType: 'float', shape: [1, 'c', H, W] });
  return g.serialize('fp32');
}

const conv3 = (g: GraphBuilder, x: string, inC: number, outC: number, seed: number, bias = true) =>
  g.conv(x, noise(outC * inC * 9, seed), bias ? noise(outC, seed + 1, 0.1) : undefined, { outChannels: outC, inChannels: inC, kernel: [3, 3], pads: [1, 1, 1, 1] });

async function run(model: Uint8Array, input: Float32Array): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(model, { intraOpNumThreads: 1, graphOptimizationLevel: 'all', logSeverityLevel: 3 });
  try {
    const out = await s.run({ x: new ort.Tensor('float32', input, [1, 3, H, W]) });
    return out[s.outputNames[0]!]!.data as Float32Array;
  } finally {
    await s.release();
  }
}

async function expectSameFunction(model: Uint8Array, arranged: Uint8Array) {
  const input = noise(3 * H * W, 99, 1);
  const [a, b] = [await run(model, input), await run(arranged, input)];
  expect(b.length).toBe(a.length);
  let worst = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(a[i]!));
  }
  expect(scale).toBeGreaterThan(0.1);
  expect(worst).toBeLessThan(2e-6 * Math.max(1, scale));
}

const opTypes = (bytes: Uint8Array) => onnxProto.onnx.ModelProto.decode(bytes).graph!.node!.map((n) => n.opType);

describe('PReLU arranged for the CPU', () => {
  it('two per-channel PReLUs between convolutions: same output, no PRelu left, signs moved for slopes above 1', async () => {
    const model = graph((g, x) => {
      let h = g.prelu(conv3(g, x, 3, C, 1), SLOPES);
      h = g.prelu(conv3(g, h, C, C, 2), SLOPES.map((s) => 1.4 - s));
      return conv3(g, h, C, 3, 3);
    });
    const r = arrangeForCpu(model);
    expect(r).toMatchObject({ depthwise: 2, leaky: 0, kept: 0 });
    // slopes > 1: 1.01, 1.5, 1.9, 3 (first PReLU) and 1.4 - s > 1 for s in {-1.6, -0.2, 0, 0.25} (second).
    const above1 = [...SLOPES].filter((s) => s > 1).length + [...SLOPES].filter((s) => 1.4 - s > 1).length;
    expect(r.negatedChannels).toBe(above1);
    expect(opTypes(r.bytes!)).not.toContain('PRelu');
    expect(opTypes(r.bytes!).filter((o) => o === 'Conv')).toHaveLength(3 + 2);
    await expectSameFunction(model, r.bytes!);
  });

  it('a single slope becomes a LeakyRelu', async () => {
    const model = graph((g, x) => conv3(g, g.prelu(conv3(g, x, 3, C, 4), Float32Array.of(0.2)), C, 3, 5));
    const r = arrangeForCpu(model);
    expect(r).toMatchObject({ depthwise: 0, leaky: 1, kept: 0 });
    expect(opTypes(r.bytes!)).toContain('LeakyRelu');
    await expectSameFunction(model, r.bytes!);
  });

  it('slopes all at or below 1 need no sign change, even when the neighbours could not take one', async () => {
    const model = graph((g, x) => {
      const pre = conv3(g, x, 3, C, 6);
      const act = g.prelu(pre, SLOPES.map((s) => Math.min(s, 1)));
      // The producer's output also feeds the graph's sum below: its sign must not change.
      return g.node('Add', [conv3(g, act, C, 3, 7), conv3(g, pre, C, 3, 8)]);
    });
    const r = arrangeForCpu(model);
    expect(r).toMatchObject({ depthwise: 1, negatedChannels: 0, kept: 0 });
    await expectSameFunction(model, r.bytes!);
  });

  it('keeps a PReLU whose producer has another consumer when its slopes need a sign change', async () => {
    const model = graph((g, x) => {
      const pre = conv3(g, x, 3, C, 9);
      const act = g.prelu(pre, SLOPES);
      return g.node('Add', [conv3(g, act, C, 3, 10), conv3(g, pre, C, 3, 11)]);
    });
    const r = arrangeForCpu(model);
    expect(r).toMatchObject({ depthwise: 0, leaky: 0, kept: 1 });
    expect(r.bytes).toBeUndefined();
  });

  it('keeps a PReLU whose consumer is not a plain convolution when its slopes need a sign change', async () => {
    const model = graph((g, x) => g.node('Add', [g.prelu(conv3(g, x, 3, C, 12), SLOPES), conv3(g, x, 3, C, 13)]));
    expect(arrangeForCpu(model)).toMatchObject({ depthwise: 0, kept: 1 });
  });

  it('leaves a quantized (QDQ) graph alone, PReLUs included', () => {
    const model = graph((g, x) => {
      const q = g.node('QuantizeLinear', [x, g.scalar('s', 1 / 255)]);
      const h = g.prelu(conv3(g, g.node('DequantizeLinear', [q, g.scalar('s', 1 / 255)]), 3, C, 19), SLOPES.map((v) => Math.min(v, 1)));
      return conv3(g, h, C, 3, 20);
    });
    // Recognised as quantized, and left as ONNX Runtime's QDQ fusions expect it.
    expect(arrangeForCpu(model)).toEqual({ depthwise: 0, leaky: 0, negatedChannels: 0, kept: 0, scales: 0, quantized: true });
  });

  it('leaves a graph with nothing to rewrite alone', () => {
    const model = graph((g, x) => conv3(g, g.leakyRelu(conv3(g, x, 3, C, 14), 0.2), C, 3, 15));
    expect(arrangeForCpu(model)).toEqual({ depthwise: 0, leaky: 0, negatedChannels: 0, kept: 0, scales: 0 });
  });

  it('a scalar Mul after an Add (RRDB residual scaling) becomes a depthwise conv; after a conv it is left to ONNX Runtime', async () => {
    const model = graph((g, x) => {
      const a = conv3(g, x, 3, C, 16);
      const rdb = g.node('Add', [g.node('Mul', [conv3(g, a, C, C, 17), g.scalar('k', 0.2)]), a]);
      const rrdb = g.node('Add', [g.node('Mul', [rdb, g.scalar('k', 0.2)]), a]);
      return conv3(g, rrdb, C, 3, 18);
    });
    const r = arrangeForCpu(model);
    expect(r).toMatchObject({ scales: 1, depthwise: 0 });
    expect(opTypes(r.bytes!).filter((o) => o === 'Mul')).toHaveLength(1);
    await expectSameFunction(model, r.bytes!);
  });
});

/** uint8 frames of noise with flat black and white patches (outputs clipped at both ends). */
function frameNoise(h: number, w: number, seed: number): Uint8Array {
  const n = noise(h * w * 3, seed, 1);
  return Uint8Array.from(n, (v, i) => {
    const x = Math.floor(i / 3) % w;
    return x < 2 ? 0 : x > w - 3 ? 255 : Math.round((v + 1) * 127.5);
  });
}

async function upscaleFrame(model: Uint8Array, frame: Uint8Array, h: number, w: number): Promise<{ data: Uint8Array; dims: readonly number[] }> {
  const s = await ort.InferenceSession.create(model, { intraOpNumThreads: 1, graphOptimizationLevel: 'all', logSeverityLevel: 3 });
  try {
    const out = await s.run({ frames: new ort.Tensor('uint8', frame, [1, h, w, 3]) });
    return { data: out.upscaled!.data as Uint8Array, dims: out.upscaled!.dims };
  } finally {
    await s.release();
  }
}

/** The same 8-bit frames: a value may move by one level where rounding sat on .5, nothing more. */
async function expectSameFrames(model: Uint8Array, arranged: Uint8Array, scale: number) {
  const [h, w] = [H, W];
  const frame = frameNoise(h, w, 5);
  const [a, b] = [await upscaleFrame(model, frame, h, w), await upscaleFrame(arranged, frame, h, w)];
  expect(b.dims).toEqual([1, h * scale, w * scale, 3]);
  expect(a.dims).toEqual(b.dims);
  let differ = 0;
  for (let i = 0; i < a.data.length; i++) {
    expect(Math.abs(a.data[i]! - b.data[i]!)).toBeLessThanOrEqual(1);
    if (a.data[i] !== b.data[i]) differ++;
  }
  expect(differ / a.data.length).toBeLessThan(2e-3);
  // Both ends of the range occur, so the clipping is exercised.
  expect(b.data.includes(0) && b.data.includes(255)).toBe(true);
}

/** An SRVGGNetCompact-shaped frame model: convs, pixel shuffle, the nearest-upsampled input added back. */
const shuffleModel = (r: number, mode = 'CRD') => buildFrameModel((g, x) => {
  const h = g.prelu(conv3(g, x, 3, C, 30), SLOPES.map((s) => Math.min(s, 1)));
  const out = g.conv(h, noise(3 * r * r * C * 9, 31, 0.6), noise(3 * r * r, 32, 0.5), { outChannels: 3 * r * r, inChannels: C, kernel: [3, 3], pads: [1, 1, 1, 1] });
  return g.node('Add', [g.node('DepthToSpace', [out], { blocksize: r, mode }), g.resize(x, 'nearest', r, r)]);
}).serialize('fp32');

describe('the 8-bit output folded into the last convolution', () => {
  it.each([4, 2])('pixel shuffle x%i + upsampled input: the same frames, without DepthToSpace, Resize or Round', async (r) => {
    const model = shuffleModel(r);
    const a = arrangeForCpu(model);
    expect(a.output).toBe('shuffle');
    const ops = opTypes(a.bytes!);
    for (const op of ['DepthToSpace', 'Resize', 'Round']) expect(ops).not.toContain(op);
    await expectSameFrames(model, a.bytes!, r);
  });

  it('a convolution straight into the output (RRDBNet): x255 and Round folded, the same frames', async () => {
    const model = buildFrameModel((g, x) => conv3(g, g.leakyRelu(conv3(g, x, 3, C, 33), 0.2), C, 3, 34)).serialize('fp32');
    const a = arrangeForCpu(model);
    expect(a).toMatchObject({ output: 'plain', depthwise: 0, leaky: 0 });
    expect(opTypes(a.bytes!)).not.toContain('Round');
    await expectSameFrames(model, a.bytes!, 1);
  });

  it('leaves a tail it does not recognise (DepthToSpace in DCR order) as it is', () => {
    const a = arrangeForCpu(shuffleModel(2, 'DCR'));
    expect(a.output).toBeUndefined();
  });
});
