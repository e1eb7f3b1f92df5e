/**
 * esrvid preview end to end, with the real ffmpeg, ONNX Runtime and Real-ESRGAN models, on clips
 * made at test time from real photographs. The reference is the main pipeline itself, run with
 * lossless settings (FFV1, RGB), so every comparison is against the frames the video gets.
 */
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pullModel } from '../../src/models/pull.js';
import { upscaleVideo } from '../../src/pipeline.js';
import { Upscaler } from '../../src/infer/upscaler.js';
import { onnxPath } from '../../src/models/store.js';
import { BACKGROUND, drawText, gridGeometry, INK, splitGeometry, type RgbImage } from '../../src/preview/layout.js';
import { previewFrames } from '../../src/preview/preview.js';
import { cut, upscaleImage } from '../../src/preview/region.js';
import { crop, psnr, readRgb } from '../helpers/image.js';
import { decodeRgb, ffmpeg, FFMPEG, packetTimes, PHOTO, ROOT, runCli, tempDir } from '../helpers/media.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const MODEL = 'realesr-animevideov3-x4';
const GENERAL = 'realesr-general-x4v3';
const RRDB = 'realesrgan-x4plus';
const COFFEE = join(ROOT, 'test', 'fixtures', 'photos', 'coffee.png');
const { dir, cleanup } = tempDir('esrvid-preview-');
afterAll(cleanup);

const W = 160;
const H = 90;
const OW = W * 4;
const OH = H * 4;
const FRAME = OW * OH * 3;
const src = join(dir, 'pan.mp4');
let srcTimes: number[] = [];
let ref: Buffer;
let refScale2: Buffer;

/** The main pipeline's frame i (lossless reference run over the whole clip). */
const refFrame = (i: number): RgbImage => ({ data: ref.subarray(i * FRAME, (i + 1) * FRAME), width: OW, height: OH });
const indexOf = (ptsUs: number) => srcTimes.findIndex((t) => Math.abs(t * 1e6 - ptsUs) < 500);
const db = (a: RgbImage, b: RgbImage) => psnr(a.data, b.data).db;
const fmt = (v: number) => (v === Infinity ? 'identical' : `${v.toFixed(2)} dB`);
const measured: string[] = [];

beforeAll(async () => {
  // 4 s at 25 fps: a 160x90 window panning over the photo (every frame differs), a keyframe every
  // 12 frames (so seeking lands mid-GOP), B-frames, and AAC audio.
  await ffmpeg([
    '-loop', '1', '-framerate', '25', '-i', PHOTO, '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
    '-filter_complex', `[0:v]crop=${W}:${H}:x='n':y='20+n/4',format=yuv420p[v]`, '-map', '[v]', '-map', '1:a', '-t', '4',
    '-c:v', 'libx264', '-crf', '12', '-g', '12', '-bf', '2', '-c:a', 'aac', src,
  ]);
  await ffmpeg([
    '-loop', '1', '-framerate', '25', '-i', COFFEE, '-vf', "crop=80:64:x='n':y='n/2',format=yuv420p",
    '-t', '0.4', '-c:v', 'libx264', '-crf', '12', join(dir, 'coffee.mp4'),
  ]);
  await Promise.all([pullModel(MODEL), pullModel(GENERAL)]);
  srcTimes = await packetTimes(src);
  const lossless = { model: MODEL, codec: 'ffv1', pixFmt: 'bgr0' };
  await upscaleVideo({ input: src, output: join(dir, 'ref.mkv'), ...lossless });
  await upscaleVideo({ input: src, output: join(dir, 'ref-x2.mkv'), frames: [30, 40], scale: 2, ...lossless });
  ref = await decodeRgb(join(dir, 'ref.mkv'));
  refScale2 = await decodeRgb(join(dir, 'ref-x2.mkv'));
}, 600_000);

afterAll(() => {
  if (measured.length) console.log(`preview PSNR figures:\n  ${measured.join('\n  ')}`);
});

