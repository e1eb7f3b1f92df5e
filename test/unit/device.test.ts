/**
 * Device selection: what `auto` tries and reports, the one-line failures of an explicit device,
 * ONNX Runtime's messages explained, the session options per device, and the probe model (rebuilt
 * here with the graph builder and run on the CPU). The session-option facts of onnxruntime-node
 * 1.29 that the CUDA configuration relies on are checked on the CPU, where they can be.
 */
import { availableParallelism } from 'node:os';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { DeviceError, ExitCode } from '../../src/errors.js';
import { cpuLanes, CUDA_LANES, defaultPrecision, deviceFailure, explainDeviceError, inferenceCores, lanesFor, MAX_AUTO_LANES, selectDevice, sessionConfig, type Device } from '../../src/infer/device.js';
import type { Problem } from '../../src/infer/gpu-libraries.js';
import { probeModel, runProbe } from '../../src/infer/probe-model.js';
import { GraphBuilder, type Precision } from '../../src/models/onnx/graph-builder.js';

const problem = (kind: string, short: string): Problem => ({ kind, message: `${kind} is missing`, hint: `install ${kind}`, short });

/** Fakes for selectDevice: fixed precheck problems and probe failures per device, and a call log. */
function deps(o: { problems?: Partial<Record<Device, Problem[]>>; failures?: Partial<Record<Device, string>> }) {
  const calls: string[] = [];
  return {
    calls,
    precheck: async (d: Device) => {
      calls.push(`precheck ${d}`);
      return o.problems?.[d] ?? [];
    },
    probe: async (d: Device) => {
      calls.push(`probe ${d}`);
      if (o.failures?.[d]) throw new Error(o.failures[d]);
    },
  };
}

const ADAPTER = '/onnxruntime_src/onnxruntime/core/providers/webgpu/webgpu_context.cc:100 onnxruntime::webgpu::WebGpuContext::Initialize(const onnxruntime::webgpu::WebGpuContextConfig&)::<lambda()> adapter_result.status == wgpu::RequestAdapterStatus::Success was false. Failed to get a WebGPU adapter: No supported adapters\n';

describe('selectDevice', () => {
  it('the CPU asked for: nothing checked or probed', async () => {
    const d = deps({});
    expect(await selectDevice('cpu', d)).toEqual({ device: 'cpu', skipped: [] });
    expect(d.calls).toEqual([]);
  });

  it('auto: CUDA, then WebGPU, then the CPU, with why each was skipped', async () => {
    const d = deps({
      problems: { cuda: [problem('provider', 'CUDA provider not installed (esrvid gpu install)'), problem('cudnn', 'cuDNN 9 not found')] },
      failures: { webgpu: ADAPTER },
    });
    const s = await selectDevice('auto', d);
    expect(d.calls).toEqual(['precheck cuda', 'precheck webgpu', 'probe webgpu']);
    expect(s.device).toBe('cpu');
    expect(s.skipped).toEqual([
      { device: 'cuda', reason: 'CUDA provider not installed (esrvid gpu install), and 1 more (esrvid doctor)' },
      { device: 'webgpu', reason: 'no WebGPU adapter' },
    ]);
    expect(s.reason).toBe('auto chose cpu; skipped cuda: CUDA provider not installed (esrvid gpu install), and 1 more (esrvid doctor); webgpu: no WebGPU adapter');
  });

  it('auto takes the first device whose probe runs', async () => {
    expect((await selectDevice('auto', deps({}))).device).toBe('cuda');
    const s = await selectDevice('auto', deps({ failures: { cuda: 'CUDA failure 100: no CUDA-capable device is detected ; GPU=0' } }));
    expect(s).toEqual({ device: 'webgpu', skipped: [{ device: 'cuda', reason: 'no GPU visible to CUDA' }], reason: 'auto chose webgpu; skipped cuda: no GPU visible to CUDA' });
  });

  it('an explicit device that cannot run fails with one line: the first problem, how to fix it, the rest named (exit 8)', async () => {
    const err = await selectDevice('cuda', deps({ problems: { cuda: [problem('provider', 'CUDA provider not installed'), problem('driver', 'no NVIDIA driver (libcuda.so.1)')] } })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeviceError);
    expect((err as DeviceError).exitCode).toBe(ExitCode.device);
    expect((err as DeviceError).oneLine()).toBe('--device cuda: provider is missing; install provider (also: no NVIDIA driver (libcuda.so.1); esrvid doctor lists everything)');
    expect((err as DeviceError).oneLine()).not.toContain('\n');
  });

  it('an explicit device whose probe fails: ONNX Runtime\'s message explained', async () => {
    const err = await selectDevice('webgpu', deps({ failures: { webgpu: ADAPTER } })).catch((e: DeviceError) => e);
    expect(err.oneLine()).toBe('--device webgpu: no WebGPU adapter (Failed to get a WebGPU adapter: No supported adapters); WebGPU needs a GPU with a Vulkan driver (NVIDIA, AMD, Intel); software Vulkan (Mesa lavapipe) is not enough: use --device cpu');
  });
});

