/** Image helpers for tests: read PNGs as RGB bytes, pad, crop, and measure PSNR. */
import sharp from 'sharp';

export interface RgbImage {
  data: Uint8Array;
  width: number;
  height: number;
}

export async function readRgb(path: string): Promise<RgbImage> {
  const { data, info } = await sharp(path).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`${path}: ${info.channels} channels`);
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height };
}

/** Mirror padding without repeating the edge pixel (numpy "reflect"), as ncnn's pre-padding does. */
export function reflectPad(img: RgbImage, p: number): RgbImage {
  const width = img.width + 2 * p;
  const height = img.height + 2 * p;
  const data = new Uint8Array(width * height * 3);
  const reflect = (i: number, n: number) => (i < 0 ? -i : i >= n ? 2 * (n - 1) - i : i);
  for (let y = 0; y < height; y++) {
    const sy = reflect(y - p, img.height);
    for (let x = 0; x < width; x++) {
      const sx = reflect(x - p, img.width);
      const s = (sy * img.width + sx) * 3;
      const d = (y * width + x) * 3;
      data[d] = img.data[s]!;
      data[d + 1] = img.data[s + 1]!;
      data[d + 2] = img.data[s + 2]!;
    }
  }
  return { data, width, height };
}

export function crop(img: RgbImage, x0: number, y0: number, width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const s = ((y + y0) * img.width + x0) * 3;
    data.set(img.data.subarray(s, s + width * 3), y * width * 3);
  }
  return { data, width, height };
}

/**
 * PSNR in dB over 8-bit samples; `keep(i)` may exclude sample indexes (e.g. pixels a reference
 * runtime is known to corrupt). Identical inputs give Infinity.
 */
export function psnr(a: ArrayLike<number>, b: ArrayLike<number>, keep?: (i: number) => boolean): { db: number; compared: number } {
  if (a.length !== b.length) throw new Error(`psnr: ${a.length} vs ${b.length} samples`);
  let se = 0;
  let n = 0;
  for (let i = 0; i < a.length; i++) {
    if (keep && !keep(i)) continue;
    const d = a[i]! - b[i]!;
    se += d * d;
    n++;
  }
  const mse = se / n;
  return { db: mse === 0 ? Infinity : 10 * Math.log10((255 * 255) / mse), compared: n };
}
