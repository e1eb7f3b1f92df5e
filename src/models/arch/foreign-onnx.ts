/**
 * An .onnx file made elsewhere (e.g. exported from PyTorch) -> an esrvid frame model. The graph is
 * kept as it is; esrvid's uint8 NHWC pre- and post-processing nodes are put around it, as the ncnn
 * and state-dict converters do, so the pipeline never loops over pixels. The input is assumed to
 * be RGB in 0..1, the ESRGAN family's convention. Its shape and types are validated here; the
 * scale is then measured by a trial run (src/models/import.ts).
 */
import onnxProto from 'onnx-proto';
import { ModelError } from '../../errors.js';

const { onnx } = onnxProto;
type IGraphProto = onnxProto.onnx.IGraphProto;
type INodeProto = onnxProto.onnx.INodeProto;
type IValueInfoProto = onnxProto.onnx.IValueInfoProto;
const DT = onnx.TensorProto.DataType;

export interface WrappedOnnx {
  bytes: Uint8Array;
  /** 'frames': already an esrvid frame model, kept byte for byte. */
  input: 'frames' | 'float32' | 'float16';
  architecture: string;
  parameterCount: number;
  warnings: string[];
}

const toNumber = (v: unknown): number => (typeof v === 'number' ? v : typeof (v as { toNumber?: () => number })?.toNumber === 'function' ? (v as { toNumber: () => number }).toNumber() : Number(v));

interface Dim {
  value?: number;
  param?: string;
}

function tensorInfo(v: IValueInfoProto): { elemType: number; dims: Dim[] | undefined } {
  const t = v.type?.tensorType;
  const dims = t?.shape?.dim?.map((d) => (d.dimValue !== undefined && d.dimValue !== null && toNumber(d.dimValue) > 0 ? { value: toNumber(d.dimValue) } : { param: d.dimParam ?? '?' }));
  return { elemType: t?.elemType ?? 0, dims };
}

const TYPE_NAMES: Record<number, string> = { [DT.FLOAT]: 'float32', [DT.FLOAT16]: 'float16', [DT.UINT8]: 'uint8', [DT.DOUBLE]: 'float64', [DT.BFLOAT16]: 'bfloat16' };
const typeName = (t: number) => TYPE_NAMES[t] ?? `type ${t}`;
const dimsText = (d: Dim[] | undefined) => (d ? `[${d.map((x) => x.value ?? x.param).join(',')}]` : '[unknown]');

/** Every tensor name used anywhere in the graph, its subgraphs included. */
function collectNames(g: IGraphProto, into: Set<string>): Set<string> {
  for (const v of [...(g.input ?? []), ...(g.output ?? []), ...(g.valueInfo ?? [])]) into.add(v.name ?? '');
  for (const t of g.initializer ?? []) into.add(t.name ?? '');
  for (const n of g.node ?? []) {
    for (const x of [...(n.input ?? []), ...(n.output ?? [])]) into.add(x);
    for (const a of n.attribute ?? []) {
      if (a.g) collectNames(a.g, into);
      for (const sg of a.graphs ?? []) collectNames(sg, into);
    }
  }
  return into;
}

/** Renames a tensor everywhere in the graph and its subgraphs. */
function renameTensor(g: IGraphProto, from: string, to: string): void {
  const r = (x: string) => (x === from ? to : x);
  for (const v of [...(g.input ?? []), ...(g.output ?? []), ...(g.valueInfo ?? [])]) if (v.name === from) v.name = to;
  for (const t of g.initializer ?? []) if (t.name === from) t.name = to;
  for (const n of g.node ?? []) {
    n.input = (n.input ?? []).map(r);
    n.output = (n.output ?? []).map(r);
    for (const a of n.attribute ?? []) {
      if (a.g) renameTensor(a.g, from, to);
      for (const sg of a.graphs ?? []) renameTensor(sg, from, to);
    }
  }
}

