import { readCalibrationFrames, type Frame } from '../models/calibration-frames.js';

let real: Frame[] | undefined;

/**
 * Real frames for timing, the same bytes for every runtime: the frames esrvid ships for int8
 * calibration (samples/calibration: three frames of samples/chelsea.mp4, three photographs),
 * frame b of a batch from the b-th of them, mirrored into tiles to reach the size asked. Content
 * matters: ONNX Runtime's PRelu kernel is several times slower on real frames, whose activations
 * change sign unpredictably, than on smooth gradients.
 */
export function realFrames(batch: number, width: number, height: number): Uint8Array {
  // The video's own frames first: batch 1 times a frame of the sample clip.
  real ??= readCalibrationFrames().sort((a, b) => Number(b.name.includes('-mp4-')) - Number(a.name.includes('-mp4-')));
  const out = new Uint8Array(batch * width * height * 3);
  for (let b = 0; b < batch; b++) {
    const src = real[b % real.length]!;
    const mirror = (i: number, n: number) => {
      const m = i % (2 * n);
      return m < n ? m : 2 * n - 1 - m;
    };
    for (let y = 0; y < height; y++) {
      const sy = mirror(y, src.height);
      for (let x = 0; x < width; x++) {
        const s = (sy * src.width + mirror(x, src.width)) * 3;
        const d = ((b * height + y) * width + x) * 3;
        out[d] = src.data[s]!;
        out[d + 1] = src.data[s + 1]!;
        out[d + 2] = src.data[s + 2]!;
      }
    }
  }
  return out;
}

/**
 * Deterministic test frames for timing: smooth gradients with a little texture, like video,
 * rather than uniform noise. Both runtimes get the very same bytes, so neither meets content
 * (denormals, saturation) the other does not.
 */
export function syntheticFrames(batch: number, width: number, height: number, seed = 1): Uint8Array {
  const out = new Uint8Array(batch * width * height * 3);
  let s = seed >>> 0 || 1;
  const noise = () => {
    // xorshift32: cheap, reproducible texture.
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return ((s >>> 0) % 33) - 16;
  };
  let i = 0;
  for (let b = 0; b < batch; b++) {
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const u = x / Math.max(1, width - 1);
        const v = y / Math.max(1, height - 1);
        const base = [
          128 + 100 * Math.sin(6.3 * u + b),
          128 + 100 * Math.cos(4.1 * v - 0.5 * b),
          128 + 90 * Math.sin(5.0 * (u + v)),
        ];
        for (const c of base) out[i++] = Math.max(0, Math.min(255, Math.round(c + noise())));
      }
    }
  }
  return out;
}
