/**
 * Makes a model's int8 file from its float32 one: calibrates the activation ranges by running the
 * float model on real frames shipped with esrvid (samples/calibration: three CC0/public-domain
 * photographs and three frames of samples/chelsea.mp4), quantizes (onnx/quantize.ts), and measures
 * the int8 model's PSNR against the float32 output on those frames. The PSNR is the quality gate:
 * below INT8_MIN_PSNR_DB the model is not offered in int8.
 */
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { calibratedTensors, correctBiases, equalizablePairs, equalizeChannels, mseOptimalRange, quantizeModel, weightScales, withOutputs, type TensorRange } from './onnx/quantize.js';
import { GramMatrix, gptqRound, inputPatches, type PatchShape } from './onnx/gptq.js';
import { floatValues, intAttr, intsAttr } from './onnx/tensor.js';
import { readCalibrationFrames, readValidationFrames, type Frame } from './calibration-frames.js';

const { onnx } = onnxProto;

/** int8 is offered only where its output stays this close to float32 on every calibration frame. */
export const INT8_MIN_PSNR_DB = 40;

/** Bumped whenever calibration or quantization changes, so old int8 files are made again. */
export const QUANTIZER_VERSION = 'esrvid-qdq-int8/6';

export interface Int8Quality {
  /** PSNR of the int8 output against the float32 output, per frame, in dB. */
  psnrDb: Record<string, number>;
  minDb: number;
  medianDb: number;
  /** Whether minDb reaches INT8_MIN_PSNR_DB. */
  passes: boolean;
}

export interface Int8Result {
  bytes: Uint8Array;
  clip: ClipRule;
  quality: Int8Quality;
  calibrationMs: number;
}

const sessionOpts = (threads?: number): ort.InferenceSession.SessionOptions => ({
  ...(threads ? { intraOpNumThreads: threads } : {}), interOpNumThreads: 1, graphOptimizationLevel: 'all', executionMode: 'sequential',
});

function frameTensor(f: Frame): ort.Tensor {
  return new ort.Tensor('uint8', f.data, [1, f.height, f.width, 3]);
}

/** Up to `cap` indexes into a tensor of `n` values, evenly strided, so big frames do not dominate. */
function sampleIndexes(n: number, cap: number): Uint32Array {
  const count = Math.min(n, cap);
  const stride = n / count;
  const out = new Uint32Array(count);
  for (let i = 0; i < count; i++) out[i] = Math.floor(i * stride);
  return out;
}

/** How a tensor's range is set from its calibration values: MSE-optimal clipping, or none (min..max). */
export type ClipRule = 'mse' | 'minmax';

/** Values kept per tensor per frame for the ranges. */
const SAMPLES_PER_FRAME = 1 << 18;

export interface CalibrateOptions {
  threads?: number;
  /** Activation tensors quantized besides those around the Convs. */
  extraTensors?: readonly string[];
}

export function rangeOf(values: Float32Array, clip: ClipRule): TensorRange {
  if (clip === 'mse') return mseOptimalRange(values);
  let lo = 0;
  let hi = 0;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return { lo, hi };
}

/**
 * Activation ranges of the tensors around every quantized Conv, measured on the frames in one
 * pass, under each clip rule asked for.
 */
export interface Calibration {
  /** Ranges of every calibrated tensor, per clip rule. */
  ranges: Map<ClipRule, Map<string, TensorRange>>;
  /** Mean of each channel of every calibrated tensor ([N, C, H, W]), over the frames. */
  channelMeans: Map<string, Float64Array>;
}

/** What calibrate()'s pass hands on, frame by frame: the float model's activations around every Conv. */
export type ActivationVisitor = (activations: ort.InferenceSession.OnnxValueMapType) => Promise<void>;

