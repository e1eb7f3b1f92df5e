/**
 * What a GPU execution provider needs on this machine, found without loading anything: ONNX
 * Runtime's CUDA provider files, the CUDA libraries they link (read from the provider's ELF
 * header), cuDNN 9, the NVIDIA driver and a visible GPU; for WebGPU, a Vulkan loader. Each missing
 * piece becomes one problem with a one-line message and how to install it.
 *
 * Libraries are looked up the way the dynamic loader will look when ONNX Runtime opens the
 * provider: LD_LIBRARY_PATH, the provider's RUNPATH, the loader cache (`ldconfig -p`) and the
 * system folders. ONNX Runtime itself only says "Failed to load shared library", so this is what
 * tells the user which piece is missing.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { readElfDynamic } from './elf.js';

/** The provider files ONNX Runtime opens, beside libonnxruntime.so.1. */
export const CUDA_PROVIDER_FILES = ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so'] as const;

/**
 * What the CUDA provider of ONNX Runtime 1.29.0 (npm com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9)
 * links, from its ELF header: used when the provider is not installed yet, so the user learns
 * everything that is missing at once.
 */
export const CUDA_PROVIDER_NEEDED = ['libcublasLt.so.13', 'libcublas.so.13', 'libcurand.so.10', 'libcudart.so.13', 'libcuda.so.1'];
/** cuDNN is opened by the provider at run time, not linked. */
export const CUDNN = 'libcudnn.so.9';
export const DRIVER_LIBRARY = 'libcuda.so.1';
/** The oldest driver branch each CUDA major version runs on. */
export function minDriverFor(cudaMajor: number): number {
  return cudaMajor >= 13 ? 580 : cudaMajor === 12 ? 525 : 450;
}

/** glibc and the C++ runtime: always present, not part of any diagnosis. */
const SYSTEM_LIBRARY = /^(ld-linux[^/]*|lib(c|m|dl|rt|pthread|gcc_s|stdc\+\+|util|resolv)\.so(\.\d+)*)$/;

export type CudaProblemKind = 'provider' | 'runtime' | 'cudnn' | 'driver' | 'driver-version' | 'gpu';

export interface Problem<K extends string = string> {
  kind: K;
  /** What is wrong, for a sentence: "the CUDA provider is not installed (...)". */
  message: string;
  /** How to fix it. */
  hint: string;
  /** A few words for lists ("auto" skip reasons, "also missing: ..."). */
  short: string;
}

export interface LibraryFound {
  name: string;
  role: 'runtime' | 'driver' | 'cudnn';
  /** Where the loader will find it; undefined when it will not. */
  path?: string;
  /** Found on disk in a usual place that is not on the loader's search path. */
  offPath?: string;
}

export interface CudaCheck {
  binDir: string;
  /** The CUDA major version the provider links (13 for the npm build; 12 for onnxruntime-node's cuda12 download). */
  cudaMajor: number;
  provider: { file: string; path: string; present: boolean }[];
  libraries: LibraryFound[];
  /** From the driver library's file name (libcuda.so.580.65.06). */
  driverVersion?: string;
  /** /dev/nvidia0, /dev/nvidia1, ... */
  gpuDevices: string[];
  problems: Problem<CudaProblemKind>[];
}

/** Where the loader looks, in its order (ld.so(8)), for libraries of an object without DT_RPATH. */
export interface LibrarySearch {
  /** LD_LIBRARY_PATH. */
  pathDirs: string[];
  /** The loader cache: soname -> path (x86-64 entries of `ldconfig -p`). */
  cache: Map<string, string>;
  defaultDirs: string[];
  /** Where else to look for a library the loader will not find (to say "add X to LD_LIBRARY_PATH"). */
  usualDirs: () => string[];
  /** How the search was set up, for `esrvid doctor`. */
  description: string;
}

/** The folder of libonnxruntime.so.1, where ONNX Runtime looks for provider libraries. */
export function ortBinDir(env: NodeJS.ProcessEnv = process.env): string {
  // Test hook: point the probe (and `esrvid gpu install`) at another folder.
  if (env.ESRVID_ORT_BIN_DIR) return env.ESRVID_ORT_BIN_DIR;
  const main = createRequire(import.meta.url).resolve('onnxruntime-node');
  return join(dirname(main), '..', 'bin', 'napi-v6', process.platform, process.arch);
}

