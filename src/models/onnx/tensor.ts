/** Reading ONNX tensors and node attributes esrvid works on (onnx-proto's decoded form). */
import type onnxProto from 'onnx-proto';

/**
 * A float32 tensor's values as a fresh, aligned array: from its raw little-endian bytes (as
 * esrvid and most exporters write them; they may sit at any offset of the decoded buffer), or
 * from float_data. The caller checks the data type.
 */
export function floatValues(t: onnxProto.onnx.ITensorProto): Float32Array {
  if (t.rawData && t.rawData.byteLength) {
    const f = new Float32Array(t.rawData.byteLength / 4);
    new Uint8Array(f.buffer).set(t.rawData);
    return f;
  }
  return Float32Array.from(t.floatData ?? []);
}

/** A new initializer holding `data` as raw little-endian bytes. */
export function rawTensor(name: string, dims: number[], dataType: number, data: ArrayBufferView): onnxProto.onnx.ITensorProto {
  return { name, dims, dataType, rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

/** Replaces a float32 initializer's values (raw bytes; float_data cleared so only one is read). */
export function setFloatValues(t: onnxProto.onnx.ITensorProto, data: Float32Array): void {
  t.rawData = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  t.floatData = [];
}

/** A graph's initializers by name, and each tensor's producing node and consuming nodes. */
export function indexGraph(graph: onnxProto.onnx.IGraphProto): {
  inits: Map<string, onnxProto.onnx.ITensorProto>;
  producer: Map<string, onnxProto.onnx.INodeProto>;
  uses: Map<string, onnxProto.onnx.INodeProto[]>;
} {
  const inits = new Map((graph.initializer ?? []).map((t) => [t.name ?? '', t]));
  const producer = new Map<string, onnxProto.onnx.INodeProto>();
  const uses = new Map<string, onnxProto.onnx.INodeProto[]>();
  for (const n of graph.node ?? []) {
    for (const o of n.output ?? []) producer.set(o, n);
    for (const i of n.input ?? []) if (i) (uses.get(i) ?? uses.set(i, []).get(i)!).push(n);
  }
  return { inits, producer, uses };
}

/** A node's attribute by name; the int/ints/float readers fall back when it is absent. */
export function attr(node: onnxProto.onnx.INodeProto, name: string): onnxProto.onnx.IAttributeProto | undefined {
  return node.attribute?.find((a) => a.name === name);
}

export function intsAttr(node: onnxProto.onnx.INodeProto, name: string, fallback: number[]): number[] {
  const a = attr(node, name);
  return a?.ints && a.ints.length > 0 ? a.ints.map(Number) : fallback;
}

export function intAttr(node: onnxProto.onnx.INodeProto, name: string, fallback: number): number {
  const a = attr(node, name);
  return a?.i !== undefined && a.i !== null ? Number(a.i) : fallback;
}

/** A string attribute (ONNX stores them as bytes), or undefined when absent. */
export function stringAttr(node: onnxProto.onnx.INodeProto, name: string): string | undefined {
  const s = attr(node, name)?.s;
  return s ? new TextDecoder().decode(s) : undefined;
}

export function floatAttr(node: onnxProto.onnx.INodeProto, name: string, fallback: number): number {
  const a = attr(node, name);
  return typeof a?.f === 'number' ? a.f : fallback;
}
