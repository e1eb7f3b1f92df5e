/**
 * The encoder process: upscaled frames go to ffmpeg's stdin as a Matroska stream, respecting
 * the pipe's backpressure (`drain`), and any failure of ffmpeg surfaces as one error naming the
 * frame being written and the tail of ffmpeg's stderr.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { ExternalProcessError, OutputError } from '../errors.js';
import type { Binary } from '../ffmpeg/binaries.js';
import { MatroskaRawWriter, type RawVideoTrack } from './matroska-writer.js';

export class Encoder {
  private readonly child: ChildProcess;
  private readonly writer: MatroskaRawWriter;
  private readonly exited: Promise<number | null>;
  private stderr = '';
  private stdinError: Error | undefined;
  private framesWritten = 0;

  /**
   * `track`: the frames as `args` must expect them (RGB unless the native kernel wrote I420), with
   * their nominal duration: without it the last frame has no duration, and an MP4 edit list then
   * ends where that frame starts, hiding it from players.
   */
  constructor(private readonly ffmpeg: Binary, private readonly args: string[], track: RawVideoTrack) {
    this.writer = new MatroskaRawWriter(track);
    this.child = spawn(ffmpeg.path, args, { stdio: ['pipe', 'ignore', 'pipe'] });
    this.exited = new Promise((resolve) => this.child.once('close', (code) => resolve(code)));
    this.child.once('error', (e) => (this.stdinError = e));
    this.child.stderr!.setEncoding('utf8');
    this.child.stderr!.on('data', (s: string) => {
      this.stderr = (this.stderr + s).slice(-8000);
    });
    // EPIPE when ffmpeg dies is reported through the exit code and stderr, not as a crash.
    this.child.stdin!.on('error', (e) => (this.stdinError = e));
    this.child.stdin!.write(this.writer.header());
  }

  get process(): ChildProcess {
    return this.child;
  }

  get frames(): number {
    return this.framesWritten;
  }

  private failure(what: string): Error {
    const tail = this.stderr.trim().split('\n').slice(-6).join('\n');
    if (/No space left on device/i.test(tail)) {
      return new OutputError('the disk is full: the encoder could not write the output', 'free some space');
    }
    const code = this.child.exitCode;
    return new ExternalProcessError(`the encoder (ffmpeg) ${code !== null ? `quit with code ${code}` : 'failed'} ${what}${tail ? `: ${tail.split('\n').at(-1)}` : ''}`,
      `${this.ffmpeg.path} ${this.args.join(' ')}`, tail);
  }

  /**
   * Writes one frame. Resolves once the bytes are in the pipe (the write callback), not merely
   * queued: only then may the caller reuse the frame's buffer, and a full pipe holds us here,
   * which is the backpressure that keeps memory bounded.
   */
  async writeFrame(frame: Uint8Array, ptsUs: number): Promise<void> {
    if (this.child.exitCode !== null || this.stdinError) throw this.failure(`while piping frame ${this.framesWritten}`);
    const stdin = this.child.stdin!;
    const parts = this.writer.frame(frame, ptsUs);
    const written = new Promise<'written'>((resolve, reject) => {
      parts.forEach((part, i) => stdin.write(part, i === parts.length - 1 ? (err) => (err ? reject(err) : resolve('written')) : undefined));
    });
    written.catch(() => undefined);
    const closed = this.exited.then(() => 'closed' as const);
    const outcome = await Promise.race([written, closed]).catch(() => 'closed' as const);
    if (outcome === 'closed') throw this.failure(`while piping frame ${this.framesWritten}`);
    this.framesWritten++;
  }

  /** Closes the stream and waits for ffmpeg to finish the file. */
  async finish(): Promise<void> {
    this.child.stdin!.end();
    const code = await this.exited;
    if (code !== 0) throw this.failure(`after ${this.framesWritten} frames`);
  }

  /** Stops ffmpeg now (cancel or error elsewhere). */
  async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.exited;
  }
}
