import { describe, expect, it } from 'vitest';
import { GramMatrix, gptqRound, inputPatches } from '../../src/models/onnx/gptq.js';
import { quantizeWeights, weightScales } from '../../src/models/onnx/quantize.js';

/** A seeded generator (mulberry32), so the test data is the same on every run. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** sum over rows of (x . (w - q * s))^2 for every output channel: the output error the rounding causes. */
function outputError(x: Float32Array, n: number, k: number, w: Float32Array, q: Int8Array, scales: Float32Array): number {
  let total = 0;
  for (let o = 0; o < scales.length; o++) {
    for (let r = 0; r < n; r++) {
      let e = 0;
      for (let i = 0; i < k; i++) e += x[r * k + i]! * (w[o * k + i]! - q[o * k + i]! * scales[o]!);
      total += e * e;
    }
  }
  return total;
}

function gram(x: Float32Array, n: number, k: number): Float64Array {
  const g = new Float64Array(k * k);
  for (let r = 0; r < n; r++) for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) g[i * k + j] = g[i * k + j]! + x[r * k + i]! * x[r * k + j]!;
  return g;
}

describe('GPTQ weight rounding', () => {
  const n = 600;
  const k = 27;
  const outC = 6;
  const rnd = random(7);
  const w = Float32Array.from({ length: outC * k }, () => rnd() * 2 - 1);
  const scales = weightScales(w, outC);

  it('on correlated inputs, causes a smaller output error than rounding to nearest', () => {
    // Inputs that move together, as neighbouring pixels and channels of a frame do.
    const x = new Float32Array(n * k);
    for (let r = 0; r < n; r++) {
      const common = rnd() * 2 - 1;
      for (let i = 0; i < k; i++) x[r * k + i] = common + 0.3 * (rnd() * 2 - 1);
    }
    const nearest = quantizeWeights(w, scales);
    const q = gptqRound(w, outC, gram(x, n, k), scales, 0);
    const before = outputError(x, n, k, w, nearest, scales);
    const after = outputError(x, n, k, w, q, scales);
    expect(after).toBeLessThan(0.5 * before);
    // Still int8 steps of the same scales, each next to its weight (no step moved far away).
    for (let i = 0; i < q.length; i++) expect(Math.abs(q[i]! - w[i]! / scales[Math.floor(i / k)]!)).toBeLessThan(2);
  });

  it('on independent inputs (a diagonal second moment) is rounding to nearest', () => {
    const diag = new Float64Array(k * k);
    for (let i = 0; i < k; i++) diag[i * k + i] = 1 + i;
    expect([...gptqRound(w, outC, diag, scales, 0)]).toEqual([...quantizeWeights(w, scales)]);
  });

  it('reads 3x3 patches in the weight order (channel, row, column) with zeros outside the frame', () => {
    // 2 channels of 2x3: value = 100 * channel + 10 * row + column.
    const x = Float32Array.from({ length: 12 }, (_, i) => 100 * Math.floor(i / 6) + 10 * Math.floor((i % 6) / 3) + (i % 3));
    const { rows, count } = inputPatches(x, 2, 3, { channels: 2, kernel: 3, pad: 1 }, 100);
    expect(count).toBe(6);
    // The patch around pixel (row 0, column 0): the top row and left column are padding.
    expect([...rows.subarray(0, 18)]).toEqual([0, 0, 0, 0, 0, 1, 0, 10, 11, 0, 0, 0, 0, 100, 101, 0, 110, 111]);
    // Around pixel (1, 2): the bottom row and right column are padding.
    expect([...rows.subarray(5 * 18, 6 * 18)]).toEqual([1, 2, 0, 11, 12, 0, 0, 0, 0, 101, 102, 0, 111, 112, 0, 0, 0, 0]);
  });

  it('takes X^T X from ONNX Runtime equal to the direct sum', async () => {
    const x = Float32Array.from({ length: 50 * 5 }, () => rnd());
    const g = await GramMatrix.open();
    try {
      const got = await g.of(x, 50, 5);
      const want = gram(x, 50, 5);
      for (let i = 0; i < 25; i++) expect(got[i]).toBeCloseTo(want[i]!, 3);
    } finally {
      await g.close();
    }
  });
});
