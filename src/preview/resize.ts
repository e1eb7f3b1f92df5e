/**
 * Lanczos resizing of RGB24 images with FFmpeg's scaler, the one the main pipeline uses for
 * non-native --scale (same filter and flags), so a preview at --scale 2 shows what the video
 * will get. The conventional upscale in --compare images uses it too: it is exactly what
 * `ffmpeg -vf scale=W:H:flags=lanczos` gives, the usual way to enlarge a video.
 */
import { spawn } from 'node:child_process';
import { ExternalProcessError } from '../errors.js';
import type { Binary } from '../ffmpeg/binaries.js';
import type { RgbImage } from './layout.js';

export function resizeArgs(from: [number, number], to: [number, number]): string[] {
  return [
    '-hide_banner', '-nostdin', '-nostats', '-loglevel', 'error',
    '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${from[0]}x${from[1]}`, '-i', 'pipe:0',
    '-vf', `scale=${to[0]}:${to[1]}:flags=lanczos+accurate_rnd+full_chroma_int,format=rgb24`,
    '-frames:v', '1', '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1',
  ];
}

export async function resizeRgb(ffmpeg: Binary, img: RgbImage, width: number, height: number): Promise<RgbImage> {
  if (img.width === width && img.height === height) return img;
  const args = resizeArgs([img.width, img.height], [width, height]);
  const child = spawn(ffmpeg.path, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  const chunks: Buffer[] = [];
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => chunks.push(c));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  child.stdin.on('error', () => undefined); // a failing ffmpeg closes its stdin; the exit code says why
  child.stdin.end(img.data);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  const data = Buffer.concat(chunks);
  if (code !== 0 || data.byteLength !== width * height * 3) {
    throw new ExternalProcessError(`resizing ${img.width}x${img.height} to ${width}x${height} failed (ffmpeg exit ${code}, ${data.byteLength} bytes)`,
      `${ffmpeg.path} ${args.join(' ')}`, stderr.trim().split('\n').slice(-8).join('\n'));
  }
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width, height };
}
