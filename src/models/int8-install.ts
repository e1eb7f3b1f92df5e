/**
 * `--precision int8`: the int8 file of an installed model, made on first use and recorded in the
 * model's manifest with the PSNR it keeps against float32. Made lazily rather than by
 * `models pull`: calibration runs the float model on real frames (seconds per model on 2 cores),
 * which would slow every pull for a precision only CPU users ask for, and a re-pull or a new
 * quantizer version simply makes it again. A model whose int8 output falls under the gate is
 * refused with its measured PSNR.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { ModelError, UsageError } from '../errors.js';
import { INT8_MIN_PSNR_DB, makeInt8, QUANTIZER_VERSION } from './int8.js';
import type { PullEvent } from './pull.js';
import { manifestPath, modelsDir, onnxPath, readManifest, sha256, stampedSha256, writeFileAtomic, type Int8Entry, type ModelManifest } from './store.js';

/** int8 is made for the compact models: convolutions and PReLU (RRDBNet is slow to calibrate and not measured). */
export function int8Supported(architecture: string): boolean {
  return architecture.startsWith('SRVGGNetCompact');
}

/** The one line for a model whose int8 output is not close enough to float32. */
export function int8Refusal(name: string, e: Pick<Int8Entry, 'minPsnrDb'>): ModelError {
  return new ModelError(
    `${name} in int8 keeps only ${e.minPsnrDb.toFixed(1)} dB PSNR against float32 on esrvid's calibration and held-out validation frames (int8 is offered from ${INT8_MIN_PSNR_DB} dB)`,
    'use --precision fp32',
  );
}

export function refuseInt8OnGpu(device: string): void {
  if (device !== 'cpu') {
    throw new UsageError(`--precision int8 runs on the CPU only, not on ${device}`, 'use --device cpu, or --precision fp16 on a GPU');
  }
}

export interface Int8Options {
  dir?: string;
  architecture: string;
  onEvent?: (e: PullEvent) => void;
  threads?: number;
  /** How to repair a damaged float32 file (default: pull it again). */
  fixHint?: string;
}

/**
 * The int8 model's path for an installed model, if offered: made and recorded now if the manifest
 * has no current int8 entry; refused (at once, from the manifest) if under the gate.
 */
export async function ensureInt8Model(name: string, o: Int8Options): Promise<string> {
  const manifest = await installedManifest(name, o);
  const entry = manifest.int8;
  if (entry && isCurrent(entry, manifest) && !entry.offered) throw int8Refusal(name, entry);
  const r = await int8File(name, o, manifest);
  if (!r.entry.offered) throw int8Refusal(name, r.entry);
  return r.path;
}

/**
 * The int8 file and its entry whether or not it is offered (`esrvid bench` measures both): a
 * current file is checked against its own hash; otherwise it is made from the float32 file, which
 * is read (and checked against the manifest) only then.
 */
export async function int8File(name: string, o: Int8Options, known?: ModelManifest): Promise<{ path: string; entry: Int8Entry }> {
  const dir = o.dir ?? modelsDir();
  const manifest = known ?? await installedManifest(name, o);
  const path = onnxPath(name, 'int8', dir);
  const current = manifest.int8;
  if (current && isCurrent(current, manifest)) {
    const actual = existsSync(path) ? await stampedSha256(path) : 'missing';
    if (actual === current.sha256) return { path, entry: current };
  }

  o.onEvent?.({ kind: 'quantize', model: name });
  const fp32Path = onnxPath(name, 'fp32', dir);
  const fp32 = new Uint8Array(await readFile(fp32Path).catch(() => new Uint8Array()));
  const fp32Sha = sha256(fp32);
  if (fp32Sha !== manifest.files.fp32.sha256) {
    throw new ModelError(`${fp32Path} is damaged (sha256 ${fp32Sha.slice(0, 12)}…, expected ${manifest.files.fp32.sha256.slice(0, 12)}…)`,
      o.fixHint ?? `run: esrvid models pull ${name} --force`);
  }
  const r = await makeInt8(fp32, { threads: o.threads });
  // The file is kept even under the gate: `esrvid bench` measures its speed next to float32.
  await writeFileAtomic(path, r.bytes);
  const entry: Int8Entry = {
    file: basename(path),
    bytes: r.bytes.byteLength,
    sha256: sha256(r.bytes),
    quantizer: QUANTIZER_VERSION,
    fromSha256: manifest.files.fp32.sha256,
    clip: r.clip,
    psnrDb: Object.fromEntries(Object.entries(r.quality.psnrDb).map(([k, v]) => [k, Math.round(v * 100) / 100])),
    minPsnrDb: Math.round(r.quality.minDb * 100) / 100,
    medianPsnrDb: Math.round(r.quality.medianDb * 100) / 100,
    offered: r.quality.passes,
    calibrationMs: r.calibrationMs,
    createdAt: new Date().toISOString(),
  };
  // Read again: another process may have rewritten the manifest meanwhile; only int8 is ours.
  const latest = (await readManifest(name, dir)) ?? manifest;
  await writeFileAtomic(manifestPath(name, dir), JSON.stringify({ ...latest, int8: entry }, null, 2) + '\n');
  o.onEvent?.({ kind: 'quantized', model: name, entry });
  return { path, entry };
}

/** The model's manifest, for a compact model that is installed. */
async function installedManifest(name: string, o: Int8Options): Promise<ModelManifest> {
  const dir = o.dir ?? modelsDir();
  if (!int8Supported(o.architecture)) {
    throw new ModelError(`${name} has no int8 model: int8 is made for the compact SRVGGNetCompact models only (${o.architecture})`, 'use --precision fp32');
  }
  const manifest = await readManifest(name, dir);
  if (!manifest) throw new ModelError(`model ${name} is not installed in ${dir}`, `run: esrvid models pull ${name}`);
  return manifest;
}

/** Made by this quantizer from the float32 file installed now. */
function isCurrent(entry: Int8Entry, manifest: ModelManifest): boolean {
  return entry.quantizer === QUANTIZER_VERSION && entry.fromSha256 === manifest.files.fp32.sha256;
}
