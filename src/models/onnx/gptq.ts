/**
 * Weight rounding that compensates its own error (GPTQ: Frantar et al., 2022, after Optimal Brain
 * Quantization). Rounding each weight to its nearest int8 step on its own ignores that the errors
 * of one output channel's weights add up over the same input pixels; GPTQ rounds the weights of a
 * channel one input position at a time and moves each rounding error onto the positions not yet
 * rounded, weighted by how those inputs vary together on real frames (H = sum of x x^T over the
 * convolution's input patches). The scales stay max |w| / 127 per channel, so only the choice
 * between the two int8 steps around each weight changes; QLinearConv runs the same.
 */
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
const DT = onnx.TensorProto.DataType;

/** A convolution's geometry, as GPTQ needs it: square kernel, stride 1, symmetric padding. */
export interface PatchShape {
  channels: number;
  kernel: number;
  pad: number;
}

/**
 * The input patches (im2col rows, in the weight's [channel, ky, kx] order, zeros outside the
 * frame) of up to `cap` output pixels of a [channels, height, width] activation, evenly strided.
 */
export function inputPatches(x: Float32Array, height: number, width: number, s: PatchShape, cap: number): { rows: Float32Array; count: number } {
  const k = s.channels * s.kernel * s.kernel;
  const pixels = height * width;
  const count = Math.min(pixels, cap);
  const rows = new Float32Array(count * k);
  for (let r = 0; r < count; r++) {
    const p = Math.floor((r * pixels) / count);
    const y = Math.floor(p / width);
    const xx = p % width;
    let at = r * k;
    for (let c = 0; c < s.channels; c++) {
      for (let ky = 0; ky < s.kernel; ky++) {
        const sy = y + ky - s.pad;
        for (let kx = 0; kx < s.kernel; kx++, at++) {
          const sx = xx + kx - s.pad;
          rows[at] = sy >= 0 && sy < height && sx >= 0 && sx < width ? x[c * pixels + sy * width + sx]! : 0;
        }
      }
    }
  }
  return { rows, count };
}

/** X^T X of an [n, k] matrix, by ONNX Runtime (its MatMul is what makes 60 000-row patches cheap). */
export class GramMatrix {
  private constructor(private readonly session: ort.InferenceSession) {}

  static async open(): Promise<GramMatrix> {
    const graph = onnx.GraphProto.create({
      name: 'gram',
      input: [onnx.ValueInfoProto.create({ name: 'x', type: { tensorType: { elemType: DT.FLOAT, shape: { dim: [{ dimParam: 'n' }, { dimParam: 'k' }] } } } })],
      output: [onnx.ValueInfoProto.create({ name: 'g', type: { tensorType: { elemType: DT.FLOAT } } })],
      node: [
        onnx.NodeProto.create({ opType: 'Transpose', input: ['x'], output: ['xt'], attribute: [{ name: 'perm', type: onnx.AttributeProto.AttributeType.INTS, ints: [1, 0] }] }),
        onnx.NodeProto.create({ opType: 'MatMul', input: ['xt', 'x'], output: ['g'] }),
      ],
    });
    const model = onnx.ModelProto.create({ irVersion: 8, opsetImport: [{ domain: '', version: 17 }], graph });
    return new GramMatrix(await ort.InferenceSession.create(onnx.ModelProto.encode(model).finish(), { graphOptimizationLevel: 'all' }));
  }

  async of(rows: Float32Array, n: number, k: number): Promise<Float32Array> {
    const r = await this.session.run({ x: new ort.Tensor('float32', rows, [n, k]) });
    return r.g!.data as Float32Array;
  }

  close(): Promise<void> {
    return this.session.release();
  }
}

/** Cholesky factor of a symmetric positive definite k x k matrix (row-major), lower: A = L L^T. */
function cholesky(a: Float64Array, k: number): Float64Array {
  const l = new Float64Array(k * k);
  for (let i = 0; i < k; i++) {
    for (let j = 0; j <= i; j++) {
      let sum = a[i * k + j]!;
      for (let m = 0; m < j; m++) sum -= l[i * k + m]! * l[j * k + m]!;
      if (i === j) {
        if (!(sum > 0)) throw new Error('GPTQ: the input second moments are not positive definite');
        l[i * k + i] = Math.sqrt(sum);
      } else l[i * k + j] = sum / l[j * k + j]!;
    }
  }
  return l;
}

/** The inverse of A = L L^T from its Cholesky factor. */
function inverseFromCholesky(l: Float64Array, k: number): Float64Array {
  // L^-1 (lower), then A^-1 = L^-T L^-1.
  const li = new Float64Array(k * k);
  for (let i = 0; i < k; i++) {
    li[i * k + i] = 1 / l[i * k + i]!;
    for (let j = 0; j < i; j++) {
      let sum = 0;
      for (let m = j; m < i; m++) sum += l[i * k + m]! * li[m * k + j]!;
      li[i * k + j] = -sum / l[i * k + i]!;
    }
  }
  const inv = new Float64Array(k * k);
  for (let i = 0; i < k; i++) {
    for (let j = 0; j <= i; j++) {
      let sum = 0;
      for (let m = i; m < k; m++) sum += li[m * k + i]! * li[m * k + j]!;
      inv[i * k + j] = sum;
      inv[j * k + i] = sum;
    }
  }
  return inv;
}

/**
 * int8 weights [outChannels, k] for the given per-channel scales, rounded with GPTQ's error
 * feedback over the inputs' second moments `gram` (k x k, X^T X over real input patches).
 * `dampFraction` of the mean diagonal is added to it, as GPTQ does, so it stays invertible.
 */
export function gptqRound(weight: Float32Array, outChannels: number, gram: ArrayLike<number>, scales: Float32Array, dampFraction = 0.01): Int8Array {
  const k = weight.length / outChannels;
  const h = Float64Array.from(gram);
  let meanDiag = 0;
  for (let i = 0; i < k; i++) meanDiag += h[i * k + i]! / k;
  const dead: boolean[] = [];
  for (let i = 0; i < k; i++) {
    // An input that is zero on every patch (a channel that never fires): its weights cannot matter.
    dead[i] = h[i * k + i] === 0;
    if (dead[i]) h[i * k + i] = 1;
    h[i * k + i] = h[i * k + i]! + dampFraction * meanDiag;
  }
  // GPTQ's form: U upper with H^-1 = U^T U; row i of U carries position i's error forward.
  const hinv = inverseFromCholesky(cholesky(h, k), k);
  const lower = cholesky(hinv, k);
  const w = Float64Array.from(weight);
  const q = new Int8Array(weight.length);
  for (let o = 0; o < outChannels; o++) {
    const row = o * k;
    const s = scales[o]!;
    for (let i = 0; i < k; i++) {
      const v = w[row + i]!;
      const step = Math.max(-127, Math.min(127, Math.round(v / s)));
      q[row + i] = step;
      if (dead[i]) continue;
      const d = lower[i * k + i]!;
      const err = (v - step * s) / d;
      // U = L^T, so U[i][j] is L[j][i].
      for (let j = i + 1; j < k; j++) w[row + j] = w[row + j]! - err * lower[j * k + i]!;
    }
  }
  return q;
}
