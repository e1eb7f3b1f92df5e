/**
 * `esrvid gpu install|remove`: ONNX Runtime's CUDA provider from the npm registry
 * (src/infer/cuda-provider.ts), then what --device cuda still lacks on this machine.
 */
import type { Command } from 'commander';
import { downloadProgress } from './download-progress.js';
import { formatBytes } from './format.js';

export function registerGpu(program: Command): Command {
  const gpu = program.command('gpu').description('install or remove ONNX Runtime\'s CUDA provider (from the npm registry)');
  gpu.command('install')
    .description('fetch ONNX Runtime 1.29.0\'s CUDA 13 provider (230 MB) from the npm registry, verify it and put it beside ONNX Runtime')
    .option('-f, --force', 'install again even if the same files are there')
    .action((o: { force?: boolean }) => gpuInstall(!!o.force, !!program.opts().quiet));
  gpu.command('remove')
    .description('remove the CUDA provider files (esrvid then runs on the CPU or WebGPU)')
    .action(() => gpuRemove(!!program.opts().quiet));
  return gpu;
}

export async function gpuInstall(force: boolean, quiet: boolean, out: NodeJS.WritableStream = process.stdout, err: NodeJS.WriteStream = process.stderr): Promise<void> {
  const { CUDA_PROVIDER_SOURCE: source, installCudaProvider } = await import('../infer/cuda-provider.js');
  const { checkCuda } = await import('../infer/gpu-libraries.js');
  const progress = downloadProgress(err, (total) =>
    `esrvid: fetching ONNX Runtime ${source.onnxruntime}'s CUDA ${source.cuda} provider from npm package ${source.package}@${source.version} (${formatBytes(total)})`);
  const result = await installCudaProvider({
    force,
    onProgress: (received, total) => {
      if (!quiet) progress.update(received, total);
    },
  }).finally(() => progress.stop());
  const files = result.files.map((f) => `${f.name} (${formatBytes(f.bytes)})`).join(' and ');
  out.write(result.alreadyInstalled
    ? `already installed: ${files} in ${result.binDir} (sha256 checked)\n`
    : `installed ${files} in ${result.binDir}\n`);
  const { problems } = await checkCuda();
  if (problems.length === 0) {
    out.write('everything --device cuda needs is there; esrvid doctor shows the GPUs\n');
    return;
  }
  out.write('still needed for --device cuda:\n');
  for (const p of problems) out.write(`  - ${p.message}: ${p.hint}\n`);
}

export async function gpuRemove(quiet: boolean, out: NodeJS.WritableStream = process.stdout): Promise<void> {
  const { removeCudaProvider } = await import('../infer/cuda-provider.js');
  const removed = await removeCudaProvider();
  if (quiet) return;
  out.write(removed.length > 0 ? `removed ${removed.join(', ')}\n` : 'the CUDA provider is not installed: nothing to remove\n');
}
