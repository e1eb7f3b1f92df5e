/** The int8 quantizer's arithmetic: per-channel weight scales, int32 bias, activation parameters, calibration clip. */
import { describe, expect, it } from 'vitest';
import { decodeRgbPng, readCalibrationFrames } from '../../src/models/calibration-frames.js';
import onnxProto from 'onnx-proto';
import { buildFrameModel } from '../../src/models/onnx/graph-builder.js';
import { correctBiases, mseOptimalRange, quantizeBias, quantizeModel, quantizeWeights, uint8Params, weightScales } from '../../src/models/onnx/quantize.js';
import { exactSources } from '../../src/models/int8.js';

/** A small deterministic generator (mulberry32), so the distributions are the same on every run. */
function uniform(seed: number): () => number {
  let t = seed >>> 0;
  return () => {
    t = (t + 0x6d2b79f5) >>> 0;
    let r = Math.imul(t ^ (t >>> 15), 1 | t);
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
    return (((r ^ (r >>> 14)) >>> 0) + 0.5) / 2 ** 32;
  };
}

function normals(n: number, seed = 1): Float32Array {
  const u = uniform(seed);
  return Float32Array.from({ length: n }, () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u()));
}

function laplace(n: number, seed = 2): Float32Array {
  const u = uniform(seed);
  return Float32Array.from({ length: n }, () => {
    const x = u() - 0.5;
    return -Math.sign(x) * Math.log(1 - 2 * Math.abs(x));
  });
}

/** The exact mean squared error of uint8 quantization over [lo, hi], element by element. */
function quantizationMse(v: Float32Array, lo: number, hi: number): number {
  const step = (hi - lo) / 255;
  let e = 0;
  for (const x of v) {
    const c = Math.min(hi, Math.max(lo, x));
    e += (x - (Math.round((c - lo) / step) * step + lo)) ** 2;
  }
  return e / v.length;
}

describe('per-channel symmetric int8 weights', () => {
  const w = Float32Array.from([0.5, -1.27, 0.01, 0.2, /* channel 1 */ 0.003, -0.002, 0.001, 0, /* channel 2 */ 0, 0, 0, 0]);
  const scales = weightScales(w, 3);

  it('one scale per output channel: max |w| / 127, and 1 for an all-zero channel', () => {
    expect(scales[0]).toBeCloseTo(1.27 / 127, 9);
    expect(scales[1]).toBeCloseTo(0.003 / 127, 9);
    expect(scales[2]).toBe(1);
  });

  it('rounds to [-127, 127], the largest weight of each channel to +-127, within half a step', () => {
    const q = quantizeWeights(w, scales);
    expect([...q]).toEqual([50, -127, 1, 20, 127, -85, 42, 0, 0, 0, 0, 0]);
    for (let i = 0; i < w.length; i++) expect(Math.abs(q[i]! * scales[Math.floor(i / 4)]! - w[i]!)).toBeLessThanOrEqual(scales[Math.floor(i / 4)]! / 2 + 1e-9);
  });

  it('rejects a weight that does not split into the channels', () => {
    expect(() => weightScales(new Float32Array(10), 3)).toThrow(/does not split into 3 channels/);
  });
});

describe('int32 bias', () => {
  it('is bias / (input scale x weight scale), rounded half away from zero', () => {
    const q = quantizeBias(Float32Array.from([0.5, -0.25, 0.0123, -0.0017]), 0.01, Float32Array.from([0.1, 0.05, 0.1, 0.05]));
    expect([...q]).toEqual([500, -500, 12, -3]);
  });

  it('saturates at the int32 range', () => {
    expect([...quantizeBias(Float32Array.from([1e6, -1e6]), 1e-6, Float32Array.from([1e-6, 1e-6]))]).toEqual([2 ** 31 - 1, -(2 ** 31)]);
  });
});

describe('the first convolution, reading the frame\'s bytes', () => {
  it('has its bias quantized with the 1/255 input scale its DequantizeLinear uses, not the calibrated range', () => {
    const g = buildFrameModel((b, x) => b.conv(x, Float32Array.from({ length: 4 * 3 * 9 }, (_, i) => ((i * 37) % 11 - 5) / 20), Float32Array.of(0.1, -0.2, 0.3, 0.05),
      { outChannels: 4, inChannels: 3, kernel: [3, 3], pads: [1, 1, 1, 1] }));
    const fp32 = g.serialize('fp32');
    const nodes = onnxProto.onnx.ModelProto.decode(fp32).graph!.node!;
    const conv = nodes.find((n) => n.opType === 'Conv')!;
    // A calibrated input range that is not 0..1 (an MSE clip of the frames' values).
    const ranges = new Map([[conv.input![0]!, { lo: 0, hi: 0.99 }], [conv.output![0]!, { lo: -1, hi: 1 }]]);
    const q = onnxProto.onnx.ModelProto.decode(quantizeModel(fp32, { ranges, exactSources: exactSources(fp32) })).graph!;
    const inits = new Map(q.initializer!.map((t) => [t.name!, t]));
    const floats = (name: string) => new Float32Array(new Uint8Array(inits.get(name)!.rawData!).slice().buffer);
    const qconv = q.node!.find((n) => n.opType === 'Conv')!;
    const dqOf = (tensor: string) => q.node!.find((n) => n.opType === 'DequantizeLinear' && n.output![0] === tensor)!;
    const [xDq, wDq, bDq] = qconv.input!.map(dqOf);
    const xScale = floats(xDq!.input![1]!)[0]!;
    expect(xScale).toBeCloseTo(1 / 255, 9);
    const wScales = floats(wDq!.input![1]!);
    const bScales = floats(bDq!.input![1]!);
    wScales.forEach((w, k) => expect(bScales[k]).toBeCloseTo(w * xScale, 12));
  });
});

