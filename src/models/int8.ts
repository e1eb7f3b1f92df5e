/**
 * Makes a model's int8 file from its float32 one: calibrates the activation ranges by running the
 * float model on real frames shipped with esrvid (samples/calibration: three CC0/public-domain
 * photographs and three frames of samples/chelsea.mp4), quantizes (onnx/quantize.ts), and measures
 * the int8 model's PSNR against the float32 output on those frames. The PSNR is the quality gate:
 * below INT8_MIN_PSNR_DB the model is not offered in int8.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import sharp from 'sharp';
import { calibratedTensors, equalizablePairs, equalizeChannels, mseOptimalRange, quantizeModel, withOutputs, type QuantParams, type TensorRange } from './onnx/quantize.js';
import { PACKAGE_ROOT } from './registry.js';

const { onnx } = onnxProto;

/** int8 is offered only where its output stays this close to float32 on every calibration frame. */
export const INT8_MIN_PSNR_DB = 40;

/** Bumped whenever calibration or quantization changes, so old int8 files are made again. */
export const QUANTIZER_VERSION = 'esrvid-qdq-int8/1';

export interface Frame {
  name: string;
  data: Uint8Array;
  width: number;
  height: number;
}

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
  quality: Int8Quality;
  calibrationMs: number;
}

export function calibrationDir(): string {
  return fileURLToPath(new URL('samples/calibration/', PACKAGE_ROOT));
}

export async function readFrames(dir = calibrationDir()): Promise<Frame[]> {
  const files = readdirSync(dir).filter((f) => f.endsWith('.png')).sort();
  return Promise.all(files.map(async (f) => {
    const { data, info } = await sharp(join(dir, f)).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
    return { name: f, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height };
  }));
}

