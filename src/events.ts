/** Progress events the pipeline emits; the dashboard, the plain logger and --json all read these. */
import type { RawFormat } from './encode/matroska-writer.js';

export interface StartEvent {
  type: 'start';
  input: string;
  output: string;
  inputSize: [number, number];
  outputSize: [number, number];
  model: string;
  modelReason?: string;
  device: string;
  /** With --device auto: which devices were skipped and why. */
  deviceReason?: string;
  precision: string;
  batch: number;
  /** Inference sessions upscaling side by side (CPU lanes; on CUDA, --lanes sessions on the GPU). */
  lanes?: number;
  /** What runs the network: ONNX Runtime, or esrvid's fused CPU kernel for compact models (src/infer/native-cpu.ts). */
  engine?: 'onnxruntime' | 'native';
  /** What the encoder is handed: RGB frames it converts, or I420 the fused kernel's lanes wrote (src/native/yuv.h). */
  frameFormat?: RawFormat;
  tile: number;
  /** Expected frames (from the container; may be absent or approximate for some inputs). */
  totalFrames?: number;
  fps: number;
  /** A scale-out job followed by `esrvid submit`: workers run it, so device, batch and tile are theirs. */
  distributed?: boolean;
}

/** A scale-out job's segments and the workers connected, as the queue reports them. */
export interface ClusterProgress {
  segments: number;
  done: number;
  active: number;
  /** Waiting, or waiting to be retried. */
  waiting: number;
  failed: number;
  workers: string[];
}

export interface ProgressEvent {
  type: 'progress';
  frames: number;
  totalFrames?: number;
  elapsedMs: number;
  /** Frames waiting between the stages and the capacity of each queue. */
  decodeQueue: number;
  decodeCapacity: number;
  encodeQueue: number;
  encodeCapacity: number;
  /** Cumulative busy time per stage, ms. */
  decodeMs: number;
  inferMs: number;
  encodeMs: number;
  /** Of `frames`, those identical to the frame before, written from its upscaled output (single-process jobs). */
  reusedFrames?: number;
  /** Scale-out (esrvid submit): segments and workers; the stage figures are then 0. */
  cluster?: ClusterProgress;
}

export interface WarningEvent {
  type: 'warning';
  message: string;
}

export interface DoneEvent {
  type: 'done';
  frames: number;
  elapsedMs: number;
  output: string;
  bytes: number;
  /** Frames the source lists that could not be decoded (damaged input); 0 for a clean file. */
  damagedFrames: number;
  /**
   * Frames byte-identical to the frame before them, written from its upscaled output instead of
   * being upscaled again (they are counted in `frames`); absent where not counted (scale-out).
   */
  reusedFrames?: number;
  /** Peak resident memory of the esrvid process (inference worker included), bytes. */
  peakRssBytes: number;
  stageMs: { decode: number; infer: number; encode: number };
  /**
   * CPU time the job used from its start to this event, ms: `process` is esrvid itself (every
   * thread: inference lanes, decoding and encoding hand-over, the UI), `children` the FFmpeg
   * processes it ran (Linux only). With the cores and elapsedMs it shows where a job's machine
   * time went; absent where not measured (scale-out).
   */
  cpuMs?: { process: number; children?: number };
}

export type PipelineEvent = StartEvent | ProgressEvent | WarningEvent | DoneEvent;
