/**
 * Which device runs the network, and why. One map from device name to ONNX Runtime session
 * options, one selection routine: an explicit `--device cuda|webgpu` that cannot run fails with one
 * line naming the missing piece and how to install it; `auto` tries CUDA, then WebGPU, then the
 * CPU, and says why it skipped the others.
 *
 * A device is judged in two steps: first what can be seen without loading anything (provider
 * files, libraries, driver, device nodes: src/infer/gpu-libraries.ts), then a real session on a
 * tiny probe model (src/infer/probe-model.ts) in the inference worker, whose failure message is
 * explained in the user's terms.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { DeviceError, UsageError } from '../errors.js';
import type { Precision } from '../models/onnx/graph-builder.js';
import type { ModelPrecision } from '../models/store.js';
import { checkCuda, checkVulkan, type Problem } from './gpu-libraries.js';
import type { SessionConfig } from './worker-protocol.js';

export const DEVICES = ['cpu', 'cuda', 'webgpu'] as const;
export type Device = (typeof DEVICES)[number];
export type DeviceRequest = Device | 'auto';
export const DEVICE_REQUESTS: readonly DeviceRequest[] = ['auto', ...DEVICES];

/** The order `auto` tries. */
export const AUTO_ORDER: readonly Device[] = ['cuda', 'webgpu', 'cpu'];

export function isGpu(device: Device): boolean {
  return device !== 'cpu';
}

/** fp16 on GPUs (half the memory traffic, tensor cores), fp32 on the CPU (no fast fp16 there). */
export function defaultPrecision(device: Device): Precision {
  return isGpu(device) ? 'fp16' : 'fp32';
}

export function parseDevice(raw: string): DeviceRequest {
  if ((DEVICE_REQUESTS as readonly string[]).includes(raw)) return raw as DeviceRequest;
  throw new UsageError(`unsupported device "${raw}"`, `use one of: ${DEVICE_REQUESTS.join(', ')}`);
}

/**
 * CUDA sessions side by side on one GPU by default: one. `--lanes N` runs N, each in its own
 * worker thread with its own frames in flight, so one session's copies between host and GPU
 * memory (onnxruntime-node hands over pageable buffers; ONNX Runtime's profile of
 * realesr-general-x4v3 at 1920x1080 on an H100 showed ~40 ms of GPU work in a ~115 ms call)
 * overlap another's kernels. Inference alone gains (H100, fp16, batch 1, frames/s with 1 / 2 / 3
 * sessions, docs/gpu/h100-2026-11-27-lease5-concurrency.json): realesr-general-x4v3 640x360
 * 65.7 / 133.6 / 173.3, 1920x1080 8.35 / 12.7 / 16.6; realesrgan-x4plus 640x360 11.5 / 13.0 / 13.0.
 * Whole jobs lost (lease6-e2e-lanes.json, 360 frames, 1 against 3 lanes): realesr-general-x4v3
 * 640x360 32.1 -> 25.6 frames/s (bound by the encoder on 2560x1440 frames), realesrgan-x4plus
 * 8.08 -> 6.27 (each session runs its own cuDNN algorithm search, ~11 s for this model, and
 * holds its own batch): so one lane stays the default.
 */
export const CUDA_LANES = 1;

/**
 * ONNX Runtime session options per device.
 *
 * CUDA: onnxruntime-node 1.29 passes only `deviceId` to the CUDA provider; the other options are
 * what esrvid wants for convolution networks and are ONNX Runtime's defaults already (exhaustive
 * cuDNN algorithm search, cuDNN's largest workspace) except the arena growing only by what is
 * asked, which helps a batch that backs off after running out of memory. They are passed so a
 * binding that reads them keeps them. Weights go straight to device memory, outside the arena.
 * `preferredOutputLocation: 'cpu-pinned'` as a single string is accepted and ignored by 1.29
 * (outputs still land in the pre-allocated, reused slot buffers; the per-output form would make
 * it drop them: the worker detects that and copies). CPU threads only feed the GPU and run the
 * few CPU nodes: one thread that does not spin, so FFmpeg keeps the cores. The graph is arranged
 * channels-last for cuDNN's NHWC convolutions (src/models/onnx/arrange-for-cuda.ts), what the
 * provider's own `prefer_nhwc` would do if the binding passed it: on an H100, fp16, 1.27-1.47x the
 * frames/s for realesrgan-x4plus, 1.27-1.98x for realesr-general-x4v3 at 640x360 (BENCHMARKS.md).
 */
