/**
 * Turns the user's --model value into a file ONNX Runtime can load: a registry name (pulled and
 * converted on first use, checked against its manifest), the name of a model imported with
 * `esrvid models import` (checked the same way), `auto` (chosen by device), or a path to an .onnx
 * file made by esrvid (its scale is read from the model's metadata, or measured).
 */
import { existsSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { ModelError, UsageError } from '../errors.js';
import { ensureInt8Model, refuseInt8OnGpu } from './int8-install.js';
import type { ModelPrecision } from './store.js';
import { isInstalled, pullModel, verifyModelFile, type PullEvent } from './pull.js';
import { findAnyModel, isImportedInstalled, reimportHint } from './local-registry.js';
import { loadRegistry } from './registry.js';

export interface ResolvedModel {
  name: string;
  /** Registry architecture text; 'unknown' for an .onnx file given by path. */
  architecture: string;
  path: string;
  scale: number;
  precision: ModelPrecision;
  /** Why this model was chosen, when `auto` chose it. */
  reason?: string;
}

/** A model given as a file rather than a registry or imported name. */
export function isModelFile(spec: string): boolean {
  return spec.endsWith('.onnx') || spec.includes('/');
}

/** The registry model `auto` stands for on `device`. */
export function autoModelName(device: string): string {
  const reg = loadRegistry();
  return device === 'cpu' ? reg.defaults.cpu : reg.defaults.gpu;
}

export async function resolveModel(spec: string, opts: { device: 'cpu' | 'cuda' | 'webgpu'; precision: ModelPrecision; onPull?: (e: PullEvent) => void }): Promise<ResolvedModel> {
  if (opts.precision === 'int8') refuseInt8OnGpu(opts.device);
  if (isModelFile(spec)) {
    if (opts.precision === 'int8') throw new UsageError('--precision int8 needs a model name (esrvid models list), not an .onnx file', 'esrvid makes the int8 file itself from its float32 model');
    if (!existsSync(spec)) throw new ModelError(`model file ${spec} does not exist`, 'give a registry name (esrvid models list) or an existing .onnx file');
    return { name: spec, path: spec, architecture: 'unknown (assumed RRDB-sized for memory planning)', scale: await scaleOf(spec), precision: 'fp32' };
  }
  let name = spec;
  let reason: string | undefined;
  if (spec === 'auto') {
    name = autoModelName(opts.device);
    reason = opts.device === 'cpu'
      ? `running on the CPU, where ${name} is about 15x faster than realesrgan-x4plus`
      : `running on a GPU (${opts.device}), which has room for the full ESRGAN network`;
  }
  const found = await findAnyModel(name);
  let fixHint: string | undefined;
  if (found.kind === 'imported') {
    fixHint = reimportHint(found.model);
    if (!(await isImportedInstalled(found.model))) throw new ModelError(`imported model ${name} is incomplete (its files or manifest are missing)`, fixHint);
  } else if (!(await isInstalled(found.model))) await pullModel(name, { onEvent: opts.onPull });
  const m = found.model;
  // int8: the int8 file is checked against its own hash, the float32 one only when it is made from it.
  const path = opts.precision === 'int8'
    ? await ensureInt8Model(name, { architecture: m.architecture, onEvent: opts.onPull, fixHint })
    : await verifyModelFile(name, opts.precision, undefined, fixHint);
  return { name, path, architecture: m.architecture, scale: m.scale, precision: opts.precision, reason };
}

/** The model's scale: from esrvid's metadata when present, else measured on an 8x8 frame. */
export async function scaleOf(path: string): Promise<number> {
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(path);
  } catch (err) {
    throw new ModelError(`cannot load ${path}: ${(err as Error).message.split('\n')[0]}`, 'is it an ONNX model?', err);
  }
  try {
    const input = session.inputNames[0]!;
    const r = await session.run({ [input]: new ort.Tensor('uint8', new Uint8Array(8 * 8 * 3), [1, 8, 8, 3]) });
    const dims = r[session.outputNames[0]!]!.dims;
    const scale = dims[1]! / 8;
    if (dims.length !== 4 || dims[3] !== 3 || !Number.isInteger(scale) || dims[2]! / 8 !== scale) {
      throw new ModelError(`${path} is not an esrvid frame model (uint8 [N,H,W,3] in and out); output was [${dims.join(',')}]`,
        'use a model converted by esrvid (esrvid models list)');
    }
    return scale;
  } catch (err) {
    if (err instanceof ModelError) throw err;
    throw new ModelError(`${path} does not take uint8 RGB frames: ${(err as Error).message.split('\n')[0]}`, 'use a model converted by esrvid', err);
  } finally {
    await session.release();
  }
}