describe('esrvid preview: the frame the video will get', () => {
  it('at a time between frames: the frame on screen then, equal to the main pipeline\'s', async () => {
    expect(srcTimes).toHaveLength(100);
    expect(ref.length).toBe(100 * FRAME);
    const out = join(dir, 'at-1.37.png');
    const r = await previewFrames({ input: src, at: { kind: 'time', seconds: 1.37 }, model: MODEL, output: out });
    expect(r.files).toHaveLength(1);
    expect(r.files[0]!.seconds).toBeCloseTo(1.36, 6);
    const i = indexOf(r.files[0]!.ptsUs);
    expect(i).toBe(34);
    const img = await readRgb(out);
    expect([img.width, img.height]).toEqual([OW, OH]);
    const same = db(img, refFrame(i));
    measured.push(`--at 1.37 (frame 34, mid-GOP) vs pipeline frame 34: ${fmt(same)}`);
    expect(same).toBeGreaterThanOrEqual(45);
    // The neighbours are far off: the comparison tells frames apart.
    expect(db(img, refFrame(33))).toBeLessThan(30);
    expect(db(img, refFrame(35))).toBeLessThan(30);
  });

  it('frame numbers (fN) and --count near the end of the clip', async () => {
    const out = join(dir, 'end.png');
    const r = await previewFrames({ input: src, at: { kind: 'frame', index: 96 }, count: 3, model: MODEL, output: out });
    expect(r.files.map((f) => f.path)).toEqual(['end-0001.png', 'end-0002.png', 'end-0003.png'].map((n) => join(dir, n)));
    for (const [k, f] of r.files.entries()) {
      expect(indexOf(f.ptsUs)).toBe(96 + k);
      const v = db(await readRgb(f.path), refFrame(96 + k));
      measured.push(`--at f96 --count 3, image ${k + 1} vs pipeline frame ${96 + k}: ${fmt(v)}`);
      expect(v).toBeGreaterThanOrEqual(45);
    }
  });

  it('--count past the end writes the frames there are, with a warning', async () => {
    const warnings: string[] = [];
    const r = await previewFrames({ input: src, at: { kind: 'frame', index: 98 }, count: 5, model: MODEL, output: join(dir, 'tail.png'), onWarning: (m) => warnings.push(m) });
    expect(r.files.map((f) => indexOf(f.ptsUs))).toEqual([98, 99]);
    expect(warnings).toEqual(['only 2 frame(s) from the requested point to the end of the video: wrote 2 of 5']);
    expect(readdirSync(dir).filter((f) => f.startsWith('tail-'))).toEqual(['tail-0001.png', 'tail-0002.png']);
  });

  it('the CLI: default name, path on stdout, same frame as the pipeline', async () => {
    const cwd = join(dir, 'cli');
    mkdirSync(cwd);
    const r = await runCli(['preview', src, '--at', '2.5', '-m', MODEL, '-q'], { cwd });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const file = join(cwd, 'pan-00-00-02.500.png');
    expect(r.stdout).toBe(`${file}\n`);
    const v = db(await readRgb(file), refFrame(62)); // 2.48 s is on screen at 2.5 s
    measured.push(`CLI --at 2.5 vs pipeline frame 62: ${fmt(v)}`);
    expect(v).toBeGreaterThanOrEqual(45);
  });

  it('--scale 2 resizes exactly as the main pipeline does', async () => {
    const out = join(dir, 'x2.png');
    const r = await previewFrames({ input: src, at: { kind: 'frame', index: 34 }, model: MODEL, scale: 2, output: out });
    expect(r.panelSize).toEqual([W * 2, H * 2]);
    const img = await readRgb(out);
    const size = W * 2 * H * 2 * 3;
    expect(refScale2.length).toBe(10 * size);
    const v = psnr(img.data, refScale2.subarray(4 * size, 5 * size)).db;
    measured.push(`--scale 2 --at f34 vs pipeline --scale 2 frame 34: ${fmt(v)}`);
    expect(v).toBeGreaterThanOrEqual(45);
  });

  it('--tile: tiled exactly as the main pipeline tiles', async () => {
    const out = join(dir, 'tiled.png');
    await previewFrames({ input: src, at: { kind: 'frame', index: 34 }, model: MODEL, tile: 48, tilePad: 8, output: out });
    const refOut = join(dir, 'tiled-ref.mkv');
    await upscaleVideo({ input: src, output: refOut, frames: [34, 35], model: MODEL, tile: 48, tilePad: 8, codec: 'ffv1', pixFmt: 'bgr0' });
    const img = await readRgb(out);
    const v = psnr(img.data, await decodeRgb(refOut)).db;
    measured.push(`--tile 48 --tile-pad 8 vs the pipeline with the same tiles: ${fmt(v)}; vs untiled: ${fmt(db(img, refFrame(34)))}`);
    expect(v).toBeGreaterThanOrEqual(45);
  });

  it('a rotated video is previewed upright', async () => {
    const rotated = join(dir, 'rotated.mp4');
    await ffmpeg(['-i', src, '-map', '0', '-c', 'copy', '-metadata:s:v:0', 'rotate=90', rotated]);
    const out = join(dir, 'rotated.png');
    const r = await previewFrames({ input: rotated, at: { kind: 'frame', index: 34 }, model: MODEL, output: out });
    expect(r.inputSize).toEqual([H, W]);
    const img = await readRgb(out);
    expect([img.width, img.height]).toEqual([OH, OW]);
    // The main pipeline writing Matroska also turns the frames upright before upscaling them.
    const refOut = join(dir, 'rotated-ref.mkv');
    await upscaleVideo({ input: rotated, output: refOut, frames: [34, 35], model: MODEL, codec: 'ffv1', pixFmt: 'bgr0' });
    const v = psnr(img.data, await decodeRgb(refOut)).db;
    measured.push(`rotated source, --at f34 vs pipeline (Matroska, frames turned upright): ${fmt(v)}`);
    expect(v).toBeGreaterThanOrEqual(45);
    // ... and it is really turned: a quarter turn back gives the unrotated frame (the network is
    // not exactly rotation-invariant, hence the lower bar).
    const back = await sharp(readFileSync(out)).rotate(90).removeAlpha().raw().toBuffer();
    expect(psnr(back, refFrame(34).data).db).toBeGreaterThan(30);
  });

  it('JPEG and WebP by extension', async () => {
    for (const [ext, format] of [['jpg', 'jpeg'], ['webp', 'webp']] as const) {
      const out = join(dir, `fmt.${ext}`);
      await previewFrames({ input: src, at: { kind: 'frame', index: 34 }, model: MODEL, output: out });
      const meta = await sharp(out).metadata();
      expect([meta.format, meta.width, meta.height]).toEqual([format, OW, OH]);
      expect(db(await readRgb(out), refFrame(34))).toBeGreaterThan(30);
    }
  });
});

