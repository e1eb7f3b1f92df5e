/**
 * Arranges a float32 graph for ONNX Runtime's CPU kernels, at session load.
 *
 * ONNX Runtime runs convolutions in a blocked channel layout (NCHWc, 16 channels a block with
 * AVX-512) and keeps tensors in it across Conv, Relu, Add, Concat and depthwise Conv. Two ops in
 * ESRGAN-family graphs break that chain, and around each it reorders the tensor out of the
 * blocked layout, runs a generic kernel, and reorders back:
 *
 * - PRelu (SRVGGNetCompact, after every convolution). On realesr-general-x4v3 (33 PReLUs) that
 *   was 16% of the run on a 160x90 frame, while its 3x3 convolutions ran at 93% of the FMA peak.
 *   Per channel, with c = 1 - a (a the slope): PRelu(x) = x + c·relu(-x), and c·relu(-x) =
 *   relu(-c·x) when c >= 0: a depthwise 1x1 convolution with its ReLU fused, then one Add, both
 *   blocked. Trained slopes above 1 (c < 0) occur (realesr-general-x4v3 has slopes from -1.6 to
 *   1.9); those channels are negated instead: the producing convolution emits σ·x (σ = sign c,
 *   its weights and bias negated), the consumers read σ·y and undo the sign in their input
 *   weights, and σ·y = σ·x + relu(-c·σ·x) holds for both signs. A single slope is a LeakyRelu,
 *   which ONNX Runtime fuses into the convolution itself.
 *
 * - Mul by a scalar of a tensor no convolution produces directly (RRDBNet's residual scaling,
 *   `out * 0.2 + x`, once per RRDB block). ONNX Runtime folds such a Mul into a producing
 *   convolution itself, but not after an Add; there the unblocked Mul+Add left the residual
 *   stream, and with it every dense-block Concat, outside the blocked layout: 664 reorders in
 *   realesrgan-x4plus. As a depthwise 1x1 convolution (every weight = the scalar) it stays
 *   blocked, and the Add after it is fused into that convolution.
 *
 * - The frame model's 8-bit output (x255, Clip, Round, Cast, and for SRVGGNetCompact the pixel
 *   shuffle and the upsampled input added back) is folded into the last convolution
 *   (fold-output.ts): fewer passes over the upscaled frame, and none of them in float.
 *
 * Rewrites whose neighbours do not allow them (weights shared, other consumers, grouped
 * consumers, unknown channel count) are skipped. The result computes the same function up to
 * float rounding.
 *
 * Only for the CPU: GPU providers run these as fused elementwise kernels already, and the
 * canonical model file (what `models path` gives and the benchmark rebuilds in PyTorch from)
 * keeps the plain graph.
 */
import onnxProto from 'onnx-proto';
import { foldOutput, type OutputFold } from './fold-output.js';
import { floatValues, indexGraph, intAttr, rawTensor, setFloatValues } from './tensor.js';

const { onnx } = onnxProto;
type INode = onnxProto.onnx.INodeProto;
type ITensor = onnxProto.onnx.ITensorProto;

const FLOAT = onnx.TensorProto.DataType.FLOAT;

export interface CpuArrangement {
  /** The rewritten model, or undefined when there was nothing to change. */
  bytes?: Uint8Array;
  /** PReLUs turned into depthwise conv + ReLU + Add. */
  depthwise: number;
  /** Single-slope PReLUs turned into LeakyRelu. */
  leaky: number;
  /** Channels whose sign was moved into the neighbouring convolutions (slopes above 1). */
  negatedChannels: number;
  /** PReLUs left as they were. */
  kept: number;
  /** Scalar Muls turned into depthwise convolutions. */
  scales: number;
  /** The frame output folded into the last convolution (src/models/onnx/fold-output.ts). */
  output?: OutputFold;
  /** A quantized (QDQ) graph, left as it is. */
  quantized?: boolean;
}

