/**
 * The pipeline's view of inference: hand it a batch of frames, get the upscaled batch back.
 * Owns the worker thread and a small ring of batch slots (input + output buffers) allocated once
 * per frame size and reused for every batch, so a long job allocates nothing per frame. A failed
 * batch hands its slot back too (InferenceError.slot), so a retry reuses the same buffers.
 */
import { Worker } from 'node:worker_threads';
import { DeviceError, ModelError } from '../errors.js';
import type { Precision } from '../models/onnx/graph-builder.js';
import type { ModelPrecision } from '../models/store.js';
import { defaultPrecision, isGpu, precheck, selectDevice, sessionConfig, type Device, type DeviceRequest, type DeviceSelection, type SelectDeps } from './device.js';
import { isOutOfMemory } from './oom.js';
import type { ExecutionProvider, SessionConfig, WorkerReply, WorkerRequest } from './worker-protocol.js';

export interface BatchSlot {
  input: ArrayBuffer;
  output: ArrayBuffer;
}

export interface UpscalerOptions {
  modelPath: string;
  scale: number;
  /** Default 'cpu'. */
  device?: Device;
  /** CUDA device index. */
  gpu?: number;
  /** Replaces the device's providers (src/infer/device.ts). */
  executionProviders?: ExecutionProvider[];
  threads?: number;
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
  /** The precision the device will run (default: fp16 on GPUs, fp32 on the CPU); the probe uses it. */
  precision?: Precision;
  workerUrl?: URL;
  /** The checks made before a device is probed (tests replace them). */
  precheck?: SelectDeps['precheck'];
}

/** A batch that failed; its buffers came back in `slot` (with the input frames still in them). */
export class InferenceError extends ModelError {
  constructor(message: string, readonly slot: BatchSlot | undefined) {
    super(message);
  }

  get outOfMemory(): boolean {
    return isOutOfMemory(this.message);
  }
}

type Pending<T> = { resolve: (v: T) => void; reject: (e: Error) => void };

export class Upscaler {
  private worker: Worker | undefined;
  private nextId = 0;
  private pending = new Map<number, Pending<{ slot: BatchSlot; ms: number }>>();
  private probes = new Map<number, Pending<void>>();
  private ready: Pending<void> | undefined;
  private failure: Error | undefined;
  private scale = 1;
  /** How many slot buffers were ever allocated: constant after start-up (tested). */
  allocations = 0;
  loadMs = 0;
  device: Device = 'cpu';
  selection: DeviceSelection = { device: 'cpu', skipped: [] };

  private constructor(private readonly workerUrl?: URL, private readonly gpu?: number, private readonly threads?: number) {}

