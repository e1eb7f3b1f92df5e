/**
 * A restricted reader for Python pickles, enough to load PyTorch state dicts and nothing more.
 *
 * Python's own unpickler calls whatever callable a pickle names (GLOBAL + REDUCE), which is how a
 * model file can run `os.system` on load. This reader never calls anything: it interprets the
 * opcodes itself, knows a short allowlist of globals (OrderedDict, torch's tensor rebuilders, the
 * storage type names) as inert tokens, and refuses any other global the moment its opcode is
 * read, before anything after it is even decoded. Opcodes that can only create arbitrary objects
 * (INST, OBJ, NEWOBJ, extension codes, out-of-band buffers) are refused the same way.
 */
import { ModelError } from '../../errors.js';

/** A Python tuple (lists are plain arrays, dicts are Maps). */
export class PyTuple {
  constructor(readonly items: unknown[]) {}
}

/** The storage element types a tensor can be rebuilt from, by torch's legacy storage name. */
export const STORAGE_TYPES = {
  FloatStorage: { dtype: 'float32', bytes: 4 },
  HalfStorage: { dtype: 'float16', bytes: 2 },
  BFloat16Storage: { dtype: 'bfloat16', bytes: 2 },
  DoubleStorage: { dtype: 'float64', bytes: 8 },
  LongStorage: { dtype: 'int64', bytes: 8 },
  IntStorage: { dtype: 'int32', bytes: 4 },
  ShortStorage: { dtype: 'int16', bytes: 2 },
  CharStorage: { dtype: 'int8', bytes: 1 },
  ByteStorage: { dtype: 'uint8', bytes: 1 },
  BoolStorage: { dtype: 'bool', bytes: 1 },
} as const;
export type StorageTypeName = keyof typeof STORAGE_TYPES;
export type StorageDtype = (typeof STORAGE_TYPES)[StorageTypeName]['dtype'];

/** An allowlisted global, kept as an inert token: only this reader gives it meaning. */
export class PyGlobal {
  constructor(readonly module: string, readonly name: string) {}
  get qualified(): string {
    return `${this.module}.${this.name}`;
  }
}

/** What a persistent id resolves to (torch: one storage in the archive). */
export type PersistentLoad = (pid: unknown, at: number) => unknown;

/** A tensor as torch's `_rebuild_tensor_v2` describes it: a view into a storage. */
export interface TensorView {
  kind: 'tensor';
  storage: unknown;
  offset: number;
  size: number[];
  stride: number[];
}

const REBUILD_TENSOR = new Set(['torch._utils._rebuild_tensor', 'torch._utils._rebuild_tensor_v2']);
const REBUILD_PARAMETER = new Set(['torch._utils._rebuild_parameter', 'torch._utils._rebuild_parameter_with_state']);

function isAllowedGlobal(module: string, name: string): boolean {
  if (module === 'collections' && name === 'OrderedDict') return true;
  if (module === 'torch._utils' && (REBUILD_TENSOR.has(`${module}.${name}`) || REBUILD_PARAMETER.has(`${module}.${name}`))) return true;
  return module === 'torch' && Object.hasOwn(STORAGE_TYPES, name);
}

export interface UnpickleOptions {
  /** Name of the pickle in messages, e.g. `model.pth:archive/data.pkl`. */
  source: string;
  persistentLoad?: PersistentLoad;
  /** Where to start reading; the legacy .pth format holds several pickles back to back. */
  offset?: number;
}

/**
 * Reads one pickle. Returns the value and the offset just after its STOP opcode. Anything outside
 * the restricted language is a ModelError naming the byte offset.
 */
