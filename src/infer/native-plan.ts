/**
 * Whether a model can run on esrvid's fused kernel (src/infer/native-cpu.ts), and its layers: a
 * float32 SRVGGNetCompact frame model recognised node by node (uint8 NHWC in, x/255, [3x3 Conv,
 * PReLU]..., the last 3x3 Conv, pixel shuffle (CRD), the nearest-upsampled input added, x255,
 * clip, round, uint8 out). Anything else (RRDBNet, int8 and fp16 files, other activations or
 * attributes) gives undefined and runs on ONNX Runtime.
 */
import onnxProto from 'onnx-proto';
import { floatValues, indexGraph, intAttr, intsAttr, stringAttr } from '../models/onnx/tensor.js';
import type { NativeLayer, NativePlan } from './native-cpu.js';

const { onnx } = onnxProto;
type INode = onnxProto.onnx.INodeProto;
const DT = onnx.TensorProto.DataType;

/** The layers of an SRVGGNetCompact frame model, or undefined when the graph is anything else. */
export function nativePlan(bytes: Uint8Array): NativePlan | undefined {
  const graph = onnx.ModelProto.decode(bytes).graph;
  if (!graph?.node || graph.input?.length !== 1 || graph.output?.length !== 1) return undefined;
  const { inits, uses } = indexGraph(graph);
  const next = (n: INode | undefined, op: string): INode | undefined => {
    const out = n?.output?.[0];
    const u = out ? (uses.get(out) ?? []) : [];
    return u.length === 1 && u[0]!.opType === op ? u[0] : undefined;
  };
  const floats = (name: string | null | undefined) => {
    const t = name ? inits.get(name) : undefined;
    return t && t.dataType === DT.FLOAT ? { dims: (t.dims ?? []).map(Number), values: floatValues(t) } : undefined;
  };
  const scalarOf = (n: INode | undefined, other: string) => {
    const ins = n?.input ?? [];
    if (ins.length !== 2 || !ins.includes(other)) return undefined;
    const v = floats(ins[0] === other ? ins[1] : ins[0])?.values;
    return v?.length === 1 ? v[0] : undefined;
  };

  const frames = graph.input[0]!.name ?? '';
  const entry = (uses.get(frames) ?? [])[0];
  if ((uses.get(frames) ?? []).length !== 1 || entry?.opType !== 'Transpose' || intsAttr(entry, 'perm', []).join() !== '0,3,1,2') return undefined;
  const cast = next(entry, 'Cast');
  if (!cast || intAttr(cast, 'to', -1) !== DT.FLOAT) return undefined;
  const castOut = cast.output![0]!;
  const norm = (uses.get(castOut) ?? [])[0];
  if ((uses.get(castOut) ?? []).length !== 1 || norm?.opType !== 'Mul' || scalarOf(norm, castOut) !== Math.fround(1 / 255)) return undefined;
  const x0 = norm.output![0]!;
  const x0Uses = uses.get(x0) ?? [];
  const resize = x0Uses.find((n) => n.opType === 'Resize');
  let node = x0Uses.find((n) => n.opType === 'Conv');
  if (x0Uses.length !== 2 || !resize || !node) return undefined;

  const layers: NativeLayer[] = [];
  while (node?.opType === 'Conv') {
    const [, wName, bName] = node.input ?? [];
    const w = floats(wName);
    const b = floats(bName);
    const [cout, cin, kh, kw] = w?.dims ?? [];
    const plain = intsAttr(node, 'kernel_shape', [3, 3]).join() === '3,3' && intsAttr(node, 'strides', [1, 1]).join() === '1,1' &&
      intsAttr(node, 'dilations', [1, 1]).join() === '1,1' && intsAttr(node, 'pads', [0, 0, 0, 0]).join() === '1,1,1,1' && intAttr(node, 'group', 1) === 1 &&
      !stringAttr(node, 'auto_pad');
    if (!w || !b || kh !== 3 || kw !== 3 || !plain || b.values.length !== cout || cin! < 1 || cin! > 64 || cout! < 1 || cout! > 64) return undefined;
    if (layers.length > 0 && layers.at(-1)!.cout !== cin) return undefined;
    const layer: NativeLayer = { weight: w.values, bias: b.values, cin: cin!, cout: cout! };
    layers.push(layer);
    const prelu = next(node, 'PRelu');
    if (prelu) {
      const s = floats(prelu.input?.[1]);
      if (!s || s.values.length !== cout || s.dims.filter((d) => d !== 1).length > 1) return undefined;
      layer.slope = s.values;
      node = next(prelu, 'Conv');
      if (!node) return undefined;
    } else {
      node = next(node, 'DepthToSpace');
    }
  }
  const shuffle = node;
  const scale = shuffle ? intAttr(shuffle, 'blocksize', 0) : 0;
  if (!shuffle || stringAttr(shuffle, 'mode') !== 'CRD' || scale < 1 || layers.length < 2) return undefined;
  if (layers[0]!.cin !== 3 || layers.at(-1)!.cout !== 3 * scale * scale || layers.at(-1)!.slope) return undefined;
  if (layers.slice(0, -1).some((l) => !l.slope)) return undefined;

  // Nearest upsampling that picks input pixel floor(x / scale), as both of these settings do for integer scales.
  const scales = floats(resize.input?.[2])?.values;
  const coords = stringAttr(resize, 'coordinate_transformation_mode') ?? 'half_pixel';
  const rounding = stringAttr(resize, 'nearest_mode') ?? 'round_prefer_floor';
  const floorPick = (coords === 'asymmetric' && rounding === 'floor') || (coords === 'half_pixel' && rounding === 'round_prefer_floor');
  if (stringAttr(resize, 'mode') !== 'nearest' || !floorPick || resize.input?.[3] || scales?.join() !== `1,1,${scale},${scale}`) return undefined;

  const add = next(shuffle, 'Add');
  if (!add || next(resize, 'Add') !== add) return undefined;
  const mul = next(add, 'Mul');
  if (!mul || scalarOf(mul, add.output![0]!) !== 255) return undefined;
  const clip = next(mul, 'Clip');
  if (!clip || floats(clip.input?.[1])?.values[0] !== 0 || floats(clip.input?.[2])?.values[0] !== 255) return undefined;
  const toU8 = next(next(clip, 'Round'), 'Cast');
  if (!toU8 || intAttr(toU8, 'to', -1) !== DT.UINT8) return undefined;
  const exit = next(toU8, 'Transpose');
  if (!exit || intsAttr(exit, 'perm', []).join() !== '0,2,3,1' || exit.output?.[0] !== graph.output[0]!.name) return undefined;
  return { layers, scale };
}
