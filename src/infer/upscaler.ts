/**
 * The pipeline's view of inference: hand it a batch of frames, get the upscaled batch back.
 * Owns the worker thread and a small ring of batch slots (input + output buffers) allocated once
 * per frame size and reused for every batch, so a long job allocates nothing per frame.
 */
import { Worker } from 'node:worker_threads';
import { ModelError } from '../errors.js';
import type { WorkerReply, WorkerRequest } from './worker-protocol.js';

export interface BatchSlot {
  input: ArrayBuffer;
  output: ArrayBuffer;
}

export interface UpscalerOptions {
  modelPath: string;
  scale: number;
  executionProviders?: string[];
  threads?: number;
}

export class Upscaler {
  private worker: Worker | undefined;
  private nextId = 0;
  private pending = new Map<number, { resolve: (r: { slot: BatchSlot; ms: number }) => void; reject: (e: Error) => void }>();
  private failure: Error | undefined;
  /** How many slot buffers were ever allocated: constant after start-up (tested). */
  allocations = 0;
  loadMs = 0;

  constructor(private readonly o: UpscalerOptions) {}

  static async start(o: UpscalerOptions): Promise<Upscaler> {
    const u = new Upscaler(o);
    await u.init();
    return u;
  }

  private async init(): Promise<void> {
    // Node 20 cannot run a .ts worker; when this module runs from src/ (tests), use the built one.
    const here = new URL(import.meta.url);
    const workerUrl = here.pathname.endsWith('.ts')
      ? new URL('../../dist/infer/session-worker.js', here)
      : new URL('./session-worker.js', here);
    const worker = new Worker(workerUrl);
    this.worker = worker;
    const ready = new Promise<void>((resolve, reject) => {
      worker.on('message', (m: WorkerReply) => {
        if (m.type === 'ready') {
          this.loadMs = m.loadMs;
          resolve();
        } else if (m.type === 'done') {
          this.pending.get(m.id)?.resolve({ slot: { input: m.input, output: m.output }, ms: m.ms });
          this.pending.delete(m.id);
        } else if (m.type === 'error') {
          const err = new ModelError(`inference failed: ${m.message}`);
          if (m.id === undefined) reject(err);
          else {
            this.pending.get(m.id)?.reject(err);
            this.pending.delete(m.id);
          }
        }
      });
      worker.on('error', (e) => {
        this.failure = e;
        reject(e);
        for (const p of this.pending.values()) p.reject(e);
        this.pending.clear();
      });
    });
    this.post({ type: 'init', modelPath: this.o.modelPath, executionProviders: this.o.executionProviders ?? ['cpu'], threads: this.o.threads ?? 0 });
    await ready;
  }

  private post(msg: WorkerRequest, transfer: ArrayBuffer[] = []): void {
    this.worker!.postMessage(msg, transfer);
  }

  /** A new slot for batches of up to `batch` frames of width x height. */
  allocateSlot(batch: number, width: number, height: number): BatchSlot {
    this.allocations++;
    return {
      input: new ArrayBuffer(batch * width * height * 3),
      output: new ArrayBuffer(batch * width * height * 3 * this.o.scale * this.o.scale),
    };
  }

  /**
   * Upscales the `count` frames already copied into `slot.input`. The slot's buffers are
   * transferred to the worker and come back in the returned slot (the old references detach).
   */
  run(slot: BatchSlot, count: number, width: number, height: number): Promise<{ slot: BatchSlot; ms: number }> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    const done = new Promise<{ slot: BatchSlot; ms: number }>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    this.post({ type: 'run', id, batch: count, width, height, scale: this.o.scale, input: slot.input, output: slot.output }, [slot.input, slot.output]);
    return done;
  }

  async close(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    if (w) await w.terminate();
  }
}
