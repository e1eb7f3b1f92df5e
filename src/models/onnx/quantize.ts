/**
 * Static QDQ int8 quantization of esrvid's own float32 frame models, in TypeScript (no Python).
 * Every Conv gets per-channel symmetric int8 weights, an int32 bias (scale = input scale x weight
 * scale, zero point 0) and per-tensor uint8 activations on its input and output, whose ranges are
 * calibrated by running the float model on real frames. ONNX Runtime's CPU provider fuses each
 * DequantizeLinear -> Conv -> QuantizeLinear into one QLinearConv (u8 x s8, VNNI on AVX-512).
 *
 * The per-channel PReLU between convolutions has no quantized kernel in ONNX Runtime, so it stays
 * a float op between a DequantizeLinear and a QuantizeLinear (see BENCHMARKS.md, "int8").
 */
import onnxProto from 'onnx-proto';
import { floatValues, rawTensor, setFloatValues } from './tensor.js';

const { onnx } = onnxProto;
type IModelProto = onnxProto.onnx.IModelProto;
type INodeProto = onnxProto.onnx.INodeProto;
type ITensorProto = onnxProto.onnx.ITensorProto;
const DT = onnx.TensorProto.DataType;

/** A real-valued interval an activation tensor is quantized over; it always contains 0. */
export interface TensorRange {
  lo: number;
  hi: number;
}

/** uint8 affine quantization: real = scale * (q - zeroPoint). */
export interface QuantParams {
  scale: number;
  zeroPoint: number;
}

// ---- the arithmetic ----

/**
 * One symmetric int8 scale per output channel (axis 0): max |w| / 127 (1 for an all-zero channel).
 * An MSE-optimal clip of the weights was measured and gained nothing (BENCHMARKS.md, int8 attempts).
 */
export function weightScales(weight: Float32Array, outChannels: number): Float32Array {
  const per = weight.length / outChannels;
  if (!Number.isInteger(per)) throw new Error(`weight of ${weight.length} values does not split into ${outChannels} channels`);
  const scales = new Float32Array(outChannels);
  for (let c = 0; c < outChannels; c++) {
    let m = 0;
    for (let i = c * per; i < (c + 1) * per; i++) m = Math.max(m, Math.abs(weight[i]!));
    if (m === 0) {
      scales[c] = 1;
      continue;
    }
    scales[c] = m / 127;
  }
  return scales;
}

/** int8 weights for the per-channel scales, rounded half away from zero, in [-127, 127]. */
export function quantizeWeights(weight: Float32Array, scales: Float32Array): Int8Array {
  const per = weight.length / scales.length;
  const q = new Int8Array(weight.length);
  for (let i = 0; i < weight.length; i++) {
    const v = weight[i]! / scales[Math.floor(i / per)]!;
    q[i] = Math.max(-127, Math.min(127, Math.sign(v) * Math.round(Math.abs(v))));
  }
  return q;
}

/** The int32 bias QLinearConv adds to its accumulator: bias / (input scale x weight scale). */
export function quantizeBias(bias: Float32Array, inputScale: number, wScales: Float32Array): Int32Array {
  const q = new Int32Array(bias.length);
  for (let c = 0; c < bias.length; c++) {
    const v = bias[c]! / (inputScale * wScales[c]!);
    q[c] = Math.max(-(2 ** 31), Math.min(2 ** 31 - 1, Math.sign(v) * Math.round(Math.abs(v))));
  }
  return q;
}

/** uint8 parameters for a range (widened to contain 0, so that 0 is exact, as padding needs). */
export function uint8Params(r: TensorRange): QuantParams {
  const lo = Math.min(0, r.lo);
  const hi = Math.max(0, r.hi);
  if (hi - lo <= 0) return { scale: 1, zeroPoint: 0 };
  const scale = (hi - lo) / 255;
  return { scale, zeroPoint: Math.max(0, Math.min(255, Math.round(-lo / scale))) };
}

