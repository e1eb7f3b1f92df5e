/**
 * Arranges a float graph for ONNX Runtime's CUDA provider, at session load: channels-last (NHWC)
 * from the uint8 frames in to the uint8 frames out.
 *
 * esrvid's model files are NCHW inside (a Transpose after the NHWC frames come in, another before
 * they go out), as ONNX's Conv is. On a GPU with tensor cores, cuDNN's fast fp16 convolutions are
 * NHWC ones: given NCHW tensors it converts or picks slower kernels, around every convolution.
 * PyTorch's channels_last, the reference esrvid is measured against, hands cuDNN NHWC tensors
 * directly (on an H100 it ran realesrgan-x4plus 1.7x faster than esrvid's NCHW graph). ONNX
 * Runtime's own NHWC rewrite (`prefer_nhwc`) is a CUDA provider option that onnxruntime-node 1.29
 * does not pass, so the graph asks for it itself: every Conv becomes `com.microsoft.NhwcConv`
 * (the CUDA provider's NHWC convolution, weights laid out M x kH x kW x C), and the ops between
 * convolutions are rewritten for a last channel axis:
 *
 * - elementwise ops (Cast, Mul, Add, LeakyRelu, Clip, Round, ...) are layout-free; per-channel
 *   operands (PRelu's slopes, C x 1 x 1) become C-long vectors that broadcast on the last axis;
 * - Concat on the channel axis concatenates on axis 3; Resize's scales are permuted;
 * - DepthToSpace (SRVGGNetCompact's pixel shuffle) becomes Reshape, Transpose, Reshape;
 * - the two layout Transposes at the ends disappear: the frames are NHWC already.
 *
 * Anything else, or a graph not shaped this way, is left as it is (CudaArrangement.skipped says
 * why). NhwcConv has no CPU kernel: the result is for the CUDA provider only. The model file keeps
 * the plain NCHW graph (what `models path` gives, what the CPU and the benchmark's PyTorch rebuild
 * read).
 */
import onnxProto from 'onnx-proto';
import { floatValues, indexGraph, intAttr, intsAttr, rawTensor, stringAttr } from './tensor.js';

const { onnx } = onnxProto;
type INode = onnxProto.onnx.INodeProto;
type ITensor = onnxProto.onnx.ITensorProto;

const DT = onnx.TensorProto.DataType;
const BYTES: Partial<Record<number, number>> = { [DT.FLOAT]: 4, [DT.FLOAT16]: 2, [DT.DOUBLE]: 8, [DT.BFLOAT16]: 2 };
const MS_DOMAIN = 'com.microsoft';

export interface CudaArrangement {
  /** The rewritten model, or undefined when it was left as it is. */
  bytes?: Uint8Array;
  /** Convolutions turned into NhwcConv. */
  convs: number;
  /** Why the graph was left as it is. */
  skipped?: string;
}

/** Ops whose output has the layout of their activation input, element by element. */
const ELEMENTWISE = new Set(['Cast', 'Relu', 'LeakyRelu', 'Clip', 'Round', 'Sigmoid', 'Tanh', 'Identity', 'Add', 'Sub', 'Mul', 'Div', 'Max', 'Min', 'PRelu', 'Floor', 'Ceil']);