export function unpickle(bytes: Uint8Array, opts: UnpickleOptions): { value: unknown; end: number } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const latin1 = new TextDecoder('latin1');
  let pos = opts.offset ?? 0;
  let opAt = pos;
  const stack: unknown[] = [];
  const marks: number[] = [];
  const memo = new Map<number, unknown>();

  const fail = (what: string): never => {
    throw new ModelError(`${opts.source}: ${what} (pickle byte ${opAt})`);
  };
  const need = (n: number) => {
    if (pos + n > bytes.length) fail(`truncated pickle: needs ${n} more bytes, ${bytes.length - pos} left`);
  };
  const u8 = () => (need(1), bytes[pos++]!);
  const u16 = () => (need(2), (pos += 2), view.getUint16(pos - 2, true));
  const u32 = () => (need(4), (pos += 4), view.getUint32(pos - 4, true));
  const i32 = () => (need(4), (pos += 4), view.getInt32(pos - 4, true));
  const u64 = (): number => {
    need(8);
    const v = view.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(bytes.length)) fail(`length ${v} is larger than the file`);
    return Number(v);
  };
  const take = (n: number): Uint8Array => {
    need(n);
    pos += n;
    return bytes.subarray(pos - n, pos);
  };
  const line = (): string => {
    const nl = bytes.indexOf(0x0a, pos);
    if (nl < 0) fail('truncated pickle: unterminated text argument');
    const s = latin1.decode(bytes.subarray(pos, nl));
    pos = nl + 1;
    return s;
  };
  const text = (b: Uint8Array): string => {
    try {
      return utf8.decode(b);
    } catch {
      return fail('invalid UTF-8 in a string');
    }
  };
  const pop = (): unknown => {
    if (stack.length === 0 || (marks.length > 0 && stack.length <= marks[marks.length - 1]!)) fail('stack underflow');
    return stack.pop();
  };
  const top = (): unknown => {
    if (stack.length === 0 || (marks.length > 0 && stack.length <= marks[marks.length - 1]!)) fail('stack underflow');
    return stack[stack.length - 1];
  };
  const popMark = (): unknown[] => {
    const m = marks.pop();
    if (m === undefined) fail('no MARK on the stack');
    return stack.splice(m!);
  };
  const longFrom = (b: Uint8Array): number | bigint => {
    if (b.length === 0) return 0;
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
    if (b[b.length - 1]! & 0x80) v -= 1n << BigInt(8 * b.length);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };
  const memoGet = (i: number) => {
    if (!memo.has(i)) fail(`memo entry ${i} is not defined`);
    return memo.get(i);
  };
  const global = (module: string, name: string): PyGlobal => {
    if (!isAllowedGlobal(module, name)) {
      fail(`refusing to load: the pickle references ${module}.${name}, which is neither a tensor nor a plain container; esrvid never runs code from a model file`);
    }
    return new PyGlobal(module, name);
  };
  const setItems = (d: unknown, kv: unknown[]) => {
    if (!(d instanceof Map)) fail('SETITEM on something that is not a dict');
    if (kv.length % 2 !== 0) fail('SETITEMS with an odd number of values');
    for (let i = 0; i < kv.length; i += 2) (d as Map<unknown, unknown>).set(kv[i], kv[i + 1]);
  };
  const appendItems = (l: unknown, items: unknown[]) => {
    if (!Array.isArray(l)) fail('APPEND on something that is not a list');
    (l as unknown[]).push(...items);
  };
  const reduce = (fn: unknown, args: unknown): unknown => {
    if (!(fn instanceof PyGlobal)) return fail('REDUCE on something that is not an allowed global');
    if (!(args instanceof PyTuple)) return fail(`${fn.qualified} called with arguments that are not a tuple`);
    const a = args.items;
    const q = fn.qualified;
    if (q === 'collections.OrderedDict') {
      const d = new Map<unknown, unknown>();
      if (a.length === 0) return d;
      if (a.length === 1 && Array.isArray(a[0])) {
        for (const pair of a[0] as unknown[]) {
          if (!(pair instanceof PyTuple) || pair.items.length !== 2) fail('OrderedDict built from something other than (key, value) pairs');
          d.set((pair as PyTuple).items[0], (pair as PyTuple).items[1]);
        }
        return d;
      }
      return fail('OrderedDict built from unexpected arguments');
    }
    if (REBUILD_TENSOR.has(q)) {
      const [storage, offset, size, stride] = a;
      const ints = (v: unknown, what: string): number[] => {
        if (!(v instanceof PyTuple) || !v.items.every((x) => typeof x === 'number' && Number.isInteger(x) && x >= 0)) {
          fail(`tensor ${what} is not a tuple of non-negative integers`);
        }
        return (v as PyTuple).items as number[];
      };
      if (a.length < 4) fail(`${q} with ${a.length} arguments`);
      if (typeof offset !== 'number' || !Number.isInteger(offset) || offset < 0) fail('tensor storage offset is not a non-negative integer');
      const t: TensorView = { kind: 'tensor', storage, offset: offset as number, size: ints(size, 'size'), stride: ints(stride, 'stride') };
      if (t.size.length !== t.stride.length) fail(`tensor size has ${t.size.length} dimensions but stride ${t.stride.length}`);
      return t;
    }
    if (REBUILD_PARAMETER.has(q)) {
      if (a.length < 1 || (a[0] as TensorView)?.kind !== 'tensor') fail(`${q} of something that is not a tensor`);
      return a[0];
    }
    // Storage type names are only meaningful inside persistent ids.
    return fail(`${q} cannot be called`);
  };

  for (;;) {
    opAt = pos;
    const op = u8();
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) fail('pickle protocol newer than 5');
        break;
      case 0x95: // FRAME: a length hint only
        u64();
        break;
      case 0x2e: // STOP
        if (stack.length !== 1 || marks.length !== 0) fail(`STOP with ${stack.length} values on the stack`);
        return { value: stack[0], end: pos };
      case 0x28: // MARK
        marks.push(stack.length);
        break;
      case 0x30: // POP
        if (marks.length > 0 && marks[marks.length - 1] === stack.length) marks.pop();
        else pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4a: // BININT
        stack.push(i32());
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x8a: // LONG1
        stack.push(longFrom(take(u8())));
        break;
      case 0x8b: { // LONG4
        const n = i32();
        if (n < 0) fail('negative LONG4 length');
        stack.push(longFrom(take(n)));
        break;
      }
      case 0x49: { // INT (text): also the protocol-0 booleans
        const s = line();
        if (s === '01') stack.push(true);
        else if (s === '00') stack.push(false);
        else if (/^[-+]?\d+$/.test(s)) stack.push(Number(s));
        else fail(`bad INT "${s.slice(0, 20)}"`);
        break;
      }
      case 0x4c: { // LONG (text)
        const s = line().replace(/L$/, '');
        if (!/^[-+]?\d+$/.test(s)) fail(`bad LONG "${s.slice(0, 20)}"`);
        const v = BigInt(s);
        stack.push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
        break;
      }
      case 0x47: // BINFLOAT (big-endian)
        need(8);
        stack.push(view.getFloat64(pos, false));
        pos += 8;
        break;
      case 0x46: { // FLOAT (text)
        const v = Number(line());
        if (Number.isNaN(v)) fail('bad FLOAT');
        stack.push(v);
        break;
      }
      case 0x58: // BINUNICODE
        stack.push(text(take(u32())));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(text(take(u8())));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(text(take(u64())));
        break;
      case 0x54: { // BINSTRING (Python 2 str)
        const n = i32();
        if (n < 0) fail('negative BINSTRING length');
        stack.push(latin1.decode(take(n)));
        break;
      }
      case 0x55: // SHORT_BINSTRING
        stack.push(latin1.decode(take(u8())));
        break;
      case 0x42: // BINBYTES
        stack.push(new Uint8Array(take(u32())));
        break;
      case 0x43: // SHORT_BINBYTES
        stack.push(new Uint8Array(take(u8())));
        break;
      case 0x8e: // BINBYTES8
        stack.push(new Uint8Array(take(u64())));
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push(new PyTuple([]));
        break;
      case 0x85: // TUPLE1
        stack.push(new PyTuple([pop()]));
        break;
      case 0x86: { // TUPLE2
        const b = pop();
        stack.push(new PyTuple([pop(), b]));
        break;
      }
      case 0x87: { // TUPLE3
        const c = pop();
        const b = pop();
        stack.push(new PyTuple([pop(), b, c]));
        break;
      }
      case 0x74: // TUPLE
        stack.push(new PyTuple(popMark()));
        break;
      case 0x5d: // EMPTY_LIST
      case 0x8f: // EMPTY_SET: sets are kept as lists, they never matter for weights
        stack.push([]);
        break;
      case 0x6c: // LIST
      case 0x91: // FROZENSET
        stack.push(popMark());
        break;
      case 0x61: { // APPEND
        const v = pop();
        appendItems(top(), [v]);
        break;
      }
      case 0x65: // APPENDS
      case 0x90: { // ADDITEMS
        const items = popMark();
        appendItems(top(), items);
        break;
      }
      case 0x7d: // EMPTY_DICT
        stack.push(new Map());
        break;
      case 0x64: { // DICT
        const d = new Map();
        setItems(d, popMark());
        stack.push(d);
        break;
      }
      case 0x73: { // SETITEM
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: { // SETITEMS
        const kv = popMark();
        setItems(top(), kv);
        break;
      }
      case 0x70: // PUT (text)
        memo.set(Number(line()), top());
        break;
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x67: // GET (text)
        stack.push(memoGet(Number(line())));
        break;
      case 0x68: // BINGET
        stack.push(memoGet(u8()));
        break;
      case 0x6a: // LONG_BINGET
        stack.push(memoGet(u32()));
        break;
      case 0x63: { // GLOBAL "module\nname\n"
        const module = line();
        const name = line();
        stack.push(global(module, name));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL with names that are not strings');
        stack.push(global(module as string, name as string));
        break;
      }
      case 0x52: { // REDUCE
        const args = pop();
        const fn = pop();
        stack.push(reduce(fn, args));
        break;
      }
      case 0x62: { // BUILD: state for an OrderedDict (torch's `_metadata`) is ignored; nothing else may be built
        const state = pop();
        const obj = top();
        if (!(obj instanceof Map)) fail('BUILD on an object that is not a dict');
        if (!(state instanceof Map) && state !== null && !(state instanceof PyTuple)) fail('BUILD with an unexpected state');
        break;
      }
      case 0x51: { // BINPERSID
        const pid = pop();
        if (!opts.persistentLoad) fail('persistent id in a pickle that may not have one');
        stack.push(opts.persistentLoad!(pid, opAt));
        break;
      }
      case 0x50: // PERSID (text)
        fail('text persistent ids are not used by PyTorch');
        break;
      case 0x69: // INST
      case 0x6f: // OBJ
      case 0x81: // NEWOBJ
      case 0x92: // NEWOBJ_EX
        fail(`refusing to load: the pickle creates an arbitrary object (opcode 0x${op.toString(16)}); esrvid never runs code from a model file`);
        break;
      case 0x82: // EXT1
      case 0x83: // EXT2
      case 0x84: // EXT4
        fail('refusing to load: the pickle uses the copyreg extension registry (a global by number)');
        break;
      case 0x96: // BYTEARRAY8
        stack.push(new Uint8Array(take(u64())));
        break;
      case 0x97: // NEXT_BUFFER
      case 0x98: // READONLY_BUFFER
        fail('out-of-band pickle buffers are not supported');
        break;
      case 0x53: // STRING (text, quoted)
      case 0x56: // UNICODE (text, raw-unicode-escape)
        fail('protocol-0 text strings are not used by PyTorch checkpoints');
        break;
      default:
        fail(`unknown pickle opcode 0x${op.toString(16).padStart(2, '0')}`);
    }
  }
}
