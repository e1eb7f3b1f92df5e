/**
 * The NVIDIA GPUs this process can use and their free memory, from `nvidia-smi` (installed with
 * the driver). `--gpu N` counts like CUDA does: among the devices CUDA_VISIBLE_DEVICES leaves
 * visible, in its order; nvidia-smi always lists every GPU by its physical index.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

export interface GpuInfo {
  /** nvidia-smi's (physical) index. */
  index: number;
  uuid: string;
  name: string;
  memoryTotalBytes: number;
  memoryFreeBytes: number;
  driverVersion: string;
}

const FIELDS = 'index,uuid,name,memory.total,memory.free,driver_version';

/** Lines of `nvidia-smi --query-gpu=<FIELDS> --format=csv,noheader,nounits` (memory in MiB). */
export function parseNvidiaSmi(text: string): GpuInfo[] {
  const gpus: GpuInfo[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(',').map((s) => s.trim());
    if (f.length < 6 || !/^\d+$/.test(f[0]!)) continue;
    const mib = (s: string) => (/^\d+(\.\d+)?$/.test(s) ? Number(s) * 2 ** 20 : Number.NaN);
    gpus.push({ index: Number(f[0]), uuid: f[1]!, name: f[2]!, memoryTotalBytes: mib(f[3]!), memoryFreeBytes: mib(f[4]!), driverVersion: f[5]! });
  }
  return gpus;
}

/**
 * The GPUs CUDA will see, in CUDA's order (`--gpu` indexes this list). CUDA_VISIBLE_DEVICES
 * holds indices or UUIDs (or their prefixes); an entry that matches nothing hides the rest.
 */
export function visibleGpus(all: readonly GpuInfo[], cudaVisibleDevices: string | undefined): GpuInfo[] {
  if (cudaVisibleDevices === undefined) return [...all];
  const out: GpuInfo[] = [];
  for (const raw of cudaVisibleDevices.split(',').map((s) => s.trim())) {
    const g = /^\d+$/.test(raw) ? all.find((x) => x.index === Number(raw)) : raw ? all.find((x) => x.uuid.startsWith(raw)) : undefined;
    if (!g || out.includes(g)) break;
    out.push(g);
  }
  return out;
}

export interface GpuQuery {
  gpus: GpuInfo[];
  /** Why the list is empty when nvidia-smi could not be asked. */
  error?: string;
}

/** Asks nvidia-smi (ESRVID_NVIDIA_SMI overrides its path: a test hook). Never throws. */
export async function queryGpus(env: NodeJS.ProcessEnv = process.env): Promise<GpuQuery> {
  const bin = env.ESRVID_NVIDIA_SMI ?? 'nvidia-smi';
  try {
    const { stdout } = await promisify(execFile)(bin, [`--query-gpu=${FIELDS}`, '--format=csv,noheader,nounits'], { timeout: 15_000, env });
    return { gpus: visibleGpus(parseNvidiaSmi(stdout), env.CUDA_VISIBLE_DEVICES) };
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') return { gpus: [], error: 'nvidia-smi not found (it comes with the NVIDIA driver)' };
    const why = (e.stderr ?? '').trim().split('\n')[0] || e.message.split('\n')[0]!;
    return { gpus: [], error: `nvidia-smi failed: ${why}` };
  }
}