export function sessionConfig(device: Device, o: { gpu?: number; threads?: number; precision?: ModelPrecision } = {}): SessionConfig {
  if (device === 'cuda') {
    return {
      executionProviders: [{
        name: 'cuda',
        deviceId: o.gpu ?? 0,
        cudnnConvAlgoSearch: 'EXHAUSTIVE',
        cudnnConvUseMaxWorkspace: true,
        arenaExtendStrategy: 'kSameAsRequested',
        doCopyInDefaultStream: true,
      }],
      threads: o.threads ?? 1,
      arrangeForCuda: true,
      preferredOutputLocation: 'cpu-pinned',
      logSeverityLevel: 3,
      extra: { session: { use_device_allocator_for_initializers: '1', intra_op: { allow_spinning: '0' } } },
    };
  }
  if (device === 'webgpu') {
    return { executionProviders: [{ name: 'webgpu' }], threads: o.threads ?? 1, logSeverityLevel: 3, extra: { session: { intra_op: { allow_spinning: '0' } } } };
  }
  // float32: threads that sleep between operators instead of spinning. Inference alone loses
  // 2-4% (lever table), the whole job is as fast on a quiet machine, and spinning took the cores
  // FFmpeg's decoder and encoder need on a busy one (240-frame job: 1.21x the CPU time and 1.44x
  // the wall time with spinning; BENCHMARKS.md). int8: an int8 graph is many short operators
  // (QLinearConv is 3.4x faster than float Conv, the PReLU between them elementwise), so waking
  // threads for each costs more than the work: realesr-animevideov3-x4 int8 at 160x90 ran in
  // 34.5 ms with sleeping threads, 21.0 ms with spinning ones. int8 threads spin.
  const spin = o.precision === 'int8' ? '1' : '0';
  return { executionProviders: ['cpu'], threads: o.threads ?? 0, arrangeForCpu: true, nativeCpu: true, framePerCall: true, extra: { session: { intra_op: { allow_spinning: spin } } } };
}

/**
 * CPU cores inference may use: physical cores (what ONNX Runtime's own default counts; a second
 * hardware thread on a core adds no FMA units), within the CPUs this process may run on.
 */
export function inferenceCores(): number {
  const logical = availableParallelism();
  try {
    const root = '/sys/devices/system/cpu';
    const cores = new Set(readdirSync(root).filter((d) => /^cpu\d+$/.test(d))
      .map((d) => readFileSync(`${root}/${d}/topology/thread_siblings_list`, 'utf8').trim()));
    return cores.size > 0 ? Math.min(logical, cores.size) : logical;
  } catch {
    return logical;
  }
}

/** Default lanes on the CPU at most: each lane is a whole session (weights, activations). */
export const MAX_AUTO_LANES = 4;

/**
 * How the CPU's inference threads are split into lanes: sessions that each upscale their own
 * frames, side by side. One session with two threads meets at a barrier after every operator,
 * and a core taken by FFmpeg for a moment stalls both threads there; two one-thread sessions
 * never wait for each other. On 2 cores, 2 lanes x 1 thread ran 1.03-1.13x the frames/s of
 * 1 x 2 threads (BENCHMARKS.md). More cores than MAX_AUTO_LANES are split into threads per lane
 * (unmeasured beyond 2 cores). `threads` is the total (default: inferenceCores()).
 */
