/**
 * `esrvid doctor`: what esrvid sees on this machine. ONNX Runtime and its providers, each device
 * tried for real on the probe model, the CUDA provider files, the CUDA/cuDNN libraries and the
 * driver as the loader will find them, the GPUs and their free memory, the Vulkan set-up WebGPU
 * runs on, and FFmpeg. Text for people, --json for scripts.
 */
import type { Command } from 'commander';
import { AUTO_ORDER, DEVICES, type Device } from '../infer/device.js';
import type { CudaCheck, VulkanCheck } from '../infer/gpu-libraries.js';
import type { GpuInfo } from '../infer/gpus.js';
import type { ProviderFileStatus } from '../infer/cuda-provider.js';
import { formatBytes, renderTable } from './format.js';
import { packageVersion } from '../version.js';

export interface DoctorReport {
  esrvid: string;
  node: string;
  platform: string;
  onnxruntime: { version: string; binDir: string; backends: { name: string; bundled: boolean }[] };
  /** Each device as `--device <name>` would find it. */
  devices: { device: Device; usable: boolean; reason?: string }[];
  /** What `--device auto` picks, and why. */
  auto: { device: Device; skipped: Device[] };
  cuda: CudaCheck & { providerFiles: ProviderFileStatus[]; providerBuild: string; librarySearch: string };
  gpus: GpuInfo[];
  gpuError?: string;
  cudaVisibleDevices?: string;
  vulkan: VulkanCheck;
  ffmpeg: { ffmpeg?: string; ffprobe?: string; error?: string };
  /** esrvid's fused CPU kernel for the compact models (src/infer/native-cpu.ts). */
  nativeKernel: { usable: boolean; isa?: 'avx512' | 'avx2'; reason?: string };
}

export function registerDoctor(program: Command): Command {
  return program.command('doctor')
    .description('show what esrvid sees: ONNX Runtime providers, CUDA/cuDNN libraries, GPUs and free memory, Vulkan, FFmpeg')
    .option('--json', 'print the report as JSON')
    .action(async (o: { json?: boolean }) => {
      const report = await doctorReport();
      // --json is also the main command's option, which commander gives the program: read both.
      process.stdout.write(o.json || program.opts().json ? `${JSON.stringify(report, null, 2)}\n` : renderDoctor(report));
    });
}

export async function doctorReport(env: NodeJS.ProcessEnv = process.env): Promise<DoctorReport> {
  const ort = await import('onnxruntime-node');
  const { checkCuda, checkVulkan, librarySearch } = await import('../infer/gpu-libraries.js');
  const { CUDA_PROVIDER_SOURCE, providerStatus } = await import('../infer/cuda-provider.js');
  const { queryGpus } = await import('../infer/gpus.js');
  const { Upscaler } = await import('../infer/upscaler.js');
  const { EsrvidError } = await import('../errors.js');
  const { nativeKernelStatus } = await import('../infer/native-cpu.js');

  const search = librarySearch(env);
  const cuda = await checkCuda({ env, search });
  const providerFiles = await providerStatus({ binDir: cuda.binDir, verify: true });
  const vulkan = checkVulkan({ env, search });
  const gpuQuery = await queryGpus(env);

  // Each device through the same path the main command takes.
  const devices: DoctorReport['devices'] = [];
  for (const device of DEVICES) {
    try {
      // The checks above are the device's pre-checks: not run (ldconfig, ELF reads) a second time.
      const u = await Upscaler.open({ device, gpu: 0, precheck: async (d) => (d === 'cuda' ? cuda.problems : d === 'webgpu' ? vulkan.problems : []) });
      try {
        if (device === 'cpu') await u.probe('cpu', 'fp32');
      } finally {
        await u.close();
      }
      devices.push({ device, usable: true });
    } catch (err) {
      // The "also: ..." list of the one-line error is spelt out below.
      const reason = err instanceof EsrvidError ? err.oneLine().replace(/^--device \w+: /, '').replace(/ \(also: .*\)$/, '') : (err as Error).message;
      devices.push({ device, usable: false, reason });
    }
  }
  const autoDevice = AUTO_ORDER.find((d) => devices.find((x) => x.device === d)?.usable) ?? 'cpu';
  const skipped = AUTO_ORDER.slice(0, AUTO_ORDER.indexOf(autoDevice));

  let ffmpeg: DoctorReport['ffmpeg'];
  try {
    const { findFfmpeg } = await import('../ffmpeg/binaries.js');
    const tools = await findFfmpeg({});
    ffmpeg = { ffmpeg: `${tools.ffmpeg.version} (${tools.ffmpeg.path})`, ffprobe: `${tools.ffprobe.version} (${tools.ffprobe.path})` };
  } catch (err) {
    ffmpeg = { error: err instanceof EsrvidError ? err.oneLine() : (err as Error).message };
  }

  return {
    esrvid: packageVersion(),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    onnxruntime: { version: ort.env.versions.common, binDir: cuda.binDir, backends: ort.listSupportedBackends() },
    devices,
    auto: { device: autoDevice, skipped },
    cuda: {
      ...cuda,
      providerFiles,
      providerBuild: `ONNX Runtime ${CUDA_PROVIDER_SOURCE.onnxruntime} for CUDA ${CUDA_PROVIDER_SOURCE.cuda}, from npm ${CUDA_PROVIDER_SOURCE.package}@${CUDA_PROVIDER_SOURCE.version}`,
      librarySearch: search.description,
    },
    gpus: gpuQuery.gpus,
    gpuError: gpuQuery.error,
    cudaVisibleDevices: env.CUDA_VISIBLE_DEVICES,
    vulkan,
    ffmpeg,
    nativeKernel: nativeKernelStatus(),
  };
}

