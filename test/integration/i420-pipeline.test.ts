/**
 * Where the fused kernel runs, the job hands the encoder I420 frames the kernel's lanes converted
 * (src/native/yuv.h) instead of RGB for the encoder to convert. The output must be the same video:
 * encoded losslessly (libx264 -crf 0), its planes are within one level of the RGB hand-off's, for
 * the matrices and ranges sources declare, through tiles too; what I420 cannot carry (other pixel
 * formats, resized output) keeps RGB. Real ffmpeg, real weights.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nativeKernel } from '../../src/infer/native-cpu.js';
import { pullModel } from '../../src/models/pull.js';
import { byteDifference } from '../helpers/frame-model.js';
import { FFMPEG, ffmpeg, ffprobeJson, PHOTO, runCli, tempDir } from '../helpers/media.js';

const MODEL = 'realesr-animevideov3-x4';
const [W, H] = [40, 24];
const FRAMES = 5;
const { dir, cleanup } = tempDir();
afterAll(cleanup);

/** Sources as sources come: HD-style BT.709, SD BT.601, and full-range (JPEG-style) BT.709. */
const SOURCES = {
  'bt709-tv': ['-colorspace', 'bt709', '-color_primaries', 'bt709', '-color_trc', 'bt709', '-color_range', 'tv'],
  'bt601-tv': ['-colorspace', 'smpte170m', '-color_primaries', 'smpte170m', '-color_trc', 'smpte170m', '-color_range', 'tv'],
  'bt709-pc': ['-colorspace', 'bt709', '-color_primaries', 'bt709', '-color_trc', 'bt709', '-color_range', 'pc'],
} as const;

beforeAll(async () => {
  await pullModel(MODEL);
  await Promise.all(Object.entries(SOURCES).map(([name, tags]) => ffmpeg([
    '-loop', '1', '-framerate', '24', '-i', PHOTO, '-vf', `crop=${W}:${H}:x='90+n*5':y=70,format=${name.endsWith('pc') ? 'yuvj420p' : 'yuv420p'}`,
    '-frames:v', String(FRAMES), '-c:v', 'libx264', '-crf', '8', ...tags, join(dir, `${name}.mp4`),
  ])));
});

/** The job's start event and the output's raw yuv420p planes (decoded without conversion). */
async function upscale(src: string, out: string, extra: string[], env: NodeJS.ProcessEnv = {}) {
  const r = await runCli([src, out, '--model', MODEL, '--device', 'cpu', '--json', '-y', ...extra], { env });
  expect(r.code, r.stderr).toBe(0);
  const start = JSON.parse(r.stdout.split('\n')[0]!);
  const { stdout } = await promisify(execFile)(FFMPEG, ['-v', 'error', '-i', out, '-f', 'rawvideo', '-pix_fmt', 'yuv420p', '-'], { encoding: 'buffer', maxBuffer: 1 << 28 });
  return { start, yuv: new Uint8Array(stdout) };
}

const tagsOf = async (file: string) => {
  const v = (await ffprobeJson(file, ['-show_streams'])).streams.find((s: { codec_type: string }) => s.codec_type === 'video');
  return [v.pix_fmt, v.color_space, v.color_range, v.color_primaries, v.color_transfer];
};

describe.runIf(nativeKernel() !== null)('I420 frames from the fused kernel\'s lanes', () => {
  it.each([
    ...Object.keys(SOURCES).map((name) => [name, []] as const),
    ['bt709-tv', ['--tile', '16']] as const,
  ])('%s %j: lossless output within one level of the RGB hand-off, same tags', async (name, extra) => {
    const src = join(dir, `${name}.mp4`);
    const lossless = ['--codec', 'libx264', '--crf', '0', ...extra];
    const tag = `${name}${extra.length ? '-tiled' : ''}`;
    const [i420, rgb] = [join(dir, `${tag}-i420.mkv`), join(dir, `${tag}-rgb.mkv`)];
    const a = await upscale(src, i420, lossless);
    const b = await upscale(src, rgb, lossless, { ESRVID_I420: '0' });
    expect(a.start).toMatchObject({ engine: 'native', frameFormat: 'yuv420p', tile: extra.length ? 16 : 0 });
    expect(b.start).toMatchObject({ engine: 'native', frameFormat: 'rgb24' });
    const frameBytes = W * 4 * H * 4 * 1.5;
    expect(a.yuv.length).toBe(frameBytes * FRAMES);
    expect(b.yuv.length).toBe(a.yuv.length);
    const d = byteDifference(a.yuv, b.yuv);
    expect(d.worst).toBeLessThanOrEqual(1);
    expect(d.share).toBeLessThan(0.03);
    // Wrong planes or a wrong matrix would not stay within a level: the frames really differ from each other.
    expect(byteDifference(a.yuv.subarray(0, frameBytes), a.yuv.subarray(frameBytes, 2 * frameBytes)).worst).toBeGreaterThan(20);
    expect(await tagsOf(i420)).toEqual(await tagsOf(rgb));
  });

  it.each([
    ['--pix-fmt', 'yuv444p'],
    ['--scale', '2'],
  ])('keeps RGB where the encoder must still convert or resize: %s %s', async (option, value) => {
    const out = join(dir, `rgb-${value}.mkv`);
    const r = await runCli([join(dir, 'bt709-tv.mp4'), out, '--model', MODEL, '--device', 'cpu', '--json', '-y', option, value]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout.split('\n')[0]!)).toMatchObject({ engine: 'native', frameFormat: 'rgb24' });
  });

  it('keeps RGB on ONNX Runtime\'s lanes, which have no I420 output', async () => {
    const r = await runCli([join(dir, 'bt709-tv.mp4'), join(dir, 'ort.mkv'), '--model', MODEL, '--device', 'cpu', '--json', '-y'], { env: { ESRVID_NATIVE: '0' } });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout.split('\n')[0]!)).toMatchObject({ engine: 'onnxruntime', frameFormat: 'rgb24' });
  });
});
