/**
 * esrvid's own inference stage, timed: the same Upscaler (worker threads, ONNX Runtime sessions
 * and their options, pre-allocated slots) the pipeline uses on the CPU, lanes
 * included. One timing is a block of two calls per lane, sent at once, as the pipeline keeps
 * every lane busy with a call queued behind the running one; its wall time (thread hand-over
 * included) divided by the calls is the time per call.
 */
import { Upscaler, type BatchSlot } from '../infer/upscaler.js';
import type { SessionConfig } from '../infer/worker-protocol.js';
import type { ModelPrecision } from '../models/store.js';
import { realFrames } from './frames.js';

/** What a benchmark changes in the stage the pipeline would run. */
export interface StageChanges {
  precision?: ModelPrecision;
  /** Changes to the pipeline's session configuration, for measuring a lever. */
  session?: Partial<SessionConfig>;
  /** Lanes instead of the pipeline's default. */
  lanes?: number;
}

export class OrtStage {
  private slots: BatchSlot[] = [];
  private shape = '';

  private constructor(private readonly upscaler: Upscaler) {}

  static async open(modelPath: string, scale: number, threads: number, o: StageChanges = {}): Promise<OrtStage> {
    return new OrtStage(await Upscaler.start({ modelPath, scale, threads, ...o }));
  }

  get loadMs(): number {
    return this.upscaler.loadMs;
  }

  get lanes(): number {
    return this.upscaler.lanes;
  }

  get engine(): 'onnxruntime' | 'native' {
    return this.upscaler.engine;
  }

  get threadsPerLane(): number | undefined {
    return this.upscaler.threadsPerLane;
  }

  /** A block of calls of `batch` frames (two per lane); returns milliseconds per call. */
  async time(batch: number, width: number, height: number, frames?: Uint8Array): Promise<number> {
    const shape = `${batch}x${width}x${height}`;
    if (this.shape !== shape) {
      const pixels = frames ?? realFrames(batch, width, height);
      this.slots = Array.from({ length: 2 * this.upscaler.lanes }, () => {
        const slot = this.upscaler.allocateSlot(batch, width, height);
        new Uint8Array(slot.input).set(pixels);
        return slot;
      });
      this.shape = shape;
    }
    const started = performance.now();
    this.slots = (await Promise.all(this.slots.map((s) => this.upscaler.run(s, batch, width, height)))).map((r) => r.slot);
    return (performance.now() - started) / this.slots.length;
  }

  close(): Promise<void> {
    return this.upscaler.close();
  }
}
