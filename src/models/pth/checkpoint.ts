/**
 * PyTorch checkpoints (.pth/.pt) -> a state dict, without PyTorch and without running anything.
 *
 * Two layouts exist:
 * - zip (torch.save since 1.6): `<name>/data.pkl` is the pickled object; each tensor's storage is
 *   a persistent id ('storage', torch.FloatStorage, key, location, numel) whose bytes are the
 *   entry `<name>/data/<key>`; `<name>/byteorder` says "little" (absent in older files: little).
 * - legacy (before 1.6): four pickles back to back (magic number, protocol 1001, system info, the
 *   object), then a pickled list of storage keys, then for each key its element count (int64)
 *   and raw bytes.
 * Both are read with the restricted pickle reader; storages and tensors are checked against each
 * other, and anything left unexplained is an error naming it.
 */
import { ModelError } from '../../errors.js';
import { DTYPE_BYTES, viewTensor, type StateDict, type StateTensor, type TensorDtype } from '../arch/state-dict.js';
import { PyGlobal, PyTuple, STORAGE_TYPES, unpickle, type StorageTypeName, type TensorView } from './pickle.js';
import { readZipEntries } from './zip.js';

const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL = 1001;

export interface Checkpoint {
  format: 'pth-zip' | 'pth-legacy';
  tensors: StateDict;
  /** Where in the pickled object the state dict was found ('' = the top level, else e.g. `params_ema`). */
  container: string;
}

interface StorageRef {
  kind: 'storage';
  key: string;
  dtype: TensorDtype;
  numel: number;
  /** Element offset into the root storage (legacy storage views). */
  viewOffset: number;
  /** Filled once the storage's bytes are located. */
  bytes?: Uint8Array;
}

const isZip = (b: Uint8Array) => b.length >= 4 && b[0] === 0x50 && b[1] === 0x4b && (b[2] === 0x03 || b[2] === 0x05) && (b[3] === 0x04 || b[3] === 0x06);

export async function readPth(bytes: Uint8Array, source: string): Promise<Checkpoint> {
  if (isZip(bytes)) return readZipPth(bytes, source);
  if (bytes.length >= 2 && bytes[0] === 0x80) return readLegacyPth(bytes, source);
  if (bytes.length > 262 && new TextDecoder().decode(bytes.subarray(257, 262)) === 'ustar') {
    throw new ModelError(`${source}: a tar-format checkpoint (PyTorch before 0.4) is not supported`, 'load and save it again with a recent PyTorch');
  }
  throw new ModelError(`${source}: not a PyTorch checkpoint (neither a zip archive nor a pickle)`);
}

/** Parses a persistent id tuple into a storage reference (both layouts share its first five items). */
function storageRef(pid: unknown, source: string, at: number, legacy: boolean): StorageRef & { viewKey?: string } {
  const bad = (what: string): never => {
    throw new ModelError(`${source}: persistent id at pickle byte ${at} ${what}`);
  };
  if (!(pid instanceof PyTuple)) return bad('is not a tuple');
  const [tag, type, key, , n, view] = pid.items;
  if (tag !== 'storage') return bad(`is a "${String(tag)}", not a storage`);
  if (!(type instanceof PyGlobal) || type.module !== 'torch' || !Object.hasOwn(STORAGE_TYPES, type.name)) return bad('has no storage type');
  if (typeof key !== 'string') return bad('has no storage key');
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) return bad('has no element count');
  const dtype = STORAGE_TYPES[(type as PyGlobal).name as StorageTypeName].dtype as TensorDtype;
  const ref: StorageRef & { viewKey?: string } = { kind: 'storage', key, dtype, numel: n as number, viewOffset: 0 };
  if (legacy && view !== null && view !== undefined) {
    // (view_key, offset, view_size): a view into the root storage `key`.
    if (!(view instanceof PyTuple) || typeof view.items[1] !== 'number' || typeof view.items[2] !== 'number') return bad('has a malformed view');
    const [viewKey, offset, size] = (view as PyTuple).items as [string, number, number];
    if (offset + size > (n as number)) bad(`views elements ${offset}..${offset + size} of a storage of ${n}`);
    ref.viewKey = viewKey;
    ref.viewOffset = offset;
  }
  return ref;
}

