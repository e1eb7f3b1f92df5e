/**
 * The pipeline's view of inference: hand it a batch of frames, get the upscaled batch back.
 * Owns the inference worker threads, one session each (lanes: on the CPU several sessions
 * upscale different frames side by side; src/infer/device.ts cpuLanes), and hands out batch
 * slots (input + output buffers) allocated once per frame size and reused for every batch, so a
 * long job allocates nothing per frame. A failed batch hands its slot back too
 * (InferenceError.slot), so a retry reuses the same buffers.
 */
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { DeviceError, ModelError } from '../errors.js';
import type { Precision } from '../models/onnx/graph-builder.js';
import type { ModelPrecision } from '../models/store.js';
import { defaultPrecision, isGpu, lanesFor, precheck, selectDevice, sessionConfig, type Device, type DeviceRequest, type DeviceSelection, type SelectDeps } from './device.js';
import { SessionThread, type BatchSlot } from './session-thread.js';
import type { ExecutionProvider, SessionConfig, WorkerModel } from './worker-protocol.js';

export { InferenceError, type BatchSlot } from './session-thread.js';

export interface UpscalerOptions {
  modelPath: string;
  scale: number;
  /** Default 'cpu'. */
  device?: Device;
  /** CUDA device index. */
  gpu?: number;
  /** Replaces the device's providers (src/infer/device.ts). */
  executionProviders?: ExecutionProvider[];
  /** Inference threads in all (CPU default: every core). */
  threads?: number;
  /** CPU sessions side by side, each with threads / lanes threads (default: cpuLanes in src/infer/device.ts); on CUDA, sessions on the same GPU (default CUDA_LANES in src/infer/device.ts; WebGPU 1). */
  lanes?: number;
  /** The model file's precision: int8 sessions are configured differently (src/infer/device.ts). */
  precision?: ModelPrecision;
  /** Changes to the device's session configuration (the benchmark measures levers with it). */
  session?: Partial<SessionConfig>;
  /** A worker module speaking worker-protocol.ts instead of ONNX Runtime (tests). */
  workerUrl?: URL;
}

export interface OpenOptions {
  device: DeviceRequest;
  gpu?: number;
  threads?: number;
  lanes?: number;
  /** The precision the device will run (default: fp16 on GPUs, fp32 on the CPU); the probe uses it. */
  precision?: Precision;
  workerUrl?: URL;
  /** The checks made before a device is probed (tests replace them). */
  precheck?: SelectDeps['precheck'];
}

/**
 * The model as the session's device should run it, handed to every lane: on the CPU the layers
 * for esrvid's fused kernel where it applies (src/infer/native-cpu.ts), else the graph arranged
 * for ONNX Runtime's CPU kernels (src/models/onnx/arrange-for-cpu.ts); on CUDA the graph
 * arranged channels-last (src/models/onnx/arrange-for-cuda.ts); the path itself where the
 * configuration asks for no arrangement. Arranged graphs are kept as files
 * (src/infer/arranged-cache.ts) that the lanes load themselves, and a graph the fused kernel
 * cannot run is remembered so, so a later job reads no model bytes on the main thread. The
 * rewriters (and protobuf with them) load only when used.
 */
async function modelForSession(path: string, session: SessionConfig): Promise<WorkerModel> {
  if (!session.arrangeForCpu && !session.arrangeForCuda) return path;
  const { arrangedCache, arrangedModel } = await import('./arranged-cache.js');
  const cache = await arrangedCache(path);
  if (session.arrangeForCuda) {
    const { arrangeForCuda } = await import('../models/onnx/arrange-for-cuda.js');
    return arrangedModel(cache, path, 'cuda', (b) => arrangeForCuda(b).bytes);
  }
  let bytes: Uint8Array | undefined;
  if (session.nativeCpu && !existsSync(cache.file('not-native'))) {
    const { nativeKernel } = await import('./native-cpu.js');
    const { nativePlan } = await import('./native-plan.js');
    if (nativeKernel()) {
      bytes = new Uint8Array(await readFile(path));
      const plan = nativePlan(bytes);
      if (plan) return { native: plan };
      await cache.keep('not-native');
    }
  }
  const { arrangeForCpu } = await import('../models/onnx/arrange-for-cpu.js');
  return arrangedModel(cache, path, 'cpu', (b) => arrangeForCpu(b).bytes, bytes);
}

interface LaneOptions {
  workerUrl?: URL;
  gpu?: number;
  threads?: number;
  lanes?: number;
}

