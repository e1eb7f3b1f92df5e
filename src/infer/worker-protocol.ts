/** Messages between the pipeline and the inference worker thread. */

export type WorkerRequest =
  | { type: 'init'; modelPath: string; executionProviders: string[]; threads: number }
  | { type: 'run'; id: number; batch: number; height: number; width: number; scale: number; input: ArrayBuffer; output: ArrayBuffer }
  | { type: 'close' };

export type WorkerReply =
  | { type: 'ready'; loadMs: number; inputNames: string[]; outputNames: string[] }
  | { type: 'done'; id: number; ms: number; input: ArrayBuffer; output: ArrayBuffer }
  | { type: 'error'; id: number | undefined; message: string; input?: ArrayBuffer; output?: ArrayBuffer }
  | { type: 'closed' };