/** The expected conventional upscale: the source frame decoded as esrvid does, then ffmpeg's Lanczos. */
async function lanczosOf(index: number, w: number, h: number): Promise<RgbImage> {
  const vf = `select=eq(n\\,${index}),scale=in_color_matrix=bt601:in_range=tv:flags=bicubic+accurate_rnd+full_chroma_int,format=rgb24,`
    + `scale=${w}:${h}:flags=lanczos+accurate_rnd+full_chroma_int,format=rgb24`;
  const { stdout } = await promisify(execFile)(FFMPEG, ['-hide_banner', '-loglevel', 'error', '-i', src, '-vf', vf, '-vsync', '0', '-frames:v', '1', '-f', 'rawvideo', '-'],
    { encoding: 'buffer', maxBuffer: 1 << 28 });
  return { data: new Uint8Array(stdout), width: w, height: h };
}

/** A label strip as the layout draws it, for exact comparison. */
function strip(label: string, width: number, k: number): RgbImage {
  const h = (9 + 4) * k;
  const img: RgbImage = { data: new Uint8Array(width * h * 3), width, height: h };
  for (let j = 0; j < img.data.length; j += 3) img.data.set(BACKGROUND, j);
  drawText(img, 2 * k, 2 * k, label, k, INK, width - 2 * k);
  return img;
}

const same = (a: RgbImage, b: RgbImage) => a.width === b.width && a.height === b.height && Buffer.from(a.data).equals(Buffer.from(b.data));