export async function calibrate(fp32: Uint8Array, frames: readonly Frame[], clips: readonly ClipRule[], o: CalibrateOptions = {}, visit?: ActivationVisitor): Promise<Calibration> {
  const tensors = calibratedTensors(onnx.ModelProto.decode(fp32), o.extraTensors);
  const session = await ort.InferenceSession.create(withOutputs(fp32, tensors), sessionOpts(o.threads));
  const values = new Map<string, Float32Array[]>(tensors.map((t) => [t, []]));
  const channelMeans = new Map<string, Float64Array>();
  try {
    for (const f of frames) {
      const r = await session.run({ frames: frameTensor(f) }, tensors);
      await visit?.(r);
      for (const t of tensors) {
        const out = r[t]!;
        const data = out.data as Float32Array;
        values.get(t)!.push(Float32Array.from(sampleIndexes(data.length, SAMPLES_PER_FRAME), (i) => data[i]!));
        const channels = Number(out.dims[1]);
        const plane = Number(out.dims[2]) * Number(out.dims[3]);
        const m = channelMeans.get(t) ?? new Float64Array(channels);
        for (let c = 0; c < channels; c++) {
          let sum = 0;
          for (let i = c * plane; i < (c + 1) * plane; i++) sum += data[i]!;
          m[c] = m[c]! + sum / plane / frames.length;
        }
        channelMeans.set(t, m);
      }
    }
  } finally {
    await session.release();
  }
  const ranges = new Map<ClipRule, Map<string, TensorRange>>();
  for (const clip of clips) ranges.set(clip, new Map(tensors.map((t) => [t, rangeOf(concat(values.get(t)!), clip)])));
  return { ranges, channelMeans };
}

function concat(parts: Float32Array[]): Float32Array {
  const all = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  return all;
}

/**
 * One pass of the float32 model over the frames: the largest |value| of each channel of each
 * tensor ([N, C, H, W]), and the upscaled frames (the reference int8 is measured against).
 */
export async function channelRanges(fp32: Uint8Array, frames: readonly Frame[], tensors: readonly string[], threads?: number): Promise<{ ranges: Map<string, Float32Array>; outputs: Uint8Array[] }> {
  const session = await ort.InferenceSession.create(withOutputs(fp32, tensors), sessionOpts(threads));
  const ranges = new Map<string, Float32Array>();
  const outputs: Uint8Array[] = [];
  try {
    for (const f of frames) {
      const r = await session.run({ frames: frameTensor(f) }, ['upscaled', ...tensors]);
      outputs.push(r.upscaled!.data as Uint8Array);
      for (const t of tensors) {
        const out = r[t]!;
        const data = out.data as Float32Array;
        const channels = Number(out.dims[1]);
        const plane = Number(out.dims[2]) * Number(out.dims[3]);
        const m = ranges.get(t) ?? new Float32Array(channels);
        for (let i = 0; i < data.length; i++) {
          const c = Math.floor(i / plane) % channels;
          const v = Math.abs(data[i]!);
          if (v > m[c]!) m[c] = v;
        }
        ranges.set(t, m);
      }
    }
  } finally {
    await session.release();
  }
  return { ranges, outputs };
}

/** Patches per frame and convolution that feed GPTQ's second moments (the calibration frames are smaller). */
const GPTQ_PATCHES_PER_FRAME = 1 << 14;

/**
 * GPTQ-rounded int8 weights (onnx/gptq.ts) of every plain convolution of the float model (no
 * groups, stride 1, square kernel, same padding), from its input patches: add() takes each
 * frame's activations during calibrate()'s pass (conv inputs are among them), round() rounds. By
 * the weight initializer's name; other convolutions are left to round-to-nearest.
 */
export class GptqRounding {
  private readonly sums = new Map<string, Float64Array>();

  private constructor(
    private readonly convs: { input: string; weight: Float32Array; name: string; shape: PatchShape; outChannels: number }[],
    private readonly gram: GramMatrix,
  ) {}

