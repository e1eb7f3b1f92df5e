/** Tiled upscaling is seamless: a tiled run matches an untiled run of the same real photo. */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pullModel } from '../../src/models/pull.js';
import { psnr } from '../helpers/image.js';
import { decodeRgb, ffmpeg, PHOTO, runCli, tempDir } from '../helpers/media.js';

const MODEL = 'realesr-general-x4v3';
const { dir, cleanup } = tempDir();
afterAll(cleanup);

beforeAll(async () => {
  await pullModel(MODEL);
  // Two lossless RGB frames of a 320x180 photograph.
  await ffmpeg(['-loop', '1', '-framerate', '24', '-i', PHOTO, '-frames:v', '2', '-c:v', 'ffv1', '-pix_fmt', 'bgr0', join(dir, 'photo.mkv')]);
});

describe('--tile', () => {
  it('64 px tiles with 16 px context: >= 40 dB against the untiled result, same size and frame count', async () => {
    const lossless = ['--model', MODEL, '--codec', 'ffv1', '--pix-fmt', 'bgr0', '--json'];
    const whole = await runCli([join(dir, 'photo.mkv'), join(dir, 'whole.mkv'), '--tile', '0', ...lossless]);
    const tiled = await runCli([join(dir, 'photo.mkv'), join(dir, 'tiled.mkv'), '--tile', '64', '--tile-pad', '16', ...lossless]);
    expect(whole.code, whole.stderr).toBe(0);
    expect(tiled.code, tiled.stderr).toBe(0);
    const start = JSON.parse(tiled.stdout.split('\n')[0]!);
    expect(start.tile).toBe(64);
    const a = await decodeRgb(join(dir, 'whole.mkv'));
    const b = await decodeRgb(join(dir, 'tiled.mkv'));
    expect(a.length).toBe(1280 * 720 * 3 * 2);
    expect(b.length).toBe(a.length);
    const { db } = psnr(a, b);
    console.log(`tiled (64 px, pad 16) vs untiled: ${db.toFixed(2)} dB`);
    expect(db).toBeGreaterThanOrEqual(40);
  });
});
