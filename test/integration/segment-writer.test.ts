/**
 * The segment chain with real FFmpeg encoders: segments close in the background while the next
 * one takes frames, yet every frame lands in its segment, records come in order, and an abort
 * part-way through a background close leaves no partial file behind.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findFfmpeg } from '../../src/ffmpeg/binaries.js';
import type { ColourPlan } from '../../src/ffmpeg/colour.js';
import { segmentArgs } from '../../src/encode/encoder-args.js';
import { SegmentWriter } from '../../src/encode/segment-writer.js';
import { readSegmentRecord } from '../../src/encode/work-dir.js';
import { FFMPEG, tempDir } from '../helpers/media.js';

const W = 32;
const H = 16;
const FRAME_US = 40_000;
const { dir: root, cleanup } = tempDir();
afterAll(cleanup);

/** A frame of one colour, different for every index (RGB). */
const frame = (i: number) => Buffer.alloc(W * H * 3, Buffer.from([(i * 37) % 256, (i * 91) % 256, (i * 151) % 256]));

async function writer(dir: string, segmentFrames: number): Promise<SegmentWriter> {
  const { ffmpeg } = await findFfmpeg({});
  return new SegmentWriter({
    ffmpeg, dir, segmentFrames, firstIndex: 0, track: { width: W, height: H, defaultDurationUs: FRAME_US },
    // Lossless RGB (FFV1, bgr0): the frames come back exactly, so each can be found in its segment.
    argsFor: (partial) => segmentArgs({
      ffmpeg, frameWidth: W, frameHeight: H, outWidth: W, outHeight: H,
      settings: { codec: 'ffv1', pixFmt: 'bgr0' }, colour: {} as ColourPlan, timeBase: [1, 1_000_000],
    }, partial),
  });
}

/** The first pixel (R, G, B) of every frame of a segment file. */
function firstPixels(file: string): number[][] {
  const raw = execFileSync(FFMPEG, ['-v', 'error', '-i', file, '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'], { maxBuffer: 1 << 24 });
  const out: number[][] = [];
  for (let o = 0; o < raw.length; o += W * H * 3) out.push([raw[o]!, raw[o + 1]!, raw[o + 2]!]);
  return out;
}

describe('segment writer', () => {
  it('7 frames in segments of 3: three segments, recorded in order, every frame in its own', { timeout: 60_000 }, async () => {
    const dir = join(root, 'seven');
    mkdirSync(dir, { recursive: true });
    const w = await writer(dir, 3);
    for (let i = 0; i < 3; i++) await w.write(frame(i), i * FRAME_US);
    // The write that filled segment 0 returned with its encoder still flushing: not recorded yet.
    expect(w.written).toHaveLength(0);
    for (let i = 3; i < 7; i++) await w.write(frame(i), i * FRAME_US);
    await w.finish();
    expect(w.written.map((r) => [r.index, r.frames, r.firstPtsUs, r.lastPtsUs])).toEqual([[0, 3, 0, 80_000], [1, 3, 120_000, 200_000], [2, 1, 240_000, 240_000]]);
    for (const r of w.written) {
      expect(await readSegmentRecord(dir, r.index)).toEqual(r);
      const pixels = firstPixels(join(dir, r.file));
      const expected = Array.from({ length: r.frames }, (_, k) => [...frame(r.firstPtsUs / FRAME_US + k).subarray(0, 3)]);
      expect(pixels).toEqual(expected);
    }
    expect(readdirSync(dir).filter((f) => f.includes('.partial-'))).toEqual([]);
  });

  it('an abort while a closed segment still flushes leaves only finished segments, no partial file', { timeout: 60_000 }, async () => {
    const dir = join(root, 'abort');
    mkdirSync(dir, { recursive: true });
    const w = await writer(dir, 2);
    // Segment 0 closes at its second frame and flushes in the background while segment 1 starts.
    for (let i = 0; i < 3; i++) await w.write(frame(i), i * FRAME_US);
    await w.abort();
    expect(readdirSync(dir).filter((f) => f.includes('.partial-'))).toEqual([]);
    // Segment 0 is either recorded whole (its flush won the race) or not at all; segment 1 never.
    expect(w.written.length).toBeLessThanOrEqual(1);
    for (const r of w.written) expect(existsSync(join(dir, r.file))).toBe(true);
    expect(existsSync(join(dir, 'seg-00001.nut'))).toBe(false);
  });
});