export function cpuLanes(o: { threads?: number; lanes?: number } = {}): { lanes: number; threadsPerLane: number } {
  const total = o.threads ?? inferenceCores();
  const lanes = Math.max(1, o.lanes ?? Math.min(total, MAX_AUTO_LANES));
  return { lanes, threadsPerLane: Math.max(1, Math.floor(total / lanes)) };
}

/**
 * Lanes on `device`: the CPU's threads split by cpuLanes; CUDA_LANES sessions on a CUDA GPU, one
 * on WebGPU (not measured with more), each with `threads` host threads; `lanes` when given.
 */
export function lanesFor(device: Device, o: { threads?: number; lanes?: number } = {}): { lanes: number; threadsPerLane: number | undefined } {
  if (device === 'cpu') return cpuLanes(o);
  return { lanes: Math.max(1, o.lanes ?? (device === 'cuda' ? CUDA_LANES : 1)), threadsPerLane: o.threads };
}

export interface DeviceAttempt {
  device: Device;
  /** Why it was not used: a few words, or ONNX Runtime's failure explained. */
  reason: string;
}

export interface DeviceSelection {
  device: Device;
  /** Devices `auto` tried before, with why each was skipped. */
  skipped: DeviceAttempt[];
  /** One line for the start event: what was chosen and why the others were not. */
  reason?: string;
}

/** What can be known about a GPU device without loading anything; problems, first to fix first. */
export async function precheck(device: Device, env: NodeJS.ProcessEnv = process.env): Promise<Problem[]> {
  if (device === 'cuda') return (await checkCuda({ env })).problems;
  // Without a GPU device node no Vulkan driver can reach a GPU: WebGPU is not even tried, which
  // also keeps the Vulkan drivers' own messages (Mesa's lavapipe prints some) off the terminal.
  if (device === 'webgpu') return checkVulkan({ env }).problems;
  return [];
}

/** The one-line failure of an explicit device: the first problem in full, the others named. */
export function deviceFailure(device: Device, problems: readonly Problem[]): DeviceError {
  const [first, ...rest] = problems;
  const also = rest.length > 0 ? ` (also: ${rest.map((p) => p.short).join('; ')}; esrvid doctor lists everything)` : '';
  return new DeviceError(`--device ${device}: ${first!.message}`, `${first!.hint}${also}`);
}

/**
 * ONNX Runtime's failure to start a device, in the user's terms. Its own message for a missing
 * provider library is only "Failed to load shared library" (the details go to its log), so the
 * static checks run first; this covers what only a real session can tell.
 */
