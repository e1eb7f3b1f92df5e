/**
 * Worker thread that owns one ONNX Runtime session (one lane of the Upscaler). Batches arrive in
 * slots of shared memory (the fused kernel) or as transferred ArrayBuffers that go back the same
 * way (ONNX Runtime): no copies between threads, and the same buffers cycle for the whole job.
 * Runs are taken one at a time, in order: the binding's run() works on a thread of its own, so a
 * second request would otherwise start a second inference beside the first (a one-thread lane
 * would then use two cores, and a GPU session two streams of work); queued here, the next call
 * starts the moment the previous one ends, with no round trip to the main thread in between.
 */
import { parentPort } from 'node:worker_threads';
import type * as Ort from 'onnxruntime-node';
import { nativeKernel, type NativeKernel } from './native-cpu.js';
import { runProbe, sessionOptions } from './probe-model.js';
import { transferable, type WorkerReply, type WorkerRequest } from './worker-protocol.js';

/**
 * ONNX Runtime, loaded on first need: a lane that runs the fused kernel never loads it (the import
 * takes 22-33 ms of a core, which at start-up the probes and the decoder want).
 */
let ortModule: typeof Ort | undefined;
async function onnxRuntime(): Promise<typeof Ort> {
  return (ortModule ??= await import('onnxruntime-node'));
}

let session: Ort.InferenceSession | undefined;
/** The model on esrvid's fused kernel instead of a session (src/infer/native-cpu.ts). */
let native: { kernel: NativeKernel; net: object } | undefined;
let outputName = 'upscaled';
let inputName = 'frames';
/**
 * Whether ONNX Runtime writes into the pre-allocated output: found on the session's first run
 * (undefined until then). onnxruntime-node 1.29 does, unless a per-output preferredOutputLocation
 * is set, which makes it ignore pre-allocated outputs; then the result is copied into the slot.
 */
let writesInPlace: boolean | undefined;
/** The session's SessionConfig.framePerCall. */
let framePerCall = false;

/** Frames first..first+count-1 of a run request, from its input buffer into its output buffer. */
async function runFrames(ort: typeof Ort, session: Ort.InferenceSession, msg: Extract<WorkerRequest, { type: 'run' }>, first: number, count: number): Promise<void> {
  const { height, width, scale } = msg;
  const inFrame = height * width * 3;
  const outFrame = inFrame * scale * scale;
  const input = new ort.Tensor('uint8', new Uint8Array(msg.input, first * inFrame, count * inFrame), [count, height, width, 3]);
  const outBytes = count * outFrame;
  const outView = new Uint8Array(msg.output, first * outFrame, outBytes);
  const fetch = new ort.Tensor('uint8', outView, [count, height * scale, width * scale, 3]);
  // First run: a pattern no network produces, to see whether ONNX Runtime overwrites it.
  if (writesInPlace === undefined) for (let i = 0; i < outBytes; i++) outView[i] = (i * 7 + 3) % 251;
  const result = await session.run({ [inputName]: input }, { [outputName]: fetch });
  // The binding also returns a copy of the output, which is dropped unless ORT wrote elsewhere.
  const returned = result[outputName]!.data as Uint8Array;
  if (returned.length !== outBytes) throw new Error(`the model returned ${returned.length} bytes for a batch of ${outBytes}`);
  writesInPlace ??= returned === outView || Buffer.from(returned.buffer, returned.byteOffset, outBytes).equals(Buffer.from(outView.buffer, outView.byteOffset, outBytes));
  if (!writesInPlace && returned !== outView) outView.set(returned);
}

function post(msg: WorkerReply, transfer: ArrayBuffer[] = []): void {
  parentPort!.postMessage(msg, transfer);
}

/** Every request waits for the one before it. */
let queue: Promise<void> = Promise.resolve();
/** Set as soon as 'close' arrives: runs still queued behind the current one are handed back undone. */
let closing = false;
parentPort!.on('message', (msg: WorkerRequest) => {
  if (msg.type === 'close') closing = true;
  queue = queue.then(() => handle(msg));
});

async function handle(msg: WorkerRequest): Promise<void> {
  try {
    if (closing && msg.type === 'run') throw new Error('the inference worker is closing');
    if (msg.type === 'probe') {
      const started = performance.now();
      try {
        await runProbe(await onnxRuntime(), msg.session, msg.precision);
        post({ type: 'probed', id: msg.id, ok: true, ms: performance.now() - started });
      } catch (err) {
        post({ type: 'probed', id: msg.id, ok: false, message: (err as Error).message ?? String(err), ms: performance.now() - started });
      }
      return;
    }
    if (msg.type === 'init') {
      const started = performance.now();
      await session?.release();
      session = undefined;
      native = undefined;
      if (typeof msg.model === 'object' && 'native' in msg.model) {
        const kernel = nativeKernel();
        if (!kernel) throw new Error('the native kernel cannot run on this thread');
        // The Upscaler gives every CPU lane its share of the threads, at least one.
        native = { kernel, net: kernel.createNet(msg.model.native.layers, msg.model.native.scale, 3, Math.max(1, msg.session.threads)) };
        post({ type: 'ready', loadMs: performance.now() - started, inputNames: [inputName], outputNames: [outputName] });
        return;
      }
      const options = sessionOptions(msg.session);
      const ort = await onnxRuntime();
      session = typeof msg.model === 'string' ? await ort.InferenceSession.create(msg.model, options) : await ort.InferenceSession.create(msg.model, options);
      writesInPlace = undefined;
      framePerCall = msg.session.framePerCall === true;
      inputName = session.inputNames[0]!;
      outputName = session.outputNames[0]!;
      post({ type: 'ready', loadMs: performance.now() - started, inputNames: [...session.inputNames], outputNames: [...session.outputNames] });
      return;
    }
    if (msg.type === 'run') {
      const { batch } = msg;
      const started = performance.now();
      if (native) {
        // Synchronous on this worker's thread, one frame after another, into the slot's output.
        native.kernel.run(native.net, new Uint8Array(msg.input), batch, msg.height, msg.width, new Uint8Array(msg.output), msg.i420);
        post({ type: 'done', id: msg.id, ms: performance.now() - started, input: msg.input, output: msg.output }, transferable(msg.input, msg.output));
        return;
      }
      if (!session) throw new Error('session not initialised');
      if (msg.i420) throw new Error('internal: I420 frames come from the fused kernel only');
      // One call for the batch, or one per frame (framePerCall, the CPU), into the same buffers.
      const perCall = framePerCall ? 1 : batch;
      for (let first = 0; first < batch; first += perCall) await runFrames(ortModule!, session, msg, first, perCall);
      const ms = performance.now() - started;
      post({ type: 'done', id: msg.id, ms, input: msg.input, output: msg.output }, transferable(msg.input, msg.output));
      return;
    }
    if (msg.type === 'close') {
      await session?.release();
      session = undefined;
      native = undefined;
      post({ type: 'closed' });
    }
  } catch (err) {
    const e = err as Error;
    const id = msg.type === 'run' ? msg.id : undefined;
    const [input, output] = msg.type === 'run' ? [msg.input, msg.output] : [];
    post({ type: 'error', id, message: e.message ?? String(err), input, output }, transferable(input, output));
  }
}
