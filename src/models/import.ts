/**
 * `esrvid models import`: bring your own ESRGAN-family model. A PyTorch checkpoint (.pth),
 * a .safetensors file, an ncnn .param + .bin pair or an .onnx file is read without running
 * anything from it, converted to esrvid's uint8 frame model (float32 and float16), tried once
 * in ONNX Runtime to confirm it loads and to measure its scale, and only then written to the
 * models directory and added to the local registry. Every failure is one line, and a failed
 * import leaves nothing behind.
 */
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import { EsrvidError, ModelError, OutputError, UsageError } from '../errors.js';
import { buildFromStateDict } from './arch/build.js';
import { wrapForeignOnnx } from './arch/foreign-onnx.js';
import { IMPORTER_VERSION, loadLocalRegistry, saveLocalRegistry, type ImportFormat, type ImportManifest, type ImportSource, type ImportedModel } from './local-registry.js';
import { convertNcnn } from './ncnn/to-onnx.js';
import { parseParam } from './ncnn/param.js';
import type { GraphBuilder, Precision } from './onnx/graph-builder.js';
import { readPth } from './pth/checkpoint.js';
import { loadRegistry } from './registry.js';
import { readSafetensors } from './safetensors.js';
import { manifestPath, modelsDir, onnxPath, sha256, writeFileAtomic } from './store.js';

export interface ImportOptions {
  /** The name to use with --model (default: the file name without its extension). */
  name?: string;
  /** The ncnn .bin for a .param (default: beside it, same name). */
  bin?: string;
  /** Replace an imported model of the same name. */
  force?: boolean;
  dir?: string;
  onEvent?: (e: { kind: 'read' | 'convert' | 'check' | 'write'; file: string }) => void;
}

export interface ImportResult {
  model: ImportedModel;
  manifest: ImportManifest;
  /** Architecture details as detected (for state dicts: blocks, features, ...). */
  details: Record<string, string | number>;
  warnings: string[];
  replaced: boolean;
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,79}$/;
const RESERVED = new Set(['auto', 'all']);

export function defaultModelName(file: string): string {
  return basename(file).replace(/\.(pth|pt|ckpt|safetensors|param|onnx)$/i, '');
}

/** A name usable as `--model NAME`: not a path, not an .onnx file name, not a registry model. */
export function validateModelName(name: string, given: boolean): void {
  const how = given ? 'choose another with --name' : 'give one with --name';
  if (!NAME_RE.test(name)) {
    throw new UsageError(`"${name}" cannot be a model name (letters, digits, ".", "_", "+" and "-", starting with a letter or digit, at most 80)`, how);
  }
  if (/\.onnx$/i.test(name) || RESERVED.has(name)) throw new UsageError(`"${name}" cannot be a model name: --model would read it as ${RESERVED.has(name) ? 'a keyword' : 'a file'}`, how);
  if (loadRegistry().models.some((m) => m.name === name)) throw new UsageError(`"${name}" is a built-in registry model`, how);
}

export function detectFormat(file: string, head: Uint8Array): ImportFormat {
  const ext = extname(file).toLowerCase();
  if (ext === '.safetensors') return 'safetensors';
  if (ext === '.param') return 'ncnn';
  if (ext === '.onnx') return 'onnx';
  if (ext === '.pth' || ext === '.pt' || ext === '.ckpt') return 'pth';
  // No telling extension: sniff. A zip or a pickle is PyTorch; "7767517" starts an ncnn param.
  if ((head[0] === 0x50 && head[1] === 0x4b) || head[0] === 0x80) return 'pth';
  if (new TextDecoder().decode(head.subarray(0, 7)) === '7767517') return 'ncnn';
  throw new ModelError(`${file}: unrecognised model format`, 'esrvid imports .pth, .safetensors, ncnn .param (+ .bin) and .onnx files');
}

interface Converted {
  /** Built from a description (both precisions), or a foreign ONNX file kept as is. */
  graph?: GraphBuilder;
  onnx?: Uint8Array;
  architecture: string;
  /** Known from the architecture; otherwise measured by the trial run. */
  scale?: number;
  parameterCount: number;
  details: Record<string, string | number>;
  container?: string;
  companion?: ImportSource['companion'];
  warnings: string[];
}

async function readInput(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ModelError(code === 'ENOENT' ? `model file ${path} does not exist` : `cannot read ${path}: ${(err as Error).message}`, undefined, err);
  }
}

