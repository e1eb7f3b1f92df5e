/** Builds tiny synthetic ncnn models (.param text + .bin bytes) for converter unit tests. */
import * as ort from 'onnxruntime-node';
import { convertNcnn } from '../../src/models/ncnn/to-onnx.js';
import type { Precision } from '../../src/models/onnx/graph-builder.js';

export class NcnnFixture {
  private lines: string[] = [];
  private blobs = new Set<string>();
  private chunks: Buffer[] = [];

  layer(type: string, name: string, inputs: string[], outputs: string[], params = ''): this {
    this.lines.push(`${type} ${name} ${inputs.length} ${outputs.length} ${[...inputs, ...outputs].join(' ')} ${params}`.trim());
    outputs.forEach((b) => this.blobs.add(b));
    return this;
  }

  /** Raw float32 values with no tag (bias, PReLU slopes). */
  raw(values: number[]): this {
    this.chunks.push(Buffer.from(new Float32Array(values).buffer));
    return this;
  }

  /** A tagged float32 weight blob (tag 0). */
  weights32(values: number[]): this {
    this.chunks.push(Buffer.alloc(4));
    return this.raw(values);
  }

  /** A tagged float16 weight blob (tag 0x01306B47, data padded to 4 bytes). */
  weights16(values: number[]): this {
    const tag = Buffer.alloc(4);
    tag.writeUInt32LE(0x01306b47);
    const data = Buffer.alloc((values.length * 2 + 3) & ~3);
    values.forEach((v, i) => data.writeUInt16LE(halfBits(v), i * 2));
    this.chunks.push(tag, data);
    return this;
  }

  bytes(b: Buffer): this {
    this.chunks.push(b);
    return this;
  }

  get param(): string {
    return `7767517\n${this.lines.length} ${this.blobs.size}\n${this.lines.join('\n')}\n`;
  }

  get bin(): Buffer {
    return Buffer.concat(this.chunks);
  }

  onnx(precision: Precision = 'fp32'): Uint8Array {
    return convertNcnn(this.param, this.bin, { paramFile: 'test.param', binFile: 'test.bin' }).graph.serialize(precision);
  }
}

/** float16 bits of values that are exactly representable (test inputs only). */
function halfBits(v: number): number {
  if (v === 0) return Object.is(v, -0) ? 0x8000 : 0;
  const sign = v < 0 ? 0x8000 : 0;
  const a = Math.abs(v);
  const e = Math.floor(Math.log2(a));
  const mant = a / 2 ** e - 1;
  const m = Math.round(mant * 1024);
  if (Math.abs(mant * 1024 - m) > 1e-9) throw new Error(`${v} is not exact in float16`);
  return sign | ((e + 15) << 10) | m;
}

/** Runs a converted model on one uint8 HWC frame; returns the output frame and its dims. */
export async function runFrame(model: Uint8Array, frame: Uint8Array, h: number, w: number, batch = 1) {
  const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1 });
  try {
    const r = await session.run({ frames: new ort.Tensor('uint8', frame, [batch, h, w, 3]) });
    const t = r.upscaled!;
    return { data: t.data as Uint8Array, dims: t.dims as number[] };
  } finally {
    await session.release();
  }
}

/**
 * Checks uint8 outputs against values computed in float64 by hand (unit scale, before the
 * wrapper's x255, clamp and round). Where the exact value sits within 1e-3 of a rounding tie,
 * float32 arithmetic may land on either side, so both neighbours are accepted there; everywhere
 * else the byte must match exactly.
 */
export function expectBytes(actual: ArrayLike<number>, expectedUnit: number[], label = ''): void {
  if (actual.length !== expectedUnit.length) throw new Error(`${label}: ${actual.length} values, expected ${expectedUnit.length}`);
  const bad: string[] = [];
  for (let i = 0; i < expectedUnit.length; i++) {
    const v = Math.min(255, Math.max(0, expectedUnit[i]! * 255));
    const nearTie = Math.abs(v - Math.floor(v) - 0.5) < 1e-3;
    const ok = nearTie ? actual[i] === Math.floor(v) || actual[i] === Math.ceil(v) : actual[i] === Math.round(v);
    if (!ok) bad.push(`[${i}] got ${actual[i]}, expected ${v.toFixed(3)}`);
  }
  if (bad.length) throw new Error(`${label}: ${bad.length} values differ: ${bad.slice(0, 6).join('; ')}`);
}