  /** A worker with the model loaded on `device` (default: the CPU), no probing. */
  static async start(o: UpscalerOptions): Promise<Upscaler> {
    const u = new Upscaler(o.workerUrl, o.gpu, o.threads);
    u.device = o.device ?? 'cpu';
    u.selection = { device: u.device, skipped: [] };
    u.spawn();
    try {
      const session = { ...sessionConfig(u.device, { gpu: o.gpu, threads: o.threads, precision: o.precision }), ...o.session };
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
    const u = new Upscaler(o.workerUrl, o.gpu, o.threads);
    u.spawn();
    try {
      u.selection = await selectDevice(o.device, {
        precheck: o.precheck ?? ((d) => precheck(d)),
        probe: (d) => u.probe(d, o.precision ?? defaultPrecision(d)),
      });
      u.device = u.selection.device;
    } catch (err) {
      await u.close();
      throw err;
    }
    return u;
  }

  private spawn(): void {
    // Node 20 cannot run a .ts worker; when this module runs from src/ (tests), use the built one.
    const here = new URL(import.meta.url);
    const workerUrl = this.workerUrl ?? (here.pathname.endsWith('.ts')
      ? new URL('../../dist/infer/session-worker.js', here)
      : new URL('./session-worker.js', here));
    const worker = new Worker(workerUrl);
    this.worker = worker;
    worker.on('message', (m: WorkerReply) => this.onMessage(m));
    worker.on('error', (e) => {
      this.failure = e;
      this.ready?.reject(e);
      this.ready = undefined;
      for (const p of [...this.pending.values(), ...this.probes.values()]) p.reject(e);
      this.pending.clear();
      this.probes.clear();
    });
  }

  private onMessage(m: WorkerReply): void {
    if (m.type === 'ready') {
      this.loadMs = m.loadMs;
      this.ready?.resolve();
      this.ready = undefined;
    } else if (m.type === 'probed') {
      const p = this.probes.get(m.id);
      this.probes.delete(m.id);
      if (m.ok) p?.resolve();
      else p?.reject(new Error(m.message ?? 'the device failed'));
    } else if (m.type === 'done') {
      this.pending.get(m.id)?.resolve({ slot: { input: m.input, output: m.output }, ms: m.ms });
      this.pending.delete(m.id);
    } else if (m.type === 'error') {
      if (m.id === undefined) {
        this.ready?.reject(new Error(m.message));
        this.ready = undefined;
        return;
      }
      const slot = m.input && m.output ? { input: m.input, output: m.output } : undefined;
      this.pending.get(m.id)?.reject(new InferenceError(`inference failed: ${m.message}`, slot));
      this.pending.delete(m.id);
    }
  }

  private post(msg: WorkerRequest, transfer: ArrayBuffer[] = []): void {
    this.worker!.postMessage(msg, transfer);
  }

  /** Runs the probe model on `device`; rejects with ONNX Runtime's message when it cannot. */
  probe(device: Device, precision: Precision): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    const done = new Promise<void>((resolve, reject) => this.probes.set(id, { resolve, reject }));
    this.post({ type: 'probe', id, precision, session: sessionConfig(device, { gpu: this.gpu, threads: this.threads }) });
    return done;
  }

  /** Loads the model (a file of `precision`) on the selected device. */
  async load(modelPath: string, scale: number, precision?: ModelPrecision): Promise<void> {
    await this.loadWith(modelPath, scale, sessionConfig(this.device, { gpu: this.gpu, threads: this.threads, precision }));
  }

  private async loadWith(modelPath: string, scale: number, session: SessionConfig): Promise<void> {
    if (this.failure) throw this.failure;
    this.scale = scale;
    const loaded = new Promise<void>((resolve, reject) => (this.ready = { resolve, reject }));
    this.post({ type: 'init', modelPath, session });
    try {
      await loaded;
    } catch (err) {
      const first = (err as Error).message.split('\n')[0]!;
      if (isGpu(this.device)) {
        throw new DeviceError(`cannot load ${modelPath} on ${this.device}: ${first}`, 'use --device cpu, or --precision fp32 if the fp16 model is the problem', err);
      }
      throw new ModelError(`cannot load ${modelPath}: ${first}`, 'pull or import the model again', err);
    }
  }

  /** A new slot for batches of up to `batch` frames of width x height. */
  allocateSlot(batch: number, width: number, height: number): BatchSlot {
    this.allocations++;
    return {
      input: new ArrayBuffer(batch * width * height * 3),
      output: new ArrayBuffer(batch * width * height * 3 * this.scale * this.scale),
    };
  }

  /**
   * Upscales the `count` frames already copied into `slot.input`. The slot's buffers are
   * transferred to the worker and come back in the returned slot (the old references detach);
   * a slot smaller than the batch needs is refused (a retry with a smaller batch reuses it).
   */
  run(slot: BatchSlot, count: number, width: number, height: number): Promise<{ slot: BatchSlot; ms: number }> {
    if (this.failure) return Promise.reject(this.failure);
    const need = count * width * height * 3;
    if (slot.input.byteLength < need || slot.output.byteLength < need * this.scale * this.scale) {
      return Promise.reject(new Error(`internal: a slot of ${slot.input.byteLength} bytes cannot hold ${count} frames of ${width}x${height}`));
    }
    const id = this.nextId++;
    const done = new Promise<{ slot: BatchSlot; ms: number }>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    this.post({ type: 'run', id, batch: count, width, height, scale: this.scale, input: slot.input, output: slot.output }, [slot.input, slot.output]);
    return done;
  }

  async close(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    if (w) await w.terminate();
  }
}