/** x86-64 (or this machine's architecture) entries of the loader cache. */
export function parseLdconfig(text: string, arch = process.arch): Map<string, string> {
  const want = arch === 'x64' ? 'x86-64' : arch === 'arm64' ? 'AArch64' : arch;
  const cache = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^\s*(\S+)\s+\(([^)]*)\)\s+=>\s+(\S.*)$/.exec(line);
    if (!m || !m[2]!.includes(want)) continue;
    if (!cache.has(m[1]!)) cache.set(m[1]!, m[3]!.trim());
  }
  return cache;
}

function readLdconfig(): Map<string, string> {
  for (const bin of ['/sbin/ldconfig', '/usr/sbin/ldconfig', 'ldconfig']) {
    try {
      return parseLdconfig(execFileSync(bin, ['-p'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 16 << 20 }));
    } catch {
      // next candidate
    }
  }
  return new Map();
}

const splitPath = (v: string | undefined) => (v ?? '').split(':').filter(Boolean);

/**
 * The loader's search as this process would see it. `ESRVID_LIBRARY_SEARCH` (a test hook)
 * replaces all of it with the folders it lists, so tests do not depend on the machine.
 */
export function librarySearch(env: NodeJS.ProcessEnv = process.env): LibrarySearch {
  if (env.ESRVID_LIBRARY_SEARCH !== undefined) {
    return { pathDirs: splitPath(env.ESRVID_LIBRARY_SEARCH), cache: new Map(), defaultDirs: [], usualDirs: () => [], description: `ESRVID_LIBRARY_SEARCH (${env.ESRVID_LIBRARY_SEARCH})` };
  }
  const triplet = process.arch === 'arm64' ? 'aarch64-linux-gnu' : 'x86_64-linux-gnu';
  return {
    pathDirs: splitPath(env.LD_LIBRARY_PATH),
    cache: readLdconfig(),
    defaultDirs: [`/lib/${triplet}`, `/usr/lib/${triplet}`, '/lib64', '/usr/lib64', '/lib', '/usr/lib'],
    usualDirs: () => usualLibraryDirs(env),
    description: 'LD_LIBRARY_PATH, the provider\'s RUNPATH, the loader cache (ldconfig -p), /lib and /usr/lib',
  };
}

/** Where CUDA, cuDNN and the driver are usually installed: toolkits, pip wheels (PyTorch's too), conda. */
export function usualLibraryDirs(env: NodeJS.ProcessEnv): string[] {
  const dirs: string[] = [];
  const sub = (dir: string) => {
    try {
      return readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory() || d.isSymbolicLink()).map((d) => join(dir, d.name));
    } catch {
      return [];
    }
  };
  for (const cuda of ['/usr/local/cuda', ...sub('/usr/local').filter((d) => /\/cuda-[\d.]+$/.test(d))]) {
    dirs.push(join(cuda, 'lib64'), join(cuda, 'lib'), join(cuda, 'targets', 'x86_64-linux', 'lib'));
  }
  const pythonRoots = ['/usr/lib', '/usr/local/lib', join(homedir(), '.local', 'lib')];
  if (env.VIRTUAL_ENV) pythonRoots.push(join(env.VIRTUAL_ENV, 'lib'));
  // The python3 on PATH may be a venv nobody activated (e.g. /opt/torch/.venv/bin on GPU images):
  // its PyTorch cu13x wheels carry the CUDA and cuDNN libraries.
  for (const bin of (env.PATH ?? '').split(':').filter((d) => d.endsWith('/bin'))) {
    if (existsSync(join(bin, 'python3'))) pythonRoots.push(join(bin, '..', 'lib'));
  }
  if (env.CONDA_PREFIX) {
    pythonRoots.push(join(env.CONDA_PREFIX, 'lib'));
    dirs.push(join(env.CONDA_PREFIX, 'lib'));
  }
  for (const root of pythonRoots) {
    for (const py of sub(root).filter((d) => /\/python3[\d.]*$/.test(d))) {
      for (const pkgs of ['site-packages', 'dist-packages']) {
        // CUDA 13 wheels: nvidia/cu13/lib; cuDNN and CUDA 12 wheels: nvidia/<name>/lib.
        for (const n of sub(join(py, pkgs, 'nvidia'))) dirs.push(join(n, 'lib'));
      }
    }
  }
  return [...new Set(dirs)];
}

