/**
 * What a benchmark run measures: models, frame sizes and batch sizes. The default suite covers
 * the CPU-relevant models at realistic video sizes and finishes in a few minutes on 2 cores
 * (realesrgan-x4plus, ~15x the work per pixel, only at small sizes).
 */

export interface BenchCase {
  model: string;
  width: number;
  height: number;
  batch: number;
}

export const DEFAULT_MODELS = ['realesr-general-x4v3', 'realesr-animevideov3-x4', 'realesrgan-x4plus'] as const;

const COMPACT_SIZES: [number, number][] = [[160, 90], [320, 180], [640, 360]];
const RRDB_SIZES: [number, number][] = [[64, 64], [128, 72]];

/** RRDBNet does ~15x the work per pixel of SRVGGNetCompact; it gets small frames. */
export function isHeavy(architecture: string): boolean {
  return /RRDB/i.test(architecture);
}

/** Default frame sizes for a model of this architecture (registry text). */
export function defaultSizes(architecture: string): [number, number][] {
  return isHeavy(architecture) ? RRDB_SIZES : COMPACT_SIZES;
}

/**
 * Default batches for a frame size: batch 1 always; 2 and 4 where a frame is too small to keep
 * every core busy on its own (up to 320x180), only 2 for the RRDB networks.
 */
export function defaultBatches(architecture: string, width: number, height: number): number[] {
  if (isHeavy(architecture)) return width * height <= 64 * 64 ? [1, 2] : [1];
  return width * height <= 320 * 180 ? [1, 2, 4] : [1];
}

export function planCases(o: {
  models?: readonly string[];
  sizes?: readonly [number, number][];
  batches?: readonly number[];
  /** The registry's architecture text of a model ('' when unknown). */
  architectureOf: (model: string) => string;
}): BenchCase[] {
  const cases: BenchCase[] = [];
  for (const model of o.models ?? DEFAULT_MODELS) {
    const arch = o.architectureOf(model);
    for (const [width, height] of o.sizes ?? defaultSizes(arch)) {
      for (const batch of o.batches ?? defaultBatches(arch, width, height)) cases.push({ model, width, height, batch });
    }
  }
  return cases;
}

/** "160x90" -> [160, 90]; throws with the offending text. */
export function parseSize(text: string): [number, number] {
  const m = /^\s*(\d+)\s*[x×]\s*(\d+)\s*$/i.exec(text);
  const w = m ? Number(m[1]) : 0;
  const h = m ? Number(m[2]) : 0;
  if (!m || w < 1 || h < 1 || w > 8192 || h > 8192) throw new Error(`"${text}" is not a frame size like 320x180`);
  return [w, h];
}

/** Comma-separated or repeated option values, flattened: ["a,b", "c"] -> ["a", "b", "c"]. */
export function splitList(values: readonly string[] | string | undefined): string[] {
  if (values === undefined) return [];
  return (Array.isArray(values) ? values : [values]).flatMap((v: string) => v.split(',')).map((v) => v.trim()).filter(Boolean);
}
