/**
 * A frame byte-identical to the frame before it is written from that frame's upscaled output
 * instead of being upscaled again. The network gives identical input identical output, so the
 * video must be the same as when every frame is upscaled: compared frame by frame (decoded
 * picture and timestamp) on lossless output, through batches, tiles and a long still run that is
 * cut at segment length. Real ffmpeg, real weights.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir } from 'node:fs/promises';
import { pullModel } from '../../src/models/pull.js';
import { upscaleVideo } from '../../src/pipeline.js';
import { FFMPEG, ffmpeg, packetTimes, PHOTO, runCli, tempDir } from '../helpers/media.js';

const MODEL = 'realesr-animevideov3-x4';
const [W, H] = [40, 24];
const { dir, cleanup } = tempDir();
afterAll(cleanup);

/** Losslessly coded, so a repeated picture decodes to the same bytes. */
const LOSSLESS = ['-c:v', 'libx264', '-qp', '0', '-preset', 'ultrafast', '-pix_fmt', 'yuv444p'];
const window = (x: string) => `crop=${W}:${H}:x='${x}':y=70`;

beforeAll(async () => {
  await pullModel(MODEL);
  await Promise.all([
    // Animation on twos: 8 pictures at 12 fps shown at 24, each twice; frame 5 (the second
    // showing of the third picture) has one pixel changed, so it must be upscaled on its own.
    ffmpeg(['-loop', '1', '-framerate', '12', '-i', PHOTO, '-vf',
      `${window('90+n*5')},fps=24,drawbox=x=3:y=4:w=1:h=1:color=white@1:t=fill:enable='eq(n,5)'`,
      '-frames:v', '16', ...LOSSLESS, join(dir, 'twos.mkv')]),
    // A still scene: one picture for 20 frames, then 4 moving frames.
    ffmpeg(['-loop', '1', '-framerate', '24', '-i', PHOTO, '-vf', window('90+max(0,n-19)*5'),
      '-frames:v', '24', ...LOSSLESS, join(dir, 'still.mkv')]),
  ]);
});

/** Every frame of the file's video: presentation time and an MD5 of the decoded picture. */
async function frames(file: string): Promise<string[]> {
  const { stdout } = await promisify(execFile)(FFMPEG, ['-v', 'error', '-i', file, '-map', '0:v:0', '-f', 'framemd5', '-']);
  return stdout.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => {
    const f = l.split(',').map((s) => s.trim());
    return `${f[2]} ${f[5]}`; // pts, md5
  });
}

/** How many frames show the same picture as the frame before them. */
function repeatsIn(list: string[]): number {
  const pictures = list.map((f) => f.split(' ')[1]);
  return pictures.filter((p, i) => i > 0 && p === pictures[i - 1]).length;
}

/** Upscales losslessly; returns the done event and the output's frames. */
async function upscale(src: string, out: string, extra: string[]) {
  const r = await runCli([src, out, '--model', MODEL, '--device', 'cpu', '--codec', 'ffv1', '--json', '-y', ...extra]);
  expect(r.code, r.stderr).toBe(0);
  const done = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
  expect(done.type).toBe('done');
  return { done, frames: await frames(out) };
}

describe('frames identical to the one before are not upscaled again', () => {
  it.each([
    ['twos.mkv', [], 7],
    ['twos.mkv', ['--batch', '3'], 7],
    ['twos.mkv', ['--tile', '16'], 7],
    // 20 identical frames with segments of 6: runs of 1 + 6 repeats, so 3 upscales and 17 reused.
    ['still.mkv', ['--segment-seconds', '0.25'], 17],
  ] as const)('%s %j: the same frames and timestamps as upscaling every frame, %i reused', async (name, extra, reused) => {
    const src = join(dir, name);
    const tag = `${name}-${extra.join('')}`;
    const [a, b] = await Promise.all([
      upscale(src, join(dir, `${tag}-reuse.mkv`), [...extra]),
      upscale(src, join(dir, `${tag}-every.mkv`), [...extra, '--no-reuse-identical']),
    ]);
    const source = await frames(src);
    expect(a.done.reusedFrames).toBe(reused);
    expect(b.done.reusedFrames).toBe(0);
    expect(a.done.frames).toBe(source.length);
    expect(a.frames).toHaveLength(source.length);
    // Same timestamps as the source's frames, and every picture as when each frame is upscaled.
    expect(a.frames.map((f) => f.split(' ')[0])).toEqual(source.map((f) => f.split(' ')[0]));
    expect(a.frames).toEqual(b.frames);
    // A picture repeated in the source is repeated in the output (the changed pixel is no repeat).
    expect(repeatsIn(a.frames)).toBe(repeatsIn(source));
    expect(repeatsIn(source)).toBe(name === 'still.mkv' ? 19 : 7);
  });
});

describe('a scale-out segment', () => {
  it('reuses repeated frames too, and says how many in its result (the worker logs it)', async () => {
    const src = join(dir, 'twos.mkv');
    const segDir = join(dir, 'segment');
    await mkdir(segDir);
    const first = (await packetTimes(src))[0]!;
    const r = await upscaleVideo({
      input: src, output: join(dir, 'segment-job.mkv'), model: MODEL, device: 'cpu', codec: 'ffv1',
      segment: { index: 0, dir: segDir, frames: 16, firstPtsUs: Math.round(first * 1e6), endPtsUs: Infinity },
    });
    expect(r.segment?.frames).toBe(16);
    expect(r.frames).toBe(16);
    expect(r.reusedFrames).toBe(7);
  });
});