describe('bias correction', () => {
  it('subtracts the mean output shift of the int8 weights, sum of (Wq - W) x E[x] over inputs and taps', () => {
    // One output channel, two input channels, 1x1 kernel: W = [1.27, 0.004]; per-channel scale 0.01,
    // so Wq = [1.27, 0]: the second input's weight is lost, shifting the output by -0.004 E[x1].
    const g = buildFrameModel((b, x) => {
      const two = b.conv(x, Float32Array.from([1, 0, 0, 0, 1, 0]), undefined, { outChannels: 2, inChannels: 3, kernel: [1, 1] });
      return b.conv(two, Float32Array.from([1.27, 0.004]), Float32Array.from([0.5]), { outChannels: 1, inChannels: 2, kernel: [1, 1] }, 'probe');
    });
    const bytes = g.serialize('fp32');
    const model = onnxProto.onnx.ModelProto.decode(bytes);
    const conv = model.graph!.node!.find((n) => n.output![0] === 'probe')!;
    const corrected = onnxProto.onnx.ModelProto.decode(correctBiases(bytes, new Map([[conv.input![0]!, Float64Array.from([0.2, 3])]])));
    const bias = corrected.graph!.initializer!.find((t) => t.name === conv.input![2])!;
    const raw = new Uint8Array(bias.rawData!);
    expect(new Float32Array(raw.buffer, raw.byteOffset, 1)[0]).toBeCloseTo(0.5 + 0.004 * 3, 6);
  });
});

describe('uint8 activation parameters', () => {
  it('cover the range widened to contain 0, with 0 exact', () => {
    expect(uint8Params({ lo: -1, hi: 3 })).toEqual({ scale: 4 / 255, zeroPoint: 64 });
    expect(uint8Params({ lo: 0.5, hi: 2 })).toEqual({ scale: 2 / 255, zeroPoint: 0 });
    expect(uint8Params({ lo: -2, hi: -1 })).toEqual({ scale: 2 / 255, zeroPoint: 255 });
    expect(uint8Params({ lo: 0, hi: 0 })).toEqual({ scale: 1, zeroPoint: 0 });
  });
});

describe('MSE-optimal clip', () => {
  it.each([['normal', normals(20_000)], ['Laplace', laplace(20_000)]] as const)('on a %s distribution: as good as the best clip found by brute force, and inside the observed range', (_, v) => {
    let min = 0;
    let max = 0;
    for (const x of v) {
      min = Math.min(min, x);
      max = Math.max(max, x);
    }
    const r = mseOptimalRange(v);
    expect(r.lo).toBeGreaterThanOrEqual(min);
    expect(r.hi).toBeLessThanOrEqual(max);
    let best = Infinity;
    for (let a = 0.3; a <= 1.0001; a += 0.02) for (let b = 0.3; b <= 1.0001; b += 0.02) best = Math.min(best, quantizationMse(v, min * a, max * b));
    expect(quantizationMse(v, r.lo, r.hi)).toBeLessThanOrEqual(best * 1.03);
    // Clipping pays: no clip at all is worse than the chosen one.
    expect(quantizationMse(v, r.lo, r.hi)).toBeLessThan(quantizationMse(v, min, max));
  });

  it('keeps the whole range of a uniform distribution (nothing to gain from clipping)', () => {
    const v = Float32Array.from({ length: 100_000 }, (_, i) => (i / 100_000) * 2);
    const r = mseOptimalRange(v);
    expect(r.lo).toBe(0);
    expect(r.hi).toBeGreaterThan(1.9);
  });
});

describe('calibration frames', () => {
  it('are six real RGB frames, decoded without sharp', () => {
    const frames = readCalibrationFrames();
    expect(frames.map((f) => `${f.name} ${f.width}x${f.height}`)).toEqual([
      'astronaut.png 80x80', 'chelsea-mp4-frame0.png 160x90', 'chelsea-mp4-frame24.png 160x90', 'chelsea-mp4-frame47.png 160x90', 'chelsea.png 96x72', 'coffee.png 96x72',
    ]);
    for (const f of frames) expect(f.data.length).toBe(f.width * f.height * 3);
  });

  it('refuses a PNG it cannot read', () => {
    expect(() => decodeRgbPng(new Uint8Array(16), 'x.png')).toThrow(/x.png: not a PNG file/);
  });
});