export function arrangeForCpu(bytes: Uint8Array): CpuArrangement {
  const none: CpuArrangement = { depthwise: 0, leaky: 0, negatedChannels: 0, kept: 0, scales: 0 };
  const model = onnx.ModelProto.decode(bytes);
  const graph = model.graph;
  if (!graph?.node) return none;
  // Quantized graphs (--precision int8) are left as measured: ONNX Runtime fuses their QDQ
  // pattern, and the rewrite would put float ops where it expects Quantize/Dequantize pairs.
  if (graph.node.some((n) => /^(QuantizeLinear|DequantizeLinear|QLinear)/.test(n.opType ?? ''))) return { ...none, quantized: true };

  const { inits, producer, uses } = indexGraph(graph);
  const graphOutputs = new Set((graph.output ?? []).map((o) => o.name ?? ''));
  const usedOnlyBy = (name: string, node: INode) => !graphOutputs.has(name) && (uses.get(name) ?? []).every((n) => n === node);

  // Weight tensors are copied before their signs change; the originals may be shared views.
  const floats = new Map<string, Float32Array>();
  const floatsOf = (name: string): Float32Array | undefined => {
    const t = inits.get(name);
    if (!t || t.dataType !== FLOAT) return undefined;
    let f = floats.get(name);
    if (!f) {
      f = floatValues(t);
      floats.set(name, f);
    }
    return f;
  };
  const added: ITensor[] = [];
  const addInit = (name: string, dims: number[], data: Float32Array) => {
    added.push(rawTensor(name, dims, FLOAT, data));
    return name;
  };

  const out: CpuArrangement = { ...none };
  const nodes: INode[] = [];
  for (const n of graph.node) {
    if (n.opType === 'Mul' && !n.domain) {
      const dw = scaleAsDepthwise(n);
      if (dw) { nodes.push(dw); out.scales++; } else nodes.push(n);
      continue;
    }
    if (n.opType !== 'PRelu' || n.domain) { nodes.push(n); continue; }
    const [x, slopeName] = n.input ?? [];
    const y = n.output?.[0];
    const slopes = slopeName ? floatsOf(slopeName) : undefined;
    if (!x || !y || !slopes) { nodes.push(n); out.kept++; continue; }
    const base = n.name || y;

    if (slopes.length === 1 || slopes.every((s) => s === slopes[0])) {
      nodes.push({ opType: 'LeakyRelu', name: `${base}_leaky`, input: [x], output: [y], attribute: [{ name: 'alpha', type: onnx.AttributeProto.AttributeType.FLOAT, f: slopes[0] }] });
      out.leaky++;
      continue;
    }

    const channels = slopes.length;
    const c = slopes.map((a) => 1 - a);
    const negative = [...c.keys()].filter((k) => c[k]! < 0);
    if (negative.length > 0 && !negateNeighbours(x, y, n, negative, channels)) { nodes.push(n); out.kept++; continue; }
    out.negatedChannels += negative.length;

    // σ·y = σ·x + relu(-c·σ·x): depthwise 1x1 conv (ReLU fused by ONNX Runtime), then Add.
    const w = addInit(`${base}_dw_w`, [channels, 1, 1, 1], c.map((v) => -v));
    const scaled = `${base}_dw`;
    const rectified = `${base}_dw_relu`;
    nodes.push({ opType: 'Conv', name: `${base}_dw`, input: [x, w], output: [scaled], attribute: [
      { name: 'group', type: onnx.AttributeProto.AttributeType.INT, i: channels },
      { name: 'kernel_shape', type: onnx.AttributeProto.AttributeType.INTS, ints: [1, 1] },
    ] });
    nodes.push({ opType: 'Relu', name: `${base}_relu`, input: [scaled], output: [rectified] });
    nodes.push({ opType: 'Add', name: `${base}_add`, input: [x, rectified], output: [y] });
    out.depthwise++;
  }

  graph.node = nodes;
  for (const [name, f] of floats) {
    const t = inits.get(name)!;
    setFloatValues(t, f);
  }
  graph.initializer = [...(graph.initializer ?? []), ...added];
  // After the sign folding, which may have changed the last convolution's input weights.
  out.output = foldOutput(graph);
  if (out.depthwise + out.leaky + out.scales === 0 && !out.output) return { ...none, kept: out.kept };
  // The slopes of rewritten PReLUs and the folded tail's constants are no longer read; ONNX Runtime would warn about each.
  const read = new Set(graph.node.flatMap((m) => m.input ?? []));
  graph.initializer = graph.initializer.filter((t) => read.has(t.name ?? ''));
  out.bytes = onnx.ModelProto.encode(model).finish();
  return out;

  /** Channels of a tensor, from the convolution that made it (through channel-wise ops). */
  function channelsOf(name: string, depth = 0): number | undefined {
    const p = producer.get(name);
    if (!p || p.domain || depth > 64) return undefined;
    if (p.opType === 'Conv') {
      const w = inits.get(p.input?.[1] ?? '');
      return w?.dims?.length === 4 ? Number(w.dims[0]) : undefined;
    }
    if (['Add', 'Mul', 'Relu', 'LeakyRelu', 'PRelu'].includes(p.opType ?? '')) {
      for (const i of p.input ?? []) if (!inits.has(i)) return channelsOf(i, depth + 1);
    }
    return undefined;
  }

  /**
   * y = t * s (s a scalar initializer) as a depthwise 1x1 convolution, when t comes from
   * something other than a convolution (ONNX Runtime folds the scalar into a producing
   * convolution itself) and its channel count is known.
   */
  function scaleAsDepthwise(mul: INode): INode | undefined {
    const [a, b] = mul.input ?? [];
    const y = mul.output?.[0];
    if (!a || !b || !y) return undefined;
    const [t, sName] = inits.has(b) ? [a, b] : [b, a];
    const s = floatsOf(sName);
    if (!s || s.length !== 1 || inits.has(t) || producer.get(t)?.opType === 'Conv') return undefined;
    const channels = channelsOf(t);
    if (!channels) return undefined;
    const w = addInit(`${mul.name || y}_dw_w`, [channels, 1, 1, 1], new Float32Array(channels).fill(s[0]!));
    return { opType: 'Conv', name: `${mul.name || y}_dw`, input: [t, w], output: [y], attribute: [
      { name: 'group', type: onnx.AttributeProto.AttributeType.INT, i: channels },
      { name: 'kernel_shape', type: onnx.AttributeProto.AttributeType.INTS, ints: [1, 1] },
    ] };
  }

  /**
   * Moves the sign of `channels` from between the convolutions into them: the producer's output
   * rows and every consumer's input columns. False (and nothing changed) when the neighbours
   * are not plain convolutions owning their weights.
   */
  function negateNeighbours(x: string, y: string, prelu: INode, negative: number[], channels: number): boolean {
    const prod = producer.get(x);
    if (prod?.opType !== 'Conv' || prod.domain || !usedOnlyBy(x, prelu)) return false;
    const consumers = uses.get(y) ?? [];
    if (consumers.length === 0 || graphOutputs.has(y)) return false;
    const convs = [prod, ...consumers];
    for (const conv of convs) {
      if (conv.opType !== 'Conv' || conv.domain) return false;
      const wName = conv.input?.[1];
      if (!wName || !floatsOf(wName) || !usedOnlyBy(wName, conv)) return false;
      const b = conv.input?.[2];
      if (b && (!floatsOf(b) || !usedOnlyBy(b, conv))) return false;
    }
    for (const conv of consumers) if (conv.input?.[0] !== y || conv.input?.slice(1).includes(y) || intAttr(conv, 'group', 1) !== 1) return false;
    const prodW = floatsOf(prod.input![1]!)!;
    if (prodW.length % channels !== 0) return false;
    for (const conv of consumers) if (Number(inits.get(conv.input![1]!)!.dims?.[1]) !== channels) return false;

    const row = prodW.length / channels;
    const prodB = prod.input?.[2] ? floatsOf(prod.input[2])! : undefined;
    for (const k of negative) {
      for (let j = 0; j < row; j++) prodW[k * row + j] = -prodW[k * row + j]!;
      if (prodB) prodB[k] = -prodB[k]!;
    }
    for (const conv of consumers) {
      const wName = conv.input![1]!;
      const w = floatsOf(wName)!;
      const [outCh, inCh] = (inits.get(wName)!.dims ?? []).map(Number) as [number, number];
      const k2 = w.length / (outCh * inCh);
      for (let o = 0; o < outCh; o++) for (const k of negative) {
        const at = (o * inCh + k) * k2;
        for (let j = 0; j < k2; j++) w[at + j] = -w[at + j]!;
      }
    }
    return true;
  }
}