describe('esrvid preview --compare', () => {
  it('side by side: Lanczos left, the model right, each labelled above, at the documented geometry', async () => {
    const out = join(dir, 'compare.png');
    await previewFrames({ input: src, at: { kind: 'frame', index: 50 }, model: MODEL, compare: 'side', output: out });
    const img = await readRgb(out);
    const g = gridGeometry(2, OW, OH);
    expect(g).toMatchObject({ columns: 2, rows: 1, k: 3, strip: 39, gap: 6 });
    expect([img.width, img.height]).toEqual([2 * OW + 6, OH + 39]);
    const left = crop(img, 0, 39, OW, OH);
    const right = crop(img, OW + 6, 39, OW, OH);
    const lz = db(left, await lanczosOf(50, OW, OH));
    const model = db(right, refFrame(50));
    const apart = db(left, right);
    measured.push(`--compare: left panel vs ffmpeg Lanczos ${fmt(lz)}, right panel vs pipeline frame 50 ${fmt(model)}, Lanczos vs model ${fmt(apart)}`);
    expect(lz).toBeGreaterThanOrEqual(45);
    expect(model).toBeGreaterThanOrEqual(45);
    expect(apart).toBeLessThan(35); // the two really are different upscales
    expect(same(crop(img, 0, 0, OW, 39), strip('Lanczos', OW, 3))).toBe(true);
    expect(same(crop(img, OW + 6, 0, OW, 39), strip(MODEL, OW, 3))).toBe(true);
    // The label strips really hold text: ink present, and only ink or background.
    const labelPixels = crop(img, 0, 0, OW, 39).data;
    let ink = 0;
    for (let p = 0; p < labelPixels.length; p += 3) {
      const c = [labelPixels[p], labelPixels[p + 1], labelPixels[p + 2]];
      if (c.every((v) => v === 255)) ink++;
      else expect(c).toEqual([...BACKGROUND]);
    }
    expect(ink).toBeGreaterThan(300);
    const gap = crop(img, OW, 0, 6, OH + 39).data;
    for (let p = 0; p < gap.length; p += 3) expect([gap[p], gap[p + 1], gap[p + 2]]).toEqual([...BACKGROUND]);
  });

  it('split: one frame-sized image, Lanczos left of the line, the model right, labelled in the corners', async () => {
    const out = join(dir, 'split.png');
    await previewFrames({ input: src, at: { kind: 'frame', index: 50 }, model: MODEL, compare: 'split', output: out });
    const img = await readRgb(out);
    expect([img.width, img.height]).toEqual([OW, OH]);
    const g = splitGeometry(OW, 'Lanczos', MODEL);
    const below = g.boxes[0]!.y + g.boxes[0]!.h; // rows under the label boxes are pure image
    const lz = await lanczosOf(50, OW, OH);
    const halves = [
      db(crop(img, 0, below, g.lineX, OH - below), crop(lz, 0, below, g.lineX, OH - below)),
      db(crop(img, g.lineX + g.lineW, below, OW - g.lineX - g.lineW, OH - below), crop(refFrame(50), g.lineX + g.lineW, below, OW - g.lineX - g.lineW, OH - below)),
    ];
    measured.push(`--compare split: left half vs Lanczos ${fmt(halves[0]!)}, right half vs pipeline ${fmt(halves[1]!)}`);
    for (const v of halves) expect(v).toBeGreaterThanOrEqual(45);
    for (let y = 0; y < OH; y++) for (let x = g.lineX; x < g.lineX + g.lineW; x++) expect([...img.data.subarray((y * OW + x) * 3, (y * OW + x) * 3 + 3)]).toEqual([255, 255, 255]);
    for (const [i, label] of ['Lanczos', MODEL].entries()) {
      const b = g.boxes[i]!;
      const box: RgbImage = { data: new Uint8Array(b.w * b.h * 3), width: b.w, height: b.h };
      for (let j = 0; j < box.data.length; j += 3) box.data.set(BACKGROUND, j);
      drawText(box, b.textX - b.x, b.textY - b.y, label, g.k);
      expect(same(crop(img, b.x, b.y, b.w, b.h), box), label).toBe(true);
    }
  });

  it('--models: a labelled grid, each panel the model\'s own result', async () => {
    const out = join(dir, 'grid.png');
    const r = await previewFrames({ input: src, at: { kind: 'frame', index: 20 }, models: [MODEL, GENERAL], compare: 'side', output: out });
    expect(r.models.map((m) => m.name)).toEqual([MODEL, GENERAL]);
    const img = await readRgb(out);
    const g = gridGeometry(3, OW, OH);
    expect([img.width, img.height]).toEqual([2 * OW + 6, 2 * (39 + OH) + 6]);
    const panel = (i: number) => crop(img, g.origins[i]![0], g.origins[i]![1], OW, OH);
    const labels = ['Lanczos', MODEL, GENERAL];
    labels.forEach((label, i) => expect(same(crop(img, g.origins[i]![0], g.origins[i]![1] - 39, OW, 39), strip(label, OW, 3)), label).toBe(true));
    expect(db(panel(1), refFrame(20))).toBeGreaterThanOrEqual(45);
    // The general model's panel is its own full-frame preview.
    const alone = join(dir, 'general-alone.png');
    await previewFrames({ input: src, at: { kind: 'frame', index: 20 }, model: GENERAL, output: alone });
    expect(db(panel(2), await readRgb(alone))).toBeGreaterThanOrEqual(45);
    expect(db(panel(1), panel(2))).toBeLessThan(40);
    // The fourth cell is empty.
    const empty = crop(img, OW + 6, 39 + OH + 6, OW, 39 + OH).data;
    for (let p = 0; p < empty.length; p += 3 * 97) expect([empty[p], empty[p + 1], empty[p + 2]]).toEqual([...BACKGROUND]);
  });
});