export function arrangeForCuda(bytes: Uint8Array): CudaArrangement {
  const model = onnx.ModelProto.decode(bytes);
  const graph = model.graph;
  const skip = (why: string): CudaArrangement => ({ convs: 0, skipped: why });
  if (!graph?.node?.length || graph.input?.length !== 1 || graph.output?.length !== 1) return skip('not a frames-in, frames-out graph');
  if (graph.node.some((n) => n.domain && n.domain !== 'ai.onnx')) return skip('it has operators outside the ONNX domain');
  const { inits, uses } = indexGraph(graph);
  const frames = graph.input[0]!.name ?? '';
  const upscaled = graph.output[0]!.name ?? '';
  const entry = uses.get(frames) ?? [];
  if (entry.length !== 1 || !isTranspose(entry[0]!, [0, 3, 1, 2])) return skip('the frames do not enter through one NHWC -> NCHW Transpose');
  const exit = graph.node.find((n) => n.output?.includes(upscaled));
  if (!exit || !isTranspose(exit, [0, 2, 3, 1])) return skip('the frames do not leave through an NCHW -> NHWC Transpose');

  // Tensors now in NHWC, under their new names (the entry Transpose's output is the frames themselves).
  const rename = new Map<string, string>([[entry[0]!.output![0]!, frames]]);
  const nhwc = new Set<string>([frames]);
  const nodes: INode[] = [];
  const added: ITensor[] = [];
  /** Initializers rewritten for this node alone: a copy, so a shared original keeps its layout for its other users. */
  let copies = 0;
  const ownCopy = (name: string, dims: number[], rawData: Uint8Array): string => {
    const copy = `${name}_nhwc${copies++}`;
    added.push({ name: copy, dims, dataType: inits.get(name)!.dataType, rawData });
    return copy;
  };
  let convs = 0;

  for (const original of graph.node) {
    if (original === entry[0]) continue;
    const node: INode = { ...original, input: (original.input ?? []).map((i) => rename.get(i) ?? i) };
    const ins = node.input as string[];
    const acts = ins.filter((i) => nhwc.has(i));
    if (acts.length === 0) {
      nodes.push(node);
      continue;
    }
    const op = node.opType ?? '';
    if (original === exit) {
      // The graph's output is the Transpose's input, as it is: rename its producer's output.
      rename.set(ins[0]!, upscaled);
      for (const n of nodes) n.output = (n.output ?? []).map((o) => (o === ins[0] ? upscaled : o));
      for (const n of nodes) n.input = (n.input ?? []).map((i) => (i === ins[0] ? upscaled : i));
      continue;
    }
    if (op === 'Conv') {
      if (ins[0] !== acts[0] || acts.length !== 1) return skip(`${node.name || 'a Conv'} takes an activation as its weights`);
      const w = inits.get(ins[1] ?? '');
      if (!w?.rawData || !BYTES[w.dataType ?? 0] || w.dims?.length !== 4) return skip(`${node.name || 'a Conv'}'s weights are not a raw 4-D float initializer`);
      const dims = (w.dims ?? []).map(Number) as [number, number, number, number];
      node.input = [ins[0]!, ownCopy(ins[1]!, [dims[0], dims[2], dims[3], dims[1]], ohwi(w.rawData, dims, BYTES[w.dataType!]!)), ...ins.slice(2)];
      node.opType = 'NhwcConv';
      node.domain = MS_DOMAIN;
      convs++;
    } else if (ELEMENTWISE.has(op)) {
      for (const [k, name] of ins.entries()) {
        if (nhwc.has(name) || !name) continue;
        const t = inits.get(name);
        if (!t) return skip(`${op} mixes an NHWC activation with a computed tensor`);
        const dims = (t.dims ?? []).map(Number);
        const size = dims.reduce((a, b) => a * b, 1);
        if (size === 1 || dims.length === 0) continue;
        // Per channel: C x 1 x 1 or 1 x C x 1 x 1 (broadcast on NCHW's channel axis) -> C.
        const perChannel = (dims.length === 3 && dims[1] === 1 && dims[2] === 1) || (dims.length === 4 && dims[0] === 1 && dims[2] === 1 && dims[3] === 1);
        if (!perChannel) return skip(`${op}'s operand ${name} (${dims.join('x')}) has no NHWC equivalent here`);
        added.push({ ...t, name: `${name}_nhwc${copies++}`, dims: [size] });
        ins[k] = added.at(-1)!.name!;
      }
    } else if (op === 'Concat') {
      const axis = intAttr(node, 'axis', 0);
      if (axis !== 1 && axis !== -3) return skip(`Concat on axis ${axis}`);
      if (acts.length !== ins.length) return skip('Concat of NHWC and other tensors');
      node.attribute = (node.attribute ?? []).map((a) => (a.name === 'axis' ? { ...a, i: 3 } : a));
    } else if (op === 'Resize') {
      const scales = inits.get(ins[2] ?? '');
      if (ins[0] !== acts[0] || ins[3] || scales?.dataType !== DT.FLOAT) return skip('a Resize without constant scales');
      const s = floatValues(scales);
      if (s.length !== 4) return skip('a Resize that is not 4-D');
      node.input = [ins[0]!, ins[1] ?? '', ownCopy(ins[2]!, [4], new Uint8Array(Float32Array.of(s[0]!, s[2]!, s[3]!, s[1]!).buffer))];
    } else if (op === 'DepthToSpace') {
      if (ins[0] !== acts[0] || intAttr(node, 'blocksize', 0) < 1) return skip('a DepthToSpace without a block size');
      nodes.push(...depthToSpace(node, added));
      for (const o of node.output ?? []) nhwc.add(o);
      continue;
    } else {
      return skip(`${op} is not rewritten for NHWC`);
    }
    nodes.push(node);
    for (const o of node.output ?? []) nhwc.add(o);
  }
  if (!nodes.some((n) => n.output?.includes(upscaled))) return skip('the output was not reached');

  graph.node = nodes;
  const used = new Set(nodes.flatMap((n) => n.input ?? []));
  graph.initializer = [...(graph.initializer ?? []).filter((t) => used.has(t.name ?? '')), ...added];
  // Shapes recorded for the NCHW tensors no longer hold.
  graph.valueInfo = [];
  if (!model.opsetImport?.some((o) => o.domain === MS_DOMAIN)) model.opsetImport = [...(model.opsetImport ?? []), { domain: MS_DOMAIN, version: 1 }];
  return { bytes: onnx.ModelProto.encode(model).finish(), convs };
}

