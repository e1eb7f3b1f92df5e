/**
 * Models the user imported (`esrvid models import`), listed in `local-registry.json` in the models
 * directory beside their ONNX files and manifests. The shipped registry (models/registry.json) is
 * never written; the two are looked up together, built-in names first, so an imported model works
 * wherever a registry model does.
 */
import { existsSync, readFileSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ModelError } from '../errors.js';
import type { Precision } from './onnx/graph-builder.js';
import { findModel, loadRegistry, suggestModels, type RegistryModel } from './registry.js';
import { modelsDir, onnxPath, readManifest, writeFileAtomic, type ModelManifest } from './store.js';

export const LOCAL_REGISTRY_FILE = 'local-registry.json';
/** Bumped whenever an importer's output changes. */
export const IMPORTER_VERSION = 'esrvid-import/1';

export type ImportFormat = 'pth' | 'safetensors' | 'ncnn' | 'onnx';

export interface ImportSource {
  /** The file as given (absolute path), for the record; it is not read again. */
  file: string;
  format: ImportFormat;
  sha256: string;
  bytes: number;
  /** Where the state dict was inside the checkpoint (e.g. `params_ema`), when not the top level. */
  container?: string;
  /** The ncnn .bin that went with a .param. */
  companion?: { file: string; sha256: string; bytes: number };
}

export interface ImportedModel {
  name: string;
  architecture: string;
  scale: number;
  description: string;
  parameterCount: number;
  source: ImportSource;
  importedAt: string;
}

export interface LocalRegistry {
  $comment?: string;
  models: ImportedModel[];
}

export type ImportManifest = Omit<ModelManifest, 'source'> & { source: ImportSource };

export function localRegistryPath(dir = modelsDir()): string {
  return join(dir, LOCAL_REGISTRY_FILE);
}

function parseLocalRegistry(path: string, text: string): LocalRegistry {
  try {
    const reg = JSON.parse(text) as LocalRegistry;
    if (!Array.isArray(reg.models)) throw new Error('no "models" list');
    return reg;
  } catch (err) {
    throw new ModelError(`${path} is damaged (${(err as Error).message})`, 'fix or delete it, then import your models again', err);
  }
}

export async function loadLocalRegistry(dir = modelsDir()): Promise<LocalRegistry> {
  const path = localRegistryPath(dir);
  if (!existsSync(path)) return { models: [] };
  return parseLocalRegistry(path, await readFile(path, 'utf8'));
}

/**
 * The imported models in the shipped registry's shape, for synchronous look-ups by name
 * (registry.ts findModel). `source` names the imported file; `imported` marks them.
 */
export function importedAsRegistryModels(dir = modelsDir()): RegistryModel[] {
  const path = localRegistryPath(dir);
  if (!existsSync(path)) return [];
  return parseLocalRegistry(path, readFileSync(path, 'utf8')).models.map((m) => ({
    name: m.name,
    architecture: m.architecture,
    scale: m.scale,
    description: m.description,
    license: 'as its author published it (imported)',
    source: {
      package: '', version: '', integrity: '', tarballBytes: 0,
      param: { path: m.source.file, sha256: m.source.sha256 },
      bin: { path: m.source.companion?.file ?? '', sha256: m.source.companion?.sha256 ?? '' },
    },
    imported: { file: m.source.file, format: m.source.format, sha256: m.source.sha256 },
  }));
}

export async function saveLocalRegistry(reg: LocalRegistry, dir = modelsDir()): Promise<void> {
  const out: LocalRegistry = {
    $comment: 'Models imported with `esrvid models import`. Written by esrvid; each entry has a <name>.manifest.json and ONNX files beside this file.',
    models: reg.models,
  };
  await writeFileAtomic(localRegistryPath(dir), JSON.stringify(out, null, 2) + '\n');
}

export type AnyModel = { kind: 'registry'; model: RegistryModel } | { kind: 'imported'; model: ImportedModel };

/** A registry or imported model by name; unknown names fail with suggestions from both lists. */
export async function findAnyModel(name: string, dir = modelsDir()): Promise<AnyModel> {
  const registry = loadRegistry();
  if (registry.models.some((m) => m.name === name)) return { kind: 'registry', model: findModel(name, registry) };
  const local = await loadLocalRegistry(dir);
  const imported = local.models.find((m) => m.name === name);
  if (imported) return { kind: 'imported', model: imported };
  const names = [...registry.models.map((m) => m.name), ...local.models.map((m) => m.name)];
  throw new ModelError(`unknown model "${name}"`, suggestModels(name, names));
}

/** True when the imported model's files are present and belong to its registry entry. */
export async function isImportedInstalled(model: ImportedModel, dir = modelsDir()): Promise<boolean> {
  const m = (await readManifest(model.name, dir)) as ImportManifest | undefined;
  if (!m || m.converter !== IMPORTER_VERSION || m.source?.sha256 !== model.source.sha256) return false;
  for (const p of ['fp32', 'fp16'] as Precision[]) {
    const f = onnxPath(model.name, p, dir);
    if (!existsSync(f) || (await stat(f)).size !== m.files[p]?.bytes) return false;
  }
  return true;
}

/** The command that re-creates an imported model, for hints. */
export function reimportHint(model: ImportedModel): string {
  return `import it again: esrvid models import ${JSON.stringify(model.source.file)} --name ${model.name} --force`;
}
