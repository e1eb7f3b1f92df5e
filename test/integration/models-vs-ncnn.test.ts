/**
 * The converted registry models against the original ncnn runtime (realesrgan-ncnn-vulkan on
 * Mesa's software Vulkan, see scripts/ncnn-reference.sh) on real photographs, under the rules of
 * shared MODELS.md: the input is mirror-padded by 10 px as ncnn does and the padding cropped
 * afterwards; pixels whose float output is below 1/255 are excluded, because lavapipe turns those
 * negative values into 255 in the reference.
 */
import { readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { pullModel } from '../../src/models/pull.js';
import { loadRegistry } from '../../src/models/registry.js';
import { onnxPath, readManifest } from '../../src/models/store.js';
import { crop, psnr, readRgb, reflectPad, type RgbImage } from '../helpers/image.js';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures');
const photos = readdirSync(join(FIXTURES, 'photos')).filter((f) => f.endsWith('.png') && !f.startsWith('large-'));
const PAD = 10;

async function upscale(session: ort.InferenceSession, img: RgbImage, scale: number): Promise<RgbImage> {
  const padded = reflectPad(img, PAD);
  const r = await session.run({ frames: new ort.Tensor('uint8', padded.data, [1, padded.height, padded.width, 3]) });
  const out = r.upscaled!;
  expect(out.dims).toEqual([1, padded.height * scale, padded.width * scale, 3]);
  const full = { data: out.data as Uint8Array, width: padded.width * scale, height: padded.height * scale };
  return crop(full, PAD * scale, PAD * scale, img.width * scale, img.height * scale);
}

describe.each(loadRegistry().models.map((m) => [m.name, m] as const))('%s matches the ncnn runtime', (name, model) => {
  let fp32: ort.InferenceSession;
  let fp16: ort.InferenceSession;
  beforeAll(async () => {
    await pullModel(name, { force: true });
    fp32 = await ort.InferenceSession.create(onnxPath(name, 'fp32'), { intraOpNumThreads: 2 });
    fp16 = await ort.InferenceSession.create(onnxPath(name, 'fp16'), { intraOpNumThreads: 2 });
  });

  it('its manifest names both files and their sizes', async () => {
    const m = (await readManifest(name))!;
    expect(m.files.fp32.file).toBe(`${name}.onnx`);
    expect(m.files.fp16.file).toBe(`${name}.fp16.onnx`);
    expect(m.files.fp16.bytes).toBeLessThan(m.files.fp32.bytes * 0.55);
  });

  it.each(photos)('on %s: >= 50 dB against ncnn; fp16 >= 40 dB against fp32', async (photo) => {
    const input = await readRgb(join(FIXTURES, 'photos', photo));
    const reference = await readRgb(join(FIXTURES, 'ncnn', name, photo));
    expect([reference.width, reference.height]).toEqual([input.width * model.scale, input.height * model.scale]);

    const ours = await upscale(fp32, input, model.scale);
    // A sample is dropped where our output is <= 1 (float below ~1.5/255), the values lavapipe
    // may have wrapped to 255; the rest of the image must still be nearly all of it.
    const vsNcnn = psnr(ours.data, reference.data, (i) => ours.data[i]! > 1);
    expect(vsNcnn.compared).toBeGreaterThan(ours.data.length * 0.8);
    expect(vsNcnn.db, `${name}/${basename(photo)} vs ncnn`).toBeGreaterThanOrEqual(50);

    const half = await upscale(fp16, input, model.scale);
    expect(psnr(half.data, ours.data).db, `${name}/${photo} fp16 vs fp32`).toBeGreaterThanOrEqual(40);
    console.log(`${name} ${photo}: ${vsNcnn.db.toFixed(2)} dB vs ncnn (${(100 * vsNcnn.compared / ours.data.length).toFixed(1)}% compared), fp16 ${psnr(half.data, ours.data).db.toFixed(2)} dB vs fp32`);
  });
});
