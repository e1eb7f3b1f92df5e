/**
 * What --device cuda and webgpu need, found without loading anything: the ELF reader on fakes and
 * on ONNX Runtime's own library, the loader search, one problem (message + how to fix) per
 * missing piece on fake provider and library folders, and nvidia-smi's output.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readElfDynamic } from '../../src/infer/elf.js';
import { checkCuda, checkVulkan, findLibrary, ortBinDir, parseLdconfig, usualLibraryDirs, type LibrarySearch } from '../../src/infer/gpu-libraries.js';
import { parseNvidiaSmi, visibleGpus } from '../../src/infer/gpus.js';
import { fakeSharedObject } from '../helpers/fake-elf.js';

const root = mkdtempSync(join(tmpdir(), 'esrvid-gpu-libs-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

/** A fresh machine: an ONNX Runtime folder, library folders, a /dev. */
function machine() {
  const base = join(root, String(n++));
  const dirs = { bin: join(base, 'ort'), libs: join(base, 'libs'), more: join(base, 'more'), usual: join(base, 'usual'), dev: join(base, 'dev') };
  for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true });
  const search: LibrarySearch = { pathDirs: [dirs.libs, dirs.more], cache: new Map(), defaultDirs: [], usualDirs: () => [dirs.usual], description: 'test' };
  const lib = (dir: string, name: string) => writeFileSync(join(dir, name), 'not really a library');
  const provider = (needed: string[], runpath?: string) => {
    writeFileSync(join(dirs.bin, 'libonnxruntime_providers_shared.so'), fakeSharedObject(['libc.so.6']));
    writeFileSync(join(dirs.bin, 'libonnxruntime_providers_cuda.so'), fakeSharedObject(needed, runpath));
  };
  const check = () => checkCuda({ env: { ESRVID_ORT_BIN_DIR: dirs.bin }, search, devDir: dirs.dev });
  return { dirs, search, lib, provider, check };
}

const CUDA13 = ['libcublasLt.so.13', 'libcublas.so.13', 'libcurand.so.10', 'libcudart.so.13'];

describe('ELF dynamic section', () => {
  it('reads DT_NEEDED and DT_RUNPATH of a shared object', async () => {
    const f = join(root, 'fake.so');
    writeFileSync(f, fakeSharedObject(['libcudart.so.13', 'libcuda.so.1'], '$ORIGIN/../lib'));
    expect(await readElfDynamic(f)).toEqual({ needed: ['libcudart.so.13', 'libcuda.so.1'], runpath: ['$ORIGIN/../lib'] });
  });

  it('reads ONNX Runtime 1.29.0\'s own library as readelf -d does', async () => {
    const dyn = await readElfDynamic(join(ortBinDir({}), 'libonnxruntime.so.1'));
    expect(dyn).toEqual({
      needed: ['libdl.so.2', 'librt.so.1', 'libpthread.so.0', 'libstdc++.so.6', 'libm.so.6', 'libgcc_s.so.1', 'libc.so.6', 'ld-linux-x86-64.so.2'],
      runpath: ['$ORIGIN'],
    });
  });

  it('returns undefined for what is not a 64-bit ELF file', async () => {
    const f = join(root, 'text.so');
    writeFileSync(f, 'hello, I am not a library');
    expect(await readElfDynamic(f)).toBeUndefined();
  });
});

