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