/**
 * The clip range that minimises the expected squared error of uint8 quantization over these
 * values: inside the range the rounding error (step^2 / 12), outside it the clipping error.
 * Searched over a fine grid of fractions of the observed minimum and maximum, on a histogram
 * whose prefix sums make each candidate cost O(1).
 */
export function mseOptimalRange(values: Float32Array, bins = 2048): TensorRange {
  let min = 0;
  let max = 0;
  for (const v of values) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (max - min <= 0) return { lo: 0, hi: 0 };
  const width = (max - min) / bins;
  const counts = new Float64Array(bins);
  for (const v of values) counts[Math.min(bins - 1, Math.floor((v - min) / width))]! += 1;
  // Prefix sums of n, n*c and n*c^2 over the bin centres c.
  const p0 = new Float64Array(bins + 1);
  const p1 = new Float64Array(bins + 1);
  const p2 = new Float64Array(bins + 1);
  for (let b = 0; b < bins; b++) {
    const c = min + (b + 0.5) * width;
    const n = counts[b]!;
    p0[b + 1] = p0[b]! + n;
    p1[b + 1] = p1[b]! + n * c;
    p2[b + 1] = p2[b]! + n * c * c;
  }
  const clampBin = (k: number) => Math.max(0, Math.min(bins, k));
  const fractions: number[] = [];
  for (let f = 1; f > 0.01; f *= 0.99) fractions.push(f);
  let best = { lo: min, hi: max, err: Infinity };
  for (const fl of min < 0 ? fractions : [1]) {
    const lo = min * fl;
    // Bins [0, k) have centres below lo; bins [j, bins) above hi.
    const k = clampBin(Math.ceil((lo - min) / width - 0.5));
    const below = lo * lo * p0[k]! - 2 * lo * p1[k]! + p2[k]!;
    for (const fh of max > 0 ? fractions : [1]) {
      const hi = max * fh;
      const j = Math.max(k, clampBin(Math.floor((hi - min) / width - 0.5) + 1));
      const above = (p2[bins]! - p2[j]!) - 2 * hi * (p1[bins]! - p1[j]!) + hi * hi * (p0[bins]! - p0[j]!);
      const step = (Math.max(0, hi) - Math.min(0, lo)) / 255;
      const err = below + above + ((p0[j]! - p0[k]!) * step * step) / 12;
      if (err < best.err) best = { lo, hi, err };
    }
  }
  return { lo: best.lo, hi: best.hi };
}

// ---- the graph ----

/** Reads a float32 initializer (esrvid writes them as raw little-endian bytes). */
function floatData(t: ITensorProto): Float32Array {
  if (t.dataType !== DT.FLOAT) throw new Error(`initializer ${t.name} is not float32`);
  return floatValues(t);
}


export interface ConvSite {
  /** The Conv node's name in the float model. */
  node: string;
  input: string;
  output: string;
}

/** The convolutions of a model, in graph order, with the activation tensors around them. */
export function convSites(model: IModelProto): ConvSite[] {
  return (model.graph!.node ?? []).filter((n) => n.opType === 'Conv').map((n) => ({ node: n.name!, input: n.input![0]!, output: n.output![0]! }));
}

/** The activation tensors whose ranges calibration must measure. */
export function calibratedTensors(model: IModelProto, extra: readonly string[] = []): string[] {
  const names = new Set<string>(extra);
  for (const s of convSites(model)) {
    names.add(s.input);
    names.add(s.output);
  }
  return [...names];
}

/** The float model with the given intermediate tensors added as (float) graph outputs. */
export function withOutputs(modelBytes: Uint8Array, tensors: readonly string[]): Uint8Array {
  const model = onnx.ModelProto.decode(modelBytes);
  for (const name of tensors) (model.graph as onnxProto.onnx.GraphProto).output.push(onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType: DT.FLOAT } } }));
  return onnx.ModelProto.encode(model).finish();
}

