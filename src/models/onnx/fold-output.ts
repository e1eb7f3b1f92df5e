/**
 * The 8-bit output of an esrvid frame model (src/models/onnx/graph-builder.ts buildFrameModel),
 * folded into its last convolution for ONNX Runtime's CPU kernels. Part of the CPU arrangement
 * (arrange-for-cpu.ts); the model file keeps the plain graph.
 *
 * The plain tail after the last convolution is, for SRVGGNetCompact,
 *   DepthToSpace(conv) + Resize(input, nearest)  ->  x255, Clip 0..255, Round, Cast, Transpose to NHWC
 * seven passes over the upscaled frame, four of them in float (16x the input's pixels). Here:
 * - x255 and the rounding's +0.5 go into the convolution's weights and bias; Round goes, as Cast
 *   truncates what Clip keeps in 0..255.5 (ties round up instead of to even: a level at most).
 * - The nearest-upsampled input becomes a 1x1 convolution of the normalized input (weights 255:
 *   each output channel copies its colour), added to the last convolution in ONNX Runtime's
 *   blocked layout, instead of a float Resize and an unblocked Add.
 * - The last convolution's output channels are reordered from pixel-shuffle order (colour, row,
 *   column) to (row, column, colour), so the transpose to NHWC folds into the blocked layout's own
 *   reorder, and the shuffle becomes one uint8 transpose moving 12-byte runs.
 * Profiled on realesr-animevideov3-x4 at 160x90, one thread: the tail's kernels took 2.1 ms of
 * 75 before and 1.2 ms after (the uint8 shuffle, 0.46 ms, is most of what is left); the whole
 * run was 1.01-1.03x faster (BENCHMARKS.md).
 * For RRDBNet (no shuffle) only the first point applies, and the transpose to NHWC moves before
 * Clip and Cast, into the reorder.
 */
import onnxProto from 'onnx-proto';
import { floatValues, indexGraph, intAttr, intsAttr, rawTensor, setFloatValues, stringAttr } from './tensor.js';

const { onnx } = onnxProto;
type IGraph = onnxProto.onnx.IGraphProto;
type INode = onnxProto.onnx.INodeProto;
type ITensor = onnxProto.onnx.ITensorProto;

const FLOAT = onnx.TensorProto.DataType.FLOAT;
const UINT8 = onnx.TensorProto.DataType.UINT8;
const INT64 = onnx.TensorProto.DataType.INT64;
const A = onnx.AttributeProto.AttributeType;

/** What was folded: 'shuffle' (SRVGGNetCompact's tail), 'plain' (a convolution's output), or nothing. */
export type OutputFold = 'shuffle' | 'plain' | undefined;

