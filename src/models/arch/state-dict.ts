/**
 * A state dict as the importers hand it to architecture detection: tensor name -> shape, element
 * type and a reader that decodes the values to float32 on demand (detection looks at shapes only;
 * a checkpoint often holds two copies of the weights, of which one is used).
 */
import { ModelError } from '../../errors.js';
import { decodeFloat16 } from '../onnx/float16.js';

export type TensorDtype = 'float32' | 'float16' | 'bfloat16' | 'float64' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

export const DTYPE_BYTES: Record<TensorDtype, number> = {
  float32: 4, float16: 2, bfloat16: 2, float64: 8, int64: 8, int32: 4, int16: 2, int8: 1, uint8: 1, bool: 1,
};

export interface StateTensor {
  shape: number[];
  dtype: TensorDtype;
  /** The values as float32, row-major (C order). Throws a ModelError for non-float tensors. */
  values(): Float32Array;
}

export type StateDict = Map<string, StateTensor>;

export const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** Decodes `count` contiguous little-endian elements starting at `byteOffset`. */
function decodeRun(bytes: Uint8Array, byteOffset: number, count: number, dtype: TensorDtype, out: Float32Array, at: number): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (dtype) {
    case 'float32':
      // Copy through bytes: the run may not be 4-byte aligned in the file buffer.
      new Uint8Array(out.buffer, out.byteOffset + at * 4, count * 4).set(bytes.subarray(byteOffset, byteOffset + count * 4));
      return;
    case 'float16':
      out.set(decodeFloat16(bytes, byteOffset, count), at);
      return;
    case 'bfloat16': {
      const u32 = new Uint32Array(1);
      const f32 = new Float32Array(u32.buffer);
      for (let i = 0; i < count; i++) {
        u32[0] = view.getUint16(byteOffset + i * 2, true) << 16;
        out[at + i] = f32[0]!;
      }
      return;
    }
    case 'float64':
      for (let i = 0; i < count; i++) out[at + i] = view.getFloat64(byteOffset + i * 8, true);
      return;
    default:
      throw new Error(`decodeRun: ${dtype}`);
  }
}

/**
 * A tensor that is a (possibly strided) view of `storage`, a run of `storageNumel` elements at
 * `storageByteOffset` in `bytes`. Bounds are checked here, so a view reaching outside its storage
 * fails at load time with the tensor's name.
 */
export function viewTensor(o: {
  name: string;
  source: string;
  bytes: Uint8Array;
  storageByteOffset: number;
  storageNumel: number;
  dtype: TensorDtype;
  offset: number;
  shape: number[];
  stride: number[];
}): StateTensor {
  const { name, source, shape, stride, offset, dtype } = o;
  const n = numel(shape);
  if (n > 0) {
    const last = offset + shape.reduce((acc, s, i) => acc + (s - 1) * stride[i]!, 0);
    if (last >= o.storageNumel) {
      throw new ModelError(`${source}: tensor ${name} [${shape}] reaches element ${last} of a storage of ${o.storageNumel} elements; the checkpoint's storages do not match its tensors`);
    }
  }
  if (o.storageByteOffset + o.storageNumel * DTYPE_BYTES[dtype] > o.bytes.byteLength) {
    throw new ModelError(`${source}: the storage of tensor ${name} extends past the end of its data`);
  }
  return {
    shape,
    dtype,
    values(): Float32Array {
      if (!['float32', 'float16', 'bfloat16', 'float64'].includes(dtype)) {
        throw new ModelError(`${source}: tensor ${name} holds ${dtype} values; weights must be floating point`);
      }
      const out = new Float32Array(n);
      if (n === 0) return out;
      const size = DTYPE_BYTES[dtype];
      const base = o.storageByteOffset;
      // Row-major contiguous views decode as one run; anything else element by element.
      let contiguous = true;
      for (let i = shape.length - 1, expect = 1; i >= 0; i--) {
        if (shape[i] !== 1 && stride[i] !== expect) contiguous = false;
        expect *= shape[i]!;
      }
      if (contiguous) {
        decodeRun(o.bytes, base + offset * size, n, dtype, out, 0);
        return out;
      }
      const idx = new Array<number>(shape.length).fill(0);
      let src = offset;
      for (let i = 0; i < n; i++) {
        decodeRun(o.bytes, base + src * size, 1, dtype, out, i);
        for (let d = shape.length - 1; d >= 0; d--) {
          idx[d]!++;
          src += stride[d]!;
          if (idx[d]! < shape[d]!) break;
          src -= stride[d]! * shape[d]!;
          idx[d] = 0;
        }
      }
      return out;
    },
  };
}