export function renderDoctor(r: DoctorReport): string {
  const lines: string[] = [];
  const section = (title: string) => lines.push('', title);
  lines.push(`esrvid ${r.esrvid}, Node ${r.node}, ${r.platform}`);
  lines.push(`ONNX Runtime ${r.onnxruntime.version} (onnxruntime-node) in ${r.onnxruntime.binDir}`);
  lines.push(`  built-in providers: ${r.onnxruntime.backends.map((b) => `${b.name}${b.bundled ? '' : ' (not bundled: needs provider files)'}`).join(', ')}`);

  section('devices (tried on a probe model, as --device would):');
  for (const d of r.devices) lines.push(`  ${d.device.padEnd(7)} ${d.usable ? 'usable' : `not usable: ${d.reason}`}`);
  lines.push(`  --device auto picks: ${r.auto.device}${r.auto.skipped.length ? ` (${r.auto.skipped.join(' and ')} not usable)` : ''}`);
  lines.push(`  CPU, compact models: ${r.nativeKernel.usable ? `esrvid's fused kernel (${r.nativeKernel.isa === 'avx2' ? 'AVX2' : 'AVX-512'})` : `ONNX Runtime; esrvid's fused kernel ${r.nativeKernel.reason}`}`);

  section(`CUDA provider (${r.cuda.providerBuild}):`);
  for (const f of r.cuda.providerFiles) {
    const state = !f.present ? 'missing' : f.matches ? `${formatBytes(f.bytes!)}, sha256 matches the pinned build` : `${formatBytes(f.bytes!)}, NOT the pinned build (esrvid gpu install --force)`;
    lines.push(`  ${f.name.padEnd(36)} ${state}`);
  }
  section(`CUDA libraries (searched: ${r.cuda.librarySearch}):`);
  const role = { runtime: `CUDA ${r.cuda.cudaMajor}`, cudnn: 'cuDNN 9', driver: 'NVIDIA driver' } as const;
  lines.push(...renderTable(['library', 'for', 'found'], r.cuda.libraries.map((l) => [
    l.name, role[l.role], l.path ?? (l.offPath ? `not on the search path (it is in ${l.offPath})` : 'missing'),
  ])).trimEnd().split('\n').map((l) => `  ${l}`));
  if (r.cuda.driverVersion) lines.push(`  driver version ${r.cuda.driverVersion}`);
  if (r.cuda.problems.length > 0) {
    lines.push('  to use --device cuda:');
    for (const p of r.cuda.problems) lines.push(`    - ${p.message}: ${p.hint}`);
  }

  section('NVIDIA GPUs:');
  if (r.cudaVisibleDevices !== undefined) lines.push(`  CUDA_VISIBLE_DEVICES=${r.cudaVisibleDevices}`);
  if (r.gpus.length === 0) lines.push(`  none found${r.gpuError ? ` (${r.gpuError})` : ''}; device nodes: ${r.cuda.gpuDevices.join(', ') || 'none'}`);
  else {
    lines.push(...renderTable(['--gpu', 'name', 'memory free', 'total', 'driver'], r.gpus.map((g, i) => [
      String(i), g.name, formatBytes(g.memoryFreeBytes), formatBytes(g.memoryTotalBytes), g.driverVersion,
    ])).trimEnd().split('\n').map((l) => `  ${l}`));
  }

  section('Vulkan (for WebGPU):');
  lines.push(`  loader: ${r.vulkan.loader ?? 'libvulkan.so.1 not found'}`);
  lines.push(`  drivers: ${r.vulkan.drivers.join(', ') || 'none'}`);
  lines.push(`  GPU devices: ${r.vulkan.gpuDevices.join(', ') || 'none'}`);

  section('FFmpeg:');
  if (r.ffmpeg.error) lines.push(`  not usable: ${r.ffmpeg.error}`);
  else lines.push(`  ffmpeg: ${r.ffmpeg.ffmpeg}`, `  ffprobe: ${r.ffmpeg.ffprobe}`);
  return `${lines.join('\n')}\n`;
}
