/** Messages between the pipeline and the inference worker thread. */
import type { NativePlan } from './native-cpu.js';

/** An execution provider as ONNX Runtime takes it: a name, or a name with options. */
export type ExecutionProvider = string | { readonly name: string; readonly [option: string]: unknown };

/** Everything that goes into an ONNX Runtime session besides the model (src/infer/device.ts). */
export interface SessionConfig {
  executionProviders: ExecutionProvider[];
  /** Intra-op threads; 0 = ONNX Runtime's default (all cores). */
  threads: number;
  preferredOutputLocation?: 'cpu' | 'cpu-pinned';
  logSeverityLevel?: 0 | 1 | 2 | 3 | 4;
  /** Session configuration entries (`session.*`), as nested objects of strings. */
  extra?: Record<string, unknown>;
  /**
   * Rewrite the model's PReLUs and scalar Muls into ops ONNX Runtime's CPU kernels keep in their blocked layout
   * (src/models/onnx/arrange-for-cpu.ts) before the session is created: done by the Upscaler, once for all lanes.
   */
  arrangeForCpu?: boolean;
  /**
   * Rewrite the model channels-last, its convolutions as the CUDA provider's NhwcConv
   * (src/models/onnx/arrange-for-cuda.ts): CUDA only, done by the Upscaler before the session is created.
   */
  arrangeForCuda?: boolean;
  /**
   * Run SRVGGNetCompact float32 models on esrvid's own fused kernel (src/infer/native-cpu.ts) where
   * it is built and the CPU has AVX-512 or AVX2, with the lane's `threads` (bands of rows); other
   * models and CPUs stay on ONNX Runtime.
   */
  nativeCpu?: boolean;
  /**
   * Run a batch one frame per ONNX Runtime call, in the same lane (the CPU): a batch's tensors are
   * `batch` times larger and leave the caches a one-thread lane works in. On a GPU a batch is one call.
   */
  framePerCall?: boolean;
}

/**
 * What a lane loads: a file, the bytes of the model as arranged for the device (the Upscaler
 * arranges it once for every lane), or the layers for the native kernel.
 */
export type WorkerModel = string | Uint8Array | { native: NativePlan };

/**
 * A slot's memory (src/infer/upscaler.ts allocateSlot): shared with the worker threads where the
 * fused kernel runs, transferred back and forth where ONNX Runtime does (its Node binding refuses
 * tensors over shared memory: "Invalid argument").
 */
export type SlotBuffer = ArrayBuffer | SharedArrayBuffer;

/** What a message moving a slot's buffers transfers: ArrayBuffers; shared ones need no transfer. */
export function transferable(...buffers: (SlotBuffer | undefined)[]): ArrayBuffer[] {
  return buffers.filter((b): b is ArrayBuffer => b instanceof ArrayBuffer);
}

export type WorkerRequest =
  /** Can this configuration run at all? Runs the tiny probe model (src/infer/probe-model.ts). */
  | { type: 'probe'; id: number; session: SessionConfig; precision: 'fp32' | 'fp16' }
  | { type: 'init'; model: WorkerModel; session: SessionConfig }
  /** i420: write the encoder's Y'CbCr 4:2:0 frames instead of RGB ([kr, kb, full]; the fused kernel only). */
  | { type: 'run'; id: number; batch: number; height: number; width: number; scale: number; input: SlotBuffer; output: SlotBuffer; i420?: Float32Array }
  | { type: 'close' };

export type WorkerReply =
  | { type: 'probed'; id: number; ok: boolean; message?: string; ms: number }
  | { type: 'ready'; loadMs: number; inputNames: string[]; outputNames: string[] }
  | { type: 'done'; id: number; ms: number; input: SlotBuffer; output: SlotBuffer }
  /** A failed run hands its buffers back, so the caller can retry with them. */
  | { type: 'error'; id: number | undefined; message: string; input?: SlotBuffer; output?: SlotBuffer }
  | { type: 'closed' };