/** Where the loader will find `soname` for an object with this RUNPATH ($ORIGIN = its folder). */
export function findLibrary(soname: string, search: LibrarySearch, runpath: string[] = [], origin = ''): string | undefined {
  const runDirs = runpath.map((d) => d.replace(/\$\{?ORIGIN\}?/g, origin));
  for (const dir of [...search.pathDirs, ...runDirs]) {
    const p = join(dir, soname);
    if (existsSync(p)) return p;
  }
  const cached = search.cache.get(soname);
  if (cached && existsSync(cached)) return cached;
  for (const dir of search.defaultDirs) {
    const p = join(dir, soname);
    if (existsSync(p)) return p;
  }
  return undefined;
}

function findOffPath(soname: string, search: LibrarySearch): string | undefined {
  for (const dir of search.usualDirs()) {
    if (existsSync(join(dir, soname))) return dir;
  }
  return undefined;
}

/** "580.65.06" from /usr/lib/x86_64-linux-gnu/libcuda.so.580.65.06 (what libcuda.so.1 links to). */
export function driverVersionOf(driverPath: string): string | undefined {
  let real = driverPath;
  try {
    real = realpathSync(driverPath);
  } catch {
    // keep the name we have
  }
  return /libcuda\.so\.(\d+\.\d+(?:\.\d+)?)$/.exec(real)?.[1];
}

/** NVIDIA device nodes (/dev/nvidia0, ...): what the driver exposes for each visible GPU. */
export function nvidiaDevices(devDir = '/dev'): string[] {
  try {
    return readdirSync(devDir).filter((f) => /^nvidia\d+$/.test(f)).sort((a, b) => Number(a.slice(6)) - Number(b.slice(6))).map((f) => join(devDir, f));
  } catch {
    return [];
  }
}

/** Render nodes of GPUs with a DRM driver (AMD, Intel, NVIDIA with DRM). */
export function renderDevices(devDir = '/dev'): string[] {
  try {
    return readdirSync(join(devDir, 'dri')).filter((f) => /^renderD\d+$/.test(f)).map((f) => join(devDir, 'dri', f));
  } catch {
    return [];
  }
}

/** pip wheel and NVIDIA apt package of each CUDA library (CUDA 13 wheels dropped the -cuNN suffix). */
const PACKAGES = new Map([
  ['libcudart', ['nvidia-cuda-runtime', 'cuda-cudart']],
  ['libcublas', ['nvidia-cublas', 'libcublas']],
  ['libcublasLt', ['nvidia-cublas', 'libcublas']],
  ['libcurand', ['nvidia-curand', 'libcurand']],
]);

function packagesFor(names: readonly string[], cudaMajor: number): { pip: string; apt: string } {
  const found = names.map((n) => PACKAGES.get(n.replace(/\.so(\.\d+)*$/, ''))).filter((p): p is string[] => !!p);
  const pip = unique(found.map(([p]) => (cudaMajor >= 13 ? p : `${p}-cu${cudaMajor}`)));
  const apt = unique(found.map(([, a]) => `${a}-${cudaMajor}-${cudaMajor === 13 ? '0' : 'x'}`));
  return { pip: pip.join(' ') || `the CUDA ${cudaMajor} toolkit`, apt: apt.join(' ') || `for CUDA ${cudaMajor}` };
}

const list = (xs: readonly string[]) => xs.join(', ');
const unique = (xs: readonly (string | undefined)[]) => [...new Set(xs.filter((x): x is string => !!x))];

