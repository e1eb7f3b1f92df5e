/**
 * Where converted models live on disk, and the atomic writes that keep that folder free of
 * half-written files: every file is written beside its destination under a temporary name,
 * flushed, and renamed into place only when complete.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Precision } from './onnx/graph-builder.js';
import { PACKAGE_ROOT } from './registry.js';

export function modelsDir(): string {
  const env = process.env.ESRVID_MODELS_DIR;
  return env ? resolve(env) : fileURLToPath(new URL('models/', PACKAGE_ROOT));
}

/** The precisions a model can be run in: the two float files `models pull` writes, and int8 (made on first use). */
export type ModelPrecision = Precision | 'int8';

export function onnxPath(name: string, precision: ModelPrecision = 'fp32', dir = modelsDir()): string {
  return join(dir, precision === 'fp32' ? `${name}.onnx` : `${name}.${precision}.onnx`);
}

export function manifestPath(name: string, dir = modelsDir()): string {
  return join(dir, `${name}.manifest.json`);
}

/** What a successful conversion wrote, so later runs can tell a damaged model file. */
export interface ModelManifest {
  name: string;
  scale: number;
  converter: string;
  source: { package: string; version: string; paramSha256: string; binSha256: string };
  files: Record<Precision, { file: string; bytes: number; sha256: string }>;
  parameterCount: number;
  convertMs: number;
  createdAt: string;
  /** The int8 model, once made (on first use of --precision int8), with its measured quality. */
  int8?: Int8Entry;
}

/** An int8 file and what its calibration measured (src/models/int8.ts). */
export interface Int8Entry {
  file: string;
  bytes: number;
  sha256: string;
  quantizer: string;
  /** sha256 of the float32 file it was quantized from: a re-pull makes it stale. */
  fromSha256: string;
  clip: 'mse' | 'minmax';
  /** PSNR of its output against the float32 model's on each calibration frame, dB. */
  psnrDb: Record<string, number>;
  minPsnrDb: number;
  medianPsnrDb: number;
  /** minPsnrDb reaches the gate (INT8_MIN_PSNR_DB): --precision int8 is offered. */
  offered: boolean;
  calibrationMs: number;
  createdAt: string;
}

export async function readManifest(name: string, dir = modelsDir()): Promise<ModelManifest | undefined> {
  const p = manifestPath(name, dir);
  if (!existsSync(p)) return undefined;
  try {
    return JSON.parse(await readFile(p, 'utf8')) as ModelManifest;
  } catch {
    return undefined;
  }
}

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export async function sha256File(path: string): Promise<string> {
  return sha256(await readFile(path));
}

/** What a stamp remembers of the file it hashed: any write, copy over it or rename onto it changes one of these. */
interface Sha256Stamp {
  sha256: string;
  size: number;
  ino: number;
  mtimeMs: number;
  ctimeMs: number;
}

/** The stamp beside a file: `.<name>.sha256`. */
export function stampPath(path: string): string {
  return join(dirname(path), `.${basename(path)}.sha256`);
}

/**
 * A model file's SHA-256, hashed once per version of the file: every job checks its model, and
 * hashing realesrgan-x4plus's 67 MB took ~70 ms of each job's start (read and hash). The hash is
 * kept in a stamp beside the file with the file's size, inode, modification and status-change
 * times, and trusted while all four are unchanged. The status-change time cannot be set back
 * by a program (a write or a `touch -d` moves it too), so a changed file is always hashed again.
 * A stamp that cannot be written (a read-only folder) only means hashing every time.
 */
export async function stampedSha256(path: string): Promise<string> {
  const st = await stat(path);
  const now = { size: st.size, ino: st.ino, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs };
  const stamp = stampPath(path);
  try {
    const old = JSON.parse(await readFile(stamp, 'utf8')) as Sha256Stamp;
    if (old.size === now.size && old.ino === now.ino && old.mtimeMs === now.mtimeMs && old.ctimeMs === now.ctimeMs && /^[0-9a-f]{64}$/.test(old.sha256)) return old.sha256;
  } catch {
    // No stamp, or not one we wrote: hash.
  }
  const hash = await sha256File(path);
  // Stamped only if the file did not change while it was read.
  const after = await stat(path);
  if (after.size === now.size && after.mtimeMs === now.mtimeMs && after.ctimeMs === now.ctimeMs) {
    await writeFileAtomic(stamp, JSON.stringify({ sha256: hash, ...now } satisfies Sha256Stamp)).catch(() => undefined);
  }
  return hash;
}

/** Writes `data` to `path` so that readers see the old file or the whole new one, never a part. */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    const fh = await open(tmp, 'wx');
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}