async function convert(path: string, format: ImportFormat, bytes: Buffer, opts: ImportOptions): Promise<Converted> {
  const source = basename(path);
  switch (format) {
    case 'pth':
    case 'safetensors': {
      const { tensors, container } = format === 'pth'
        ? await readPth(bytes, source)
        : { tensors: readSafetensors(bytes, source).tensors, container: '' };
      const built = buildFromStateDict(tensors, source);
      const a = built.arch;
      const details: Record<string, string | number> = a.type === 'RRDBNet'
        ? { type: a.type, layout: a.layout, blocks: a.blocks, features: a.features, growth: a.growth, inChannels: a.inChannels, unshuffle: a.unshuffle, scale: a.scale }
        : { type: a.type, convs: a.convs, features: a.features, inChannels: a.inChannels, scale: a.scale };
      return {
        graph: built.graph, architecture: built.architecture, scale: built.scale, parameterCount: built.parameterCount,
        details, container: container || undefined, warnings: [],
      };
    }
    case 'ncnn': {
      const binPath = resolve(opts.bin ?? join(dirname(path), `${basename(path, extname(path))}.bin`));
      if (!existsSync(binPath)) throw new ModelError(`${source}: its weights ${binPath} do not exist`, 'give the .bin with --bin');
      const bin = await readInput(binPath);
      const text = bytes.toString('utf8');
      const converted = convertNcnn(text, bin, { paramFile: source, binFile: basename(binPath) });
      const types = new Map<string, number>();
      for (const l of parseParam(text, source).layers) types.set(l.type, (types.get(l.type) ?? 0) + 1);
      const like = types.has('PReLU') && types.has('PixelShuffle') && !types.has('Concat') ? 'SRVGGNetCompact-like '
        : types.has('Concat') && types.has('Interp') ? 'RRDBNet-like ' : '';
      const list = [...types].filter(([t]) => t !== 'Input' && t !== 'Split').map(([t, n]) => (n > 1 ? `${t} x${n}` : t)).join(', ');
      return {
        graph: converted.graph, architecture: `${like}ncnn graph: ${converted.layerCount} layers (${list})`, parameterCount: converted.parameterCount,
        details: { type: 'ncnn', layers: converted.layerCount }, companion: { file: binPath, sha256: sha256(bin), bytes: bin.length }, warnings: [],
      };
    }
    case 'onnx': {
      const w = wrapForeignOnnx(bytes, source);
      return { onnx: w.bytes, architecture: w.architecture, parameterCount: w.parameterCount, details: { type: 'onnx', input: w.input }, warnings: w.warnings };
    }
  }
}

/** Trial size: odd on both sides, because frames (and tiles) can be. */
const TRIAL = { h: 17, w: 23 };

/**
 * Loads the model in ONNX Runtime and runs one small frame: proves the graph is valid and gives
 * its scale as the ratio of output to input size.
 */
export async function measureScale(bytes: Uint8Array, source: string): Promise<number> {
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
  } catch (err) {
    throw new ModelError(`${source}: ONNX Runtime cannot load the converted model: ${(err as Error).message.split('\n')[0]}`, undefined, err);
  }
  try {
    const { h, w } = TRIAL;
    const pixels = new Uint8Array(h * w * 3).map((_, i) => (i * 37) % 256);
    let dims: readonly number[];
    try {
      const r = await session.run({ [session.inputNames[0]!]: new ort.Tensor('uint8', pixels, [1, h, w, 3]) });
      dims = r[session.outputNames[0]!]!.dims;
    } catch (err) {
      throw new ModelError(`${source}: a trial run on a ${w}x${h} frame failed: ${(err as Error).message.split('\n')[0]}`,
        'the model must accept any height and width', err);
    }
    const scale = dims[1]! / h;
    if (dims.length !== 4 || dims[0] !== 1 || dims[3] !== 3 || !Number.isInteger(scale) || scale < 1 || dims[2] !== w * scale) {
      throw new ModelError(`${source}: cannot infer the scale: a ${w}x${h} RGB frame gave an output of shape [${dims.join(',')}], not [1,${h}*s,${w}*s,3] for a whole s >= 1`);
    }
    return scale;
  } finally {
    await session.release();
  }
}

