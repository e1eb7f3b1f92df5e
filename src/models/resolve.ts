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

export async function resolveModel(spec: string, opts: { device: 'cpu' | 'cuda' | 'webgpu'; precision: ModelPrecision; onPull?: (e: PullEvent) => void }): Promise<ResolvedModel> {
  if (opts.precision === 'int8') refuseInt8OnGpu(opts.device);
  if (spec.endsWith('.onnx') || spec.includes('/')) {
    if (opts.precision === 'int8') throw new UsageError('--precision int8 needs a model name (esrvid models list), not an .onnx file', 'esrvid makes the int8 file itself from its float32 model');
    if (!existsSync(spec)) throw new ModelError(`model file ${spec} does not exist`, 'give a registry name (esrvid models list) or an existing .onnx file');
    return { name: spec, path: spec, architecture: 'unknown (assumed RRDB-sized for memory planning)', scale: await scaleOf(spec), precision: 'fp32' };
  }
  let name = spec;
  let reason: string | undefined;
  if (spec === 'auto') {
    const reg = loadRegistry();
    name = opts.device === 'cpu' ? reg.defaults.cpu : reg.defaults.gpu;
    reason = opts.device === 'cpu'
      ? `running on the CPU, where ${name} is about 15x faster than realesrgan-x4plus`
      : `running on a GPU (${opts.device}), which has room for the full ESRGAN network`;
  }
  const found = await findAnyModel(name);
  if (found.kind === 'imported') {
    const m = found.model;
    if (!(await isImportedInstalled(m))) throw new ModelError(`imported model ${name} is incomplete (its files or manifest are missing)`, reimportHint(m));
    let path = await verifyModelFile(name, opts.precision === 'int8' ? 'fp32' : opts.precision, undefined, reimportHint(m));
    if (opts.precision === 'int8') path = await ensureInt8Model(name, { architecture: m.architecture, onEvent: opts.onPull });
    return { name, path, architecture: m.architecture, scale: m.scale, precision: opts.precision };
  }
  const model = found.model;
  if (!(await isInstalled(model))) await pullModel(name, { onEvent: opts.onPull });
  let path = await verifyModelFile(name, opts.precision === 'int8' ? 'fp32' : opts.precision);
  if (opts.precision === 'int8') path = await ensureInt8Model(name, { architecture: model.architecture, onEvent: opts.onPull });
  return { name, path, architecture: model.architecture, scale: model.scale, precision: opts.precision, reason };
}

/** The model's scale: from esrvid's metadata when present, else measured on an 8x8 frame. */
async function scaleOf(path: string): Promise<number> {
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
