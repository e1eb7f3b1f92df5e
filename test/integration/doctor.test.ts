/**
 * `esrvid doctor` through the real CLI, on a fake GPU set-up (provider files, libraries,
 * nvidia-smi) and on this machine's own ONNX Runtime, FFmpeg and devices.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { nativeKernel } from '../../src/infer/native-cpu.js';
import { fakeGpuHost, CUDA13_LIBS } from '../helpers/fake-gpu-host.js';
import { runCli, tempDir } from '../helpers/media.js';

const { dir, cleanup } = tempDir('esrvid-doctor-');
afterAll(cleanup);
const noGpuHere = !existsSync('/dev/nvidia0') && !existsSync('/dev/dri');

const host = fakeGpuHost(dir);
host.installProvider();
host.addLibraries([...CUDA13_LIBS.slice(1), 'libvulkan.so.1']);
host.addDriver('580.65.06');
host.nvidiaSmi([
  '0, GPU-8f2c1a7e-0000, NVIDIA H100 80GB HBM3, 81559, 80724, 580.65.06',
  '1, GPU-3b9d4e21-1111, NVIDIA H100 80GB HBM3, 81559, 1024, 580.65.06',
]);

describe('esrvid doctor', () => {
  it('prints providers, devices, the CUDA pieces found and missing, GPUs with free memory, Vulkan and FFmpeg', async () => {
    const r = await runCli(['doctor'], { env: { ...host.env, CUDA_VISIBLE_DEVICES: '1' } });
    expect(r.code).toBe(0);
    const out = r.stdout;
    expect(out).toMatch(/^esrvid \S+, Node v20\.\d+\.\d+, linux x64\n/);
    expect(out).toContain(`ONNX Runtime 1.29.0 (onnxruntime-node) in ${host.bin}\n`);
    expect(out).toContain('  built-in providers: cpu, webgpu, cuda (not bundled: needs provider files), tensorrt (not bundled: needs provider files)\n');
    expect(out).toContain('  cpu     usable\n');
    expect(out).toContain('  cuda    not usable: the CUDA 13 library libcublasLt.so.13 is not found; install it: pip install nvidia-cublas (CUDA 13 wheels');
    expect(out).toMatch(/\n {2}webgpu {2}(usable|not usable: .+)\n/);
    expect(out).toContain('  libonnxruntime_providers_cuda.so     ');
    expect(out).toContain('NOT the pinned build (esrvid gpu install --force)');
    expect(out).toContain(`  libcublasLt.so.13  CUDA 13        missing\n`);
    expect(out).toContain(`  libcublas.so.13    CUDA 13        ${join(host.libs, 'libcublas.so.13')}\n`);
    expect(out).toContain(`  libcudnn.so.9      cuDNN 9        missing\n`);
    expect(out).toContain(`  libcuda.so.1       NVIDIA driver  ${join(host.libs, 'libcuda.so.1')}\n`);
    expect(out).toContain('  driver version 580.65.06\n');
    expect(out).toContain('    - cuDNN 9 (libcudnn.so.9) is not found: install cuDNN 9 for CUDA 13');
    // CUDA_VISIBLE_DEVICES=1: CUDA's GPU 0 is nvidia-smi's GPU 1.
    expect(out).toContain('  CUDA_VISIBLE_DEVICES=1\n');
    expect(out).toMatch(/ {2}--gpu {2}name {19}memory free {2}total {4}driver\n.*\n {2}0 {6}NVIDIA H100 80GB HBM3 {2}1\.0 GB {7}79\.6 GB {2}580\.65\.06\n/);
    expect(out).toContain(`  loader: ${join(host.libs, 'libvulkan.so.1')}\n`);
    expect(out).toMatch(/\n {2}ffmpeg: ffmpeg version \S+/);
  });

  it('--json: the same report for scripts', async () => {
    const r = await runCli(['doctor', '--json'], { env: host.env });
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.onnxruntime.version).toBe('1.29.0');
    expect(j.devices.map((d: { device: string; usable: boolean }) => [d.device, d.usable]).slice(0, 2)).toEqual([['cpu', true], ['cuda', false]]);
    expect(j.cuda.problems.map((p: { kind: string }) => p.kind)).toEqual(noGpuHere ? ['runtime', 'cudnn', 'gpu'] : ['runtime', 'cudnn']);
    expect(j.cuda.providerFiles.map((f: { present: boolean; matches: boolean }) => [f.present, f.matches])).toEqual([[true, false], [true, false]]);
    expect(j.gpus).toHaveLength(2);
    expect(j.gpus[1]).toMatchObject({ index: 1, name: 'NVIDIA H100 80GB HBM3', memoryFreeBytes: 1024 * 2 ** 20 });
    expect(j.ffmpeg.ffmpeg).toMatch(/^ffmpeg version/);
    if (noGpuHere) expect(j.auto).toEqual({ device: 'cpu', skipped: ['cuda', 'webgpu'] });
    // The fused CPU kernel: in use wherever it was built and runs (the build machine, CI).
    expect(j.nativeKernel).toEqual(nativeKernel() ? { usable: true, isa: nativeKernel()!.isa() } : { usable: false, reason: expect.any(String) });
  });

  it('says when the fused CPU kernel is off, and that ONNX Runtime runs the compact models then', async () => {
    const r = await runCli(['doctor'], { env: { ...host.env, ESRVID_NATIVE: '0' } });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ {2}CPU, compact models: ONNX Runtime; esrvid's fused kernel turned off \(ESRVID_NATIVE=0\)$/m);
  });

  it('without nvidia-smi or provider: says so, and still exits 0', async () => {
    const bare = fakeGpuHost(join(dir, 'bare'));
    const r = await runCli(['doctor'], { env: bare.env });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('  libonnxruntime_providers_shared.so   missing\n');
    expect(r.stdout).toContain(`  cuda    not usable: ONNX Runtime's CUDA provider is not installed (no libonnxruntime_providers_cuda.so in ${bare.bin}); install it from the npm registry with: esrvid gpu install (230 MB)\n`);
    expect(r.stdout).toMatch(/\n {2}none found \(nvidia-smi not found \(it comes with the NVIDIA driver\)\); device nodes: /);
  });
});
