/**
 * The upscaled video's frame size, shared by the main command, previews and scale-out jobs so
 * that they announce and write the same size.
 */
import type { Container } from './containers.js';

/** Even sizes for chroma-subsampled output: round to the nearest even number (ties up). */
export function targetSize(w: number, h: number, scale: number, pixFmt: string): [number, number] {
  const subsampled = /^(yuv|nv)/.test(pixFmt) && !/^yuv444/.test(pixFmt);
  const fit = (v: number) => (subsampled ? Math.max(2, 2 * Math.round(v / 2)) : Math.max(1, Math.round(v)));
  return [fit(w * scale), fit(h * scale)];
}

/**
 * MP4/MOV keep the stored orientation and a rotation tag (lossless); other containers cannot
 * carry the tag through ffmpeg, so there the frames are rotated on decode (a quarter turn swaps
 * width and height).
 */
export function orientation(container: Container, rotation: number): { keepRotationTag: boolean; quarterTurn: boolean } {
  const keepRotationTag = container === 'mp4' || container === 'mov';
  return { keepRotationTag, quarterTurn: !keepRotationTag && (rotation === 90 || rotation === 270) };
}

/** The pixel format written when none is asked for: 10-bit sources keep 10 bits. */
export function defaultPixFmt(bitDepth: number): string {
  return bitDepth > 8 ? 'yuv420p10le' : 'yuv420p';
}