export interface QuantizeOptions {
  /** Activation ranges by tensor name (from calibration). */
  ranges: ReadonlyMap<string, TensorRange>;
  /**
   * Float tensors that are exactly DequantizeLinear(u8 tensor, 1/255, 0), by the uint8 tensor's
   * name: the network's input, k/255 of the frame's bytes. Their consumers read a DequantizeLinear
   * of the bytes themselves, so the first QLinearConv takes the frame without a Cast, Mul and Q.
   */
  exactSources?: ReadonlyMap<string, string>;
  /** More activation tensors to pass through Q -> DQ (so ORT can fuse the ops around them). */
  extraTensors?: readonly string[];
  /** Keep ONNX Runtime's PRelu instead of the branch-free form (see branchFreePrelu). */
  keepPrelu?: boolean;
  /**
   * int8 weights already rounded (by GPTQ, onnx/gptq.ts) for the per-channel scales of
   * weightScales, by the weight initializer's name; other weights are rounded to nearest.
   */
  roundedWeights?: ReadonlyMap<string, Int8Array>;
}

/**
 * The QDQ int8 model: for every quantized Conv, its weight and bias become int8 / int32
 * initializers behind a DequantizeLinear, and its input and output activations pass through a
 * QuantizeLinear -> DequantizeLinear pair (one per tensor, shared by all consumers).
 */
