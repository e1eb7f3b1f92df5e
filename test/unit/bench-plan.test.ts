import { describe, expect, it } from 'vitest';
import { defaultBatches, defaultSizes, parseSize, planCases, splitList } from '../../src/bench/plan.js';
import { coreTimeShares, readDoneEvent } from '../../src/bench/end-to-end.js';

const ARCH: Record<string, string> = {
  'realesr-general-x4v3': 'SRVGGNetCompact: 32 convolutions',
  'realesr-animevideov3-x4': 'SRVGGNetCompact: 16 convolutions',
  'realesrgan-x4plus': 'RRDBNet (ESRGAN): 23 RRDB blocks',
};
const architectureOf = (m: string) => ARCH[m] ?? '';

describe('bench plan', () => {
  it('the default suite: three sizes for compact models, small sizes for RRDBNet, batches where frames are small', () => {
    const cases = planCases({ architectureOf });
    const of = (m: string) => cases.filter((c) => c.model === m).map((c) => `${c.width}x${c.height}/${c.batch}`);
    expect(of('realesr-general-x4v3')).toEqual(['160x90/1', '160x90/2', '160x90/4', '320x180/1', '320x180/2', '320x180/4', '640x360/1']);
    expect(of('realesr-animevideov3-x4')).toEqual(of('realesr-general-x4v3'));
    expect(of('realesrgan-x4plus')).toEqual(['64x64/1', '64x64/2', '128x72/1']);
  });

  it('given models, sizes and batches replace the defaults', () => {
    expect(planCases({ models: ['realesrgan-x4plus'], sizes: [[32, 32]], batches: [1, 8], architectureOf }))
      .toEqual([
        { model: 'realesrgan-x4plus', width: 32, height: 32, batch: 1 },
        { model: 'realesrgan-x4plus', width: 32, height: 32, batch: 8 },
      ]);
    // An .onnx file of unknown architecture gets the compact sizes.
    expect(defaultSizes('')).toHaveLength(3);
    expect(defaultBatches('RRDBNet', 128, 72)).toEqual([1]);
  });

  it('parses sizes and lists', () => {
    expect(parseSize('320x180')).toEqual([320, 180]);
    expect(parseSize(' 64X48 ')).toEqual([64, 48]);
    for (const bad of ['320', '0x10', '10x', 'axb', '9000x10']) expect(() => parseSize(bad)).toThrow(/frame size/);
    expect(splitList(['a,b', 'c', ' d , '])).toEqual(['a', 'b', 'c', 'd']);
    expect(splitList(undefined)).toEqual([]);
  });
});

