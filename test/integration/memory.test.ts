/**
 * Memory does not grow with the length of the video: the peak resident memory of a 4000-frame
 * job stays within 1.2x of a 1000-frame job at the same resolution. The peak (the program's own
 * high-water mark, VmHWM) climbs over the first ~1000 frames as the heaps and the sessions'
 * arenas settle, then stays flat (measured: 215 MiB at 1000 frames, 232 at 4000, 236 at 6000;
 * 179 MiB at 30). At 32x18 -> 128x72 an unbounded queue or a leaked frame per step would add
 * ~83 MB over the 3000 frames between the two, far over the margin.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pullModel } from '../../src/models/pull.js';
import { ffmpeg, PHOTO, runCli, tempDir } from '../helpers/media.js';

const MODEL = 'realesr-animevideov3-x4';
const { dir, cleanup } = tempDir();
afterAll(cleanup);

async function clip(frames: number, name: string): Promise<string> {
  const out = join(dir, name);
  await ffmpeg([
    '-loop', '1', '-framerate', '30', '-i', PHOTO, '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
    '-filter_complex', "[0:v]crop=32:18:x='mod(n,280)':y='mod(n/7,160)',format=yuv420p[v]",
    '-map', '[v]', '-map', '1:a', '-t', String(frames / 30),
    '-c:v', 'libx264', '-preset', 'ultrafast', '-c:a', 'aac', out,
  ]);
  return out;
}

async function peakRss(input: string, output: string): Promise<{ frames: number; peak: number }> {
  const r = await runCli([input, output, '--model', MODEL, '--json'], { timeoutMs: 600_000 });
  expect(r.code, r.stderr).toBe(0);
  const done = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
  expect(done.type).toBe('done');
  return { frames: done.frames, peak: done.peakRssBytes };
}

beforeAll(async () => {
  await pullModel(MODEL);
});

describe('bounded memory', () => {
  it('a 4000-frame job peaks within 1.2x of a 1000-frame job', { timeout: 600_000 }, async () => {
    const [short, long] = await Promise.all([clip(1000, 'short.mp4'), clip(4000, 'long.mp4')]);
    const a = await peakRss(short, join(dir, 'short-x4.mp4'));
    const b = await peakRss(long, join(dir, 'long-x4.mp4'));
    expect(a.frames).toBe(1000);
    expect(b.frames).toBe(4000);
    console.log(`peak RSS: 1000 frames ${(a.peak / 2 ** 20).toFixed(1)} MiB, 4000 frames ${(b.peak / 2 ** 20).toFixed(1)} MiB (x${(b.peak / a.peak).toFixed(3)})`);
    expect(b.peak / a.peak).toBeLessThanOrEqual(1.2);
  });
});
