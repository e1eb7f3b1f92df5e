/**
 * --device through the real CLI on a machine without a GPU. Each missing piece of the CUDA set-up
 * (on a fake set-up: provider files, libraries, driver) gives its own one-line error and exit 8,
 * before any frame is decoded or file written; `auto` reports why it skipped the GPUs; and the
 * real failures of ONNX Runtime's CUDA and WebGPU providers on this machine are explained and
 * fallen back from.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ExitCode } from '../../src/errors.js';
import { checkVulkan } from '../../src/infer/gpu-libraries.js';
import { Upscaler } from '../../src/infer/upscaler.js';
import { fakeGpuHost, CUDA13_LIBS } from '../helpers/fake-gpu-host.js';
import { ROOT, runCli, tempDir } from '../helpers/media.js';

const { dir, cleanup } = tempDir('esrvid-device-');
afterAll(cleanup);
const CLIP = join(ROOT, 'samples', 'chelsea.mp4');
const noGpuHere = !existsSync('/dev/nvidia0') && !existsSync('/dev/dri');
let n = 0;

/** `esrvid chelsea.mp4 out.mp4 ...args` with a fake GPU set-up; checks nothing was written. */
async function upscale(env: Record<string, string>, args: string[]) {
  const r = await runCli([CLIP, join(dir, `out-${n++}.mp4`), '--frames', '0:2', ...args], { env });
  return { ...r, lines: r.stderr.trim().split('\n') };
}

describe('--device cuda that cannot run: one line, what is missing and how to install it', () => {
  const host = fakeGpuHost(join(dir, 'host'));
  // No output, no temporary file, no work folder.
  const leftovers = () => readdirSync(dir).filter((f) => f.startsWith('.') || f.endsWith('.mp4'));

  it('the provider library', async () => {
    const r = await upscale(host.env, ['--device', 'cuda']);
    expect(r.code).toBe(ExitCode.device);
    expect(r.lines).toEqual([
      `esrvid: --device cuda: ONNX Runtime's CUDA provider is not installed (no libonnxruntime_providers_cuda.so in ${host.bin}); install it from the npm registry with: esrvid gpu install (230 MB) `
      + '(also: CUDA 13 libraries not found (libcublasLt.so.13, libcublas.so.13, libcurand.so.10, libcudart.so.13); cuDNN 9 not found (libcudnn.so.9); no NVIDIA driver (libcuda.so.1); esrvid doctor lists everything)',
    ]);
    expect(leftovers()).toEqual([]);
  });

  it('a missing input is reported before the device is tried', async () => {
    const r = await runCli([join(dir, 'missing.mp4'), join(dir, `out-${n++}.mp4`), '--device', 'cuda'], { env: host.env });
    expect(r.code).toBe(ExitCode.input);
    expect(r.stderr.trim().split('\n')).toEqual([`esrvid: input ${join(dir, 'missing.mp4')} does not exist; check the path`]);
    expect(leftovers()).toEqual([]);
  });

  it('the CUDA runtime libraries the provider links', async () => {
    host.installProvider();
    host.addLibraries([CUDA13_LIBS[3]!]);
    const r = await upscale(host.env, ['--device', 'cuda']);
    expect(r.code).toBe(ExitCode.device);
    expect(r.lines).toEqual([
      'esrvid: --device cuda: the CUDA 13 libraries libcublasLt.so.13, libcublas.so.13, libcurand.so.10 are not found; install them: pip install nvidia-cublas nvidia-curand (CUDA 13 wheels, as a PyTorch cu130 install has), '
      + 'or NVIDIA\'s apt packages libcublas-13-0 libcurand-13-0, and add the folder holding them to LD_LIBRARY_PATH (also: cuDNN 9 not found (libcudnn.so.9); no NVIDIA driver (libcuda.so.1); esrvid doctor lists everything)',
    ]);
  });

  it('cuDNN', async () => {
    host.addLibraries(CUDA13_LIBS);
    const r = await upscale(host.env, ['--device', 'cuda']);
    expect(r.lines).toEqual([
      'esrvid: --device cuda: cuDNN 9 (libcudnn.so.9) is not found; install cuDNN 9 for CUDA 13: pip install nvidia-cudnn-cu13, or NVIDIA\'s apt package libcudnn9-cuda-13, and add the folder holding it to LD_LIBRARY_PATH '
      + '(also: no NVIDIA driver (libcuda.so.1); esrvid doctor lists everything)',
    ]);
  });

  it('the driver', async () => {
    host.addLibraries(['libcudnn.so.9']);
    const r = await upscale(host.env, ['--device', 'cuda']);
    expect(r.code).toBe(ExitCode.device);
    expect(r.lines).toEqual([
      'esrvid: --device cuda: the NVIDIA driver is not installed (libcuda.so.1 not found); install the NVIDIA driver, version 580 or newer (CUDA 13 needs it); in a container, start it with the GPU passed in (docker run --gpus all), which also mounts the driver',
    ]);
  });

  it.runIf(noGpuHere)('a driver too old, and no GPU visible', async () => {
    host.addDriver('550.54.15');
    const r = await upscale(host.env, ['--device', 'cuda']);
    expect(r.lines).toEqual([
      'esrvid: --device cuda: the NVIDIA driver is 550.54.15, older than CUDA 13 needs (580 or newer); update the NVIDIA driver to 580 or newer (also: no NVIDIA GPU visible; esrvid doctor lists everything)',
    ]);
  });
});