export function wrapForeignOnnx(bytes: Uint8Array, source: string): WrappedOnnx {
  let model: onnxProto.onnx.ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (err) {
    throw new ModelError(`${source}: not an ONNX model (${(err as Error).message})`, undefined, err);
  }
  const g = model.graph;
  if (!g || (g.node ?? []).length === 0) throw new ModelError(`${source}: not an ONNX model (no graph)`);
  const fail = (what: string, hint?: string): never => {
    throw new ModelError(`${source}: ${what}`, hint);
  };
  const warnings: string[] = [];

  const inits = new Set((g.initializer ?? []).map((t) => t.name ?? ''));
  for (const t of g.sparseInitializer ?? []) inits.add(t.values?.name ?? '');
  const inputs = (g.input ?? []).filter((i) => !inits.has(i.name ?? ''));
  if (inputs.length !== 1) fail(`takes ${inputs.length} inputs (${inputs.map((i) => i.name).join(', ')}); esrvid feeds one image tensor`);
  if ((g.output ?? []).length !== 1) fail(`has ${(g.output ?? []).length} outputs (${(g.output ?? []).map((o) => o.name).join(', ')}); esrvid expects one image`);
  if ((g.initializer ?? []).some((t) => t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL)) {
    fail('keeps its weights in external data files', 'save it as a single .onnx file');
  }
  const opset = toNumber((model.opsetImport ?? []).find((o) => !o.domain)?.version ?? 0);
  if (opset < 11) fail(`uses ONNX opset ${opset}; esrvid needs opset 11 or newer`, 'export it again with opset_version >= 11');

  const inVi = inputs[0]!;
  const outVi = g.output![0]!;
  const inInfo = tensorInfo(inVi);
  const outInfo = tensorInfo(outVi);
  const ops = new Map<string, number>();
  for (const n of g.node ?? []) ops.set(n.opType ?? '?', (ops.get(n.opType ?? '?') ?? 0) + 1);
  const top = [...ops].sort((a, b) => b[1] - a[1]).slice(0, 5).map(([op, k]) => (k > 1 ? `${op} x${k}` : op)).join(', ');
  const like = ops.has('PRelu') && ops.has('DepthToSpace') && !ops.has('Concat') ? 'SRVGGNetCompact-like ' : '';
  const parameterCount = (g.initializer ?? [])
    .filter((t) => [DT.FLOAT, DT.FLOAT16, DT.BFLOAT16, DT.DOUBLE].includes(t.dataType ?? 0))
    .reduce((n, t) => n + (t.dims ?? []).reduce<number>((a, d) => a * toNumber(d), 1), 0);

  const isFrames = (i: { elemType: number; dims: Dim[] | undefined }) => i.elemType === DT.UINT8 && i.dims?.length === 4 && i.dims[3]?.value === 3;
  if (inInfo.elemType === DT.UINT8) {
    if (!isFrames(inInfo) || !isFrames(outInfo)) {
      fail(`takes ${typeName(inInfo.elemType)} ${dimsText(inInfo.dims)} and gives ${typeName(outInfo.elemType)} ${dimsText(outInfo.dims)}; a uint8 model must take and give [N,H,W,3] RGB frames`);
    }
    return { bytes, input: 'frames', architecture: `${like}ONNX frame model: ${(g.node ?? []).length} nodes (${top})`, parameterCount, warnings };
  }
  if (inInfo.elemType !== DT.FLOAT && inInfo.elemType !== DT.FLOAT16) fail(`takes ${typeName(inInfo.elemType)} input; esrvid feeds float32 or float16 RGB in 0..1 (NCHW)`);
  if (outInfo.elemType !== DT.FLOAT && outInfo.elemType !== DT.FLOAT16) fail(`gives ${typeName(outInfo.elemType)} output; esrvid expects float32 or float16 RGB (NCHW)`);
  if (inInfo.dims && inInfo.dims.length !== 4) fail(`input ${inVi.name} has shape ${dimsText(inInfo.dims)}; esrvid feeds [N,3,H,W] images`);
  if (inInfo.dims) {
    const [n, c, h, w] = inInfo.dims as [Dim, Dim, Dim, Dim];
    if (c.value !== undefined && c.value !== 3) fail(`input ${inVi.name} ${dimsText(inInfo.dims)} takes ${c.value} channels; esrvid feeds RGB images [N,3,H,W]`);
    if (h.value !== undefined || w.value !== undefined) {
      fail(`input ${inVi.name} has a fixed size ${dimsText(inInfo.dims)}; video frames need a dynamic height and width`, 'export it again with dynamic_axes for height and width');
    }
    if (n.value !== undefined && n.value !== 1) fail(`input ${inVi.name} has a fixed batch of ${n.value}`, 'export it again with a dynamic batch axis');
    if (n.value === 1) warnings.push('the batch size is fixed at 1: use --batch 1 (the CPU default) with this model');
  }
  if (outInfo.dims && outInfo.dims.length !== 4) fail(`output ${outVi.name} has shape ${dimsText(outInfo.dims)}; esrvid expects [N,3,H,W] images`);

  const names = collectNames(g, new Set());
  for (const reserved of ['frames', 'upscaled']) {
    if (names.has(reserved)) {
      let alt = `${reserved}_orig`;
      for (let i = 1; names.has(alt); i++) alt = `${reserved}_orig${i}`;
      renameTensor(g, reserved, alt);
      names.add(alt);
    }
  }
  let counter = 0;
  const fresh = (prefix: string) => {
    let n: string;
    do n = `esrvid_${prefix}_${counter++}`;
    while (names.has(n));
    names.add(n);
    return n;
  };
  const scalar = (prefix: string, v: number) => {
    const name = fresh(prefix);
    g.initializer = [...(g.initializer ?? []), { name, dims: [], dataType: DT.FLOAT, floatData: [v] }];
    return name;
  };
  const node = (opType: string, input: string[], output: string, attribute: onnxProto.onnx.IAttributeProto[] = []): INodeProto =>
    ({ opType, input, output: [output], attribute, name: fresh(opType.toLowerCase()) });
  const A = onnx.AttributeProto.AttributeType;
  const ints = (name: string, v: number[]) => ({ name, type: A.INTS, ints: v });
  const int = (name: string, v: number) => ({ name, type: A.INT, i: v });

  const netIn = inVi.name!;
  const netOut = outVi.name!;
  const pre: INodeProto[] = [];
  const nchw8 = fresh('nchw8');
  pre.push(node('Transpose', ['frames'], nchw8, [ints('perm', [0, 3, 1, 2])]));
  const f32 = fresh('f32');
  pre.push(node('Cast', [nchw8], f32, [int('to', DT.FLOAT)]));
  if (inInfo.elemType === DT.FLOAT) pre.push(node('Mul', [f32, scalar('inv255', 1 / 255)], netIn));
  else {
    const unit = fresh('unit');
    pre.push(node('Mul', [f32, scalar('inv255', 1 / 255)], unit));
    pre.push(node('Cast', [unit], netIn, [int('to', DT.FLOAT16)]));
  }
  const post: INodeProto[] = [];
  let out = netOut;
  if (outInfo.elemType === DT.FLOAT16) {
    out = fresh('out32');
    post.push(node('Cast', [netOut], out, [int('to', DT.FLOAT)]));
  }
  const scaled = fresh('scaled');
  post.push(node('Mul', [out, scalar('k255', 255)], scaled));
  const clipped = fresh('clipped');
  post.push(node('Clip', [scaled, scalar('lo', 0), scalar('hi', 255)], clipped));
  const rounded = fresh('rounded');
  post.push(node('Round', [clipped], rounded));
  const out8 = fresh('out8');
  post.push(node('Cast', [rounded], out8, [int('to', DT.UINT8)]));
  post.push(node('Transpose', [out8], 'upscaled', [ints('perm', [0, 2, 3, 1])]));

  const frameVi = (name: string, h: string, w: string): IValueInfoProto => ({
    name,
    type: { tensorType: { elemType: DT.UINT8, shape: { dim: [{ dimParam: 'batch' }, { dimParam: h }, { dimParam: w }, { dimValue: 3 }] } } },
  });
  g.node = [...pre, ...(g.node ?? []), ...post];
  // Initializers listed as inputs (old exporters do this) stay listed.
  g.input = [frameVi('frames', 'height', 'width'), ...(g.input ?? []).filter((i) => inits.has(i.name ?? ''))];
  g.output = [frameVi('upscaled', 'out_height', 'out_width')];
  // Shape information about the old input and output no longer applies as declared types.
  g.valueInfo = (g.valueInfo ?? []).filter((v) => v.name !== netIn && v.name !== netOut);
  const wrapped = onnx.ModelProto.encode(model).finish();
  return {
    bytes: wrapped,
    input: inInfo.elemType === DT.FLOAT ? 'float32' : 'float16',
    architecture: `${like}ONNX graph: ${(g.node ?? []).length - pre.length - post.length} nodes (${top})`,
    parameterCount,
    warnings,
  };
}