  static async open(fp32: Uint8Array): Promise<GptqRounding> {
    const graph = onnx.ModelProto.decode(fp32).graph as onnxProto.onnx.GraphProto;
    const inits = new Map(graph.initializer.map((t) => [t.name!, t]));
    const convs: GptqRounding['convs'] = [];
    for (const n of graph.node) {
      if (n.opType !== 'Conv') continue;
      const w = inits.get(n.input![1]!);
      if (!w) continue;
      const [outChannels, channels, kh, kw] = (w.dims ?? []).map(Number) as [number, number, number, number];
      const pads = intsAttr(n, 'pads', [0, 0, 0, 0]);
      const pad = pads[0]!;
      const plain = intAttr(n, 'group', 1) === 1 && intsAttr(n, 'strides', [1, 1]).every((v) => v === 1) && intsAttr(n, 'dilations', [1, 1]).every((v) => v === 1)
        && kh === kw && pads.every((v) => v === pad) && 2 * pad === kh - 1;
      if (plain) convs.push({ input: n.input![0]!, weight: floatValues(w), name: n.input![1]!, shape: { channels, kernel: kh, pad }, outChannels });
    }
    return new GptqRounding(convs, await GramMatrix.open());
  }

  /** One frame's activations ([1, C, H, W] by tensor name): each convolution's X^T X added up. */
  readonly add: ActivationVisitor = async (activations) => {
    for (const c of this.convs) {
      const t = activations[c.input];
      if (!t) throw new Error(`GPTQ: no activation for ${c.input}`);
      const k = c.shape.channels * c.shape.kernel * c.shape.kernel;
      const { rows, count } = inputPatches(t.data as Float32Array, Number(t.dims[2]), Number(t.dims[3]), c.shape, GPTQ_PATCHES_PER_FRAME);
      const g = await this.gram.of(rows, count, k);
      const sum = this.sums.get(c.name) ?? new Float64Array(k * k);
      for (let i = 0; i < g.length; i++) sum[i] = sum[i]! + g[i]!;
      this.sums.set(c.name, sum);
    }
  };

  /** The rounded weights of every convolution add() saw. */
  round(): Map<string, Int8Array> {
    const rounded = new Map<string, Int8Array>();
    for (const c of this.convs) {
      const sum = this.sums.get(c.name);
      if (sum) rounded.set(c.name, gptqRound(c.weight, c.outChannels, sum, weightScales(c.weight, c.outChannels)));
    }
    return rounded;
  }

  close(): Promise<void> {
    return this.gram.close();
  }
}

export function psnrDb(a: Uint8Array, b: Uint8Array): number {
  let se = 0;
  for (let i = 0; i < a.length; i++) se += (a[i]! - b[i]!) ** 2;
  return se === 0 ? Infinity : 10 * Math.log10((255 * 255 * a.length) / se);
}

/** The model's upscaled frames. */
export async function upscaleFrames(model: Uint8Array | string, frames: readonly Frame[], threads?: number): Promise<Uint8Array[]> {
  const session = typeof model === 'string' ? await ort.InferenceSession.create(model, sessionOpts(threads)) : await ort.InferenceSession.create(model, sessionOpts(threads));
  try {
    const out: Uint8Array[] = [];
    for (const f of frames) out.push((await session.run({ frames: frameTensor(f) })).upscaled!.data as Uint8Array);
    return out;
  } finally {
    await session.release();
  }
}

/** PSNR of a model's output against reference outputs of the same frames. */
export async function measureQuality(reference: readonly Uint8Array[], model: Uint8Array | string, frames: readonly Frame[], threads?: number): Promise<Int8Quality> {
  const ours = await upscaleFrames(model, frames, threads);
  const psnr: Record<string, number> = {};
  frames.forEach((f, i) => (psnr[f.name] = psnrDb(reference[i]!, ours[i]!)));
  return qualityOf(psnr);
}

/** Worst, median and the gate's verdict of per-frame PSNRs. */
function qualityOf(psnr: Record<string, number>): Int8Quality {
  const sorted = Object.values(psnr).sort((x, y) => x - y);
  const minDb = sorted[0]!;
  const mid = sorted.length / 2;
  const medianDb = sorted.length % 2 ? sorted[Math.floor(mid)]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { psnrDb: psnr, minDb, medianDb, passes: minDb >= INT8_MIN_PSNR_DB };
}

