/**
 * Writes the source's rotation into an MP4/MOV output. ffmpeg honours a `rotate` tag only on a
 * stream copy (4.1 ignores it while encoding, and so does 5.1+), so the encoded file is remuxed
 * once with the tag: a fast copy of packets, timestamps and all streams unchanged.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ExternalProcessError } from '../errors.js';
import type { Binary } from '../ffmpeg/binaries.js';

export function rotationRemuxArgs(input: string, output: string, rotation: number, format: 'mp4' | 'mov'): string[] {
  return [
    '-hide_banner', '-nostdin', '-loglevel', 'error', '-y',
    '-i', input,
    '-map', '0', '-c', 'copy', '-map_metadata', '0', '-map_chapters', '0', '-copyts',
    '-metadata:s:v:0', `rotate=${rotation}`,
    '-movflags', '+faststart',
    '-f', format, output,
  ];
}

export async function writeRotation(ffmpeg: Binary, input: string, output: string, rotation: number, format: 'mp4' | 'mov'): Promise<void> {
  const args = rotationRemuxArgs(input, output, rotation, format);
  try {
    await promisify(execFile)(ffmpeg.path, args, { maxBuffer: 8 << 20 });
  } catch (err) {
    const stderr = String((err as { stderr?: string }).stderr ?? '').trim();
    throw new ExternalProcessError(`writing the rotation tag failed: ${stderr.split('\n').at(-1) ?? ''}`, `${ffmpeg.path} ${args.join(' ')}`, stderr);
  }
}
