/** Running a frame model (uint8 NHWC in, uint8 out) on ONNX Runtime's CPU, and comparing outputs. */
import * as ort from 'onnxruntime-node';

/** `frames` frames of width x height through `model` (a file or its bytes) in one ONNX Runtime call. */
export async function upscaleOnCpu(model: string | Uint8Array, data: Uint8Array, frames: number, height: number, width: number): Promise<Uint8Array> {
  const s = typeof model === 'string'
    ? await ort.InferenceSession.create(model, { intraOpNumThreads: 2, logSeverityLevel: 3 })
    : await ort.InferenceSession.create(model, { intraOpNumThreads: 2, logSeverityLevel: 3 });
  try {
    const out = await s.run({ frames: new ort.Tensor('uint8', data, [frames, height, width, 3]) });
    return out.upscaled!.data as Uint8Array;
  } finally {
    await s.release();
  }
}

/** The largest difference between two outputs of the same length, and the share of values that differ. */
export function byteDifference(a: Uint8Array, b: Uint8Array): { worst: number; share: number } {
  if (a.length !== b.length) throw new Error(`outputs of ${a.length} and ${b.length} bytes`);
  let worst = 0;
  let differ = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (d) differ++;
    worst = Math.max(worst, d);
  }
  return { worst, share: differ / a.length };
}
