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
import { open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Binary } from '../ffmpeg/binaries.js';
import { Encoder } from './encoder.js';
import type { RawVideoTrack } from './matroska-writer.js';
import { recordSegment, segmentFile, type SegmentRecord } from './work-dir.js';

export interface SegmentWriterOptions {
  ffmpeg: Binary;
  dir: string;
  segmentFrames: number;
  /** Index of the first segment this run writes (after resumed ones). */
  firstIndex: number;
  argsFor: (partialPath: string) => string[];
  /** The frames as argsFor's encoder must read them: size, layout (default rgb24), nominal duration. */
  track: RawVideoTrack;
  onSegment?: (r: SegmentRecord) => void;
}

export class SegmentWriter {
  private encoder: Encoder | undefined;
  private index: number;
  private frames = 0;
  private firstPtsUs = 0;
  private lastPtsUs = 0;
  /** Every closed segment's flush, then its record, chained in segment order. */
  private closing: Promise<void> = Promise.resolve();
  /** Closed segments not yet recorded (their encoders may still be flushing), for abort(). */
  private readonly unrecorded = new Set<{ encoder: Encoder; index: number }>();
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

  async write(frame: Uint8Array, ptsUs: number): Promise<void> {
    if (this.failure) throw this.failure;
    if (!this.encoder) {
      this.encoder = new Encoder(this.o.ffmpeg, this.o.argsFor(this.partial(this.index)), this.o.track);
      this.frames = 0;
      this.firstPtsUs = ptsUs;
    }
    await this.encoder.writeFrame(frame, ptsUs);
    this.frames++;
    this.lastPtsUs = ptsUs;
    if (this.frames === this.o.segmentFrames) await this.closeSegment();
  }

  /**
   * Ends the current segment: its encoder flushes in the background once the segment before is
   * recorded (the chain is built here, at once, so abort() sees it). Returns when that segment
   * before is recorded: at most one segment flushes behind the one being written.
   */
  private async closeSegment(): Promise<void> {
    const encoder = this.encoder!;
    this.encoder = undefined;
    const segment = { index: this.index, frames: this.frames, firstPtsUs: this.firstPtsUs, lastPtsUs: this.lastPtsUs };
    this.index++;
    const entry = { encoder, index: segment.index };
    this.unrecorded.add(entry);
    const previous = this.closing;
    this.closing = previous
      .then(() => {
        if (this.failure) throw this.failure;
        return encoder.finish();
      })
      .then(() => this.record(segment))
      .catch(async (err: unknown) => {
        this.failure ??= err;
        await encoder.kill();
      })
      .finally(() => this.unrecorded.delete(entry));
    await previous;
    if (this.failure) throw this.failure;
  }

  /** The flushed segment's file synced and renamed into place, and its record written. */
  private async record(s: Omit<SegmentRecord, 'file' | 'bytes'>): Promise<void> {
    const partial = this.partial(s.index);
    const file = segmentFile(s.index);
    const fh = await open(partial, 'r');
    let bytes: number;
    try {
      await fh.sync();
      bytes = (await fh.stat()).size;
    } finally {
      await fh.close();
    }
    await rename(partial, join(this.o.dir, file));
    const record: SegmentRecord = { ...s, file, bytes };
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
    const unrecorded = [...this.unrecorded];
    await Promise.all([encoder?.kill(), ...unrecorded.map((u) => u.encoder.kill())]);
    await this.closing;
    await rm(this.partial(this.index), { force: true });
    for (const u of unrecorded) await rm(this.partial(u.index), { force: true });
  }
}