describe('explainDeviceError', () => {
  const cases: [Device, string, string][] = [
    ['cuda', 'CUDA failure 100: no CUDA-capable device is detected ; GPU=0 ; hostname=h ; file=cuda_execution_provider.cc', 'no NVIDIA GPU is visible to CUDA'],
    ['cuda', 'CUDA failure 101: invalid device ordinal ; GPU=3', 'the GPU asked for with --gpu does not exist'],
    ['cuda', 'CUDA failure 35: CUDA driver version is insufficient for CUDA runtime version ; GPU=0', 'the NVIDIA driver is too old for CUDA 13'],
    ['cuda', 'CUDNN failure 1: CUDNN_STATUS_NOT_INITIALIZED ; GPU=0', 'cuDNN failed: CUDNN failure 1: CUDNN_STATUS_NOT_INITIALIZED ; GPU=0'],
    ['cuda', 'OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library', 'ONNX Runtime could not load its CUDA provider or a library the provider needs'],
    ['cuda', 'something new\nsecond line', 'ONNX Runtime could not start CUDA: something new'],
    ['webgpu', 'Unknown error', 'ONNX Runtime could not start WebGPU: Unknown error'],
  ];
  it.each(cases)('%s: %s', (device, message, expected) => {
    expect(explainDeviceError(device, message).message).toBe(expected);
  });

  it('the one line never carries ONNX Runtime\'s multi-line text', () => {
    const e = deviceFailure('cuda', [explainDeviceError('cuda', 'a\nb\nc')]);
    expect(e.oneLine()).toBe('--device cuda: ONNX Runtime could not start CUDA: a; run esrvid doctor to check the CUDA set-up');
  });
});

describe('session options per device', () => {
  it('CPU: all cores, default logging', () => {
    expect(sessionConfig('cpu')).toEqual({ executionProviders: ['cpu'], threads: 0, arrangeForCpu: true, nativeCpu: true, framePerCall: true, extra: { session: { intra_op: { allow_spinning: '0' } } } });
    expect(sessionConfig('cpu', { threads: 2 }).threads).toBe(2);
    // int8 graphs are many short operators: their threads spin (BENCHMARKS.md, attempt 9).
    expect(sessionConfig('cpu', { precision: 'int8' }).extra).toEqual({ session: { intra_op: { allow_spinning: '1' } } });
    expect(defaultPrecision('cpu')).toBe('fp32');
  });

  it('CUDA: the GPU, cuDNN search, arena, a channels-last graph, pinned outputs, a quiet single CPU thread; fp16 by default', () => {
    expect(sessionConfig('cuda', { gpu: 1 })).toEqual({
      executionProviders: [{ name: 'cuda', deviceId: 1, cudnnConvAlgoSearch: 'EXHAUSTIVE', cudnnConvUseMaxWorkspace: true, arenaExtendStrategy: 'kSameAsRequested', doCopyInDefaultStream: true }],
      threads: 1,
      arrangeForCuda: true,
      preferredOutputLocation: 'cpu-pinned',
      logSeverityLevel: 3,
      extra: { session: { use_device_allocator_for_initializers: '1', intra_op: { allow_spinning: '0' } } },
    });
    expect(defaultPrecision('cuda')).toBe('fp16');
    expect(defaultPrecision('webgpu')).toBe('fp16');
  });

  it('WebGPU: no deviceId (the binding refuses options it does not know for WebGPU)', () => {
    expect(sessionConfig('webgpu', { gpu: 1 }).executionProviders).toEqual([{ name: 'webgpu' }]);
  });

  /** onnxruntime-node 1.29 facts the CUDA configuration rests on, seen on the CPU. */
  it('preferredOutputLocation "cpu-pinned" keeps pre-allocated outputs; the per-output form drops them', async () => {
    const writes = async (pol: unknown) => {
      const s = await ort.InferenceSession.create(probeModel('fp32'), { preferredOutputLocation: pol as 'cpu-pinned' });
      try {
        const out = new Uint8Array(48);
        await s.run({ frames: new ort.Tensor('uint8', new Uint8Array(48).fill(9), [1, 4, 4, 3]) }, { upscaled: new ort.Tensor('uint8', out, [1, 4, 4, 3]) });
        return out[0] === 9;
      } finally {
        await s.release();
      }
    };
    expect(await writes('cpu-pinned')).toBe(true);
    expect(await writes({ upscaled: 'cpu-pinned' })).toBe(false);
  });
});

