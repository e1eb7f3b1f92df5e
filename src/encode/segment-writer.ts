/**
 * Feeds upscaled frames to a chain of segment encoders: every `segmentFrames` frames the current
 * ffmpeg is closed, its file flushed and renamed into place, and a record written; only then does
 * the segment count as finished. Segments start on a fresh encoder, so each begins with a
 * keyframe and decodes on its own.
 *
 * A closed segment's encoder finishes in the background while the next segment's encoder takes
 * frames: closing stdin is only the start of its work, since x264 still encodes the frames its
 * lookahead holds (about 40, a few hundred ms at 2560x1440 on 2 cores, seconds at 4K), and
 * waiting for that at every boundary stalled the frames behind it. Records are still written in
 * segment order, and at most one segment flushes behind the one being written.
 */
import { open, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Binary } from '../ffmpeg/binaries.js';
import { Encoder } from './encoder.js';
import { recordSegment, segmentFile, type SegmentRecord } from './work-dir.js';

export interface SegmentWriterOptions {
  ffmpeg: Binary;
  dir: string;
  segmentFrames: number;
  /** Index of the first segment this run writes (after resumed ones). */
  firstIndex: number;
  argsFor: (partialPath: string) => string[];
  frameWidth: number;
  frameHeight: number;
  frameDurationUs: number;
  onSegment?: (r: SegmentRecord) => void;
}

export class SegmentWriter {
  private encoder: Encoder | undefined;
  private index: number;
  private frames = 0;
  private firstPtsUs = 0;
  private lastPtsUs = 0;
  /** The last closed segment: its flush, then its record. */
  private closing: Promise<void> = Promise.resolve();
  /** A closed segment still flushing: its encoder and index, for abort(). */
  private flushing: { encoder: Encoder; index: number } | undefined;
  /** A background close that failed: the next write or finish() throws it. */
  private failure: unknown;
  readonly written: SegmentRecord[] = [];

  constructor(private readonly o: SegmentWriterOptions) {
    this.index = o.firstIndex;
  }

  /** Per-process name: an encoder orphaned by a killed run may still be writing its own. */
  private partial(index: number): string {
    return join(this.o.dir, `${segmentFile(index)}.partial-${process.pid}`);
  }

  async write(rgb: Uint8Array, ptsUs: number): Promise<void> {
    if (this.failure) throw this.failure;
    if (!this.encoder) {
      this.encoder = new Encoder(this.o.ffmpeg, this.o.argsFor(this.partial(this.index)), this.o.frameWidth, this.o.frameHeight, this.o.frameDurationUs);
      this.frames = 0;
      this.firstPtsUs = ptsUs;
    }
    await this.encoder.writeFrame(rgb, ptsUs);
    this.frames++;
    this.lastPtsUs = ptsUs;
    if (this.frames === this.o.segmentFrames) await this.closeSegment();
  }

  /** Ends the current segment; its encoder flushes in the background once the one before has finished. */
  private async closeSegment(): Promise<void> {
    const encoder = this.encoder!;
    this.encoder = undefined;
    const segment = { index: this.index, frames: this.frames, firstPtsUs: this.firstPtsUs, lastPtsUs: this.lastPtsUs };
    this.index++;
    await this.closing;
    if (this.failure) {
      await encoder.kill();
      throw this.failure;
    }
    this.flushing = { encoder, index: segment.index };
    const closing = encoder.finish().finally(() => {
      if (this.flushing?.encoder === encoder) this.flushing = undefined;
    }).then(() => this.record(segment));
    this.closing = closing.catch((err: unknown) => {
      this.failure ??= err;
    });
  }

  /** The flushed segment's file synced and renamed into place, and its record written. */
  private async record(s: Omit<SegmentRecord, 'file' | 'bytes'>): Promise<void> {
    const partial = this.partial(s.index);
    const file = segmentFile(s.index);
    const fh = await open(partial, 'r');
    await fh.sync();
    await fh.close();
    await rename(partial, join(this.o.dir, file));
    const record: SegmentRecord = { ...s, file, bytes: (await stat(join(this.o.dir, file))).size };
    await recordSegment(this.o.dir, record);
    this.written.push(record);
    this.o.onSegment?.(record);
  }

  /** Closes the last (possibly short) segment and waits until every segment is recorded. */
  async finish(): Promise<void> {
    if (this.encoder) await this.closeSegment();
    await this.closing;
    if (this.failure) throw this.failure;
  }

  /** Stops the segment in flight and any still flushing, deleting their partial files; finished segments stay. */
  async abort(): Promise<void> {
    const encoder = this.encoder;
    this.encoder = undefined;
    const flushing = this.flushing;
    await Promise.all([encoder?.kill(), flushing?.encoder.kill()]);
    await this.closing;
    await rm(this.partial(this.index), { force: true });
    if (flushing) await rm(this.partial(flushing.index), { force: true });
  }
}