describe('other devices and --gpu', () => {
  it.runIf(noGpuHere)('--device webgpu without a GPU device: one line, exit 8', async () => {
    const r = await upscale({}, ['--device', 'webgpu']);
    expect(r.code).toBe(ExitCode.device);
    // A host without a Vulkan loader as well (a fresh machine: libvulkan1 is not installed) gets that named too.
    const alsoNoLoader = checkVulkan().loader ? '' : ' (also: no Vulkan loader (libvulkan.so.1); esrvid doctor lists everything)';
    expect(r.lines).toEqual([`esrvid: --device webgpu: no GPU device is visible (no /dev/dri/renderD* or /dev/nvidia*); WebGPU needs a GPU; use --device cpu${alsoNoLoader}`]);
  });

  it('--gpu with the CPU is a usage error; --gpu beyond the GPUs CUDA sees too', async () => {
    const cpu = await upscale({}, ['--device', 'cpu', '--gpu', '1']);
    expect(cpu.code).toBe(ExitCode.usage);
    expect(cpu.lines).toEqual(['esrvid: --gpu selects a CUDA GPU; it has no meaning with --device cpu; use --device cuda (or auto) with --gpu']);
    const host = fakeGpuHost(join(dir, 'two-gpus'));
    host.nvidiaSmi(['0, GPU-a, NVIDIA H100 80GB HBM3, 81559, 80724, 580.65.06', '1, GPU-b, NVIDIA H100 80GB HBM3, 81559, 80724, 580.65.06']);
    const far = await upscale(host.env, ['--gpu', '2']);
    expect(far.code).toBe(ExitCode.usage);
    expect(far.lines).toEqual(['esrvid: --gpu 2: CUDA sees 2 GPU(s): 0 NVIDIA H100 80GB HBM3, 1 NVIDIA H100 80GB HBM3; use --gpu 0 to 1']);
  });

  it('an unknown device is refused by the option parser (exit 2)', async () => {
    const r = await upscale({}, ['--device', 'tpu']);
    expect(r.code).toBe(ExitCode.usage);
    expect(r.lines).toEqual(["esrvid: option '--device <name>' argument 'tpu' is invalid. Allowed choices are auto, cpu, cuda, webgpu."]);
  });

  it.runIf(noGpuHere)('auto says what it chose and why it skipped the others (--json start event, plain line)', async () => {
    const host = fakeGpuHost(join(dir, 'auto'));
    const json = await upscale(host.env, ['--json', '--model', 'realesr-animevideov3-x4']);
    expect(json.code).toBe(0);
    const start = JSON.parse(json.stdout.split('\n')[0]!);
    expect(start).toMatchObject({
      type: 'start', device: 'cpu', precision: 'fp32', batch: 1,
      deviceReason: 'auto chose cpu; skipped cuda: CUDA provider not installed (esrvid gpu install), and 3 more (esrvid doctor); webgpu: no GPU device (/dev/dri/renderD*, /dev/nvidia*), and 1 more (esrvid doctor)',
    });
    const plain = await upscale(host.env, ['--no-tui', '--model', 'realesr-animevideov3-x4']);
    expect(plain.lines[1]).toBe(`esrvid: device cpu, fp32, batch 1: ${start.deviceReason}`);
  });
});

describe('real ONNX Runtime failures on this machine', () => {
  it.runIf(noGpuHere)('auto probes CUDA and WebGPU for real when the checks pass, explains their failures and falls back to the CPU', async () => {
    // Skip the static checks, so both GPU providers are really started: ONNX Runtime cannot load
    // the CUDA provider (not installed) and Dawn finds no WebGPU adapter (software Vulkan at best).
    const up = await Upscaler.open({ device: 'auto', precheck: async () => [] });
    try {
      expect(up.device).toBe('cpu');
      expect(up.selection.skipped).toEqual([
        { device: 'cuda', reason: 'CUDA provider did not load' },
        { device: 'webgpu', reason: 'no WebGPU adapter' },
      ]);
      expect(up.selection.reason).toBe('auto chose cpu; skipped cuda: CUDA provider did not load; webgpu: no WebGPU adapter');
    } finally {
      await up.close();
    }
  });

  it.runIf(noGpuHere)('an explicit WebGPU that starts but finds no adapter: ONNX Runtime\'s reason in one line', async () => {
    const err = await Upscaler.open({ device: 'webgpu', precheck: async () => [] }).catch((e: { oneLine(): string }) => e);
    expect(err.oneLine()).toBe('--device webgpu: no WebGPU adapter (Failed to get a WebGPU adapter: No supported adapters); WebGPU needs a GPU with a Vulkan driver (NVIDIA, AMD, Intel); software Vulkan (Mesa lavapipe) is not enough: use --device cpu');
  });
});
