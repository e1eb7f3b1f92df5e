/**
 * The statistics the benchmark reports. Timings on a shared 2-core machine drift by up to 2x for
 * minutes at a time, so every speed is a median, and every comparison is a median of ratios taken
 * pair by pair (each pair measured back to back), never a ratio of two medians taken apart.
 */

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Linear-interpolated quantile, q in [0, 1]. */
export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const pos = (s.length - 1) * Math.min(1, Math.max(0, q));
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo);
}

/**
 * Median of a[i] / b[i] over pairs measured side by side. With `a` and `b` as frames/s this is
 * "how many times faster a is than b", immune to the machine slowing down between pairs.
 */
export function pairedRatio(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  const ratios: number[] = [];
  for (let i = 0; i < n; i++) if (b[i]! > 0) ratios.push(a[i]! / b[i]!);
  return median(ratios);
}

/** Frames per second of `frames` frames processed in `ms` milliseconds. */
export function framesPerSecond(frames: number, ms: number): number {
  return ms > 0 ? (frames * 1000) / ms : Number.NaN;
}

/** Relative spread of a sample: (max - min) / median, to flag noisy measurements. */
export function relativeSpread(xs: readonly number[]): number {
  if (xs.length < 2) return 0;
  return (Math.max(...xs) - Math.min(...xs)) / median(xs);
}
