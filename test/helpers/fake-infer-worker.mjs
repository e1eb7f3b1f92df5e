/**
 * A stand-in for src/infer/session-worker.ts that speaks the same protocol without ONNX Runtime,
 * for tests of the out-of-memory back-off. It "upscales" by repeating each pixel scale x scale
 * times (so tiled and untiled results are byte-identical and checkable), and fails the way ONNX
 * Runtime's CUDA provider does when a call holds more than ESRVID_FAKE_MAX_BATCH frames or more
 * than ESRVID_FAKE_MAX_PIXELS input pixels. Like the real worker, a failed run hands its buffers
 * back. ESRVID_FAKE_JITTER_MS delays each answer by an amount that depends on the frame, so
 * calls on several lanes come back out of order. Plain JavaScript: worker threads cannot run TypeScript on Node 20.
 */
import { parentPort } from 'node:worker_threads';

const maxBatch = Number(process.env.ESRVID_FAKE_MAX_BATCH ?? Infinity);
const maxPixels = Number(process.env.ESRVID_FAKE_MAX_PIXELS ?? Infinity);
/** Each call answers after (a sum of its input bytes % 4) x this many ms: lanes finish out of order. */
const jitterMs = Number(process.env.ESRVID_FAKE_JITTER_MS ?? 0);
/** The text ONNX Runtime 1.29's BFC arena gives for a failed CUDA allocation. */
const OOM = "Non-zero status code returned while running Conv node. Name:'Conv_7' Status Message: /onnxruntime_src/onnxruntime/core/framework/bfc_arena.cc:359 void* onnxruntime::BFCArena::AllocateRawInternal(size_t, bool, onnxruntime::Stream*, bool, onnxruntime::WaitNotificationFn) Failed to allocate memory for requested buffer of size 2147483648";

const post = (msg, transfer = []) => parentPort.postMessage(msg, transfer);
/** As src/infer/worker-protocol.ts transferable(): slots of shared memory are not transferred. */
const transferable = (...buffers) => buffers.filter((b) => b instanceof ArrayBuffer);

parentPort.on('message', (msg) => {
  if (msg.type === 'probe') return post({ type: 'probed', id: msg.id, ok: true, ms: 0 });
  if (msg.type === 'init') return post({ type: 'ready', loadMs: 0, inputNames: ['frames'], outputNames: ['upscaled'] });
  if (msg.type === 'close') return post({ type: 'closed' });
  if (msg.type !== 'run') return;
  const { id, batch, width, height, scale } = msg;
  if (batch > maxBatch || batch * width * height > maxPixels) {
    return post({ type: 'error', id, message: OOM, input: msg.input, output: msg.output }, transferable(msg.input, msg.output));
  }
  const src = new Uint8Array(msg.input);
  const dst = new Uint8Array(msg.output);
  const ow = width * scale;
  const oh = height * scale;
  for (let b = 0; b < batch; b++) {
    for (let y = 0; y < oh; y++) {
      for (let x = 0; x < ow; x++) {
        const s = ((b * height + Math.floor(y / scale)) * width + Math.floor(x / scale)) * 3;
        const d = ((b * oh + y) * ow + x) * 3;
        dst[d] = src[s];
        dst[d + 1] = src[s + 1];
        dst[d + 2] = src[s + 2];
      }
    }
  }
  const reply = () => post({ type: 'done', id, ms: 1, input: msg.input, output: msg.output }, transferable(msg.input, msg.output));
  let sum = 0;
  for (let i = 0; i < src.length; i += 97) sum += src[i];
  if (jitterMs > 0) setTimeout(reply, (sum % 4) * jitterMs);
  else reply();
});
