/** Reading ONNX tensors esrvid works on (onnx-proto's decoded form). */
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
