import { describe, expect, it } from 'vitest';
import { expectBytes, NcnnFixture, runFrame } from '../helpers/ncnn-fixture.js';

const u = (b: number) => b / 255;
/** A 2x2 RGB frame with distinct values, HWC. */
const frame2x2 = Uint8Array.from([10, 20, 30, 40, 50, 60, 70, 80, 90, 200, 220, 250]);
const pixel = (f: Uint8Array, w: number, y: number, x: number, c: number) => f[(y * w + x) * 3 + c]!;

describe('ncnn -> ONNX: each layer type against hand-computed results', () => {
  it('Convolution 1x1 with bias, float32 and float16 weight blobs', async () => {
    // out_c = 0.5 * in_c + bias_c (a diagonal 3x3 matrix)
    const w = [0.5, 0, 0, 0, 0.5, 0, 0, 0, 0.5];
    const bias = [0.25, 0, -0.125];
    for (const kind of ['32', '16'] as const) {
      const f = new NcnnFixture()
        .layer('Input', 'in', [], ['data'], '0=2 1=2 2=3')
        .layer('Convolution', 'conv', ['data'], ['out'], '0=3 1=1 5=1 6=9');
      if (kind === '32') f.weights32(w);
      else f.weights16(w);
      f.raw(bias);
      const { data, dims } = await runFrame(f.onnx(), frame2x2, 2, 2);
      expect(dims).toEqual([1, 2, 2, 3]);
      expectBytes(data, Array.from(frame2x2, (v, i) => 0.5 * u(v) + bias[i % 3]!), `float${kind}`);
    }
  });

  it('Convolution 3x3 with padding sums the neighbourhood, fused ReLU clips negatives', async () => {
    // Every output channel = sum over the 3x3 neighbourhood of input channel 0, minus 0.3, then ReLU.
    const weights: number[] = [];
    for (let o = 0; o < 3; o++) for (let i = 0; i < 3; i++) for (let k = 0; k < 9; k++) weights.push(i === 0 ? 1 : 0);
    const f = new NcnnFixture()
      .layer('Input', 'in', [], ['data'])
      .layer('Convolution', 'conv', ['data'], ['out'], '0=3 1=3 4=1 5=1 6=81 9=1')
      .weights32(weights)
      .raw([-0.3, -0.3, -0.3]);
    const { data } = await runFrame(f.onnx(), frame2x2, 2, 2);
    // With zero padding each pixel of a 2x2 image sees all four pixels.
    const sum = u(10) + u(40) + u(70) + u(200);
    expectBytes(data, new Array(12).fill(Math.max(0, sum - 0.3)));
  });

  it('LeakyReLU activation (9=2 with slope array) and BinaryOp with a scalar', async () => {
    const f = new NcnnFixture()
      .layer('Input', 'in', [], ['data'])
      .layer('Convolution', 'conv', ['data'], ['c'], '0=3 1=1 5=1 6=9 9=2 -23310=1,2.000000e-01')
      .weights32([1, 0, 0, 0, 1, 0, 0, 0, 1])
      .raw([-0.5, -0.5, -0.5])
      .layer('BinaryOp', 'add', ['c'], ['out'], '0=0 1=1 2=5.000000e-01');
    const { data } = await runFrame(f.onnx(), frame2x2, 2, 2);
    const leaky = (x: number) => (x < 0 ? 0.2 * x : x);
    expectBytes(data, Array.from(frame2x2, (v) => leaky(u(v) - 0.5) + 0.5));
  });

  it('PReLU applies one slope per channel', async () => {
    const f = new NcnnFixture()
      .layer('Input', 'in', [], ['data'])
      .layer('BinaryOp', 'shift', ['data'], ['s'], '0=1 1=1 2=5.000000e-01') // x - 0.5
      .layer('PReLU', 'prelu', ['s'], ['p'], '0=3')
      .raw([0, 0.5, 1])
      .layer('BinaryOp', 'back', ['p'], ['out'], '0=0 1=1 2=5.000000e-01');
    const { data } = await runFrame(f.onnx(), frame2x2, 2, 2);
    const slopes = [0, 0.5, 1];
    expectBytes(data, Array.from(frame2x2, (v, i) => {
      const x = u(v) - 0.5;
      return (x < 0 ? slopes[i % 3]! * x : x) + 0.5;
    }));
  });

  it('Split, Concat on channels and a 1x1 convolution that picks channels back out', async () => {
    // concat(data, data) has 6 channels; the conv outputs channel 5, 0, 1 (i.e. B, R, G).
    const w = new Array(18).fill(0);
    w[0 * 6 + 5] = 1;
    w[1 * 6 + 0] = 1;
    w[2 * 6 + 1] = 1;
    const f = new NcnnFixture()
      .layer('Input', 'in', [], ['data'])
      .layer('Split', 'split', ['data'], ['a', 'b'])
      .layer('Concat', 'cat', ['a', 'b'], ['c'], '0=0')
      .layer('Convolution', 'pick', ['c'], ['out'], '0=3 1=1 5=0 6=18')
      .weights32(w);
    const { data } = await runFrame(f.onnx(), frame2x2, 2, 2);
    const expected: number[] = [];
    for (let p = 0; p < 4; p++) expected.push(frame2x2[p * 3 + 2]!, frame2x2[p * 3]!, frame2x2[p * 3 + 1]!);
    expect(Array.from(data)).toEqual(expected);
  });

  it('Eltwise sum with coefficients (ESRGAN residual scaling), product and max', async () => {
    for (const [op, params, fn] of [
      [1, '0=1 -23301=2,2.000000e-01,1.000000e+00', (a: number, b: number) => 0.2 * a + b],
      [0, '0=0', (a: number, b: number) => a * b],
      [2, '0=2', (a: number, b: number) => Math.max(a, b)],
    ] as const) {
      const f = new NcnnFixture()
        .layer('Input', 'in', [], ['data'])
        .layer('Split', 'split', ['data'], ['a', 'b0'])
        .layer('BinaryOp', 'half', ['b0'], ['b'], '0=2 1=1 2=5.000000e-01') // b = 0.5 * x
        .layer('Eltwise', `elt${op}`, ['a', 'b'], ['out'], params);
      const { data } = await runFrame(f.onnx(), frame2x2, 2, 2);
      expectBytes(data, Array.from(frame2x2, (v) => fn(u(v), 0.5 * u(v))), `Eltwise op ${op}`);
    }
  });

  it('BinaryOp between two blobs: sub, div and reversed sub', async () => {
    for (const [op, fn] of [
      [1, (a: number, b: number) => a - b],
      [3, (a: number, b: number) => a / b],
      [7, (a: number, b: number) => b - a],
    ] as const) {
      const f = new NcnnFixture()
        .layer('Input', 'in', [], ['data'])
        .layer('Split', 'split', ['data'], ['a', 'b0'])
        .layer('BinaryOp', 'quarter', ['b0'], ['b'], '0=2 1=1 2=2.500000e-01')
        .layer('BinaryOp', 'op', ['a', 'b'], ['out'], `0=${op}`);
      const { data } = await runFrame(f.onnx(), frame2x2, 2, 2);
      expectBytes(data, Array.from(frame2x2, (v) => fn(u(v), 0.25 * u(v))), `BinaryOp ${op}`);
    }
  });

  it('Interp nearest x2 repeats each pixel into a 2x2 block', async () => {
    const f = new NcnnFixture()
      .layer('Input', 'in', [], ['data'])
      .layer('Interp', 'up', ['data'], ['out'], '0=1 1=2.000000e+00 2=2.000000e+00');
    const { data, dims } = await runFrame(f.onnx(), frame2x2, 2, 2);
    expect(dims).toEqual([1, 4, 4, 3]);
    for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) for (let c = 0; c < 3; c++) {
      expect(pixel(data, 4, y, x, c)).toBe(pixel(frame2x2, 2, y >> 1, x >> 1, c));
    }
  });

  it('PixelShuffle matches torch.pixel_shuffle (CRD order)', async () => {
    // A 1x1 conv spreads input channel 0 into 12 channels with weight k/16 for channel k;
    // pixel_shuffle(r=2) puts channel c*4 + i*2 + j at output (c, 2h+i, 2w+j).
    const w: number[] = [];
    for (let k = 0; k < 12; k++) w.push((k + 1) / 16, 0, 0);
    const f = new NcnnFixture()
      .layer('Input', 'in', [], ['data'])
      .layer('Convolution', 'spread', ['data'], ['s'], '0=12 1=1 5=0 6=36')
      .weights32(w)
      .layer('PixelShuffle', 'ps', ['s'], ['out'], '0=2');
    const { data, dims } = await runFrame(f.onnx(), frame2x2, 2, 2);
    expect(dims).toEqual([1, 4, 4, 3]);
    const expected: number[] = [];
    for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) for (let c = 0; c < 3; c++) {
      const k = c * 4 + (y % 2) * 2 + (x % 2);
      expected.push(((k + 1) / 16) * u(pixel(frame2x2, 2, y >> 1, x >> 1, 0)));
    }
    expectBytes(data, expected);
  });

  it('keeps a dynamic batch: two frames in, two frames out', async () => {
    const f = new NcnnFixture()
      .layer('Input', 'in', [], ['data'])
      .layer('Interp', 'up', ['data'], ['out'], '0=1 1=2.000000e+00 2=2.000000e+00');
    const two = new Uint8Array(24);
    two.set(frame2x2, 0);
    two.set(frame2x2.map((v) => 255 - v), 12);
    const { data, dims } = await runFrame(f.onnx(), two, 2, 2, 2);
    expect(dims).toEqual([2, 4, 4, 3]);
    expect(data[48]).toBe(255 - frame2x2[0]!);
  });

  it('the float16 variant computes the same small graph', async () => {
    const f = new NcnnFixture()
      .layer('Input', 'in', [], ['data'])
      .layer('Convolution', 'conv', ['data'], ['out'], '0=3 1=1 5=1 6=9 9=2 -23310=1,2.000000e-01')
      .weights32([0.5, 0, 0, 0, 0.5, 0, 0, 0, 0.5])
      .raw([0.25, 0, -0.125]);
    const a = await runFrame(f.onnx('fp32'), frame2x2, 2, 2);
    const b = await runFrame(f.onnx('fp16'), frame2x2, 2, 2);
    for (let i = 0; i < 12; i++) expect(Math.abs(a.data[i]! - b.data[i]!)).toBeLessThanOrEqual(1);
  });
});
