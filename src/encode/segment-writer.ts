/**
 * Feeds upscaled frames to a chain of segment encoders: every `segmentFrames` frames the current
 * ffmpeg is closed, its file flushed and renamed into place, and a record written; only then does
 * the segment count as finished. Segments start on a fresh encoder, so each begins with a
 * keyframe and decodes on its own.
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
  readonly written: SegmentRecord[] = [];

  constructor(private readonly o: SegmentWriterOptions) {
    this.index = o.firstIndex;
  }

  /** Per-process name: an encoder orphaned by a killed run may still be writing its own. */
  private partial(index: number): string {
    return join(this.o.dir, `${segmentFile(index)}.partial-${process.pid}`);
  }

  async write(rgb: Uint8Array, ptsUs: number): Promise<void> {
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

  private async closeSegment(): Promise<void> {
    const enc = this.encoder!;
    this.encoder = undefined;
    await enc.finish();
    const partial = this.partial(this.index);
    const file = segmentFile(this.index);
    const fh = await open(partial, 'r');
    await fh.sync();
    await fh.close();
    await rename(partial, join(this.o.dir, file));
    const record: SegmentRecord = {
      index: this.index, file, frames: this.frames, firstPtsUs: this.firstPtsUs, lastPtsUs: this.lastPtsUs,
      bytes: (await stat(join(this.o.dir, file))).size,
    };
    await recordSegment(this.o.dir, record);
    this.written.push(record);
    this.o.onSegment?.(record);
    this.index++;
  }

  /** Closes the last (possibly short) segment. */
  async finish(): Promise<void> {
    if (this.encoder) await this.closeSegment();
  }

  /** Stops the segment in flight and deletes its partial file; finished segments stay. */
  async abort(): Promise<void> {
    const enc = this.encoder;
    this.encoder = undefined;
    if (enc) await enc.kill();
    await rm(this.partial(this.index), { force: true });
  }
}