export function explainDeviceError(device: Device, message: string): Problem {
  const first = message.split('\n').map((l) => l.trim()).find(Boolean) ?? message;
  const brief = first.length > 200 ? `${first.slice(0, 200)}…` : first;
  if (device === 'cuda') {
    if (/no CUDA-capable device|cudaErrorNoDevice|CUDA failure 100\b/i.test(message)) {
      return { kind: 'gpu', message: 'no NVIDIA GPU is visible to CUDA', hint: 'check nvidia-smi and CUDA_VISIBLE_DEVICES; in a container, pass the GPU in (docker run --gpus all)', short: 'no GPU visible to CUDA' };
    }
    if (/invalid device ordinal|cudaErrorInvalidDevice|CUDA failure 101\b/i.test(message)) {
      return { kind: 'gpu', message: 'the GPU asked for with --gpu does not exist', hint: 'esrvid doctor lists the GPUs and their numbers', short: 'no such GPU' };
    }
    if (/driver version is insufficient|cudaErrorInsufficientDriver|CUDA failure 35\b/i.test(message)) {
      return { kind: 'driver-version', message: 'the NVIDIA driver is too old for CUDA 13', hint: 'update the NVIDIA driver to 580 or newer', short: 'driver too old for CUDA 13' };
    }
    if (/cudnn/i.test(message)) {
      return { kind: 'cudnn', message: `cuDNN failed: ${brief}`, hint: 'install cuDNN 9 for CUDA 13 (pip install nvidia-cudnn-cu13, or apt libcudnn9-cuda-13) and add its lib folder to LD_LIBRARY_PATH', short: 'cuDNN failed' };
    }
    if (/Failed to load (shared )?library/i.test(message)) {
      return { kind: 'provider', message: 'ONNX Runtime could not load its CUDA provider or a library the provider needs', hint: 'run esrvid doctor to see which one is missing', short: 'CUDA provider did not load' };
    }
    if (/out of memory|Failed to allocate memory/i.test(message)) {
      return { kind: 'memory', message: 'the GPU has no memory left to start', hint: 'free GPU memory (nvidia-smi shows who holds it) or use --gpu to pick another GPU', short: 'GPU out of memory' };
    }
    return { kind: 'other', message: `ONNX Runtime could not start CUDA: ${brief}`, hint: 'run esrvid doctor to check the CUDA set-up', short: `failed: ${brief}` };
  }
  if (device === 'webgpu') {
    if (/adapter/i.test(message)) {
      return {
        kind: 'adapter',
        message: `no WebGPU adapter (${/Failed to get a WebGPU adapter[^\n]*/.exec(message)?.[0].trim() ?? brief})`,
        hint: 'WebGPU needs a GPU with a Vulkan driver (NVIDIA, AMD, Intel); software Vulkan (Mesa lavapipe) is not enough: use --device cpu',
        short: 'no WebGPU adapter',
      };
    }
    return { kind: 'other', message: `ONNX Runtime could not start WebGPU: ${brief}`, hint: 'use --device cpu, or --device cuda on an NVIDIA GPU', short: `failed: ${brief}` };
  }
  return { kind: 'other', message: `ONNX Runtime could not start on the CPU: ${brief}`, hint: 'please report it with the output of esrvid doctor', short: `failed: ${brief}` };
}

export interface SelectDeps {
  precheck: (device: Device) => Promise<Problem[]>;
  /** Opens the device for real; rejects with ONNX Runtime's message when it cannot. */
  probe: (device: Device) => Promise<void>;
}

/**
 * The device to run on. The CPU is never probed (it always works; the model session proves it);
 * a GPU is used only once a real session on it has run the probe model.
 */
export async function selectDevice(request: DeviceRequest, deps: SelectDeps): Promise<DeviceSelection> {
  if (request === 'cpu') return { device: 'cpu', skipped: [] };
  if (request !== 'auto') {
    const problems = await deps.precheck(request);
    if (problems.length > 0) throw deviceFailure(request, problems);
    try {
      await deps.probe(request);
    } catch (err) {
      throw deviceFailure(request, [explainDeviceError(request, (err as Error).message ?? String(err))]);
    }
    return { device: request, skipped: [] };
  }
  const skipped: DeviceAttempt[] = [];
  for (const device of AUTO_ORDER) {
    if (device === 'cpu') break;
    const problems = await deps.precheck(device);
    if (problems.length > 0) {
      // The first thing to fix; `esrvid doctor` lists the rest.
      const more = problems.length > 1 ? `, and ${problems.length - 1} more (esrvid doctor)` : '';
      skipped.push({ device, reason: `${problems[0]!.short}${more}` });
      continue;
    }
    try {
      await deps.probe(device);
      return { device, skipped, reason: autoReason(device, skipped) };
    } catch (err) {
      skipped.push({ device, reason: explainDeviceError(device, (err as Error).message ?? String(err)).short });
    }
  }
  return { device: 'cpu', skipped, reason: autoReason('cpu', skipped) };
}

function autoReason(device: Device, skipped: readonly DeviceAttempt[]): string {
  const others = skipped.map((s) => `${s.device}: ${s.reason}`).join('; ');
  return others ? `auto chose ${device}; skipped ${others}` : `auto chose ${device}`;
}
