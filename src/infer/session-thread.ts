/**
 * One inference worker thread (src/infer/session-worker.ts) seen from the main thread: requests
 * out, replies matched back to their promises. The Upscaler runs one of these per lane.
 */
import { Worker } from 'node:worker_threads';
import type { Precision } from '../models/onnx/graph-builder.js';
import { isOutOfMemory } from './oom.js';
import { ModelError } from '../errors.js';
import { transferable, type SessionConfig, type SlotBuffer, type WorkerModel, type WorkerReply, type WorkerRequest } from './worker-protocol.js';

/** A batch's frames in, its upscaled frames out (src/infer/upscaler.ts allocateSlot). */
export interface BatchSlot {
  input: SlotBuffer;
  output: SlotBuffer;
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

/** How long close() waits for the running call to finish: longer than any one call should take. */
export const CLOSE_WAIT_MS = 120_000;

export class SessionThread {
  private readonly worker: Worker;
  private nextId = 0;
  private pending = new Map<number, Pending<{ slot: BatchSlot; ms: number }>>();
  private probes = new Map<number, Pending<void>>();
  private ready: Pending<void> | undefined;
  private closed: (() => void) | undefined;
  private failure: Error | undefined;
  loadMs = 0;

  constructor(workerUrl?: URL) {
    // Node 20 cannot run a .ts worker; when this module runs from src/ (tests), use the built one.
    const here = new URL(import.meta.url);
    const url = workerUrl ?? (here.pathname.endsWith('.ts')
      ? new URL('../../dist/infer/session-worker.js', here)
      : new URL('./session-worker.js', here));
    this.worker = new Worker(url);
    this.worker.on('message', (m: WorkerReply) => this.onMessage(m));
    this.worker.on('error', (e) => {
      this.failure = e;
      this.ready?.reject(e);
      this.ready = undefined;
      for (const p of [...this.pending.values(), ...this.probes.values()]) p.reject(e);
      this.pending.clear();
      this.probes.clear();
    });
  }

  /** The thread died (an uncaught error): nothing more can run on it. */
  get failed(): boolean {
    return this.failure !== undefined;
  }

  /** Calls sent and not yet answered. */
  get busy(): number {
    return this.pending.size;
  }

  private onMessage(m: WorkerReply): void {
    if (m.type === 'closed') {
      this.closed?.();
    } else if (m.type === 'ready') {
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
    this.worker.postMessage(msg, transfer);
  }

  /** Runs the probe model with `session`; rejects with ONNX Runtime's message when it cannot. */
  probe(session: SessionConfig, precision: Precision): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    const done = new Promise<void>((resolve, reject) => this.probes.set(id, { resolve, reject }));
    this.post({ type: 'probe', id, precision, session });
    return done;
  }

  /** Creates the session (or the native kernel's network); rejects with ONNX Runtime's message. */
  async load(model: WorkerModel, session: SessionConfig): Promise<void> {
    if (this.failure) throw this.failure;
    const loaded = new Promise<void>((resolve, reject) => (this.ready = { resolve, reject }));
    this.post({ type: 'init', model, session });
    await loaded;
  }

  /** Upscales `count` frames of width x height from `slot.input` into `slot.output` (shared, or transferred and handed back); RGB, or I420 with `i420`. */
  run(slot: BatchSlot, count: number, width: number, height: number, scale: number, i420?: Float32Array): Promise<{ slot: BatchSlot; ms: number }> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    const done = new Promise<{ slot: BatchSlot; ms: number }>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    this.post({ type: 'run', id, batch: count, width, height, scale, input: slot.input, output: slot.output, ...(i420 ? { i420 } : {}) }, transferable(slot.input, slot.output));
    return done;
  }

  /**
   * Stops the thread once its session is idle: the call running finishes (queued ones come back
   * undone) and the session is released, then the thread ends. Terminating a thread while ONNX
   * Runtime is still creating a session or running on it makes the binding's completion throw
   * into a gone JavaScript environment, and C++ aborts the whole process (the fuzz suite caught
   * it: a decoder failing while the lanes were still loading). A thread that does not answer
   * within CLOSE_WAIT_MS is terminated anyway.
   */
  async close(): Promise<void> {
    if (!this.failure) {
      const closed = new Promise<void>((resolve) => (this.closed = resolve));
      let timer: NodeJS.Timeout | undefined;
      const waited = new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_WAIT_MS)));
      this.post({ type: 'close' });
      await Promise.race([closed, waited]);
      clearTimeout(timer);
    }
    await this.worker.terminate();
  }
}
