/**
 * The native kernel's I420 output (src/native/yuv.c): frames the encoder takes without converting
 * them, so they must be what FFmpeg's swscale makes of the same RGB with the encoder's own filter
 * (src/encode/encoder-args.ts): within one level everywhere, 97% of bytes equal or more, a mean difference under 1/50 of a level, for
 * every matrix and range esrvid writes. Real weights, a real photo.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { segmentArgs } from '../../src/encode/encoder-args.js';
import { i420Matrix, type ColourPlan } from '../../src/ffmpeg/colour.js';
import { nativeKernel } from '../../src/infer/native-cpu.js';
import { nativePlan } from '../../src/infer/native-plan.js';
import { pullModel } from '../../src/models/pull.js';
import { onnxPath } from '../../src/models/store.js';
import { byteDifference } from '../helpers/frame-model.js';
import { crop, readRgb } from '../helpers/image.js';
import { FFMPEG } from '../helpers/media.js';

const usable = nativeKernel() !== null;

/** The encoder's conversion of `rgb` (w x h), by ffmpeg with the -vf segmentArgs gives RGB frames. */
function swscale(rgb: Uint8Array, w: number, h: number, colour: Pick<ColourPlan, 'matrix' | 'range'>): Buffer {
  const args = segmentArgs({
    ffmpeg: { path: FFMPEG, version: '', major: 4 }, frameWidth: w, frameHeight: h, outWidth: w, outHeight: h,
    settings: { codec: 'libx264', pixFmt: 'yuv420p' }, colour: { ...colour, tags: { colorspace: 'bt709', primaries: 'bt709', trc: 'bt709', range: colour.range }, assumed: false },
    timeBase: [1, 24],
  }, 'unused.nut');
  const vf = args[args.indexOf('-vf') + 1]!;
  const r = spawnSync(FFMPEG, ['-v', 'error', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${w}x${h}`, '-i', 'pipe:0', '-vf', vf, '-f', 'rawvideo', 'pipe:1'],
    { input: rgb, maxBuffer: 1 << 28 });
  expect(r.status, String(r.stderr)).toBe(0);
  return r.stdout;
}

/** Y, U and V of an I420 frame. */
function planes(f: Uint8Array, w: number, h: number): Uint8Array[] {
  const y = w * h, c = y / 4;
  return [f.subarray(0, y), f.subarray(y, y + c), f.subarray(y + c, y + 2 * c)];
}

const meanDifference = (a: Uint8Array, b: Uint8Array) => a.reduce((s, v, i) => s + v - b[i]!, 0) / a.length;

async function photoFrames(w: number, h: number, count: number): Promise<Uint8Array> {
  const photo = await readRgb('test/fixtures/photos/chelsea.png');
  const out = new Uint8Array(count * w * h * 3);
  for (let i = 0; i < count; i++) out.set(crop(photo, 15 + 41 * i, 8 + 13 * i, w, h).data, i * w * h * 3);
  return out;
}

describe.runIf(usable)('the native kernel\'s I420 frames', () => {
  const [w, h] = [83, 47]; // 332 x 188 out: rows of partial strips and a tail of pixels past the 16-pixel steps
  const [W, H] = [w * 4, h * 4];

  it.each([
    ['bt709', 'tv'], ['bt601', 'tv'], ['bt709', 'pc'], ['bt2020', 'tv'], ['smpte240m', 'tv'], ['fcc', 'pc'],
  ] as const)('are swscale\'s conversion of its RGB frames within one level, without bias: %s %s', async (matrix, range) => {
    await pullModel('realesr-general-x4v3');
    const kernel = nativeKernel()!;
    const plan = nativePlan(readFileSync(onnxPath('realesr-general-x4v3')))!;
    const net = kernel.createNet(plan.layers, plan.scale, 3);
    const input = await photoFrames(w, h, 2);
    const rgb = new Uint8Array(2 * W * H * 3);
    kernel.run(net, input, 2, h, w, rgb);
    const yuv = new Uint8Array(2 * W * H * 3 / 2);
    kernel.run(net, input, 2, h, w, yuv, i420Matrix({ matrix, range })!);
    for (let f = 0; f < 2; f++) {
      const ours = planes(yuv.subarray(f * W * H * 1.5, (f + 1) * W * H * 1.5), W, H);
      const theirs = planes(swscale(rgb.subarray(f * W * H * 3, (f + 1) * W * H * 3), W, H, { matrix, range }), W, H);
      ours.forEach((plane, p) => {
        const d = byteDifference(plane, theirs[p]!);
        expect(d.worst, `frame ${f} plane ${'YUV'[p]}`).toBeLessThanOrEqual(1);
        expect(d.share, `frame ${f} plane ${'YUV'[p]}`).toBeLessThan(0.03);
        expect(Math.abs(meanDifference(plane, theirs[p]!)), `frame ${f} plane ${'YUV'[p]}`).toBeLessThan(0.02);
      });
    }
  });

  it('are the same bytes from any number of threads, and from toI420 of the RGB frame, bands of a row or none too', async () => {
    await pullModel('realesr-animevideov3-x4');
    const kernel = nativeKernel()!;
    const plan = nativePlan(readFileSync(onnxPath('realesr-animevideov3-x4')))!;
    const matrix = i420Matrix({ matrix: 'bt709', range: 'tv' })!;
    for (const [fw, fh] of [[w, h], [31, 3]] as const) {
      const [FW, FH] = [fw * 4, fh * 4];
      const input = await photoFrames(fw, fh, 2);
      const rgb = new Uint8Array(2 * FW * FH * 3);
      kernel.run(kernel.createNet(plan.layers, plan.scale, 3), input, 2, fh, fw, rgb);
      const converted = new Uint8Array(2 * FW * FH * 3 / 2);
      const scratch = new Float32Array(FW * FH); // one for both frames, as the pipeline reuses it
      for (let f = 0; f < 2; f++) kernel.toI420(rgb.subarray(f * FW * FH * 3, (f + 1) * FW * FH * 3), FH, FW, matrix, converted.subarray(f * FW * FH * 1.5), scratch);
      for (const threads of [1, 2, 5]) {
        const net = kernel.createNet(plan.layers, plan.scale, 3, threads);
        const out = new Uint8Array(2 * FW * FH * 3 / 2);
        // An RGB call first: the I420 call after it must not depend on what the net did before.
        kernel.run(net, input, 1, fh, fw, new Uint8Array(FW * FH * 3));
        kernel.run(net, input, 2, fh, fw, out, matrix);
        expect(Buffer.from(out).equals(Buffer.from(converted)), `${fw}x${fh}, ${threads} threads`).toBe(true);
      }
    }
  });

  it('refuses what it cannot write, in one line', () => {
    const kernel = nativeKernel()!;
    const matrix = i420Matrix({ matrix: 'bt709', range: 'tv' })!;
    expect(() => kernel.toI420(new Uint8Array(7 * 4 * 3), 4, 7, matrix, new Uint8Array(42), new Float32Array(28))).toThrow('toI420: the width and height must be even');
    expect(() => kernel.toI420(new Uint8Array(8 * 4 * 3), 4, 8, Float32Array.of(0.9, 0.2, 0), new Uint8Array(48), new Float32Array(32))).toThrow('toI420: i420 must be a Float32Array [kr, kb, full]');
    expect(() => kernel.toI420(new Uint8Array(8 * 4 * 3), 4, 8, matrix, new Uint8Array(47), new Float32Array(32))).toThrow('toI420: buffers smaller than the frame');
    expect(i420Matrix({ matrix: 'ycgco', range: 'tv' })).toBeUndefined();
  });
});