describe('esrvid preview --crop', () => {
  it('a crop matches the same region of the full-frame upscale, at the edges too', async () => {
    for (const [x, y, w, h] of [[40, 20, 48, 32], [0, 0, 32, 24], [128, 58, 32, 32], [60, 30, 1, 1]] as const) {
      const out = join(dir, `crop-${x}-${y}.png`);
      const r = await previewFrames({ input: src, at: { kind: 'frame', index: 60 }, model: MODEL, crop: { x, y, w, h }, output: out });
      expect(r.panelSize).toEqual([w * 4, h * 4]);
      const img = await readRgb(out);
      const v = db(img, crop(refFrame(60), x * 4, y * 4, w * 4, h * 4));
      measured.push(`--crop ${x},${y},${w},${h} (${MODEL}) vs the region of pipeline frame 60: ${fmt(v)}`);
      expect(v).toBeGreaterThanOrEqual(40);
    }
  });

  it('with the default model, on a second photograph, with --compare', async () => {
    const clip = join(dir, 'coffee.mp4');
    const full = join(dir, 'coffee-full.png');
    await previewFrames({ input: clip, at: { kind: 'frame', index: 5 }, model: GENERAL, output: full });
    const out = join(dir, 'coffee-crop.png');
    await previewFrames({ input: clip, at: { kind: 'frame', index: 5 }, model: GENERAL, crop: { x: 20, y: 16, w: 40, h: 32 }, compare: 'side', output: out });
    const img = await readRgb(out);
    // Panels of 160x128 get k = 1: strips of 13 px, a gap of 2 px.
    expect([img.width, img.height]).toEqual([2 * 160 + 2, 13 + 128]);
    const v = db(crop(img, 162, 13, 160, 128), crop(await readRgb(full), 80, 64, 160, 128));
    measured.push(`--crop 20,16,40,32 (${GENERAL}, coffee) vs the region of its full-frame preview: ${fmt(v)}`);
    expect(v).toBeGreaterThanOrEqual(40);
    expect(same(crop(img, 162, 0, 160, 13), strip(GENERAL, 160, 1))).toBe(true);
  });

  it('RRDBNet (realesrgan-x4plus), which sees farthest: still within 40 dB of the full frame', async () => {
    await pullModel(RRDB);
    const full = join(dir, 'rrdb-full.png');
    const out = join(dir, 'rrdb-crop.png');
    await previewFrames({ input: src, at: { kind: 'frame', index: 40 }, model: RRDB, output: full });
    await previewFrames({ input: src, at: { kind: 'frame', index: 40 }, model: RRDB, crop: { x: 50, y: 25, w: 40, h: 30 }, output: out });
    const v = db(await readRgb(out), crop(await readRgb(full), 200, 100, 160, 120));
    measured.push(`--crop 50,25,40,30 (${RRDB}) vs the region of its full-frame preview: ${fmt(v)}`);
    expect(v).toBeGreaterThanOrEqual(40);
  });

  it('the crop\'s borders: as in the full frame with context, measurably off without it (control)', async () => {
    // What --crop would give without context: the network sees a hard edge at the crop border.
    const frame = await decodeRgb(src, { matrix: 'bt601', range: 'tv' });
    const source: RgbImage = { data: frame.subarray(60 * W * H * 3, 61 * W * H * 3), width: W, height: H };
    const ups = await Upscaler.start({ modelPath: onnxPath(MODEL), scale: 4 });
    try {
      const bare = await upscaleImage(ups, 4, cut(source, 40, 20, 48, 32), 0, 0);
      const withContext = await readRgb(join(dir, 'crop-40-20.png'));
      const region = crop(refFrame(60), 160, 80, 192, 128);
      // Only the outer 16 output pixels (4 source pixels) of the crop: where missing context shows.
      const ring = (i: number) => {
        const p = Math.floor(i / 3);
        const x = p % 192;
        const y = Math.floor(p / 192);
        return x < 16 || y < 16 || x >= 192 - 16 || y >= 128 - 16;
      };
      const ctx = psnr(withContext.data, region.data, ring).db;
      const noCtx = psnr(bare.data, region.data, ring).db;
      measured.push(`crop 40,20,48,32 border ring (16 px): with context ${fmt(ctx)}, without (control) ${fmt(noCtx)}`);
      expect(ctx).toBeGreaterThanOrEqual(40);
      expect(noCtx).toBeLessThan(ctx - 3);
    } finally {
      await ups.close();
    }
  });
});