export class Upscaler {
  /** One worker thread and session per lane; lane 0 exists from the start (it probes devices). */
  private sessions: SessionThread[] = [];
  private scale = 1;
  /** Intra-op threads of each lane's session (undefined: the device's default). */
  threadsPerLane: number | undefined;
  /** How many slot buffers were ever allocated: constant after start-up (tested). */
  allocations = 0;
  /** The slowest lane's session creation, ms. */
  loadMs = 0;
  device: Device = 'cpu';
  selection: DeviceSelection = { device: 'cpu', skipped: [] };
  /** Sessions upscaling side by side: calls in flight at once to keep every lane busy. */
  lanes = 1;
  /** What the lanes hold (load()'s file, size, modification time, scale and configuration). */
  private loadedKey: string | undefined;
  /** The last load() kept the sessions it found. */
  reused = false;
  /** What runs the model: ONNX Runtime, or esrvid's fused kernel (src/infer/native-cpu.ts); see engineOf(). */
  engine: 'onnxruntime' | 'native' = 'onnxruntime';
  private engineKnown: Promise<void> = Promise.resolve();
  /** close() was called: no thread is started after it. */
  private closed = false;

  private constructor(private readonly o: LaneOptions) {}

  /** A worker per lane with the model loaded on `device` (default: the CPU), no probing. */
  static async start(o: UpscalerOptions): Promise<Upscaler> {
    const u = new Upscaler(o);
    u.device = o.device ?? 'cpu';
    u.selection = { device: u.device, skipped: [] };
    u.planLanes();
    try {
      const session = { ...sessionConfig(u.device, { gpu: o.gpu, threads: u.threadsPerLane, precision: o.precision }), ...o.session };
      if (o.executionProviders) session.executionProviders = o.executionProviders;
      await u.loadWith(o.modelPath, o.scale, session);
    } catch (err) {
      await u.close();
      throw err;
    }
    return u;
  }

  /**
   * A worker on the device asked for (`auto`: the first that works); the model comes later with
   * load(), once the device is known (the default model depends on it). Fails with a DeviceError
   * when an explicit device cannot run.
   */
  static async open(o: OpenOptions): Promise<Upscaler> {
    const u = new Upscaler(o);
    u.sessions.push(new SessionThread(o.workerUrl));
    try {
      u.selection = await selectDevice(o.device, {
        precheck: o.precheck ?? ((d) => precheck(d)),
        probe: (d) => u.probe(d, o.precision ?? defaultPrecision(d)),
      });
      u.device = u.selection.device;
      u.planLanes();
      // The other lanes' threads start now: they load ONNX Runtime while the caller picks the model.
      u.spawnLanes();
    } catch (err) {
      await u.close();
      throw err;
    }
    return u;
  }

  /** Lanes and threads for the device (lanesFor in src/infer/device.ts). */
  private planLanes(): void {
    const plan = lanesFor(this.device, { threads: this.o.threads, lanes: this.o.lanes });
    this.lanes = plan.lanes;
    this.threadsPerLane = plan.threadsPerLane;
  }

  /** Runs the probe model on `device`; rejects with ONNX Runtime's message when it cannot. */
  probe(device: Device, precision: Precision): Promise<void> {
    return this.sessions[0]!.probe(sessionConfig(device, { gpu: this.o.gpu, threads: this.o.threads }), precision);
  }

  /**
   * Loads the model (a file of `precision`) on the selected device, in every lane. Loading the
   * same file (same size and modification time) with the same configuration again keeps the
   * sessions: a scale-out worker's next segment then starts at once, and on a GPU keeps cuDNN's
   * algorithm choices (its first call of a frame size took 6-12 s for realesrgan-x4plus on an
   * H100); loadMs is 0 then.
   */
  async load(modelPath: string, scale: number, precision?: ModelPrecision): Promise<void> {
    const session = sessionConfig(this.device, { gpu: this.o.gpu, threads: this.threadsPerLane, precision });
    const file = await stat(modelPath);
    // Closed while the file was looked at (a job failing as it starts): start no threads now,
    // they would outlive the job (and a thread ended while ONNX Runtime loads aborts the process).
    if (this.closed) throw new Error('internal: the Upscaler was closed before its model loaded');
    const key = JSON.stringify([modelPath, file.size, file.mtimeMs, scale, session]);
    this.reused = key === this.loadedKey && this.usable;
    if (this.reused) {
      this.loadMs = 0;
      return;
    }
    this.loadedKey = undefined;
    await this.loadWith(modelPath, scale, session);
    this.loadedKey = key;
  }

