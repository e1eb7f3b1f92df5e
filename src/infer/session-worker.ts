/**
 * Worker thread that owns the ONNX Runtime session. The Node binding's run() is synchronous native
 * work that would freeze the event loop (and with it decoding, encoding and the dashboard) for
 * the whole inference, so it lives here. Batches arrive as transferred ArrayBuffers and go back
 * the same way: no copies between threads, and the same buffers cycle for the whole job.
 */
import { parentPort } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import type { WorkerReply, WorkerRequest } from './worker-protocol.js';

let session: ort.InferenceSession | undefined;
let outputName = 'upscaled';
let inputName = 'frames';

function post(msg: WorkerReply, transfer: ArrayBuffer[] = []): void {
  parentPort!.postMessage(msg, transfer);
}

parentPort!.on('message', async (msg: WorkerRequest) => {
  try {
    if (msg.type === 'init') {
      const started = performance.now();
      session = await ort.InferenceSession.create(msg.modelPath, {
        executionProviders: msg.executionProviders,
        intraOpNumThreads: msg.threads,
        interOpNumThreads: 1,
        graphOptimizationLevel: 'all',
        executionMode: 'sequential',
      });
      inputName = session.inputNames[0]!;
      outputName = session.outputNames[0]!;
      post({ type: 'ready', loadMs: performance.now() - started, inputNames: [...session.inputNames], outputNames: [...session.outputNames] });
      return;
    }
    if (msg.type === 'run') {
      if (!session) throw new Error('session not initialised');
      const { batch, height, width, scale } = msg;
      const input = new ort.Tensor('uint8', new Uint8Array(msg.input, 0, batch * height * width * 3), [batch, height, width, 3]);
      const outBytes = batch * height * scale * width * scale * 3;
      const outView = new Uint8Array(msg.output, 0, outBytes);
      const fetch = new ort.Tensor('uint8', outView, [batch, height * scale, width * scale, 3]);
      const started = performance.now();
      const result = await session.run({ [inputName]: input }, { [outputName]: fetch });
      const ms = performance.now() - started;
      // ORT writes into the pre-allocated fetch buffer; the binding also returns a copy, which
      // we drop. Checking one byte keeps that contract honest without a full compare.
      const returned = result[outputName]!.data as Uint8Array;
      if (returned.length !== outBytes || returned[outBytes - 1] !== outView[outBytes - 1]) {
        throw new Error('ONNX Runtime did not write into the pre-allocated output buffer');
      }
      post({ type: 'done', id: msg.id, ms, input: msg.input, output: msg.output }, [msg.input, msg.output]);
      return;
    }
    if (msg.type === 'close') {
      await session?.release();
      session = undefined;
      post({ type: 'closed' });
    }
  } catch (err) {
    const e = err as Error;
    const id = msg.type === 'run' ? msg.id : undefined;
    const buffers = msg.type === 'run' ? [msg.input, msg.output] : [];
    post({ type: 'error', id, message: e.message ?? String(err), input: buffers[0], output: buffers[1] }, buffers);
  }
});
