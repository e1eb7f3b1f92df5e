/**
 * esrvid's own inference stage, timed: the same Upscaler (worker thread, ONNX Runtime session and
 * its options, pre-allocated transferred slots) the pipeline uses on the CPU, fed synthetic
 * frames. The time is the session.run() the worker measures, so thread hand-over is not charged
 * to ONNX Runtime.
 */
import { Upscaler, type BatchSlot } from '../infer/upscaler.js';
import type { SessionConfig } from '../infer/worker-protocol.js';
import type { ModelPrecision } from '../models/store.js';
import { realFrames } from './frames.js';

export class OrtStage {
  private slot: BatchSlot | undefined;
  private shape = '';

  private constructor(private readonly upscaler: Upscaler) {}

  /** `session`: changes to the pipeline's session configuration, for measuring a lever. */
  static async open(modelPath: string, scale: number, threads: number, o: { precision?: ModelPrecision; session?: Partial<SessionConfig> } = {}): Promise<OrtStage> {
    return new OrtStage(await Upscaler.start({ modelPath, scale, threads, ...o }));
  }

  get loadMs(): number {
    return this.upscaler.loadMs;
  }

  /** One inference call of `batch` frames; returns its milliseconds. */
  async time(batch: number, width: number, height: number, frames?: Uint8Array): Promise<number> {
    const shape = `${batch}x${width}x${height}`;
    if (!this.slot || this.shape !== shape) {
      this.slot = this.upscaler.allocateSlot(batch, width, height);
      new Uint8Array(this.slot.input).set(frames ?? realFrames(batch, width, height));
      this.shape = shape;
    }
    const r = await this.upscaler.run(this.slot, batch, width, height);
    this.slot = r.slot;
    return r.ms;
  }

  close(): Promise<void> {
    return this.upscaler.close();
  }
}