export function quantizeModel(modelBytes: Uint8Array, o: QuantizeOptions): Uint8Array {
  const model = onnx.ModelProto.decode(modelBytes);
  const graph = model.graph as onnxProto.onnx.GraphProto;
  const inits = new Map(graph.initializer.map((t) => [t.name!, t]));
  // One place decides a tensor's parameters, so a Conv's bias (quantized first) and the DQ in front
  // of it (emitted later) agree: an exact source (the frame's bytes) is 1/255 exactly, whatever
  // its calibrated range; anything else is from its range.
  const params = new Map<string, QuantParams>();
  const paramsOf = (tensor: string): QuantParams => {
    let p = params.get(tensor);
    if (!p) {
      const r = o.ranges.get(tensor);
      if (o.exactSources?.has(tensor)) p = { scale: 1 / 255, zeroPoint: 0 };
      else if (!r) throw new Error(`no calibrated range for tensor ${tensor}`);
      else p = uint8Params(r);
      params.set(tensor, p);
    }
    return p;
  };
  const newInits: ITensorProto[] = [];
  const dropped = new Set<string>();
  const qdq = new Set<string>(o.extraTensors ?? []);
  let n = 0;
  const fresh = (prefix: string) => `${prefix}_q${n++}`;

  for (const node of graph.node) {
    if (node.opType !== 'Conv') continue;
    const [x, wName, bName] = node.input as string[];
    const y = node.output![0]!;
    qdq.add(x!);
    qdq.add(y);
    const wInit = inits.get(wName!);
    if (!wInit) throw new Error(`Conv ${node.name}: weight ${wName} is not an initializer`);
    const dims = (wInit.dims ?? []).map(Number);
    const w = floatData(wInit);
    const scales = weightScales(w, dims[0]!);
    const wq = fresh('w_int8');
    const wScale = fresh('w_scale');
    const wZero = fresh('w_zero');
    newInits.push(rawTensor(wq, dims, DT.INT8, o.roundedWeights?.get(wName!) ?? quantizeWeights(w, scales)));
    newInits.push(rawTensor(wScale, [dims[0]!], DT.FLOAT, scales));
    newInits.push(rawTensor(wZero, [dims[0]!], DT.INT8, new Int8Array(dims[0]!)));
    const wDq = fresh('w_dq');
    const extra: INodeProto[] = [{ opType: 'DequantizeLinear', name: fresh('DequantizeLinear'), input: [wq, wScale, wZero], output: [wDq], attribute: [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 0 }] }];
    dropped.add(wName!);
    const inputs = [x!, wDq];
    if (bName) {
      const bInit = inits.get(bName)!;
      const inScale = paramsOf(x!).scale;
      const bq = fresh('b_int32');
      const bScale = fresh('b_scale');
      const bZero = fresh('b_zero');
      newInits.push(rawTensor(bq, [dims[0]!], DT.INT32, quantizeBias(floatData(bInit), inScale, scales)));
      newInits.push(rawTensor(bScale, [dims[0]!], DT.FLOAT, scales.map((s) => s * inScale)));
      newInits.push(rawTensor(bZero, [dims[0]!], DT.INT32, new Int32Array(dims[0]!)));
      const bDq = fresh('b_dq');
      extra.push({ opType: 'DequantizeLinear', name: fresh('DequantizeLinear'), input: [bq, bScale, bZero], output: [bDq], attribute: [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 0 }] });
      dropped.add(bName);
      inputs.push(bDq);
    }
    node.input = inputs;
    (node as { weightDq?: INodeProto[] }).weightDq = extra;
  }

  // Each quantized activation gets one Q -> DQ pair right after its producer; consumers read the DQ.
  const dqName = new Map<string, string>();
  for (const t of qdq) dqName.set(t, `${t}_dq`);
  const nodes: INodeProto[] = [];
  const emitPair = (t: string) => {
    const source = o.exactSources?.get(t);
    const p = paramsOf(t);
    const scale = fresh('act_scale');
    const zero = fresh('act_zero');
    newInits.push(rawTensor(scale, [], DT.FLOAT, new Float32Array([p.scale])));
    newInits.push(rawTensor(zero, [], DT.UINT8, new Uint8Array([p.zeroPoint])));
    if (source) {
      nodes.push({ opType: 'DequantizeLinear', name: fresh('DequantizeLinear'), input: [source, scale, zero], output: [dqName.get(t)!] });
      return;
    }
    const q = `${t}_u8`;
    nodes.push({ opType: 'QuantizeLinear', name: fresh('QuantizeLinear'), input: [t, scale, zero], output: [q] });
    nodes.push({ opType: 'DequantizeLinear', name: fresh('DequantizeLinear'), input: [q, scale, zero], output: [dqName.get(t)!] });
  };
  const graphInputs = new Set(graph.input.map((i) => i.name!));
  for (const t of qdq) if (graphInputs.has(t)) emitPair(t);
  for (const node of graph.node) {
    const extra = (node as { weightDq?: INodeProto[] }).weightDq;
    delete (node as { weightDq?: INodeProto[] }).weightDq;
    if (extra) nodes.push(...extra);
    node.input = (node.input ?? []).map((i) => dqName.get(i) ?? i);
    nodes.push(node);
    for (const out of node.output ?? []) if (qdq.has(out)) emitPair(out);
  }
  graph.node = withoutDeadNodes(o.keepPrelu ? nodes : branchFreePrelu(nodes, newInits), new Set(graph.output.map((v) => v.name!)));
  const read = new Set(graph.node.flatMap((n) => n.input ?? []));
  graph.initializer = [...graph.initializer.filter((t) => !dropped.has(t.name!)), ...newInits].filter((t) => read.has(t.name!));
  // DequantizeLinear with int32 input and per-axis scales needs opset 13 or later; esrvid writes 17.
  return onnx.ModelProto.encode(model).finish();
}

/**
 * PRelu(x, a) as Max(x, 0) + a * Min(x, 0): the same numbers (x + a*0 for x > 0, 0 + a*x below), but
 * four vectorized passes instead of ONNX Runtime's PRelu, whose per-element select with a slope
 * broadcast along the innermost (NHWC) axis is slow and data-dependent: on real frames, where
 * signs mix, it took 70% of the int8 run (BENCHMARKS.md, "int8").
 */
function branchFreePrelu(nodes: INodeProto[], inits: ITensorProto[]): INodeProto[] {
  if (!nodes.some((n) => n.opType === 'PRelu')) return nodes;
  const zero = 'prelu_zero';
  inits.push(rawTensor(zero, [], DT.FLOAT, new Float32Array([0])));
  return nodes.flatMap((n, i) => {
    if (n.opType !== 'PRelu') return [n];
    const [x, slope] = n.input as [string, string];
    const name = n.name ?? `prelu_${i}`;
    const [pos, neg, scaled] = [`${name}_pos`, `${name}_neg`, `${name}_scaled`];
    return [
      { opType: 'Max', name: `${name}_max`, input: [x, zero], output: [pos] },
      { opType: 'Min', name: `${name}_min`, input: [x, zero], output: [neg] },
      { opType: 'Mul', name: `${name}_mul`, input: [neg, slope], output: [scaled] },
      { opType: 'Add', name: `${name}_add`, input: [pos, scaled], output: n.output },
    ];
  });
}