describe('end-to-end event parsing', () => {
  it('reads the done event and the start event sizes, ignoring other lines', () => {
    const lines = [
      JSON.stringify({ type: 'start', inputSize: [160, 90], outputSize: [640, 360] }),
      'not json',
      JSON.stringify({ type: 'progress', frames: 0, elapsedMs: 200 }),
      JSON.stringify({ type: 'progress', frames: 1, elapsedMs: 450 }),
      JSON.stringify({ type: 'progress', frames: 48, elapsedMs: 6300 }),
      JSON.stringify({ type: 'progress', frames: 48, elapsedMs: 6450 }),
      JSON.stringify({ type: 'done', frames: 48, elapsedMs: 6500, peakRssBytes: 4e8, stageMs: { decode: 10, infer: 6000, encode: 300 } }),
    ];
    // First frame out: the first progress with frames > 0.
    expect(readDoneEvent(lines)).toEqual({
      frames: 48, elapsedMs: 6500, peakRssBytes: 4e8, stageMs: { decode: 10, infer: 6000, encode: 300 }, inputSize: [160, 90], outputSize: [640, 360],
      firstFrameMs: 450,
    });
    expect(readDoneEvent(lines.filter((l) => !l.includes('progress')))).not.toHaveProperty('firstFrameMs');
  });

  it('reads the job\'s CPU time and reused frames from the done event when it has them', () => {
    const done = (extra: object) => [JSON.stringify({ type: 'done', frames: 48, elapsedMs: 6500, peakRssBytes: 4e8, stageMs: { decode: 10, infer: 6000, encode: 300 }, ...extra })];
    expect(readDoneEvent(done({ reusedFrames: 3, cpuMs: { process: 12_000, children: 410 } }))).toMatchObject({ reusedFrames: 3, cpuMs: { process: 12_000, children: 410 } });
    expect(readDoneEvent(done({ cpuMs: { process: 12_000 } })).cpuMs).toEqual({ process: 12_000 });
    const bare = readDoneEvent(done({}));
    expect(bare).not.toHaveProperty('cpuMs');
    expect(bare).not.toHaveProperty('reusedFrames');
  });

  it('core time: inference at inference alone\'s CPU per frame, the rest of esrvid, FFmpeg and idle, as shares of cores x elapsed', () => {
    // 2 cores x 10 s = 20 core-s: 100 frames at 180 ms = 18 s of inference, 18.5 s in esrvid, 0.8 s in FFmpeg, 0.7 s idle.
    const shares = coreTimeShares({ frames: 100, elapsedMs: 10_000, cpuMs: { process: 18_500, children: 800 } }, 180, 2)!;
    expect(shares.inference).toBeCloseTo(0.9);
    expect(shares.esrvidOther).toBeCloseTo(0.025);
    expect(shares.ffmpeg).toBeCloseTo(0.04);
    expect(shares.idle).toBeCloseTo(0.035);
    expect(shares.inference + shares.esrvidOther + shares.ffmpeg + shares.idle).toBeCloseTo(1);
    // Reused frames were never upscaled: they need no inference.
    expect(coreTimeShares({ frames: 100, reusedFrames: 50, elapsedMs: 10_000, cpuMs: { process: 18_500, children: 800 } }, 180, 2)!.inference).toBeCloseTo(0.45);
    // Without the children's time (not Linux), or without a CPU figure for inference alone, nothing is claimed.
    expect(coreTimeShares({ frames: 100, elapsedMs: 10_000, cpuMs: { process: 18_500 } }, 180, 2)).toBeUndefined();
    expect(coreTimeShares({ frames: 100, elapsedMs: 10_000 }, 180, 2)).toBeUndefined();
    expect(coreTimeShares({ frames: 100, elapsedMs: 10_000, cpuMs: { process: 18_500, children: 800 } }, 0, 2)).toBeUndefined();
  });

  it('an error event or a missing done event fails', () => {
    expect(() => readDoneEvent([JSON.stringify({ type: 'error', message: 'input missing' })])).toThrow(/input missing/);
    expect(() => readDoneEvent([])).toThrow(/without a done event/);
  });
});

describe('benchmark frames', () => {
  it('real frames: the sample clip\'s frames first, mirrored into tiles to reach the size', async () => {
    const { realFrames } = await import('../../src/bench/frames.js');
    const { decodeRgbPng } = await import('../../src/models/calibration-frames.js');
    const { readFileSync } = await import('node:fs');
    const first = decodeRgbPng(readFileSync('samples/calibration/chelsea-mp4-frame0.png'));
    expect([first.width, first.height]).toEqual([160, 90]);
    const f = realFrames(2, 200, 100);
    expect(f.length).toBe(2 * 200 * 100 * 3);
    const px = (b: number, x: number, y: number) => [...f.subarray(((b * 100 + y) * 200 + x) * 3, ((b * 100 + y) * 200 + x) * 3 + 3)];
    const src = (x: number, y: number) => [...first.data.subarray((y * 160 + x) * 3, (y * 160 + x) * 3 + 3)];
    expect(px(0, 0, 0)).toEqual(src(0, 0));
    expect(px(0, 159, 89)).toEqual(src(159, 89));
    // Mirrored past the edge: x = 160 repeats x = 159, y = 91 repeats y = 88.
    expect(px(0, 160, 5)).toEqual(src(159, 5));
    expect(px(0, 7, 91)).toEqual(src(7, 88));
    // The second frame of a batch comes from another source frame.
    expect(Buffer.compare(Buffer.from(f.subarray(0, 60000)), Buffer.from(f.subarray(60000, 120000)))).not.toBe(0);
  });
});
