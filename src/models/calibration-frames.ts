/**
 * The real frames int8 calibration runs on (samples/calibration, shipped with esrvid) and the
 * held-out ones its quality is also judged on (samples/validation), read with a
 * minimal PNG decoder (8-bit RGB, not interlaced: what these files are) on node:zlib, so that
 * making an int8 file needs neither sharp nor FFmpeg.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inflateSync } from 'node:zlib';
import { PACKAGE_ROOT } from './registry.js';

export interface Frame {
  name: string;
  /** RGB bytes, row by row (what the models take as [1, height, width, 3]). */
  data: Uint8Array;
  width: number;
  height: number;
}

export function calibrationDir(): string {
  return fileURLToPath(new URL('samples/calibration/', PACKAGE_ROOT));
}

export function readCalibrationFrames(dir = calibrationDir()): Frame[] {
  return readdirSync(dir).filter((f) => f.endsWith('.png')).sort().map((f) => ({ name: f, ...decodeRgbPng(readFileSync(join(dir, f)), f) }));
}

/**
 * Held-out frames (samples/validation: public-domain and CC0 photographs, textures among them)
 * that calibration and weight rounding never see: the int8 quality gate is judged on them too,
 * since a model fitted to six frames can look better on those six than on footage.
 */
export function validationDir(): string {
  return fileURLToPath(new URL('samples/validation/', PACKAGE_ROOT));
}

export function readValidationFrames(dir = validationDir()): Frame[] {
  return readCalibrationFrames(dir).map((f) => ({ ...f, name: `validation/${f.name}` }));
}

const SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];

export function decodeRgbPng(png: Uint8Array, what = 'PNG'): { data: Uint8Array; width: number; height: number } {
  if (!SIGNATURE.every((b, i) => png[i] === b)) throw new Error(`${what}: not a PNG file`);
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  let width = 0;
  let height = 0;
  const idat: Uint8Array[] = [];
  for (let at = 8; at + 8 <= png.length;) {
    const length = view.getUint32(at);
    const type = String.fromCharCode(...png.subarray(at + 4, at + 8));
    const body = png.subarray(at + 8, at + 8 + length);
    if (type === 'IHDR') {
      width = view.getUint32(at + 8);
      height = view.getUint32(at + 12);
      const [depth, colour, , , interlace] = body.subarray(8, 13);
      if (depth !== 8 || colour !== 2 || interlace !== 0) throw new Error(`${what}: only 8-bit RGB non-interlaced PNGs are read here (depth ${depth}, colour type ${colour}, interlace ${interlace})`);
    } else if (type === 'IDAT') idat.push(body);
    else if (type === 'IEND') break;
    at += 12 + length;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * 3;
  if (raw.length !== (stride + 1) * height) throw new Error(`${what}: ${raw.length} bytes of image data for ${width}x${height}`);
  const data = new Uint8Array(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const src = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const row = data.subarray(y * stride, (y + 1) * stride);
    const up = y > 0 ? data.subarray((y - 1) * stride, y * stride) : new Uint8Array(stride);
    for (let x = 0; x < stride; x++) {
      const a = x >= 3 ? row[x - 3]! : 0;
      const b = up[x]!;
      const c = x >= 3 ? up[x - 3]! : 0;
      let predictor: number;
      switch (filter) {
        case 0: predictor = 0; break;
        case 1: predictor = a; break;
        case 2: predictor = b; break;
        case 3: predictor = (a + b) >> 1; break;
        case 4: {
          const p = a + b - c;
          const pa = Math.abs(p - a);
          const pb = Math.abs(p - b);
          const pc = Math.abs(p - c);
          predictor = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
          break;
        }
        default: throw new Error(`${what}: unknown PNG row filter ${filter}`);
      }
      row[x] = (src[x]! + predictor) & 255;
    }
  }
  return { data, width, height };
}
