/**
 * Preview image files: the format follows the extension (PNG, JPEG, WebP, through sharp), names
 * for a series of frames, and writes that never leave a half-written file (a temporary beside
 * the destination, renamed when complete).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import sharp from 'sharp';
import { OutputError, UsageError } from '../errors.js';
import type { RgbImage } from './layout.js';

export type ImageFormat = 'png' | 'jpeg' | 'webp';

const FORMATS: Record<string, ImageFormat> = { '.png': 'png', '.jpg': 'jpeg', '.jpeg': 'jpeg', '.webp': 'webp' };

export function imageFormatFor(path: string): ImageFormat {
  const f = FORMATS[extname(path).toLowerCase()];
  if (!f) throw new UsageError(`cannot tell the image format of ${path}`, 'end the output name with .png, .jpg/.jpeg or .webp');
  return f;
}

/** `count` names: the name itself for one frame, else name-0001.ext, name-0002.ext, ... */
export function seriesNames(output: string, count: number): string[] {
  if (count === 1) return [output];
  const ext = extname(output);
  const stem = output.slice(0, output.length - ext.length);
  const digits = Math.max(4, String(count).length);
  return Array.from({ length: count }, (_, i) => `${stem}-${String(i + 1).padStart(digits, '0')}${ext}`);
}

/** Every name must be writable, and new unless overwriting is allowed; checked before any work. */
export function checkOutputs(paths: string[], overwrite: boolean, input?: string): void {
  for (const p of paths) {
    const abs = resolve(p);
    if (input && abs === resolve(input)) throw new UsageError('the output is the input file', 'write the preview to a new file');
    const dir = dirname(abs);
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new OutputError(`output folder ${dir} does not exist`, 'create it first or choose another path');
    if (existsSync(abs)) {
      if (statSync(abs).isDirectory()) throw new OutputError(`output ${p} is a directory`, 'give a file name such as preview.png');
      if (!overwrite) throw new OutputError(`output ${p} already exists`, 'pass -y to overwrite it');
    }
  }
}

export async function encodeImage(img: RgbImage, format: ImageFormat): Promise<Buffer> {
  const s = sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } });
  if (format === 'png') return s.png({ compressionLevel: 6 }).toBuffer();
  if (format === 'jpeg') return s.jpeg({ quality: 95, chromaSubsampling: '4:4:4' }).toBuffer();
  return s.webp({ quality: 95 }).toBuffer();
}

/** Writes the image to `path` in the format its extension names; nothing is left at `path` on failure. */
export async function writeImage(img: RgbImage, path: string): Promise<number> {
  const bytes = await encodeImage(img, imageFormatFor(path));
  const abs = resolve(path);
  const tmp = join(dirname(abs), `.${basename(abs)}.esrvid-${process.pid}-${randomBytes(3).toString('hex')}.partial`);
  try {
    await writeFile(tmp, bytes);
    await rename(tmp, abs);
  } catch (err) {
    await rm(tmp, { force: true });
    if ((err as NodeJS.ErrnoException).code === 'ENOSPC') throw new OutputError('the disk is full', 'free some space', err);
    if ((err as NodeJS.ErrnoException).code === 'EACCES') throw new OutputError(`cannot write to ${dirname(abs)}`, 'check the folder permissions or choose another output path', err);
    throw err;
  }
  return bytes.byteLength;
}