describe('library search', () => {
  it('parses the loader cache, keeping this architecture', () => {
    const cache = parseLdconfig([
      '1234 libs found in cache `/etc/ld.so.cache\'',
      '\tlibcudart.so.13 (libc6,x86-64) => /usr/local/cuda-13.0/lib/libcudart.so.13',
      '\tlibcudart.so.13 (libc6) => /usr/lib32/libcudart.so.13',
      '\tlibcuda.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libcuda.so.1',
    ].join('\n'), 'x64');
    expect([...cache]).toEqual([
      ['libcudart.so.13', '/usr/local/cuda-13.0/lib/libcudart.so.13'],
      ['libcuda.so.1', '/lib/x86_64-linux-gnu/libcuda.so.1'],
    ]);
  });

  it('looks in LD_LIBRARY_PATH, then the RUNPATH ($ORIGIN expanded), then the cache, then system folders', () => {
    const m = machine();
    m.lib(m.dirs.more, 'liba.so.1');
    mkdirSync(join(m.dirs.bin, 'sub'));
    m.lib(join(m.dirs.bin, 'sub'), 'libb.so.1');
    m.lib(m.dirs.usual, 'libc-cached.so.1');
    const search = { ...m.search, cache: new Map([['libc-cached.so.1', join(m.dirs.usual, 'libc-cached.so.1')]]) };
    expect(findLibrary('liba.so.1', search)).toBe(join(m.dirs.more, 'liba.so.1'));
    expect(findLibrary('libb.so.1', search, ['$ORIGIN/sub'], m.dirs.bin)).toBe(join(m.dirs.bin, 'sub', 'libb.so.1'));
    expect(findLibrary('libb.so.1', search)).toBeUndefined();
    expect(findLibrary('libc-cached.so.1', search)).toBe(join(m.dirs.usual, 'libc-cached.so.1'));
  });
});

