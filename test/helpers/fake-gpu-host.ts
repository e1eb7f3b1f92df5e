/**
 * A fake GPU set-up for CLI tests on machines without one: an ONNX Runtime folder with or without
 * provider files (fake ELF objects that link what the real provider links), a library folder
 * that stands for the whole loader search, and an nvidia-smi that lists GPUs. The probe reads
 * them through its test hooks (ESRVID_ORT_BIN_DIR, ESRVID_LIBRARY_SEARCH, ESRVID_NVIDIA_SMI).
 */
import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fakeSharedObject } from './fake-elf.js';

export const CUDA13_LIBS = ['libcublasLt.so.13', 'libcublas.so.13', 'libcurand.so.10', 'libcudart.so.13'];

export interface FakeGpuHost {
  env: Record<string, string>;
  bin: string;
  libs: string;
  installProvider(): void;
  addLibraries(names: string[]): void;
  /** libcuda.so.1 -> libcuda.so.<version>, as the driver installs it. */
  addDriver(version: string): void;
  /** nvidia-smi printing these lines (index, uuid, name, MiB total, MiB free, driver). */
  nvidiaSmi(lines: string[]): void;
}

export function fakeGpuHost(dir: string): FakeGpuHost {
  const bin = join(dir, 'ort');
  const libs = join(dir, 'libs');
  mkdirSync(bin, { recursive: true });
  mkdirSync(libs, { recursive: true });
  const smi = join(dir, 'nvidia-smi');
  const env: Record<string, string> = { ESRVID_ORT_BIN_DIR: bin, ESRVID_LIBRARY_SEARCH: libs, ESRVID_NVIDIA_SMI: join(dir, 'no-nvidia-smi') };
  return {
    env,
    bin,
    libs,
    installProvider() {
      writeFileSync(join(bin, 'libonnxruntime_providers_shared.so'), fakeSharedObject(['libstdc++.so.6', 'libc.so.6']));
      writeFileSync(join(bin, 'libonnxruntime_providers_cuda.so'), fakeSharedObject([...CUDA13_LIBS, 'libcuda.so.1', 'libdl.so.2', 'libc.so.6']));
    },
    addLibraries(names) {
      for (const n of names) writeFileSync(join(libs, n), 'a library');
    },
    addDriver(version) {
      writeFileSync(join(libs, `libcuda.so.${version}`), 'the driver');
      symlinkSync(`libcuda.so.${version}`, join(libs, 'libcuda.so.1'));
    },
    nvidiaSmi(lines) {
      writeFileSync(smi, `#!/bin/sh\ncat <<'EOF'\n${lines.join('\n')}\nEOF\n`);
      chmodSync(smi, 0o755);
      env.ESRVID_NVIDIA_SMI = smi;
    },
  };
}