const sessionOpts = (threads?: number): ort.InferenceSession.SessionOptions => ({
  intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all', executionMode: 'sequential',
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

export interface CalibrateOptions {
  floatConvs?: ReadonlySet<string>;
  threads?: number;
  /** Values kept per tensor per frame. */
  samplesPerFrame?: number;
  /**
   * mse (default): the clip that minimises the tensor's own quantization error; prelu-mse: the
   * same, but the error of a negative value feeding a PReLU counts as it comes out of the PReLU
   * (times its channel's slope squared); minmax: no clipping.
   */
  clip?: 'mse' | 'prelu-mse' | 'minmax';
}

/** PReLU slopes by the name of the tensor each PReLU reads. */
function preluSlopes(model: onnxProto.onnx.ModelProto): Map<string, Float32Array> {
  const graph = model.graph as onnxProto.onnx.GraphProto;
  const inits = new Map(graph.initializer.map((t) => [t.name!, t]));
  const slopes = new Map<string, Float32Array>();
  for (const n of graph.node) {
    if (n.opType !== 'PRelu') continue;
    const t = inits.get(n.input![1]!);
    if (!t?.rawData) continue;
    const raw = new Uint8Array(t.rawData);
    slopes.set(n.input![0]!, new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4));
  }
  return slopes;
}

/** Activation ranges of the tensors around every quantized Conv, measured on the frames. */
export async function calibrate(fp32: Uint8Array, frames: readonly Frame[], o: CalibrateOptions = {}): Promise<Map<string, TensorRange>> {
  const model = onnx.ModelProto.decode(fp32);
  const tensors = calibratedTensors(model, o.floatConvs);
  const clip = o.clip ?? 'mse';
  const slopes = clip === 'prelu-mse' ? preluSlopes(model) : new Map<string, Float32Array>();
  const session = await ort.InferenceSession.create(withOutputs(fp32, tensors), sessionOpts(o.threads));
  const values = new Map<string, Float32Array[]>(tensors.map((t) => [t, []]));
  const weights = new Map<string, Float32Array[]>(tensors.map((t) => [t, []]));
  try {
    for (const f of frames) {
      const r = await session.run({ frames: frameTensor(f) }, tensors);
      for (const t of tensors) {
        const out = r[t]!;
        const data = out.data as Float32Array;
        const idx = sampleIndexes(data.length, o.samplesPerFrame ?? 1 << 18);
        values.get(t)!.push(Float32Array.from(idx, (i) => data[i]!));
        const a = slopes.get(t);
        if (a) {
          const plane = Number(out.dims[2]) * Number(out.dims[3]);
          weights.get(t)!.push(Float32Array.from(idx, (i) => {
            const c = Math.floor(i / plane) % a.length;
            return a.length === 1 ? a[0]! ** 2 : a[c]! ** 2;
          }));
        }
      }
    }
  } finally {
    await session.release();
  }
  const ranges = new Map<string, TensorRange>();
  for (const t of tensors) {
    const all = concat(values.get(t)!);
    if (clip === 'minmax') {
      let lo = 0;
      let hi = 0;
      for (const v of all) {
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      ranges.set(t, { lo, hi });
    } else {
      const w = weights.get(t)!;
      ranges.set(t, mseOptimalRange(all, 2048, w.length ? concat(w) : undefined));
    }
  }
  return ranges;
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

/** The largest |value| of each channel of each tensor ([N, C, H, W]) over the frames. */
export async function channelRanges(fp32: Uint8Array, frames: readonly Frame[], tensors: readonly string[], threads?: number): Promise<Map<string, Float32Array>> {
  const session = await ort.InferenceSession.create(withOutputs(fp32, tensors), sessionOpts(threads));
  const ranges = new Map<string, Float32Array>();
  try {
    for (const f of frames) {
      const r = await session.run({ frames: frameTensor(f) }, tensors);
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
  return ranges;
}

export function psnrDb(a: Uint8Array, b: Uint8Array): number {
  let se = 0;
  for (let i = 0; i < a.length; i++) se += (a[i]! - b[i]!) ** 2;
  return se === 0 ? Infinity : 10 * Math.log10((255 * 255 * a.length) / se);
}

/** PSNR of one model's output against another's on each frame. */
export async function measureQuality(fp32: Uint8Array | string, int8: Uint8Array | string, frames: readonly Frame[], threads?: number): Promise<Int8Quality> {
  const open = (m: Uint8Array | string) => (typeof m === 'string' ? ort.InferenceSession.create(m, sessionOpts(threads)) : ort.InferenceSession.create(m, sessionOpts(threads)));
  const [a, b] = await Promise.all([open(fp32), open(int8)]);
  const psnr: Record<string, number> = {};
  try {
    for (const f of frames) {
      const ra = (await a.run({ frames: frameTensor(f) })).upscaled!.data as Uint8Array;
      const rb = (await b.run({ frames: frameTensor(f) })).upscaled!.data as Uint8Array;
      psnr[f.name] = psnrDb(ra, rb);
    }
  } finally {
    await Promise.all([a.release(), b.release()]);
  }
  const sorted = Object.values(psnr).sort((x, y) => x - y);
  const minDb = sorted[0]!;
  const medianDb = sorted.length % 2 ? sorted[(sorted.length - 1) / 2]! : (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2;
  return { psnrDb: psnr, minDb, medianDb, passes: minDb >= INT8_MIN_PSNR_DB };
}

/** The network's input is Mul(frame, 1/255): exactly representable as uint8 with scale 1/255. */
function inputParams(fp32: Uint8Array): Map<string, QuantParams> {
  const model = onnx.ModelProto.decode(fp32);
  const fixed = new Map<string, QuantParams>();
  for (const n of (model.graph as onnxProto.onnx.GraphProto).node) {
    if (n.opType === 'Mul' && n.input![1]?.startsWith('inv255')) fixed.set(n.output![0]!, { scale: 1 / 255, zeroPoint: 0 });
  }
  return fixed;
}

export async function makeInt8(fp32: Uint8Array, o: CalibrateOptions & { frames?: readonly Frame[]; equalize?: boolean } = {}): Promise<Int8Result> {
  const started = performance.now();
  const frames = o.frames ?? (await readFrames());
  let float = fp32;
  if (o.equalize ?? true) {
    const pairs = equalizablePairs(onnx.ModelProto.decode(fp32));
    float = equalizeChannels(fp32, await channelRanges(fp32, frames, pairs.map((p) => p.tensor), o.threads));
  }
  const ranges = await calibrate(float, frames, o);
  const bytes = quantizeModel(float, { ranges, fixed: inputParams(float), floatConvs: o.floatConvs });
  const quality = await measureQuality(fp32, bytes, frames, o.threads);
  return { bytes, quality, calibrationMs: Math.round(performance.now() - started) };
}
