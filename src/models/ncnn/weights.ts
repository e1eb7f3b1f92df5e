/**
 * Sequential reader for ncnn's .bin weight file. ncnn stores, in layer order, each layer's blobs
 * back to back with no index, so every byte must be accounted for: a size mismatch shows up as
 * a wrong tag or leftover bytes, and we report the layer where it happened instead of guessing.
 */
import { decodeFloat16 } from '../onnx/float16.js';
import { ModelError } from '../../errors.js';

/** Tag that precedes float16 weight data in ncnn's "auto" blobs. */
export const TAG_FLOAT16 = 0x01306b47;
/** Tag of int8-quantized data: not used by the Real-ESRGAN models, refused. */
export const TAG_INT8 = 0x000d4b38;

const align4 = (n: number) => (n + 3) & ~3;

export class WeightReader {
  private offset = 0;
  private readonly view: DataView;
  constructor(
    private readonly bytes: Uint8Array,
    private readonly file = '.bin',
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get position(): number {
    return this.offset;
  }

  get remaining(): number {
    return this.bytes.byteLength - this.offset;
  }

  private need(n: number, layer: string, what: string): void {
    if (this.remaining < n) {
      throw new ModelError(
        `${this.file}: truncated at layer ${layer}: ${what} needs ${n} bytes at offset ${this.offset}, only ${this.remaining} left`,
      );
    }
  }

  /** A blob written with a 4-byte type tag (ncnn's load type 0): float32 or float16 data. */
  readTagged(count: number, layer: string, what: string): Float32Array {
    this.need(4, layer, `${what} tag`);
    const tag = this.view.getUint32(this.offset, true);
    const at = this.offset;
    this.offset += 4;
    if (tag === TAG_FLOAT16) {
      const size = align4(count * 2);
      this.need(size, layer, `${what} (${count} float16 values)`);
      const out = decodeFloat16(this.bytes, this.offset, count);
      this.offset += size;
      return out;
    }
    if (tag === 0) return this.readRaw(count, layer, what);
    const kind = tag === TAG_INT8 ? 'int8-quantized data' : `unknown tag 0x${tag.toString(16).padStart(8, '0')}`;
    throw new ModelError(`${this.file}: layer ${layer}: ${what} at offset ${at} has ${kind}; only float32 and float16 weights are supported`);
  }

  /** A blob of raw little-endian float32 values with no tag (ncnn's load type 1). */
  readRaw(count: number, layer: string, what: string): Float32Array {
    const size = count * 4;
    this.need(size, layer, `${what} (${count} float32 values)`);
    // Copy into an aligned array (the host is little-endian, like the file).
    const out = new Float32Array(count);
    new Uint8Array(out.buffer).set(this.bytes.subarray(this.offset, this.offset + size));
    this.offset += size;
    return out;
  }

  /** Fails unless every byte of the file was consumed. */
  assertFullyRead(): void {
    if (this.remaining !== 0) {
      throw new ModelError(
        `${this.file}: ${this.remaining} bytes left over after the last layer (read ${this.offset} of ${this.bytes.byteLength}); the .bin does not match the .param`,
      );
    }
  }
}