/** Drops nodes none of whose outputs is read (e.g. the Cast and Mul an exact source replaced). */
function withoutDeadNodes(nodes: INodeProto[], graphOutputs: ReadonlySet<string>): INodeProto[] {
  let live = nodes;
  for (;;) {
    const read = new Set(live.flatMap((n) => n.input ?? []));
    const next = live.filter((n) => (n.output ?? []).some((out) => read.has(out) || graphOutputs.has(out)));
    if (next.length === live.length) return live;
    live = next;
  }
}

// ---- bias correction ----

/**
 * Folds the mean error int8 weights add back into each Conv's float bias: the output of channel o
 * moves on average by sum over input channels i and taps k of (Wq - W)[o,i,k] * E[x_i], so that is
 * subtracted (after Nagel et al., data-free quantization; E[x_i] measured on the calibration
 * frames). Done on the float model before quantizing; its biases are then quantized as usual.
 */
export function correctBiases(modelBytes: Uint8Array, inputMeans: ReadonlyMap<string, Float64Array>, roundedWeights?: ReadonlyMap<string, Int8Array>): Uint8Array {
  const model = onnx.ModelProto.decode(modelBytes);
  const graph = model.graph as onnxProto.onnx.GraphProto;
  const inits = new Map(graph.initializer.map((t) => [t.name!, t]));
  for (const n of graph.node) {
    if (n.opType !== 'Conv' || !n.input![2]) continue;
    const ex = inputMeans.get(n.input![0]!);
    const wt = inits.get(n.input![1]!);
    const bt = inits.get(n.input![2]!);
    if (!ex || !wt || !bt) continue;
    const w = floatData(wt);
    const [outC, inC, kh, kw] = (wt.dims ?? []).map(Number) as [number, number, number, number];
    // A grouped conv's input channels do not line up with the tensor's: left alone.
    if (inC !== ex.length) continue;
    const k = kh * kw;
    const scales = weightScales(w, outC);
    const wq = roundedWeights?.get(n.input![1]!) ?? quantizeWeights(w, scales);
    const b = floatData(bt).slice();
    for (let c = 0; c < outC; c++) {
      let shift = 0;
      for (let i = 0; i < inC; i++) {
        let dw = 0;
        for (let j = 0; j < k; j++) {
          const at = (c * inC + i) * k + j;
          dw += wq[at]! * scales[c]! - w[at]!;
        }
        shift += dw * ex[i]!;
      }
      b[c] = b[c]! - shift;
    }
    setFloatValues(bt, b);
  }
  return onnx.ModelProto.encode(model).finish();
}

// ---- cross-layer equalization ----

/** A Conv whose output goes only through a PReLU into only another Conv: channel scales can move across it. */
export interface ConvPair {
  first: string;
  prelu: string;
  second: string;
  /** The first Conv's output tensor (what calibration measures per channel). */
  tensor: string;
}

export function equalizablePairs(model: IModelProto): ConvPair[] {
  const nodes = model.graph!.node ?? [];
  const consumers = new Map<string, INodeProto[]>();
  for (const n of nodes) for (const i of n.input ?? []) consumers.set(i, [...(consumers.get(i) ?? []), n]);
  const pairs: ConvPair[] = [];
  for (const conv of nodes) {
    if (conv.opType !== 'Conv') continue;
    const c1 = consumers.get(conv.output![0]!) ?? [];
    if (c1.length !== 1 || c1[0]!.opType !== 'PRelu') continue;
    const c2 = consumers.get(c1[0]!.output![0]!) ?? [];
    if (c2.length !== 1 || c2[0]!.opType !== 'Conv' || c2[0]!.input![0] !== c1[0]!.output![0]) continue;
    pairs.push({ first: conv.name!, prelu: c1[0]!.name!, second: c2[0]!.name!, tensor: conv.output![0]! });
  }
  return pairs;
}