describe('what --device cuda lacks', () => {
  it('nothing installed: the provider first, then each missing piece with how to install it', async () => {
    const m = machine();
    const c = await m.check();
    expect(c.problems.map((p) => p.kind)).toEqual(['provider', 'runtime', 'cudnn', 'driver']);
    expect(c.problems[0]!.message).toBe(`ONNX Runtime's CUDA provider is not installed (no libonnxruntime_providers_cuda.so in ${m.dirs.bin})`);
    expect(c.problems[0]!.hint).toBe('install it from the npm registry with: esrvid gpu install (230 MB)');
    // Without the provider, the libraries its published build links are checked.
    expect(c.problems[1]!.message).toBe('the CUDA 13 libraries libcublasLt.so.13, libcublas.so.13, libcurand.so.10, libcudart.so.13 are not found');
    expect(c.problems[1]!.hint).toBe('install them: pip install nvidia-cublas nvidia-curand nvidia-cuda-runtime (CUDA 13 wheels, as a PyTorch cu130 install has), or NVIDIA\'s apt packages libcublas-13-0 libcurand-13-0 cuda-cudart-13-0, and add the folder holding them to LD_LIBRARY_PATH');
    expect(c.problems[2]!.message).toBe('cuDNN 9 (libcudnn.so.9) is not found');
    expect(c.problems[2]!.hint).toMatch(/^install cuDNN 9 for CUDA 13: pip install nvidia-cudnn-cu13, or NVIDIA's apt package libcudnn9-cuda-13, and add/);
    expect(c.problems[3]!.message).toBe('the NVIDIA driver is not installed (libcuda.so.1 not found)');
    expect(c.problems[3]!.hint).toMatch(/^install the NVIDIA driver, version 580 or newer \(CUDA 13 needs it\); in a container, start it with the GPU passed in \(docker run --gpus all\)/);
  });

  it('the provider installed: its own NEEDED list decides, system libraries aside', async () => {
    const m = machine();
    m.provider(['libcudart.so.13', 'libcublas.so.13', 'libstdc++.so.6', 'libc.so.6', 'libcuda.so.1']);
    m.lib(m.dirs.libs, 'libcudart.so.13');
    const c = await m.check();
    expect(c.provider.every((p) => p.present)).toBe(true);
    expect(c.libraries.map((l) => [l.name, l.role, !!l.path])).toEqual([
      ['libcudart.so.13', 'runtime', true], ['libcublas.so.13', 'runtime', false], ['libcuda.so.1', 'driver', false], ['libcudnn.so.9', 'cudnn', false],
    ]);
    expect(c.problems.map((p) => p.kind)).toEqual(['runtime', 'cudnn', 'driver']);
    expect(c.problems[0]!.message).toBe('the CUDA 13 library libcublas.so.13 is not found');
    expect(c.problems[0]!.hint).toContain('pip install nvidia-cublas (CUDA 13 wheels');
  });

  it('a CUDA 12 provider (onnxruntime-node\'s own cuda12 download) asks for CUDA 12 pieces', async () => {
    const m = machine();
    m.provider(['libcublasLt.so.12', 'libcublas.so.12', 'libcudart.so.12', 'libcufft.so.11', 'libcuda.so.1']);
    m.lib(m.dirs.libs, 'libcufft.so.11');
    const c = await m.check();
    expect(c.cudaMajor).toBe(12);
    expect(c.problems[0]!.message).toBe('the CUDA 12 libraries libcublasLt.so.12, libcublas.so.12, libcudart.so.12 are not found');
    expect(c.problems[0]!.hint).toBe('install them: pip install nvidia-cublas-cu12 nvidia-cuda-runtime-cu12 (CUDA 12 wheels, as a PyTorch cu12x install has), or NVIDIA\'s apt packages libcublas-12-x cuda-cudart-12-x, and add the folder holding them to LD_LIBRARY_PATH');
    expect(c.problems[1]!.hint).toMatch(/^install cuDNN 9 for CUDA 12: pip install nvidia-cudnn-cu12, or NVIDIA's apt package libcudnn9-cuda-12/);
    expect(c.problems[2]!.hint).toMatch(/^install the NVIDIA driver, version 525 or newer \(CUDA 12 needs it\)/);
  });

  it('libraries on disk but off the search path: says which folder to add', async () => {
    const m = machine();
    m.provider(CUDA13);
    for (const l of CUDA13) m.lib(m.dirs.usual, l);
    m.lib(m.dirs.libs, 'libcudnn.so.9');
    m.lib(m.dirs.libs, 'libcuda.so.1');
    const c = await m.check();
    expect(c.problems[0]!.kind).toBe('runtime');
    expect(c.problems[0]!.hint).toBe(`they are in ${m.dirs.usual}, which the library loader does not search: export LD_LIBRARY_PATH=${m.dirs.usual}\${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}`);
  });

  it('a driver older than CUDA 13 needs, read from the library\'s file name', async () => {
    const m = machine();
    m.provider([...CUDA13, 'libcuda.so.1']);
    for (const l of [...CUDA13, 'libcudnn.so.9']) m.lib(m.dirs.libs, l);
    m.lib(m.dirs.libs, 'libcuda.so.550.54.15');
    symlinkSync('libcuda.so.550.54.15', join(m.dirs.libs, 'libcuda.so.1'));
    writeFileSync(join(m.dirs.dev, 'nvidia0'), '');
    const c = await m.check();
    expect(c.driverVersion).toBe('550.54.15');
    expect(c.problems.map((p) => [p.kind, p.message, p.hint])).toEqual([
      ['driver-version', 'the NVIDIA driver is 550.54.15, older than CUDA 13 needs (580 or newer)', 'update the NVIDIA driver to 580 or newer'],
    ]);
  });

  it('everything installed but no GPU device, then a GPU: nothing left', async () => {
    const m = machine();
    m.provider([...CUDA13, 'libcuda.so.1']);
    for (const l of [...CUDA13, 'libcudnn.so.9']) m.lib(m.dirs.libs, l);
    m.lib(m.dirs.libs, 'libcuda.so.580.65.06');
    symlinkSync('libcuda.so.580.65.06', join(m.dirs.libs, 'libcuda.so.1'));
    const none = await m.check();
    expect(none.problems.map((p) => [p.kind, p.message])).toEqual([['gpu', 'no NVIDIA GPU is visible (the driver library is there, but there is no /dev/nvidia0)']]);
    writeFileSync(join(m.dirs.dev, 'nvidia0'), '');
    writeFileSync(join(m.dirs.dev, 'nvidiactl'), '');
    const ok = await m.check();
    expect(ok.problems).toEqual([]);
    expect(ok.gpuDevices).toEqual([join(m.dirs.dev, 'nvidia0')]);
  });
});

describe('what WebGPU lacks', () => {
  it('a Vulkan loader and a GPU device node', () => {
    const m = machine();
    const none = checkVulkan({ env: {}, search: m.search, devDir: m.dirs.dev });
    expect(none.problems.map((p) => p.kind)).toEqual(['gpu', 'vulkan']);
    expect(none.problems[1]!.message).toBe('WebGPU runs on Vulkan, and no Vulkan loader (libvulkan.so.1) is installed');
    m.lib(m.dirs.libs, 'libvulkan.so.1');
    mkdirSync(join(m.dirs.dev, 'dri'));
    writeFileSync(join(m.dirs.dev, 'dri', 'renderD128'), '');
    const ok = checkVulkan({ env: { VK_DRIVER_FILES: '/x/nvidia_icd.json' }, search: m.search, devDir: m.dirs.dev });
    expect(ok.problems).toEqual([]);
    expect(ok.drivers).toEqual(['/x/nvidia_icd.json']);
  });
});

describe('nvidia-smi', () => {
  const OUT = '0, GPU-8f2c1a7e-0000, NVIDIA H100 80GB HBM3, 81559, 80724, 580.65.06\n1, GPU-3b9d4e21-1111, NVIDIA H100 80GB HBM3, 81559, 1024, 580.65.06\n';

  it('parses the query, memory in bytes', () => {
    expect(parseNvidiaSmi(OUT)).toEqual([
      { index: 0, uuid: 'GPU-8f2c1a7e-0000', name: 'NVIDIA H100 80GB HBM3', memoryTotalBytes: 81559 * 2 ** 20, memoryFreeBytes: 80724 * 2 ** 20, driverVersion: '580.65.06' },
      { index: 1, uuid: 'GPU-3b9d4e21-1111', name: 'NVIDIA H100 80GB HBM3', memoryTotalBytes: 81559 * 2 ** 20, memoryFreeBytes: 1024 * 2 ** 20, driverVersion: '580.65.06' },
    ]);
    expect(parseNvidiaSmi('No devices were found\n')).toEqual([]);
  });

  it('counts GPUs as CUDA does under CUDA_VISIBLE_DEVICES (indices, UUID prefixes, stop at an unknown one)', () => {
    const all = parseNvidiaSmi(OUT);
    expect(visibleGpus(all, undefined).map((g) => g.index)).toEqual([0, 1]);
    expect(visibleGpus(all, '1').map((g) => g.index)).toEqual([1]);
    expect(visibleGpus(all, '1,0').map((g) => g.index)).toEqual([1, 0]);
    expect(visibleGpus(all, 'GPU-3b9d').map((g) => g.index)).toEqual([1]);
    expect(visibleGpus(all, '0,7,1').map((g) => g.index)).toEqual([0]);
    expect(visibleGpus(all, '')).toEqual([]);
  });
});

describe('usual library folders', () => {
  it("include the CUDA wheels of the python3 on PATH, even in a venv nobody activated (the H100 image's /opt/torch/.venv)", () => {
    const venv = join(root, `venv-${n++}`);
    mkdirSync(join(venv, 'bin'), { recursive: true });
    writeFileSync(join(venv, 'bin', 'python3'), '');
    for (const pkg of ['cu13', 'cudnn']) mkdirSync(join(venv, 'lib', 'python3.12', 'site-packages', 'nvidia', pkg, 'lib'), { recursive: true });
    const noPython = join(root, `bare-${n++}`);
    mkdirSync(join(noPython, 'bin'), { recursive: true });
    mkdirSync(join(noPython, 'lib', 'python3.12', 'site-packages', 'nvidia', 'cu13', 'lib'), { recursive: true });

    const dirs = usualLibraryDirs({ PATH: `${join(noPython, 'bin')}:${join(venv, 'bin')}:/usr/bin` });
    const nvidia = join(venv, 'lib', 'python3.12', 'site-packages', 'nvidia');
    expect(dirs).toContain(join(nvidia, 'cu13', 'lib'));
    expect(dirs).toContain(join(nvidia, 'cudnn', 'lib'));
    expect(dirs.some((d) => d.startsWith(noPython))).toBe(false);
    expect(new Set(dirs).size).toBe(dirs.length);
  });
});
