/** Runs the final mux (segments + the source's other streams) as one ffmpeg call. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ExternalProcessError, OutputError } from '../errors.js';
import type { Binary } from '../ffmpeg/binaries.js';

export async function runMux(ffmpeg: Binary, args: string[]): Promise<void> {
  try {
    await promisify(execFile)(ffmpeg.path, args, { maxBuffer: 16 << 20 });
  } catch (err) {
    const stderr = String((err as { stderr?: string }).stderr ?? '').trim();
    if (/No space left on device/i.test(stderr)) {
      throw new OutputError('the disk is full: the final file could not be written', 'free some space, then run the same command again');
    }
    throw new ExternalProcessError(`joining the segments failed: ${stderr.split('\n').at(-1) ?? 'ffmpeg failed'}`, `${ffmpeg.path} ${args.join(' ')}`, stderr);
  }
}