/** The probe model as src/infer/probe-model.ts describes it, from the graph builder. */
function buildProbe(precision: Precision): Uint8Array {
  const g = new GraphBuilder();
  g.inputs.push({ name: 'frames', elemType: 'uint8', shape: [1, 4, 4, 3] });
  g.outputs.push({ name: 'upscaled', elemType: 'uint8', shape: [1, 4, 4, 3] });
  const x = g.cast('frames', 'float');
  const nchw = g.node('Transpose', [x], { perm: [0, 3, 1, 2] });
  const y = g.conv(nchw, Float32Array.from([1, 0, 0, 0, 1, 0, 0, 0, 1]), Float32Array.from([0, 0, 0]), { outChannels: 3, inChannels: 3, kernel: [1, 1] });
  const nhwc = g.node('Transpose', [y], { perm: [0, 2, 3, 1] });
  g.node('Cast', [nhwc], { to: 2 }, 'upscaled');
  return g.serialize(precision, 'esrvid-probe');
}

describe('CPU lanes', () => {
  it('one lane per core up to MAX_AUTO_LANES, the rest as threads per lane', () => {
    expect(cpuLanes({ threads: 1 })).toEqual({ lanes: 1, threadsPerLane: 1 });
    expect(cpuLanes({ threads: 2 })).toEqual({ lanes: 2, threadsPerLane: 1 });
    expect(cpuLanes({ threads: 4 })).toEqual({ lanes: 4, threadsPerLane: 1 });
    expect(cpuLanes({ threads: 16 })).toEqual({ lanes: MAX_AUTO_LANES, threadsPerLane: 16 / MAX_AUTO_LANES });
    expect(cpuLanes({ threads: 6 })).toEqual({ lanes: 4, threadsPerLane: 1 });
  });

  it('--lanes is taken as given; each lane gets at least one thread', () => {
    expect(cpuLanes({ threads: 8, lanes: 1 })).toEqual({ lanes: 1, threadsPerLane: 8 });
    expect(cpuLanes({ threads: 8, lanes: 2 })).toEqual({ lanes: 2, threadsPerLane: 4 });
    expect(cpuLanes({ threads: 2, lanes: 3 })).toEqual({ lanes: 3, threadsPerLane: 1 });
  });

  it('without --threads, the cores this process may use, physical ones only', () => {
    const cores = inferenceCores();
    expect(cores).toBeGreaterThanOrEqual(1);
    expect(cores).toBeLessThanOrEqual(availableParallelism());
    expect(cpuLanes().lanes).toBe(Math.min(cores, MAX_AUTO_LANES));
  });
});

describe('GPU lanes', () => {
  it('CUDA: one session on the GPU unless --lanes says, each with the given host threads', () => {
    expect(CUDA_LANES).toBe(1);
    expect(lanesFor('cuda')).toEqual({ lanes: 1, threadsPerLane: undefined });
    expect(lanesFor('cuda', { lanes: 3 })).toEqual({ lanes: 3, threadsPerLane: undefined });
    expect(lanesFor('cuda', { lanes: 1, threads: 2 })).toEqual({ lanes: 1, threadsPerLane: 2 });
    expect(lanesFor('cuda', { lanes: 0 })).toEqual({ lanes: 1, threadsPerLane: undefined });
  });

  it('WebGPU: one session unless --lanes says; the CPU splits its threads as cpuLanes does', () => {
    expect(lanesFor('webgpu').lanes).toBe(1);
    expect(lanesFor('webgpu', { lanes: 2 }).lanes).toBe(2);
    expect(lanesFor('cpu', { threads: 8, lanes: 2 })).toEqual(cpuLanes({ threads: 8, lanes: 2 }));
  });
});

describe('probe model', () => {
  it.each(['fp32', 'fp16'] as const)('%s: the embedded bytes are the graph builder\'s, and it runs as the identity on the CPU', async (precision) => {
    expect(Buffer.from(probeModel(precision)).equals(Buffer.from(buildProbe(precision)))).toBe(true);
    await expect(runProbe(ort, sessionConfig('cpu', { threads: 1 }), precision)).resolves.toBeUndefined();
  });
});
