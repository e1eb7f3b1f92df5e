/**
 * Read-only access to an esrvid ONNX file for the benchmark: nodes in graph order, initializers
 * as float arrays, and attributes by name. Only onnx-proto is needed, not ONNX Runtime.
 */
import onnxProto from 'onnx-proto';
import { floatValues } from '../models/onnx/tensor.js';

const { onnx } = onnxProto;
export type ModelProto = onnxProto.onnx.ModelProto;
export type NodeProto = onnxProto.onnx.INodeProto;

export interface Initializer {
  dims: number[];
  dataType: number;
  /** Float values (float32 tensors only; undefined for other types). */
  floats?: Float32Array;
  ints?: number[];
}

export interface OnnxGraph {
  proto: ModelProto;
  nodes: NodeProto[];
  inits: Map<string, Initializer>;
  inputName: string;
}

export function decodeModel(bytes: Uint8Array): OnnxGraph {
  const proto = onnx.ModelProto.decode(bytes);
  const graph = proto.graph;
  if (!graph) throw new Error('the ONNX file has no graph');
  const inits = new Map<string, Initializer>();
  for (const t of graph.initializer ?? []) inits.set(t.name ?? '', readInitializer(t));
  const initNames = new Set(inits.keys());
  const input = (graph.input ?? []).find((i) => !initNames.has(i.name ?? ''));
  return { proto, nodes: graph.node ?? [], inits, inputName: input?.name ?? 'frames' };
}

function readInitializer(t: onnxProto.onnx.ITensorProto): Initializer {
  const dims = (t.dims ?? []).map(Number);
  const dataType = t.dataType ?? 0;
  const DT = onnx.TensorProto.DataType;
  if (dataType === DT.FLOAT) {
    return { dims, dataType, floats: floatValues(t) };
  }
  if (dataType === DT.INT64) {
    if (t.rawData && t.rawData.length > 0) {
      const copy = new Uint8Array(t.rawData);
      return { dims, dataType, ints: Array.from(new BigInt64Array(copy.buffer), Number) };
    }
    return { dims, dataType, ints: (t.int64Data ?? []).map(Number) };
  }
  return { dims, dataType };
}
