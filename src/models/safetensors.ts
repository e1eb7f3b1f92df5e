/**
 * .safetensors -> a state dict. The format is an 8-byte little-endian header length, a JSON header
 * `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}` and one byte buffer
 * the offsets index into. Written here rather than taken from a package: the npm libraries for it
 * fetch from the Hugging Face hub, and the whole format is the checks below, which follow the
 * reference implementation's (sizes match shapes, no overlaps and no holes, nothing past the end).
 */
import { ModelError } from '../errors.js';
import { DTYPE_BYTES, numel, viewTensor, type StateDict, type TensorDtype } from './arch/state-dict.js';

const DTYPES: Record<string, TensorDtype> = {
  F32: 'float32', F16: 'float16', BF16: 'bfloat16', F64: 'float64',
  I64: 'int64', I32: 'int32', I16: 'int16', I8: 'int8', U8: 'uint8', BOOL: 'bool',
};

/** Headers are small; anything this large is not a safetensors file. */
const MAX_HEADER = 100 << 20;

export function readSafetensors(bytes: Uint8Array, source: string): { tensors: StateDict; metadata: Record<string, string> } {
  const fail = (what: string): never => {
    throw new ModelError(`${source}: ${what}`);
  };
  if (bytes.length < 8) fail('too short to be a safetensors file');
  const headerLen = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (headerLen > BigInt(Math.min(MAX_HEADER, bytes.length - 8))) {
    fail(`header length ${headerLen} is larger than the file (${bytes.length} bytes): truncated or not a safetensors file`);
  }
  const start = 8 + Number(headerLen);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, start)));
  } catch (err) {
    fail(`header is not valid JSON (${(err as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('header is not a JSON object');
  const dataLen = bytes.length - start;
  const tensors: StateDict = new Map();
  let metadata: Record<string, string> = {};
  const spans: [number, number, string][] = [];
  for (const [name, info] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      metadata = (info ?? {}) as Record<string, string>;
      continue;
    }
    const t = info as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const dtype = typeof t?.dtype === 'string' ? DTYPES[t.dtype] : undefined;
    if (!dtype) fail(`tensor ${name} has unsupported dtype ${JSON.stringify(t?.dtype)}`);
    const shape = t.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) fail(`tensor ${name} has a malformed shape`);
    const off = t.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isSafeInteger(d) && d >= 0) || off[0] > off[1]) {
      fail(`tensor ${name} has malformed data_offsets`);
    }
    const [begin, end] = off as [number, number];
    const expected = numel(shape as number[]) * DTYPE_BYTES[dtype!];
    if (end - begin !== expected) fail(`tensor ${name} [${shape}] ${t.dtype} needs ${expected} bytes, its data_offsets span ${end - begin}`);
    if (end > dataLen) fail(`tensor ${name} ends at byte ${end} of a ${dataLen}-byte data buffer: the file is truncated`);
    spans.push([begin, end, name]);
    const dims = shape as number[];
    const stride = dims.map((_, i) => numel(dims.slice(i + 1)));
    tensors.set(name, viewTensor({
      name, source, bytes, storageByteOffset: start + begin, storageNumel: numel(dims), dtype: dtype!, offset: 0, shape: dims, stride,
    }));
  }
  spans.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let covered = 0;
  for (const [begin, end, name] of spans) {
    if (begin < covered) fail(`tensor ${name} overlaps another tensor's data`);
    if (begin > covered) fail(`${begin - covered} bytes before tensor ${name} belong to no tensor`);
    covered = end;
  }
  if (covered !== dataLen) fail(`${dataLen - covered} bytes after the last tensor belong to no tensor`);
  return { tensors, metadata };
}