function isTranspose(n: INode, perm: number[]): boolean {
  return n.opType === 'Transpose' && intsAttr(n, 'perm', []).join() === perm.join();
}

/** Convolution weights M x C x kH x kW (raw bytes, `size` bytes an element) as M x kH x kW x C. */
export function ohwi(raw: Uint8Array, [m, c, kh, kw]: [number, number, number, number], size: number): Uint8Array {
  const out = new Uint8Array(raw.byteLength);
  for (let o = 0; o < m; o++) {
    for (let i = 0; i < c; i++) {
      for (let y = 0; y < kh; y++) {
        for (let x = 0; x < kw; x++) {
          const from = (((o * c + i) * kh + y) * kw + x) * size;
          const to = (((o * kh + y) * kw + x) * c + i) * size;
          out.set(raw.subarray(from, from + size), to);
        }
      }
    }
  }
  return out;
}

/**
 * DepthToSpace on an NHWC tensor N x H x W x (C·b·b): split the channels into the block's rows and
 * columns (CRD: channel = c·b² + i·b + j; DCR: (i·b + j)·C + c), move them next to H and W, and
 * merge: N x H·b x W·b x C. The last shape is the input's shape times (1, b, b, 1/b²), computed
 * from the tensor's own shape so any frame size and batch works.
 */
function depthToSpace(node: INode, added: ITensor[]): INode[] {
  const b = intAttr(node, 'blocksize', 0);
  const crd = stringAttr(node, 'mode') === 'CRD';
  const x = node.input![0]!;
  const y = node.output![0]!;
  const p = `${y}_nhwc`;
  const i64 = (name: string, values: number[]) => {
    added.push(rawTensor(name, [values.length], DT.INT64, BigInt64Array.from(values.map(BigInt))));
    return name;
  };
  return [
    { opType: 'Reshape', name: `${p}_split`, input: [x, i64(`${p}_split_shape`, crd ? [0, 0, 0, -1, b, b] : [0, 0, 0, b, b, -1])], output: [`${p}_split`] },
    // CRD: N H W C i j -> N H i W j C; DCR: N H W i j C -> N H i W j C.
    { opType: 'Transpose', name: `${p}_move`, input: [`${p}_split`], output: [`${p}_moved`], attribute: [{ name: 'perm', type: onnx.AttributeProto.AttributeType.INTS, ints: crd ? [0, 1, 4, 2, 5, 3] : [0, 1, 3, 2, 4, 5] }] },
    { opType: 'Shape', name: `${p}_shape`, input: [x], output: [`${p}_in_shape`] },
    { opType: 'Mul', name: `${p}_grow`, input: [`${p}_in_shape`, i64(`${p}_grow_by`, [1, b, b, 1])], output: [`${p}_grown`] },
    { opType: 'Div', name: `${p}_shrink`, input: [`${p}_grown`, i64(`${p}_shrink_by`, [1, 1, 1, b * b])], output: [`${p}_out_shape`] },
    { opType: 'Reshape', name: `${p}_merge`, input: [`${p}_moved`, `${p}_out_shape`], output: [y] },
  ];
}
