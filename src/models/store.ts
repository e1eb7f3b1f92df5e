/**
 * Where converted models live on disk, and the atomic writes that keep that folder free of
 * half-written files: every file is written beside its destination under a temporary name,
 * flushed, and renamed into place only when complete.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
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