/** Rewrites `graph` in place; its initializers still include the ones no longer read (the caller prunes). */
export function foldOutput(graph: IGraph): OutputFold {
  const nodes = graph.node ?? [];
  const { inits, producer, uses } = indexGraph(graph);
  const only = (name: string | undefined, op: string): INode | undefined => {
    const p = name ? producer.get(name) : undefined;
    return p && p.opType === op && !p.domain && (uses.get(name!) ?? []).length === 1 ? p : undefined;
  };
  const scalar = (name: string | undefined) => {
    const t = name ? inits.get(name) : undefined;
    if (!t || t.dataType !== FLOAT) return undefined;
    const v = floatValues(t);
    return v.length === 1 ? v[0] : undefined;
  };

  // The frame model's ending, from the output back: Transpose(NHWC) <- Cast(uint8) <- Round <- Clip(0, 255) <- Mul(255).
  const outName = graph.output?.[0]?.name ?? '';
  const toNhwc = producer.get(outName);
  if (!toNhwc || toNhwc.opType !== 'Transpose' || intsAttr(toNhwc, 'perm', []).join() !== '0,2,3,1') return undefined;
  const cast = only(toNhwc.input?.[0], 'Cast');
  const round = cast && intAttr(cast, 'to', -1) === UINT8 ? only(cast.input?.[0], 'Round') : undefined;
  const clip = round ? only(round.input?.[0], 'Clip') : undefined;
  if (!clip || scalar(clip.input?.[1]) !== 0 || scalar(clip.input?.[2]) !== 255) return undefined;
  const mul = only(clip.input?.[0], 'Mul');
  if (!mul || scalar(mul.input?.[1]) !== 255) return undefined;

  // SRVGGNetCompact: Add(DepthToSpace(conv, CRD), Resize(normalized input, nearest)).
  const add = only(mul.input?.[0], 'Add');
  const shuffle = add ? only(add.input?.[0], 'DepthToSpace') : undefined;
  const resize = add ? only(add.input?.[1], 'Resize') : undefined;
  const blocksize = shuffle ? intAttr(shuffle, 'blocksize', 0) : undefined;
  const scales = resize ? inits.get(resize.input?.[2] ?? '') : undefined;
  const isShuffle = !!(shuffle && resize && blocksize && stringAttr(shuffle, 'mode') === 'CRD' && stringAttr(resize, 'mode') === 'nearest'
    && stringAttr(resize, 'coordinate_transformation_mode') === 'asymmetric' && stringAttr(resize, 'nearest_mode') === 'floor'
    && scales?.dataType === FLOAT && floatValues(scales).join() === `1,1,${blocksize},${blocksize}`);
  const conv = isShuffle ? only(shuffle!.input?.[0], 'Conv') : only(mul.input?.[0], 'Conv');
  const wName = conv?.input?.[1];
  const bName = conv?.input?.[2];
  const wT = wName ? inits.get(wName) : undefined;
  const bT = bName ? inits.get(bName) : undefined;
  if (!conv || !wT || !bT || wT.dataType !== FLOAT || bT.dataType !== FLOAT || (uses.get(wName!) ?? []).length !== 1 || (uses.get(bName!) ?? []).length !== 1) return undefined;
  const [outC, inC, kh, kw] = (wT.dims ?? []).map(Number) as [number, number, number, number];
  const r = isShuffle ? blocksize! : 1;
  const colours = outC / (r * r);
  const frames = graph.input?.[0]?.name;
  if (!Number.isInteger(colours) || !frames || (isShuffle && colours !== 3)) return undefined;

  // Output channel o (CRD: colour c, row i, column j) moves to (i*r + j)*colours + c, scaled to 0..255, +0.5 for rounding.
  const w = floatValues(wT);
  const b = floatValues(bT);
  const k = inC * kh * kw;
  const w2 = new Float32Array(w.length);
  const b2 = new Float32Array(outC);
  for (let o = 0; o < outC; o++) {
    const to = isShuffle ? (o % (r * r)) * colours + Math.floor(o / (r * r)) : o;
    for (let t = 0; t < k; t++) w2[to * k + t] = 255 * w[o * k + t]!;
    b2[to] = 255 * b[o]! + 0.5;
  }
  setFloatValues(wT, w2);
  setFloatValues(bT, b2);

  const base = conv.name || conv.output![0]!;
  const name = (s: string) => `${base}_${s}`;
  const added: ITensor[] = [];
  const f32 = (n: string, dims: number[], data: Float32Array) => {
    added.push(rawTensor(name(n), dims, FLOAT, data));
    return name(n);
  };
  const i64 = (n: string, data: number[]) => {
    added.push({ name: name(n), dims: [data.length], dataType: INT64, int64Data: data });
    return name(n);
  };
  const node = (op: string, s: string, input: string[], output: string, attribute: onnxProto.onnx.IAttributeProto[] = []): INode =>
    ({ opType: op, name: name(s), input, output: [output], attribute });
  const perm = (p: number[]) => [{ name: 'perm', type: A.INTS, ints: p }];
  const clipTo = [f32('lo', [], new Float32Array([0])), f32('hi', [], new Float32Array([255.5]))];
  const toUint8 = [{ name: 'to', type: A.INT, i: UINT8 }];

  let tail: INode[];
  const before: INode[] = [];
  if (isShuffle) {
    // base[(i*r + j)*3 + c] = 255 * input[c]: the nearest upsampling, in the shuffled layout.
    const wb = new Float32Array(outC * colours);
    for (let o = 0; o < outC; o++) wb[o * colours + (o % colours)] = 255;
    before.push(node('Conv', 'base', [resize!.input![0]!, f32('base_w', [outC, colours, 1, 1], wb)], name('base'), [{ name: 'kernel_shape', type: A.INTS, ints: [1, 1] }]));
    tail = [
      node('Add', 'sum', [conv.output![0]!, name('base')], name('sum')),
      node('Transpose', 'nhwc', [name('sum')], name('nhwc'), perm([0, 2, 3, 1])),
      node('Clip', 'clip', [name('nhwc'), ...clipTo], name('clip')),
      node('Cast', 'u8', [name('clip')], name('u8'), toUint8),
      node('Reshape', 'split', [name('u8'), i64('split_shape', [0, 0, 0, r, r, colours])], name('split')),
      node('Transpose', 'shuffle', [name('split')], name('shuffled'), perm([0, 1, 3, 2, 4, 5])),
      node('Shape', 'in_shape', [frames], name('in_shape')),
      node('Mul', 'out_shape', [name('in_shape'), i64('scale', [1, r, r, 1])], name('out_shape')),
      node('Reshape', 'frames', [name('shuffled'), name('out_shape')], outName),
    ];
  } else {
    tail = [
      node('Transpose', 'nhwc', [conv.output![0]!], name('nhwc'), perm([0, 2, 3, 1])),
      node('Clip', 'clip', [name('nhwc'), ...clipTo], name('clip')),
      node('Cast', 'u8', [name('clip')], outName, toUint8),
    ];
  }
  const gone = new Set<INode>([mul, clip, round!, cast!, toNhwc, ...(isShuffle ? [add!, shuffle!, resize!] : [])]);
  const kept = nodes.filter((n) => !gone.has(n));
  const at = kept.indexOf(conv);
  graph.node = [...kept.slice(0, at), ...before, ...kept.slice(at), ...tail];
  graph.initializer = [...(graph.initializer ?? []), ...added];
  return isShuffle ? 'shuffle' : 'plain';
}