export async function importModel(file: string, opts: ImportOptions = {}): Promise<ImportResult> {
  const path = resolve(file);
  const dir = opts.dir ?? modelsDir();
  const name = opts.name ?? defaultModelName(path);
  validateModelName(name, opts.name !== undefined);
  const existing = (await loadLocalRegistry(dir)).models.find((m) => m.name === name);
  if (existing && !opts.force) {
    throw new UsageError(`a model named "${name}" is already imported (from ${existing.source.file})`, 'use --force to replace it, or --name to choose another name');
  }

  opts.onEvent?.({ kind: 'read', file: path });
  const bytes = await readInput(path);
  if (bytes.length === 0) throw new ModelError(`${basename(path)}: the file is empty`);
  const format = detectFormat(path, bytes.subarray(0, 16));
  opts.onEvent?.({ kind: 'convert', file: path });
  const started = performance.now();
  const c = await convert(path, format, bytes, opts);
  const source: ImportSource = { file: path, format, sha256: sha256(bytes), bytes: bytes.length };
  if (c.container) source.container = c.container;
  if (c.companion) source.companion = c.companion;

  let files: Record<Precision, Uint8Array>;
  if (c.graph) {
    Object.assign(c.graph.metadata, {
      'esrvid.model': name, 'esrvid.architecture': c.architecture, 'esrvid.source': basename(path), 'esrvid.source_sha256': source.sha256,
    });
    if (c.scale) c.graph.metadata['esrvid.scale'] = String(c.scale);
    files = { fp32: c.graph.serialize('fp32'), fp16: c.graph.serialize('fp16') };
  } else {
    // A foreign graph keeps its own precision: both files are that graph.
    files = { fp32: c.onnx!, fp16: c.onnx! };
  }
  opts.onEvent?.({ kind: 'check', file: path });
  const scale = await measureScale(files.fp32, basename(path));
  if (c.scale !== undefined && scale !== c.scale) {
    throw new Error(`internal: the ${c.architecture} graph built for x${c.scale} measured x${scale}`);
  }
  if (c.graph) {
    // The metadata is part of the file: serialize again only if the measured scale was new.
    if (!c.scale) {
      c.graph.metadata['esrvid.scale'] = String(scale);
      files = { fp32: c.graph.serialize('fp32'), fp16: c.graph.serialize('fp16') };
    }
  }

  const model: ImportedModel = {
    name,
    architecture: c.architecture,
    scale,
    description: `imported from ${basename(path)}${c.container ? ` (state dict "${c.container}")` : ''}`,
    parameterCount: c.parameterCount,
    source,
    importedAt: new Date().toISOString(),
  };
  const manifest: ImportManifest = {
    name,
    scale,
    converter: IMPORTER_VERSION,
    source,
    files: {} as ImportManifest['files'],
    parameterCount: c.parameterCount,
    convertMs: Math.round(performance.now() - started),
    createdAt: model.importedAt,
  };

  opts.onEvent?.({ kind: 'write', file: path });
  const written: string[] = [];
  try {
    for (const p of ['fp32', 'fp16'] as Precision[]) {
      const out = onnxPath(name, p, dir);
      await writeFileAtomic(out, files[p]);
      written.push(out);
      manifest.files[p] = { file: basename(out), bytes: files[p].byteLength, sha256: sha256(files[p]) };
    }
    await writeFileAtomic(manifestPath(name, dir), JSON.stringify(manifest, null, 2) + '\n');
    written.push(manifestPath(name, dir));
    // The registry entry goes last: it is what makes the model usable. Re-read it so an import
    // finished meanwhile under another name is kept.
    const reg = await loadLocalRegistry(dir);
    reg.models = [...reg.models.filter((m) => m.name !== name), model].sort((a, b) => a.name.localeCompare(b.name));
    await saveLocalRegistry(reg, dir);
  } catch (err) {
    // A new model leaves nothing behind; a replaced one keeps its (now stale) entry, which its
    // manifest check then reports as needing a re-import.
    if (!existing) await Promise.all(written.map((f) => rm(f, { force: true })));
    if (err instanceof EsrvidError) throw err;
    throw new OutputError(`cannot write ${name} to the models directory ${dir}: ${(err as Error).message}`, 'check its free space and permissions (or set ESRVID_MODELS_DIR)', err);
  }
  return { model, manifest, details: c.details, warnings: c.warnings, replaced: !!existing };
}
