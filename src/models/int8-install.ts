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
import { manifestPath, modelsDir, onnxPath, readManifest, sha256, writeFileAtomic, type Int8Entry } from './store.js';

/** int8 is made for the compact models: convolutions and PReLU (RRDBNet is slow to calibrate and not measured). */
export function int8Supported(architecture: string): boolean {
  return architecture.startsWith('SRVGGNetCompact');
}

/** The one line for a model whose int8 output is not close enough to float32. */
export function int8Refusal(name: string, e: Pick<Int8Entry, 'minPsnrDb'>): ModelError {
  return new ModelError(
    `${name} in int8 keeps only ${e.minPsnrDb.toFixed(1)} dB PSNR against float32 on esrvid's calibration frames (int8 is offered from ${INT8_MIN_PSNR_DB} dB)`,
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
 * The int8 model's path for an installed model: made and recorded now if the manifest has no
 * current int8 entry, refused if under the gate. A current int8 file is checked against its own
 * hash; the float32 file is read (and checked against the manifest) only to make a new one.
 */
export async function ensureInt8Model(name: string, o: Int8Options): Promise<string> {
  const dir = o.dir ?? modelsDir();
  if (!int8Supported(o.architecture)) {
    throw new ModelError(`${name} has no int8 model: int8 is made for the compact SRVGGNetCompact models only (${o.architecture})`, 'use --precision fp32');
  }
  const manifest = await readManifest(name, dir);
  if (!manifest) throw new ModelError(`model ${name} is not installed in ${dir}`, `run: esrvid models pull ${name}`);
  const path = onnxPath(name, 'int8', dir);
  let entry = manifest.int8;
  const current = entry && entry.quantizer === QUANTIZER_VERSION && entry.fromSha256 === manifest.files.fp32.sha256;
  if (current && entry!.offered) {
    const actual = existsSync(path) ? sha256(await readFile(path)) : 'missing';
    if (actual === entry!.sha256) return path;
  } else if (current) {
    throw int8Refusal(name, entry!);
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
  entry = {
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
  if (!entry.offered) throw int8Refusal(name, entry);
  return path;
}

/** The int8 file whether or not it is offered (for `esrvid bench`), with its entry. */
export async function int8ForBench(name: string, o: Int8Options): Promise<{ path: string; entry: Int8Entry }> {
  try {
    await ensureInt8Model(name, o);
  } catch (err) {
    if (!(err instanceof ModelError) || !(await readManifest(name, o.dir))?.int8) throw err;
  }
  const entry = (await readManifest(name, o.dir))!.int8!;
  return { path: onnxPath(name, 'int8', o.dir), entry };
}
