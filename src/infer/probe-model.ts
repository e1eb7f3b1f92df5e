/**
 * A tiny model that proves a device works before esrvid commits to it: uint8 NHWC frames in,
 * cast to float32 or float16, a 1x1 convolution (on CUDA this loads cuDNN), and back to uint8.
 * Its output equals its input. `auto` tries it on each device before the model is chosen (the
 * default model depends on the device), so a device that cannot load costs milliseconds, not a
 * model download. Built with src/models/onnx/graph-builder.ts; a test rebuilds it and compares,
 * so the inference path needs no protobuf library.
 */
import type * as Ort from 'onnxruntime-node';
import type { SessionConfig } from './worker-protocol.js';

const FP32 = 'CAgSDGVzcnZpZC1wcm9iZTqGBAopCgZmcmFtZXMSBmNhc3RfMBoGQ2FzdF8wIgRDYXN0KgkKAnRvGAGgAQIKPgoGY2FzdF8wEgt0cmFuc3Bvc2VfMRoLVHJhbnNwb3NlXzEiCVRyYW5zcG9zZSoPCgRwZXJtQgQAAwECoAEHCokBCgt0cmFuc3Bvc2VfMQoDd18yCgNiXzMSBmNvbnZfNBoGQ29udl8yIgRDb252KhUKDGtlcm5lbF9zaGFwZUICAQGgAQcqEAoHc3RyaWRlc0ICAQGgAQcqEgoJZGlsYXRpb25zQgIBAaABByoPCgRwYWRzQgQAAAAAoAEHKgwKBWdyb3VwGAGgAQIKPgoGY29udl80Egt0cmFuc3Bvc2VfNRoLVHJhbnNwb3NlXzMiCVRyYW5zcG9zZSoPCgRwZXJtQgQAAgMBoAEHCjAKC3RyYW5zcG9zZV81Egh1cHNjYWxlZBoGQ2FzdF80IgRDYXN0KgkKAnRvGAKgAQISBmVzcnZpZCozCgQDAwEBEAFCA3dfMkokAACAPwAAAAAAAAAAAAAAAAAAgD8AAAAAAAAAAAAAAAAAAIA/KhgKAQMQAUIDYl8zSgwAAAAAAAAAAAAAAABaIAoGZnJhbWVzEhYKFAgCEhAKAggBCgIIBAoCCAQKAggDYiIKCHVwc2NhbGVkEhYKFAgCEhAKAggBCgIIBAoCCAQKAggDQgQKABAR';
const FP16 = 'CAgSDGVzcnZpZC1wcm9iZTruAwopCgZmcmFtZXMSBmNhc3RfMBoGQ2FzdF8wIgRDYXN0KgkKAnRvGAqgAQIKPgoGY2FzdF8wEgt0cmFuc3Bvc2VfMRoLVHJhbnNwb3NlXzEiCVRyYW5zcG9zZSoPCgRwZXJtQgQAAwECoAEHCokBCgt0cmFuc3Bvc2VfMQoDd18yCgNiXzMSBmNvbnZfNBoGQ29udl8yIgRDb252KhUKDGtlcm5lbF9zaGFwZUICAQGgAQcqEAoHc3RyaWRlc0ICAQGgAQcqEgoJZGlsYXRpb25zQgIBAaABByoPCgRwYWRzQgQAAAAAoAEHKgwKBWdyb3VwGAGgAQIKPgoGY29udl80Egt0cmFuc3Bvc2VfNRoLVHJhbnNwb3NlXzMiCVRyYW5zcG9zZSoPCgRwZXJtQgQAAgMBoAEHCjAKC3RyYW5zcG9zZV81Egh1cHNjYWxlZBoGQ2FzdF80IgRDYXN0KgkKAnRvGAKgAQISBmVzcnZpZCohCgQDAwEBEApCA3dfMkoSADwAAAAAAAAAPAAAAAAAAAA8KhIKAQMQCkIDYl8zSgYAAAAAAABaIAoGZnJhbWVzEhYKFAgCEhAKAggBCgIIBAoCCAQKAggDYiIKCHVwc2NhbGVkEhYKFAgCEhAKAggBCgIIBAoCCAQKAggDQgQKABAR';

/** The probe model's bytes for the precision the device will run. */
export function probeModel(precision: 'fp32' | 'fp16'): Uint8Array {
  return new Uint8Array(Buffer.from(precision === 'fp16' ? FP16 : FP32, 'base64'));
}

export const PROBE_SIZE = 4;

/**
 * Creates a session for the probe model with `config` (the same options the real session gets)
 * and runs it once; throws ONNX Runtime's error when the device cannot, or when it computes
 * something else than the identity it should.
 */
export async function runProbe(ort: typeof Ort, config: SessionConfig, precision: 'fp32' | 'fp16'): Promise<void> {
  const session = await ort.InferenceSession.create(probeModel(precision), sessionOptions(config));
  try {
    const n = PROBE_SIZE * PROBE_SIZE * 3;
    const input = Uint8Array.from({ length: n }, (_, i) => (i * 37 + 11) % 256);
    const out = await session.run({ frames: new ort.Tensor('uint8', input, [1, PROBE_SIZE, PROBE_SIZE, 3]) });
    const got = out.upscaled?.data as Uint8Array | undefined;
    if (!got || got.length !== n || got.some((v, i) => v !== input[i])) {
      throw new Error('the device ran the probe model but returned wrong values');
    }
  } finally {
    await session.release();
  }
}

/** ONNX Runtime session options from esrvid's per-device configuration. */
export function sessionOptions(config: SessionConfig): Ort.InferenceSession.SessionOptions {
  return {
    executionProviders: config.executionProviders as Ort.InferenceSession.ExecutionProviderConfig[],
    intraOpNumThreads: config.threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    ...(config.preferredOutputLocation ? { preferredOutputLocation: config.preferredOutputLocation } : {}),
    ...(config.logSeverityLevel !== undefined ? { logSeverityLevel: config.logSeverityLevel } : {}),
    ...(config.extra ? { extra: config.extra } : {}),
  };
}