/**
 * The network's input is Mul(Cast(frame bytes), 1/255): exactly DequantizeLinear(bytes, 1/255, 0).
 * Returns that float tensor's name mapped to the uint8 tensor's.
 */
export function exactSources(fp32: Uint8Array): Map<string, string> {
  const graph = onnx.ModelProto.decode(fp32).graph as onnxProto.onnx.GraphProto;
  const producer = new Map(graph.node.map((n) => [n.output![0]!, n]));
  const sources = new Map<string, string>();
  for (const n of graph.node) {
    if (n.opType !== 'Mul' || !n.input![1]?.startsWith('inv255')) continue;
    const cast = producer.get(n.input![0]!);
    if (cast?.opType !== 'Cast') continue;
    // esrvid's frame wrapper casts the transposed uint8 frames.
    if (producer.get(cast.input![0]!)?.opType === 'Transpose') sources.set(n.output![0]!, cast.input![0]!);
  }
  return sources;
}

export interface MakeInt8Options extends CalibrateOptions {
  frames?: readonly Frame[];
  /** Held-out frames the gate also judges (default samples/validation; none: only `frames`). */
  validation?: readonly Frame[];
  /** Cross-layer equalization across each Conv -> PReLU -> Conv (default on). */
  equalize?: boolean;
  /** Keep ONNX Runtime's PRelu (measured, slower on real frames) instead of the branch-free form. */
  keepPrelu?: boolean;
}

/**
 * The int8 model of a float32 frame model: channel scales equalized across each PReLU, ranges
 * calibrated on the frames under both clip rules (MSE-optimal, and none), weights rounded by GPTQ
 * over the convolutions' input patches on the frames, biases corrected for that rounding, and the
 * clip rule whose output is closer to float32 on the worst frame kept.
 */
export async function makeInt8(fp32: Uint8Array, o: MakeInt8Options = {}): Promise<Int8Result> {
  const started = performance.now();
  const frames = o.frames ?? readCalibrationFrames();
  const pairs = o.equalize === false ? [] : equalizablePairs(onnx.ModelProto.decode(fp32));
  const measured = await channelRanges(fp32, frames, pairs.map((p) => p.tensor), o.threads);
  let float = pairs.length ? equalizeChannels(fp32, measured.ranges) : fp32;
  // Both clip rules are tried; the one with the better worst frame is kept. The same pass over
  // the frames feeds GPTQ; the biases are then corrected for the weights as rounded.
  const gptq = await GptqRounding.open(float);
  let calibration: Calibration;
  let rounded: Map<string, Int8Array>;
  try {
    calibration = await calibrate(float, frames, ['mse', 'minmax'], o, gptq.add);
    rounded = gptq.round();
  } finally {
    await gptq.close();
  }
  float = correctBiases(float, calibration.channelMeans, rounded);
  let best: Omit<Int8Result, 'calibrationMs'> | undefined;
  const sources = exactSources(float);
  for (const [clip, ranges] of calibration.ranges) {
    const bytes = quantizeModel(float, { ranges, exactSources: sources, extraTensors: o.extraTensors, keepPrelu: o.keepPrelu, roundedWeights: rounded });
    const quality = await measureQuality(measured.outputs, bytes, frames, o.threads);
    if (!best || quality.minDb > best.quality.minDb) best = { bytes, quality, clip };
  }
  // The clip rule is chosen on the calibration frames; the gate then judges the held-out ones too.
  const validation = o.validation ?? readValidationFrames();
  if (validation.length > 0) {
    const held = await measureQuality(await upscaleFrames(fp32, validation, o.threads), best!.bytes, validation, o.threads);
    best!.quality = qualityOf({ ...best!.quality.psnrDb, ...held.psnrDb });
  }
  return { ...best!, calibrationMs: Math.round(performance.now() - started) };
}