async function readZipPth(bytes: Uint8Array, source: string): Promise<Checkpoint> {
  const entries = await readZipEntries(bytes, source);
  const pickles = [...entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (pickles.length !== 1) {
    throw new ModelError(`${source}: expected one <name>/data.pkl in the archive, found ${pickles.length === 0 ? 'none' : pickles.join(', ')}`,
      'is it a PyTorch checkpoint?');
  }
  const prefix = pickles[0]!.slice(0, -'data.pkl'.length);
  const order = entries.get(`${prefix}byteorder`)?.toString('latin1').trim();
  if (order !== undefined && order !== 'little') {
    throw new ModelError(`${source}: storages are ${order}-endian; only little-endian checkpoints are supported`);
  }
  const refs = new Map<string, StorageRef>();
  const { value } = unpickle(entries.get(pickles[0]!)!, {
    source: `${source}:${pickles[0]}`,
    persistentLoad: (pid, at) => {
      const ref = storageRef(pid, source, at, false);
      const seen = refs.get(ref.key);
      if (seen) {
        if (seen.dtype !== ref.dtype || seen.numel !== ref.numel) {
          throw new ModelError(`${source}: storage ${ref.key} is described twice with different types or sizes`);
        }
        return seen;
      }
      const data = entries.get(`${prefix}data/${ref.key}`);
      if (!data) throw new ModelError(`${source}: storage ${ref.key} (${ref.numel} ${ref.dtype} values) is missing from the archive (no ${prefix}data/${ref.key})`);
      const expected = ref.numel * DTYPE_BYTES[ref.dtype];
      if (data.length !== expected) {
        throw new ModelError(`${source}: storage ${prefix}data/${ref.key} holds ${data.length} bytes, but the pickle describes ${ref.numel} ${ref.dtype} values (${expected} bytes)`);
      }
      ref.bytes = data;
      refs.set(ref.key, ref);
      return ref;
    },
  });
  const { tensors, container } = selectStateDict(value, source);
  return { format: 'pth-zip', tensors, container };
}

async function readLegacyPth(bytes: Uint8Array, source: string): Promise<Checkpoint> {
  const plain = (offset: number, what: string) => unpickle(bytes, { source: `${source} (${what})`, offset });
  const magic = plain(0, 'magic number');
  if (magic.value !== LEGACY_MAGIC) {
    throw new ModelError(`${source}: a pickle but not a PyTorch checkpoint (no torch.save magic number)`,
      'esrvid reads checkpoints written by torch.save, not arbitrary pickles');
  }
  const protocol = plain(magic.end, 'protocol version');
  if (protocol.value !== LEGACY_PROTOCOL) throw new ModelError(`${source}: unsupported legacy checkpoint protocol ${String(protocol.value)}`);
  const sysInfo = plain(protocol.end, 'system info');
  if (!(sysInfo.value instanceof Map) || sysInfo.value.get('little_endian') !== true) {
    throw new ModelError(`${source}: written on a big-endian machine; only little-endian checkpoints are supported`);
  }

  const roots = new Map<string, StorageRef>();
  const views: (StorageRef & { viewKey?: string })[] = [];
  const main = unpickle(bytes, {
    source: `${source} (object)`,
    offset: sysInfo.end,
    persistentLoad: (pid, at) => {
      const ref = storageRef(pid, source, at, true);
      const seen = roots.get(ref.key);
      if (seen && (seen.dtype !== ref.dtype || seen.numel !== ref.numel)) {
        throw new ModelError(`${source}: storage ${ref.key} is described twice with different types or sizes`);
      }
      if (!seen) roots.set(ref.key, { ...ref, viewOffset: 0 });
      views.push(ref);
      return ref;
    },
  });
  const keysPickle = plain(main.end, 'storage keys');
  const keys = keysPickle.value;
  if (!Array.isArray(keys) || !keys.every((k) => typeof k === 'string')) throw new ModelError(`${source}: the storage key list is malformed`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = keysPickle.end;
  for (const key of keys as string[]) {
    const ref = roots.get(key);
    if (!ref) throw new ModelError(`${source}: storage ${key} is in the file but no tensor uses it`);
    if (pos + 8 > bytes.length) throw new ModelError(`${source}: truncated: storage ${key} starts past the end of the file`);
    const n = dv.getBigInt64(pos, true);
    if (n !== BigInt(ref.numel)) {
      throw new ModelError(`${source}: storage ${key} holds ${n} values, but the pickle describes ${ref.numel}`);
    }
    const size = ref.numel * DTYPE_BYTES[ref.dtype];
    if (pos + 8 + size > bytes.length) {
      throw new ModelError(`${source}: truncated: storage ${key} needs ${size} bytes at offset ${pos + 8}, only ${bytes.length - pos - 8} left`);
    }
    ref.bytes = bytes.subarray(pos + 8, pos + 8 + size);
    pos += 8 + size;
  }
  for (const [key, ref] of roots) {
    if (!ref.bytes) throw new ModelError(`${source}: storage ${key} is used by a tensor but missing from the file`);
  }
  if (pos !== bytes.length) throw new ModelError(`${source}: ${bytes.length - pos} bytes left over after the last storage; the file is damaged`);
  // Views share their root's bytes at an element offset.
  for (const v of views) v.bytes = roots.get(v.key)!.bytes;
  const { tensors, container } = selectStateDict(main.value, source);
  return { format: 'pth-legacy', tensors, container };
}

const isTensor = (v: unknown): v is TensorView => (v as TensorView)?.kind === 'tensor';

/** Containers trainers wrap state dicts in, most preferred first (BasicSR keeps an EMA copy). */
const CONTAINER_KEYS = ['params_ema', 'params-ema', 'params', 'state_dict', 'model_state_dict', 'model', 'net_g', 'generator', 'netG', 'g'];

/**
 * Finds the state dict in the unpickled object: the top-level dict when it holds tensors, else the
 * first of the usual wrapper keys that does. DataParallel's `module.` prefix is removed.
 */
export function selectStateDict(top: unknown, source: string): { tensors: StateDict; container: string } {
  const hasTensors = (v: unknown): v is Map<unknown, unknown> => v instanceof Map && [...v.values()].some(isTensor);
  let dict: Map<unknown, unknown> | undefined;
  let container = '';
  if (hasTensors(top)) dict = top;
  else if (top instanceof Map) {
    for (const k of CONTAINER_KEYS) {
      if (hasTensors(top.get(k))) {
        dict = top.get(k) as Map<unknown, unknown>;
        container = k;
        break;
      }
    }
    if (!dict) {
      const candidates = [...top.entries()].filter(([, v]) => hasTensors(v));
      if (candidates.length === 1) [container, dict] = [String(candidates[0]![0]), candidates[0]![1] as Map<unknown, unknown>];
    }
  }
  if (!dict) {
    const what = top instanceof Map ? `a dict with keys ${[...top.keys()].slice(0, 8).map(String).join(', ')}` : describe(top);
    throw new ModelError(`${source}: no state dict (a dict of tensors) found; the checkpoint holds ${what}`);
  }
  const entries = [...dict.entries()].filter(([, v]) => isTensor(v)) as [unknown, TensorView][];
  const strip = entries.every(([k]) => typeof k === 'string' && k.startsWith('module.'));
  const tensors: StateDict = new Map();
  for (const [k, t] of entries) {
    if (typeof k !== 'string') throw new ModelError(`${source}: a state dict key is not a string`);
    const name = strip ? k.slice('module.'.length) : k;
    const ref = t.storage as StorageRef;
    if (ref?.kind !== 'storage' || !ref.bytes) throw new ModelError(`${source}: tensor ${name} has no storage`);
    tensors.set(name, tensorOf(name, t, ref, source));
  }
  return { tensors, container };
}

function tensorOf(name: string, t: TensorView, ref: StorageRef, source: string): StateTensor {
  return viewTensor({
    name,
    source,
    bytes: ref.bytes!,
    storageByteOffset: 0,
    storageNumel: ref.bytes!.byteLength / DTYPE_BYTES[ref.dtype],
    dtype: ref.dtype,
    offset: ref.viewOffset + t.offset,
    shape: t.size,
    stride: t.stride,
  });
}

function describe(v: unknown): string {
  if (v === null) return 'None';
  if (Array.isArray(v)) return `a list of ${v.length}`;
  if (v instanceof PyTuple) return `a tuple of ${v.items.length}`;
  if (isTensor(v)) return 'a single tensor';
  return typeof v;
}