describe('esrvid preview --range: a clip through the main pipeline', () => {
  it('frames, timing and audio of the range, frames equal to the full run\'s', async () => {
    const out = join(dir, 'clip.mkv');
    const r = await runCli(['preview', src, '--range', '1-1.5', '-m', MODEL, '--codec', 'ffv1', '--pix-fmt', 'bgr0', '-o', out, '-q']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${out}\n`);
    const times = await packetTimes(out);
    expect(times).toHaveLength(13); // 1.00, 1.04, ... 1.48
    expect(times[0]).toBeCloseTo(0, 3);
    expect((await packetTimes(out, 'a:0')).length).toBeGreaterThan(20); // 0.5 s of AAC at 48 kHz: ~24 packets
    const frames = await decodeRgb(out);
    expect(frames.length).toBe(13 * FRAME);
    let worst = Infinity;
    for (let k = 0; k < 13; k++) worst = Math.min(worst, psnr(frames.subarray(k * FRAME, (k + 1) * FRAME), refFrame(25 + k).data).db);
    measured.push(`--range 1-1.5: worst of 13 frames vs the full run: ${fmt(worst)}`);
    expect(worst).toBeGreaterThanOrEqual(45);
  });
});

describe('esrvid preview: bad input is one line, a non-zero exit and no file', () => {
  const cases: [string, string[], number, RegExp][] = [
    ['a time beyond the end', ['--at', '4.5', '-m', MODEL], 3, /^esrvid: 4\.500 s is beyond the end of the video \(4\.0\d\d s\); use a time below/],
    ['a frame beyond the end', ['--at', 'f100', '-m', MODEL], 3, /^esrvid: frame 100 is beyond the end of the video \(it has 100 frames/],
    ['a crop outside the frame', ['--at', '1', '--crop', '150,10,20,20', '-m', MODEL], 2, /^esrvid: --crop 150,10,20,20 goes outside the 160x90 frame/],
    ['an unknown model', ['--at', '1', '-m', 'realesr-genral-x4v3'], 4, /^esrvid: unknown model "realesr-genral-x4v3"; did you mean "realesr-general-x4v3"/],
    ['an unknown model in a list', ['--at', '1', '--models', `${MODEL},nope`], 4, /^esrvid: unknown model "nope"/],
    ['a range beyond the end', ['--range', '5-6', '-m', MODEL], 3, /^esrvid: --range starts at 5\.000 s, beyond the end of the video/],
    ['an image format sharp does not write', ['--at', '1', '-o', 'x.gif', '-m', MODEL], 2, /^esrvid: cannot tell the image format of x\.gif/],
  ];
  for (const [what, args, code, message] of cases) {
    it(what, async () => {
      const cwd = join(dir, `bad-${code}-${what.replace(/\W+/g, '-')}`);
      mkdirSync(cwd);
      const r = await runCli(['preview', src, ...args], { cwd });
      expect(r.code).toBe(code);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(r.stdout).toBe('');
      expect(readdirSync(cwd)).toEqual([]);
    });
  }

  it('an existing output is kept unless -y', async () => {
    const out = join(dir, 'exists.png');
    writeFileSync(out, 'keep me');
    const r = await runCli(['preview', src, '--at', '1', '-m', MODEL, '-o', out]);
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/already exists; pass -y to overwrite it/);
    expect(readFileSync(out, 'utf8')).toBe('keep me');
    const y = await runCli(['preview', src, '--at', '1', '-m', MODEL, '-o', out, '-y', '-q']);
    expect(y.code).toBe(0);
    expect(statSync(out).size).toBeGreaterThan(1000);
    expect(readdirSync(dir).filter((f) => f.includes('.partial'))).toEqual([]);
  });
});