  /**
   * What runs the model load() was given, known once its file has been looked at (milliseconds),
   * before the sessions finish loading.
   */
  async engineOf(): Promise<'onnxruntime' | 'native'> {
    await this.engineKnown;
    return this.engine;
  }

  /** Every lane's thread is alive (not closed, none died). */
  get usable(): boolean {
    return !this.closed && this.sessions.length > 0 && this.sessions.every((s) => !s.failed);
  }

  private spawnLanes(): void {
    if (this.closed) throw new Error('internal: the Upscaler is closed');
    while (this.sessions.length < this.lanes) this.sessions.push(new SessionThread(this.o.workerUrl));
  }

  private async loadWith(modelPath: string, scale: number, session: SessionConfig): Promise<void> {
    this.scale = scale;
    this.spawnLanes();
    let failure: Error | undefined;
    try {
      const prepared = modelForSession(modelPath, session);
      this.engineKnown = prepared.then((m) => void (this.engine = typeof m === 'object' && 'native' in m ? 'native' : 'onnxruntime'), () => undefined);
      const model = await prepared;
      const results = await Promise.allSettled(this.sessions.map((s) => s.load(model, session)));
      failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')?.reason as Error | undefined;
    } catch (err) {
      failure = err as Error;
    }
    if (failure) {
      const err = failure;
      const first = (err.message ?? String(err)).split('\n')[0]!;
      if (isGpu(this.device)) {
        throw new DeviceError(`cannot load ${modelPath} on ${this.device}: ${first}`, 'use --device cpu, or --precision fp32 if the fp16 model is the problem', err);
      }
      throw new ModelError(`cannot load ${modelPath}: ${first}`, 'pull or import the model again', err);
    }
    this.loadMs = Math.max(...this.sessions.map((s) => s.loadMs));
  }

  /**
   * A new slot for batches of up to `batch` frames of width x height. Shared memory for the fused
   * kernel: a call then moves no buffer between threads, where a transfer detaches both and wraps
   * them again in each thread (a whole 240-frame job took 0.991x the time, median of 8 alternating
   * pairs, the lanes' threads ~1% less CPU); ArrayBuffers, transferred, for
   * ONNX Runtime, whose binding refuses shared memory. Allocate after load(): the engine decides.
   */
  allocateSlot(batch: number, width: number, height: number): BatchSlot {
    this.allocations++;
    const Memory = this.engine === 'native' ? SharedArrayBuffer : ArrayBuffer;
    return {
      input: new Memory(batch * width * height * 3),
      output: new Memory(batch * width * height * 3 * this.scale * this.scale),
    };
  }

  /**
   * Upscales the `count` frames already copied into `slot.input`, on the least busy lane. The
   * result is in the returned slot: the same shared buffers (not to be touched until the call is
   * answered), or the transferred ones handed back (the old references detach); a slot smaller
   * than the batch needs is refused (a retry with a smaller batch reuses it). With `i420`
   * ([kr, kb, full], src/ffmpeg/colour.ts i420Matrix) the frames come out as the encoder's
   * Y'CbCr 4:2:0 planes, half the bytes of RGB: only where writesI420.
   */
  run(slot: BatchSlot, count: number, width: number, height: number, i420?: Float32Array): Promise<{ slot: BatchSlot; ms: number }> {
    const need = count * width * height * 3;
    if (slot.input.byteLength < need || slot.output.byteLength < need * this.scale * this.scale) {
      return Promise.reject(new Error(`internal: a slot of ${slot.input.byteLength} bytes cannot hold ${count} frames of ${width}x${height}`));
    }
    if (i420 && !this.writesI420) return Promise.reject(new Error(`internal: I420 frames need the fused kernel, this upscaler runs ${this.engine}`));
    const lane = this.sessions.reduce((a, b) => (b.busy < a.busy ? b : a));
    return lane.run(slot, count, width, height, this.scale, i420);
  }

  /** Whether run() can write I420 frames: the fused kernel's lanes can (src/native/yuv.h), ONNX Runtime's cannot. */
  get writesI420(): boolean {
    return this.engine === 'native';
  }

  async close(): Promise<void> {
    this.closed = true;
    const sessions = this.sessions;
    this.sessions = [];
    await Promise.all(sessions.map((s) => s.close()));
  }
}