/** "add it to the search path" when the files exist elsewhere, else how to install them. */
function installHint(missing: LibraryFound[], install: string): string {
  const dirs = unique(missing.map((l) => l.offPath));
  if (dirs.length > 0 && missing.every((l) => l.offPath)) {
    return `${missing.length > 1 ? 'they are' : 'it is'} in ${list(dirs)}, which the library loader does not search: export LD_LIBRARY_PATH=${dirs.join(':')}\${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}`;
  }
  return `${install}, and add the folder holding ${missing.length > 1 ? 'them' : 'it'} to LD_LIBRARY_PATH`;
}

export interface CudaCheckOptions {
  env?: NodeJS.ProcessEnv;
  search?: LibrarySearch;
  devDir?: string;
}

/** Everything --device cuda needs, checked in the order a user has to fix it. */
export async function checkCuda(o: CudaCheckOptions = {}): Promise<CudaCheck> {
  const env = o.env ?? process.env;
  const search = o.search ?? librarySearch(env);
  const binDir = ortBinDir(env);
  const provider = CUDA_PROVIDER_FILES.map((file) => ({ file, path: join(binDir, file), present: existsSync(join(binDir, file)) }));
  const cudaProvider = provider[1]!;
  let needed = CUDA_PROVIDER_NEEDED;
  let runpath: string[] = [];
  if (cudaProvider.present) {
    const dyn = await readElfDynamic(cudaProvider.path).catch(() => undefined);
    if (dyn) {
      needed = dyn.needed.filter((n) => !SYSTEM_LIBRARY.test(n));
      runpath = dyn.runpath;
    }
  }
  const libraries: LibraryFound[] = [...needed, CUDNN].map((name) => {
    const path = findLibrary(name, search, runpath, binDir);
    return {
      name,
      role: name === DRIVER_LIBRARY ? 'driver' : name === CUDNN ? 'cudnn' : 'runtime',
      path,
      offPath: path ? undefined : findOffPath(name, search),
    };
  });
  if (!libraries.some((l) => l.role === 'driver')) {
    const path = findLibrary(DRIVER_LIBRARY, search);
    libraries.push({ name: DRIVER_LIBRARY, role: 'driver', path, offPath: path ? undefined : findOffPath(DRIVER_LIBRARY, search) });
  }
  const cudaMajor = Number(needed.map((n) => /^libcudart\.so\.(\d+)$/.exec(n)?.[1]).find(Boolean) ?? 13);
  const minDriver = minDriverFor(cudaMajor);
  const driver = libraries.find((l) => l.role === 'driver')!;
  const driverVersion = driver.path ? driverVersionOf(driver.path) : undefined;
  const gpuDevices = nvidiaDevices(o.devDir);

  const problems: Problem<CudaProblemKind>[] = [];
  const missingProvider = provider.filter((p) => !p.present);
  if (missingProvider.length > 0) {
    problems.push({
      kind: 'provider',
      // Both come from one package: name the one that matters when both are missing.
      message: `ONNX Runtime's CUDA provider is not installed (no ${missingProvider.at(-1)!.file} in ${binDir})`,
      hint: 'install it from the npm registry with: esrvid gpu install (230 MB)',
      short: 'CUDA provider not installed (esrvid gpu install)',
    });
  }
  const runtime = libraries.filter((l) => l.role === 'runtime' && !l.path);
  if (runtime.length > 0) {
    const names = runtime.map((l) => l.name);
    const pkg = packagesFor(names, cudaMajor);
    problems.push({
      kind: 'runtime',
      message: names.length > 1 ? `the CUDA ${cudaMajor} libraries ${list(names)} are not found` : `the CUDA ${cudaMajor} library ${names[0]} is not found`,
      hint: installHint(runtime, `install ${names.length > 1 ? 'them' : 'it'}: pip install ${pkg.pip} (CUDA ${cudaMajor} wheels, as a PyTorch cu${cudaMajor}${cudaMajor === 13 ? '0' : 'x'} install has), or NVIDIA's apt packages ${pkg.apt}`),
      short: `CUDA ${cudaMajor} libraries not found (${list(names)})`,
    });
  }
  const cudnn = libraries.find((l) => l.role === 'cudnn')!;
  if (!cudnn.path) {
    problems.push({
      kind: 'cudnn',
      message: `cuDNN 9 (${CUDNN}) is not found`,
      hint: installHint([cudnn], `install cuDNN 9 for CUDA ${cudaMajor}: pip install nvidia-cudnn-cu${cudaMajor}, or NVIDIA's apt package libcudnn9-cuda-${cudaMajor}`),
      short: `cuDNN 9 not found (${CUDNN})`,
    });
  }
  if (!driver.path) {
    problems.push({
      kind: 'driver',
      message: `the NVIDIA driver is not installed (${DRIVER_LIBRARY} not found)`,
      hint: driver.offPath
        ? installHint([driver], '')
        : `install the NVIDIA driver, version ${minDriver} or newer (CUDA ${cudaMajor} needs it); in a container, start it with the GPU passed in (docker run --gpus all), which also mounts the driver`,
      short: `no NVIDIA driver (${DRIVER_LIBRARY})`,
    });
  } else if (driverVersion && Number(driverVersion.split('.')[0]) < minDriver) {
    problems.push({
      kind: 'driver-version',
      message: `the NVIDIA driver is ${driverVersion}, older than CUDA ${cudaMajor} needs (${minDriver} or newer)`,
      hint: `update the NVIDIA driver to ${minDriver} or newer`,
      short: `NVIDIA driver ${driverVersion} too old for CUDA ${cudaMajor}`,
    });
  }
  if (driver.path && gpuDevices.length === 0) {
    problems.push({
      kind: 'gpu',
      message: `no NVIDIA GPU is visible (the driver library is there, but there is no /dev/nvidia0)`,
      hint: 'check that nvidia-smi lists the GPU; in a container, start it with the GPU passed in (docker run --gpus all)',
      short: 'no NVIDIA GPU visible',
    });
  }
  return { binDir, cudaMajor, provider, libraries, driverVersion, gpuDevices, problems };
}

