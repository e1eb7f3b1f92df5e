/**
 * The model registry: which models esrvid knows, where their weights come from, and how to check
 * them. The built-in list is models/registry.json, shipped with the package.
 */
import { readFileSync } from 'node:fs';
import { closest, distance } from 'fastest-levenshtein';
import { ModelError } from '../errors.js';
import { importedAsRegistryModels } from './local-registry.js';

export interface SourceFile {
  path: string;
  sha256: string;
}

export interface RegistryModel {
  name: string;
  architecture: string;
  scale: number;
  description: string;
  license: string;
  source: {
    package: string;
    version: string;
    integrity: string;
    tarballBytes: number;
    param: SourceFile;
    bin: SourceFile;
  };
  /**
   * Set for a model imported with `esrvid models import` (src/models/local-registry.ts): its
   * weights came from a local file, so `source` names that file and nothing is pulled.
   */
  imported?: { file: string; format: string; sha256: string };
}

export interface Registry {
  defaults: { cpu: string; gpu: string };
  models: RegistryModel[];
}

/** Package root, the same from src/ (tests) and dist/ (installed). */
export const PACKAGE_ROOT = new URL('../../', import.meta.url);

let cached: Registry | undefined;

export function loadRegistry(): Registry {
  cached ??= JSON.parse(readFileSync(new URL('models/registry.json', PACKAGE_ROOT), 'utf8')) as Registry;
  return cached;
}

/** A registry model by name, else one the user imported (read from the models directory). */
export function findModel(name: string, registry = loadRegistry()): RegistryModel {
  const model = registry.models.find((m) => m.name === name);
  if (model) return model;
  const imported = importedAsRegistryModels();
  const found = imported.find((m) => m.name === name);
  if (found) return found;
  const names = [...registry.models, ...imported].map((m) => m.name);
  throw new ModelError(`unknown model "${name}"`, suggestModels(name, names));
}

/** "did you mean" text: the closest names by edit distance, else the full list. */
export function suggestModels(name: string, names: string[]): string {
  const near = names.filter((n) => distance(n, name) <= Math.max(3, Math.floor(n.length / 3)) || n.includes(name));
  if (near.length === 0 && names.length > 0) near.push(closest(name, names));
  return `did you mean ${near.map((n) => `"${n}"`).join(' or ')}? (esrvid models list shows all ${names.length})`;
}
