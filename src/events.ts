/** Progress events the pipeline emits; the dashboard, the plain logger and --json all read these. */

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
  tile: number;
  /** Expected frames (from the container; may be absent or approximate for some inputs). */
  totalFrames?: number;
  fps: number;
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
  /** Peak resident memory of the esrvid process (inference worker included), bytes. */
  peakRssBytes: number;
  stageMs: { decode: number; infer: number; encode: number };
}

export type PipelineEvent = StartEvent | ProgressEvent | WarningEvent | DoneEvent;