export interface VulkanCheck {
  loader?: string;
  /** Installed Vulkan drivers (ICD manifests), e.g. nvidia_icd.json, lvp_icd.x86_64.json. */
  drivers: string[];
  /** /dev/dri/renderD* and /dev/nvidia* nodes. */
  gpuDevices: string[];
  problems: Problem<'vulkan' | 'gpu'>[];
}

/**
 * What WebGPU (Dawn over Vulkan) needs: a Vulkan loader and a GPU device node. A machine without
 * any has only software Vulkan at best (Mesa's lavapipe, which offers no WebGPU adapter).
 */
export function checkVulkan(o: { env?: NodeJS.ProcessEnv; search?: LibrarySearch; devDir?: string } = {}): VulkanCheck {
  const env = o.env ?? process.env;
  const search = o.search ?? librarySearch(env);
  const loader = findLibrary('libvulkan.so.1', search);
  const icdDirs = ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d', '/usr/local/share/vulkan/icd.d', join(homedir(), '.local', 'share', 'vulkan', 'icd.d')];
  const explicit = splitPath(env.VK_DRIVER_FILES ?? env.VK_ICD_FILENAMES);
  const drivers = explicit.length > 0 ? explicit : icdDirs.flatMap((d) => {
    try {
      return readdirSync(d).filter((f) => f.endsWith('.json'));
    } catch {
      return [];
    }
  });
  const gpuDevices = [...renderDevices(o.devDir), ...nvidiaDevices(o.devDir)];
  const problems: Problem<'vulkan' | 'gpu'>[] = [];
  // No GPU at all first: it is the more basic lack.
  if (gpuDevices.length === 0) {
    problems.push({
      kind: 'gpu',
      message: 'no GPU device is visible (no /dev/dri/renderD* or /dev/nvidia*)',
      hint: 'WebGPU needs a GPU; use --device cpu',
      short: 'no GPU device (/dev/dri/renderD*, /dev/nvidia*)',
    });
  }
  if (!loader) {
    problems.push({
      kind: 'vulkan',
      message: 'WebGPU runs on Vulkan, and no Vulkan loader (libvulkan.so.1) is installed',
      hint: 'install your GPU\'s Vulkan driver (the NVIDIA driver includes one; Mesa: apt install libvulkan1 mesa-vulkan-drivers)',
      short: 'no Vulkan loader (libvulkan.so.1)',
    });
  }
  return { loader, drivers, gpuDevices, problems };
}