/**
 * Moves a positive scale per channel from each pair's first Conv (output channel c divided by
 * s_c) into its second Conv (input channel c multiplied by s_c). PReLU(x / s) = PReLU(x) / s for
 * s > 0, so the float model computes the same function; but per-tensor activation ranges become
 * even across channels, which is what per-tensor uint8 quantization needs. s_c balances the
 * channel's activation range (measured, `channelRange`) against the second Conv's weights for it:
 * s_c = sqrt(range_c / weightRange_c), normalised (after Nagel et al., data-free quantization).
 */
export function equalizeChannels(modelBytes: Uint8Array, channelRange: ReadonlyMap<string, Float32Array>): Uint8Array {
  const model = onnx.ModelProto.decode(modelBytes);
  const graph = model.graph as onnxProto.onnx.GraphProto;
  const inits = new Map(graph.initializer.map((t) => [t.name!, t]));
  const byName = new Map(graph.node.map((n) => [n.name!, n]));
  for (const p of equalizablePairs(model)) {
    const act = channelRange.get(p.tensor);
    if (!act) continue;
    const conv1 = byName.get(p.first)!;
    const conv2 = byName.get(p.second)!;
    const w1t = inits.get(conv1.input![1]!)!;
    const w2t = inits.get(conv2.input![1]!)!;
    const w1 = floatData(w1t).slice();
    const w2 = floatData(w2t).slice();
    const [, inC2, kh, kw] = (w2t.dims ?? []).map(Number);
    const outC2 = Number(w2t.dims![0]);
    const channels = act.length;
    if (inC2 !== channels || Number(w1t.dims![0]) !== channels) continue;
    // The second conv quantizes per output channel: an input column matters relative to its row's max.
    const rowMax = new Float32Array(outC2);
    const k = kh! * kw!;
    for (let o = 0; o < outC2; o++) for (let i = o * channels * k; i < (o + 1) * channels * k; i++) rowMax[o] = Math.max(rowMax[o]!, Math.abs(w2[i]!));
    const wRange = new Float32Array(channels);
    for (let o = 0; o < outC2; o++) {
      for (let c = 0; c < channels; c++) {
        for (let j = 0; j < k; j++) wRange[c] = Math.max(wRange[c]!, Math.abs(w2[(o * channels + c) * k + j]!) / (rowMax[o]! || 1));
      }
    }
    const s = new Float32Array(channels);
    for (let c = 0; c < channels; c++) s[c] = act[c]! > 0 && wRange[c]! > 0 ? Math.sqrt(act[c]! / wRange[c]!) : 1;
    // Normalise so the largest activation channel keeps its range.
    let maxScaled = 0;
    let maxAct = 0;
    for (let c = 0; c < channels; c++) {
      maxScaled = Math.max(maxScaled, act[c]! / s[c]!);
      maxAct = Math.max(maxAct, act[c]!);
    }
    const norm = maxScaled / maxAct;
    for (let c = 0; c < channels; c++) s[c] = s[c]! * norm;
    const per1 = w1.length / channels;
    for (let c = 0; c < channels; c++) for (let i = c * per1; i < (c + 1) * per1; i++) w1[i] = w1[i]! / s[c]!;
    setFloatValues(w1t, w1);
    if (conv1.input![2]) {
      const bt = inits.get(conv1.input![2]!)!;
      setFloatValues(bt, floatData(bt).map((v, c) => v / s[c]!));
    }
    for (let o = 0; o < outC2; o++) for (let c = 0; c < channels; c++) for (let j = 0; j < k; j++) w2[(o * channels + c) * k + j] = w2[(o * channels + c) * k + j]! * s[c]!;
    setFloatValues(w2t, w2);
  }
  return onnx.ModelProto.encode(model).finish();
}
