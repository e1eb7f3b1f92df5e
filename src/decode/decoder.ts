/**
 * Decodes the source's video stream into RGB24 frames, each with the presentation timestamp the
 * source gave it. ffmpeg writes raw frames to stdout; the `showinfo` filter reports each frame's
 * timestamp (rescaled to microseconds by `settb`) on stderr as the frame passes, so timestamps
 * come from the decoder itself: variable frame rates and damaged frames cannot shift them.
 * Frames are pulled: when the pool is empty the pipe is not read, ffmpeg blocks on write, and
 * decoding waits (bounded memory).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { ExternalProcessError, InputError } from '../errors.js';
import { passthroughTiming, type Binary } from '../ffmpeg/binaries.js';
import type { ColourPlan } from '../ffmpeg/colour.js';
import { FrameChunker } from './frame-chunker.js';
import { FramePool } from './frame-pool.js';

export interface DecodedFrame {
  /** 0-based index in decode output order. */
  index: number;
  /** Presentation time in microseconds, on the source's clock. */
  ptsUs: number;
  /** width*height*3 bytes of RGB24, owned by the pool: release it when done. */
  data: Buffer;
}

export interface DecodeOptions {
  ffmpeg: Binary;
  input: string;
  streamIndex: number;
  width: number;
  height: number;
  colour: ColourPlan;
  /** Keep the stored orientation (the output gets a rotation tag instead). */
  noAutorotate: boolean;
  /** Seek (input option: jumps to the keyframe before, then decodes exactly to it), seconds from the start. */
  startSeconds?: number;
  poolSize: number;
  signal?: AbortSignal;
}

export function decoderArgs(o: Omit<DecodeOptions, 'poolSize' | 'signal' | 'width' | 'height'>): string[] {
  const filters = [
    'settb=1/1000000',
    'showinfo',
    `scale=in_color_matrix=${o.colour.matrix}:in_range=${o.colour.range}:flags=bicubic+accurate_rnd+full_chroma_int`,
    'format=rgb24',
  ];
  return [
    // -copyts: timestamps stay on the source's clock, the same clock the encoder reads audio on.
    '-hide_banner', '-nostdin', '-nostats', '-loglevel', 'info', '-copyts',
    ...(o.noAutorotate ? ['-noautorotate'] : []),
    ...(o.startSeconds !== undefined ? ['-ss', o.startSeconds.toFixed(6)] : []),
    '-i', o.input,
    '-map', `0:${o.streamIndex}`,
    '-an', '-sn', '-dn',
    '-vf', filters.join(','),
    ...passthroughTiming(o.ffmpeg),
    '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1',
  ];
}

const SHOWINFO = /\] n:\s*(\d+) pts:\s*(-?\d+)/;

export class Decoder {
  readonly pool: FramePool;
  private child: ChildProcess | undefined;
  private stderrTail: string[] = [];
  private pts: number[] = [];
  private ptsWaiter: (() => void) | undefined;
  private exited: Promise<number | null> | undefined;
  /** Decoder messages about damaged data (counted, reported, never silently dropped). */
  damageMessages = 0;

  constructor(private readonly o: DecodeOptions) {
    this.pool = new FramePool(o.width * o.height * 3, o.poolSize);
  }

  get process(): ChildProcess | undefined {
    return this.child;
  }

  async *frames(): AsyncGenerator<DecodedFrame> {
    const args = decoderArgs(this.o);
    const child = spawn(this.o.ffmpeg.path, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.exited = new Promise((resolve) => child.once('close', (code) => resolve(code)));
    const spawnError = new Promise<never>((_, reject) => child.once('error', reject));
    spawnError.catch(() => undefined);
    const onAbort = () => child.kill('SIGKILL');
    this.o.signal?.addEventListener('abort', onAbort, { once: true });

    let carry = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (s: string) => {
      const lines = (carry + s).split('\n');
      carry = lines.pop()!;
      for (const line of lines) this.onStderrLine(line);
    });

    const chunker = new FrameChunker(this.pool);
    let index = 0;
    try {
      for await (const chunk of child.stdout! as AsyncIterable<Buffer>) {
        let rest: Uint8Array = chunk;
        while (rest.length > 0) {
          const { frames, consumed } = chunker.push(rest);
          rest = rest.subarray(consumed);
          for (const data of frames) {
            yield { index, ptsUs: await this.ptsOf(index), data };
            index++;
          }
          if (rest.length > 0) {
            // Wait for the pipeline to give a buffer back; a cancelled job never will.
            const free = await this.pool.acquire(this.o.signal);
            if (!free) return;
            this.pool.release(free);
          }
        }
      }
      const code = await Promise.race([this.exited, spawnError]);
      if (carry) this.onStderrLine(carry);
      if (this.o.signal?.aborted) return;
      if (code !== 0) {
        const tail = this.stderrTail.slice(-8).join('\n');
        if (index === 0) {
          throw new InputError(`cannot decode ${this.o.input}: ${this.stderrTail.at(-1) ?? `ffmpeg exited with code ${code}`}`,
            'check that the file is a complete, playable video');
        }
        throw new ExternalProcessError(`the decoder (ffmpeg) quit with code ${code} after ${index} frames`, `${this.o.ffmpeg.path} ${args.join(' ')}`, tail);
      }
      if (chunker.pending > 0) {
        throw new ExternalProcessError(`the decoder ended in the middle of frame ${index}`, this.o.ffmpeg.path, this.stderrTail.slice(-8).join('\n'));
      }
    } finally {
      chunker.discard();
      this.o.signal?.removeEventListener('abort', onAbort);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await this.exited;
    }
  }

  private onStderrLine(line: string): void {
    const m = SHOWINFO.exec(line);
    if (m && line.includes('showinfo')) {
      const n = Number(m[1]);
      if (n !== this.pts.length) throw new Error(`decoder timestamps out of order: frame ${n} after ${this.pts.length}`);
      this.pts.push(Number(m[2]));
      this.ptsWaiter?.();
      return;
    }
    if (/error while decoding|corrupt|concealing|Invalid NAL|missing picture/i.test(line)) this.damageMessages++;
    if (line.trim()) {
      this.stderrTail.push(line.trim());
      if (this.stderrTail.length > 50) this.stderrTail.shift();
    }
  }

  /** The timestamp line can trail the frame's bytes slightly (two pipes); wait for it. */
  private async ptsOf(index: number): Promise<number> {
    while (this.pts.length <= index) {
      const more = new Promise<void>((resolve) => (this.ptsWaiter = resolve));
      const ended = this.exited!.then(() => 'ended' as const);
      if ((await Promise.race([more, ended])) === 'ended' && this.pts.length <= index) {
        throw new ExternalProcessError(`the decoder gave no timestamp for frame ${index}`, this.o.ffmpeg.path, this.stderrTail.slice(-8).join('\n'));
      }
    }
    return this.pts[index]!;
  }
}
