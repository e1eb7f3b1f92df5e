/**
 * Installs ONNX Runtime's CUDA provider from the npm registry alone. onnxruntime-node's own
 * postinstall downloads it from a feed outside npm (disabled in .npmrc, and unreachable on many
 * GPU hosts); the one build of the provider published on npm is ONNX Runtime 1.29.0 for CUDA 13,
 * inside a Unity package. esrvid pins that package's tarball (sha512) and each file (sha256),
 * fetches it with the user's npm configuration, and puts the two files beside
 * libonnxruntime.so.1, where ONNX Runtime looks for them: both appear at once, or neither.
 */
import { randomBytes } from 'node:crypto';
import { constants, existsSync, readFileSync } from 'node:fs';
import { access, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { DeviceError, ModelError, OutputError } from '../errors.js';
import { fetchTarballFiles, type TarballRequest } from '../models/npm-tarball.js';
import { sha256 } from '../models/store.js';
import { ortBinDir } from './gpu-libraries.js';

export interface ProviderFile {
  /** Path inside the tarball. */
  path: string;
  /** File name in ONNX Runtime's folder. */
  name: string;
  sha256: string;
  bytes: number;
}

export interface ProviderSource {
  package: string;
  version: string;
  /** npm's dist.integrity of the tarball. */
  integrity: string;
  tarballBytes: number;
  /** The onnxruntime-node version the provider was built with (they must match). */
  onnxruntime: string;
  cuda: string;
  files: ProviderFile[];
}

/** `npm view com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9 dist`, and the files' sha256 as published. */
export const CUDA_PROVIDER_SOURCE: ProviderSource = {
  package: 'com.github.asus4.onnxruntime.linux-x64-gpu',
  version: '0.4.9',
  integrity: 'sha512-FopIhNE/Ng+v2X65wVc9clPCBCvhvA53Hxo2U0Kf5fGdVsC7iCA+mZ0KLWggcQAj7TIZ6pNidR4AC10g74Xo6w==',
  tarballBytes: 179_145_956,
  onnxruntime: '1.29.0',
  cuda: '13',
  files: [
    {
      path: 'package/Plugins/Linux/x64/libonnxruntime_providers_shared.so',
      name: 'libonnxruntime_providers_shared.so',
      sha256: 'c6a12593396095f5670160e284c35d1700b7708cf3037b7042e2a5200ccae772',
      bytes: 14_632,
    },
    {
      path: 'package/Plugins/Linux/x64/libonnxruntime_providers_cuda.so',
      name: 'libonnxruntime_providers_cuda.so',
      sha256: '56cf3254b118ad837ccc4ed8f6d1b23504bbf7ef91b34cbc0b289cb7f10b3037',
      bytes: 229_780_440,
    },
  ],
};

/** The installed onnxruntime-node's version. */
export function onnxruntimeVersion(): string {
  const pkg = join(dirname(createRequire(import.meta.url).resolve('onnxruntime-node')), '..', 'package.json');
  return (JSON.parse(readFileSync(pkg, 'utf8')) as { version: string }).version;
}

export interface ProviderFileStatus {
  name: string;
  path: string;
  present: boolean;
  bytes?: number;
  /** Checked only when asked (hashing 230 MB takes a moment). */
  matches?: boolean;
}

export async function providerStatus(o: { binDir?: string; source?: ProviderSource; verify?: boolean } = {}): Promise<ProviderFileStatus[]> {
  const binDir = o.binDir ?? ortBinDir();
  const source = o.source ?? CUDA_PROVIDER_SOURCE;
  return Promise.all(source.files.map(async (f) => {
    const path = join(binDir, f.name);
    if (!existsSync(path)) return { name: f.name, path, present: false };
    const bytes = (await stat(path)).size;
    const matches = o.verify ? bytes === f.bytes && sha256(await readFile(path)) === f.sha256 : undefined;
    return { name: f.name, path, present: true, bytes, matches };
  }));
}

export interface InstallOptions {
  binDir?: string;
  source?: ProviderSource;
  /** Install even when the same files are there. */
  force?: boolean;
  /** onnxruntime-node's version (default: the installed one). */
  onnxruntimeVersion?: string;
  onProgress?: (received: number, total: number) => void;
  /** Test seam: the npm tarball reader. */
  fetch?: (req: TarballRequest) => Promise<Map<string, Buffer>>;
}

export interface InstallResult {
  binDir: string;
  files: { name: string; path: string; bytes: number }[];
  /** The same files were already installed: nothing fetched. */
  alreadyInstalled: boolean;
}

export async function installCudaProvider(o: InstallOptions = {}): Promise<InstallResult> {
  const source = o.source ?? CUDA_PROVIDER_SOURCE;
  const spec = `${source.package}@${source.version}`;
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new DeviceError(`the CUDA provider on the npm registry (${spec}) is built for Linux x64, and this is ${process.platform} ${process.arch}`,
      'use --device cpu (or webgpu)');
  }
  const ortVersion = o.onnxruntimeVersion ?? onnxruntimeVersion();
  if (ortVersion !== source.onnxruntime) {
    throw new DeviceError(`onnxruntime-node ${ortVersion} is installed, but the CUDA provider on the npm registry is built for ONNX Runtime ${source.onnxruntime} (provider and core must match)`,
      `install onnxruntime-node@${source.onnxruntime} (esrvid pins it)`);
  }
  const binDir = o.binDir ?? ortBinDir();
  if (!existsSync(binDir)) {
    throw new DeviceError(`ONNX Runtime's library folder ${binDir} does not exist`, 'reinstall esrvid (npm ci)');
  }
  const placed = source.files.map((f) => ({ name: f.name, path: join(binDir, f.name), bytes: f.bytes }));
  if (!o.force) {
    const status = await providerStatus({ binDir, source, verify: true });
    if (status.every((s) => s.matches)) return { binDir, files: placed, alreadyInstalled: true };
  }
  try {
    await access(binDir, constants.W_OK);
  } catch {
    throw new OutputError(`cannot write to ${binDir}`, 'run esrvid gpu install as the user who installed esrvid (with sudo for a global install)');
  }

  let files: Map<string, Buffer>;
  try {
    files = await (o.fetch ?? fetchTarballFiles)({
      package: source.package,
      version: source.version,
      integrity: source.integrity,
      files: source.files.map((f) => f.path),
      onProgress: (received) => o.onProgress?.(received, source.tarballBytes),
    });
  } catch (err) {
    // The tarball reader speaks of model weights; this is a library.
    if (err instanceof ModelError) throw new DeviceError(err.message, 'refusing an unverified provider library; check the npm registry you use (npm config get registry)', err);
    throw err;
  }
  for (const f of source.files) {
    const data = files.get(f.path)!;
    const actual = sha256(data);
    if (actual !== f.sha256 || data.length !== f.bytes) {
      throw new DeviceError(`${spec}/${f.path} has sha256 ${actual} (${data.length} bytes), expected ${f.sha256} (${f.bytes} bytes)`,
        'refusing an unverified provider library; nothing was installed');
    }
  }

  // Every file is written and flushed under a temporary name first; the renames come last.
  const temps: { tmp: string; path: string }[] = [];
  try {
    for (const f of source.files) {
      const path = join(binDir, f.name);
      const tmp = join(binDir, `.${f.name}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
      temps.push({ tmp, path });
      const fh = await open(tmp, 'wx', 0o755);
      try {
        await fh.writeFile(files.get(f.path)!);
        await fh.sync();
      } finally {
        await fh.close();
      }
    }
    for (const t of temps) await rename(t.tmp, t.path);
  } catch (err) {
    await Promise.all(temps.map((t) => rm(t.tmp, { force: true })));
    if ((err as NodeJS.ErrnoException).code === 'ENOSPC') throw new OutputError(`the disk holding ${binDir} is full`, 'free 230 MB and run esrvid gpu install again', err);
    throw err;
  }
  return { binDir, files: placed, alreadyInstalled: false };
}

/** Removes the provider files; returns the ones that were there. */
export async function removeCudaProvider(o: { binDir?: string; source?: ProviderSource } = {}): Promise<string[]> {
  const binDir = o.binDir ?? ortBinDir();
  const removed: string[] = [];
  for (const f of (o.source ?? CUDA_PROVIDER_SOURCE).files) {
    const path = join(binDir, f.name);
    if (!existsSync(path)) continue;
    try {
      await rm(path);
    } catch (err) {
      throw new OutputError(`cannot remove ${path}: ${(err as Error).message}`, 'run it as the user who installed esrvid (with sudo for a global install)', err);
    }
    removed.push(path);
  }
  return removed;
}
