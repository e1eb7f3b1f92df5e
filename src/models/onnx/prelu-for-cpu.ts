/**
 * Arranges a float32 graph's PReLUs for ONNX Runtime's CPU kernels, at session load.
 *
 * ONNX Runtime runs convolutions in a blocked channel layout (NCHWc, 16 channels a block with
 * AVX-512) and keeps tensors in it across Conv, Relu, Add and depthwise Conv, but not across
 * PRelu: around every PRelu it reorders the tensor out of the blocked layout, runs a generic
 * broadcasting kernel, and reorders back. On realesr-general-x4v3 (33 PReLUs) that was 16% of
 * the run on a 160x90 frame, while its 3x3 convolutions ran at 93% of the FMA peak.
 *
 * Per channel, with c = 1 - a (a the slope):
 *
 *     PRelu(x) = x + c·relu(-x)
 *
 * and c·relu(-x) = relu(-c·x) when c >= 0, which is a depthwise 1x1 convolution with its ReLU
 * fused, then one Add: both stay blocked. Trained slopes above 1 (c < 0) occur (realesr-general-
 * x4v3 has slopes from -1.6 to 1.9); those channels are negated instead: the producing
 * convolution emits σ·x (σ = sign c, its weights and bias negated), the consumers read σ·y and
 * undo the sign in their input weights, and σ·y = σ·x + relu(-c·σ·x) holds for both signs.
 *
 * A single slope is a LeakyRelu, which ONNX Runtime fuses into the convolution itself. PReLUs
 * whose neighbours do not allow the rewrite (weights shared, other consumers, grouped consumers)
 * are left as they are. The result computes the same function up to float rounding.
 *
 * Only for the CPU: GPU providers run PRelu as one fused elementwise kernel already, and the
 * canonical model file (what `models path` gives and the benchmark rebuilds in PyTorch from)
 * keeps the plain PRelu.
 */
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
type INode = onnxProto.onnx.INodeProto;
type ITensor = onnxProto.onnx.ITensorProto;

const FLOAT = onnx.TensorProto.DataType.FLOAT;

export interface PreluRewrite {
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
}

/** Cheap check on the raw bytes, so large models without PReLU are not decoded at all. */
export function mentionsPrelu(bytes: Uint8Array): boolean {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).includes('PRelu');
}

export function arrangePreluForCpu(bytes: Uint8Array): PreluRewrite {
  const none: PreluRewrite = { depthwise: 0, leaky: 0, negatedChannels: 0, kept: 0 };
  if (!mentionsPrelu(bytes)) return none;
  const model = onnx.ModelProto.decode(bytes);
  const graph = model.graph;
  if (!graph?.node) return none;

  const inits = new Map<string, ITensor>();
  for (const t of graph.initializer ?? []) inits.set(t.name ?? '', t);
  const producer = new Map<string, INode>();
  const uses = new Map<string, INode[]>();
  for (const n of graph.node) {
    for (const o of n.output ?? []) producer.set(o, n);
    for (const i of n.input ?? []) if (i) (uses.get(i) ?? uses.set(i, []).get(i)!).push(n);
  }
  const graphOutputs = new Set((graph.output ?? []).map((o) => o.name ?? ''));
  const usedOnlyBy = (name: string, node: INode) => !graphOutputs.has(name) && (uses.get(name) ?? []).every((n) => n === node);

  // Weight tensors are copied before their signs change; the originals may be shared views.
  const floats = new Map<string, Float32Array>();
  const floatsOf = (name: string): Float32Array | undefined => {
    const t = inits.get(name);
    if (!t || t.dataType !== FLOAT) return undefined;
    let f = floats.get(name);
    if (!f) {
      if (t.rawData && t.rawData.length) {
        f = new Float32Array(t.rawData.byteLength / 4);
        new Uint8Array(f.buffer).set(t.rawData);
      } else f = Float32Array.from(t.floatData ?? []);
      floats.set(name, f);
    }
    return f;
  };
  const added: ITensor[] = [];
  const addInit = (name: string, dims: number[], data: Float32Array) => {
    added.push({ name, dims, dataType: FLOAT, rawData: new Uint8Array(data.buffer) });
    return name;
  };
  const intAttr = (n: INode, name: string, dflt: number) => {
    const a = n.attribute?.find((x) => x.name === name);
    return a?.i !== undefined && a.i !== null ? Number(a.i) : dflt;
  };

  const out: PreluRewrite = { ...none };
  const nodes: INode[] = [];
  for (const n of graph.node) {
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

  if (out.depthwise + out.leaky === 0) return out;
  graph.node = nodes;
  for (const [name, f] of floats) {
    const t = inits.get(name)!;
    t.rawData = new Uint8Array(f.buffer);
    t.floatData = [];
  }
  // The slopes of rewritten PReLUs are no longer read; ONNX Runtime would warn about each.
  const read = new Set(nodes.flatMap((m) => m.input ?? []));
  graph.initializer = [...(graph.initializer ?? []).filter((t) => read.has(t.name ?? '')), ...added];
  out.bytes = onnx.ModelProto.encode(model).finish();
  return out;

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
