/**
 * `importModel` for every format (.pth, .safetensors, ncnn, .onnx) into a scratch models
 * directory: the imported model must compute what the reference computes, join the registry
 * (resolveModel, findModel, models list), and every refusal must be one line that leaves the
 * directory as it was.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ModelError, UsageError } from '../../src/errors.js';
import { emitNetwork } from '../../src/models/arch/build.js';
import { detectArchitecture } from '../../src/models/arch/detect.js';
import { importModel } from '../../src/models/import.js';
import { findAnyModel, loadLocalRegistry, localRegistryPath } from '../../src/models/local-registry.js';
import { isInstalled, pullModel } from '../../src/models/pull.js';
import { findModel } from '../../src/models/registry.js';
import { resolveModel } from '../../src/models/resolve.js';
import { GraphBuilder, type Precision } from '../../src/models/onnx/graph-builder.js';
import { crop, psnr, readRgb, type RgbImage } from '../helpers/image.js';
import { tempDir } from '../helpers/media.js';
import { NcnnFixture } from '../helpers/ncnn-fixture.js';
import { forward, fromRgb, maxAbsDiff, toRgb } from '../helpers/reference-forward.js';
import { makeRrdb, makeSrvgg, safetensors, toStateDict, zipPth, type FakeStateDict } from '../helpers/torch-files.js';

const scratch = tempDir('esrvid-import-');
const models = join(scratch.dir, 'models');
const file = (name: string, data: Uint8Array | string) => {
  const p = join(scratch.dir, name);
  writeFileSync(p, data);
  return p;
};
let photo: RgbImage;
const srvgg = makeSrvgg({ convs: 2, feat: 8, scale: 2, seed: 11 });
const rrdb = makeRrdb({ layout: 'basicsr', blocks: 1, feat: 8, growth: 4, ups: 2, unshuffle: 2, seed: 12 });

beforeAll(async () => {
  process.env.ESRVID_MODELS_DIR = models;
  photo = crop(await readRgb(join(import.meta.dirname, '..', 'fixtures', 'photos', 'coffee.png')), 10, 10, 15, 9);
});
afterAll(() => {
  delete process.env.ESRVID_MODELS_DIR;
  scratch.cleanup();
});

async function upscale(path: string, img = photo): Promise<{ data: Uint8Array; dims: readonly number[] }> {
  const s = await ort.InferenceSession.create(path);
  const r = await s.run({ frames: new ort.Tensor('uint8', img.data, [1, img.height, img.width, 3]) });
  await s.release();
  return { data: r.upscaled!.data as Uint8Array, dims: r.upscaled!.dims };
}

const snapshot = () => (existsSync(models) ? Object.fromEntries(readdirSync(models).map((f) => [f, readFileSync(join(models, f)).toString('base64')])) : {});

async function refused(path: string, opts: Parameters<typeof importModel>[1] = {}): Promise<string> {
  const before = snapshot();
  try {
    await importModel(path, { dir: models, ...opts });
  } catch (e) {
    expect(e instanceof ModelError || e instanceof UsageError, String(e)).toBe(true);
    const line = (e as ModelError).oneLine();
    expect(line).not.toMatch(/\n/);
    expect(snapshot(), 'the models directory is unchanged').toEqual(before);
    return line;
  }
  throw new Error(`${path} was imported`);
}

/** A float NCHW ONNX export of the network (as torch.onnx.export would give). */
function floatOnnx(fake: FakeStateDict, precision: Precision, o: { fixed?: boolean; channels?: number } = {}): Uint8Array {
  const sd = toStateDict(fake);
  const g = new GraphBuilder();
  g.inputs.push({ name: g.claim('input'), elemType: 'float', shape: ['n', o.channels ?? 3, o.fixed ? 64 : 'h', o.fixed ? 64 : 'w'] });
  const out = emitNetwork(g, 'input', detectArchitecture(sd, 'x'), sd);
  g.node('Identity', [out], {}, g.claim('output'));
  g.outputs.push({ name: 'output', elemType: 'float', shape: ['n', 3, 'oh', 'ow'] });
  return g.serialize(precision, 'pytorch');
}

describe('each format imports and computes the reference network', () => {
  it('.pth (zip) of SRVGGNetCompact x2: matches the reference forward pass; joins the registry', async () => {
    const r = await importModel(file('compact-x2.pth', zipPth(srvgg, { wrap: 'params_ema' })), { dir: models });
    expect(r.model).toMatchObject({ name: 'compact-x2', scale: 2, parameterCount: Object.values(srvgg).reduce((n, t) => n + t.data.length, 0) });
    expect(r.model.architecture).toMatch(/^SRVGGNetCompact: 2 convolutions \+ PReLU, 8 features, PixelShuffle x2/);
    expect(r.model.source).toMatchObject({ format: 'pth', container: 'params_ema' });
    expect(r.details).toMatchObject({ type: 'SRVGGNetCompact', convs: 2, features: 8, scale: 2 });

    const resolved = await resolveModel('compact-x2', { device: 'cpu', precision: 'fp32' });
    expect(resolved).toMatchObject({ name: 'compact-x2', scale: 2, architecture: r.model.architecture });
    const out = await upscale(resolved.path);
    expect(out.dims).toEqual([1, 18, 30, 3]);
    const ref = toRgb(forward(toStateDict(srvgg), fromRgb(photo.data, photo.width, photo.height)));
    expect(maxAbsDiff(out.data, ref)).toBeLessThanOrEqual(1);

    const half = await upscale((await resolveModel('compact-x2', { device: 'cpu', precision: 'fp16' })).path);
    expect(psnr(half.data, out.data).db).toBeGreaterThan(40);

    expect(findModel('compact-x2').imported).toMatchObject({ format: 'pth' });
    expect(await isInstalled(findModel('compact-x2'))).toBe(true);
    expect((await findAnyModel('compact-x2')).kind).toBe('imported');
    await expect(pullModel('compact-x2')).rejects.toThrow(/compact-x2 is an imported model: there is nothing to pull/);
  });

  it('.safetensors (float32, float16, bfloat16) give the same model as the .pth', async () => {
    const fromPth = await upscale(join(models, 'compact-x2.onnx'));
    for (const dtype of ['F32', 'F16', 'BF16'] as const) {
      const r = await importModel(file(`compact-${dtype}.safetensors`, safetensors(srvgg, dtype)), { dir: models });
      expect(r.model).toMatchObject({ scale: 2, source: { format: 'safetensors' } });
      const out = await upscale(join(models, `compact-${dtype}.onnx`));
      if (dtype === 'F32') expect(out.data).toEqual(fromPth.data);
      else expect(psnr(out.data, fromPth.data).db).toBeGreaterThan(dtype === 'F16' ? 45 : 30);
    }
  });

  it('.pth of a pixel-unshuffle RRDBNet x2 (odd-sized frames are padded and cropped)', async () => {
    const r = await importModel(file('rrdb-x2.pth', zipPth(rrdb)), { dir: models });
    expect(r.details).toMatchObject({ type: 'RRDBNet', layout: 'basicsr', unshuffle: 2, scale: 2 });
    const out = await upscale(join(models, 'rrdb-x2.onnx'));
    expect(out.dims).toEqual([1, 18, 30, 3]);
    expect(maxAbsDiff(out.data, toRgb(forward(toStateDict(rrdb), fromRgb(photo.data, photo.width, photo.height))))).toBeLessThanOrEqual(1);
  });

  it('.onnx with float32 input: wrapped in the uint8 frame I/O, scale measured by a trial run', async () => {
    const r = await importModel(file('exported.onnx', floatOnnx(srvgg, 'fp32')), { dir: models });
    expect(r.model).toMatchObject({ scale: 2, source: { format: 'onnx' } });
    expect(r.details).toMatchObject({ type: 'onnx', input: 'float32' });
    expect(r.model.architecture).toMatch(/^SRVGGNetCompact-like ONNX graph: \d+ nodes \(Conv x4, PRelu x3, DepthToSpace, Resize, Add\)$/);
    expect((await upscale(join(models, 'exported.onnx'))).data).toEqual((await upscale(join(models, 'compact-x2.onnx'))).data);
  });

  it('.onnx with float16 input and output', async () => {
    const r = await importModel(file('exported16.onnx', floatOnnx(srvgg, 'fp16')), { dir: models });
    expect(r.details).toMatchObject({ input: 'float16' });
    const out = await upscale(join(models, 'exported16.onnx'));
    expect(psnr(out.data, (await upscale(join(models, 'compact-x2.onnx'))).data).db).toBeGreaterThan(40);
  });

  it('an esrvid frame model (.onnx, uint8 in and out) is kept byte for byte', async () => {
    const bytes = readFileSync(join(models, 'compact-x2.onnx'));
    const r = await importModel(file('frames.onnx', bytes), { dir: models });
    expect(r.details).toMatchObject({ input: 'frames' });
    expect(readFileSync(join(models, 'frames.onnx'))).toEqual(bytes);
  });

  it('ncnn .param + .bin: converted, scale measured (x2 nearest Interp)', async () => {
    const f = new NcnnFixture()
      .layer('Input', 'in', [], ['data'])
      .layer('Convolution', 'conv', ['data'], ['c'], '0=3 1=1 5=1 6=9')
      .weights32([1, 0, 0, 0, 1, 0, 0, 0, 1]).raw([0, 0, 0])
      .layer('Interp', 'up', ['c'], ['out'], '0=1 1=2.0 2=2.0');
    file('tiny.param', f.param);
    file('tiny.bin', f.bin);
    const r = await importModel(join(scratch.dir, 'tiny.param'), { dir: models });
    expect(r.model).toMatchObject({ scale: 2, parameterCount: 12, source: { format: 'ncnn', companion: { bytes: f.bin.length } } });
    expect(r.model.architecture).toMatch(/^ncnn graph: 3 layers \(Convolution, Interp\)/);
    const out = await upscale(join(models, 'tiny.onnx'));
    expect(out.data[0]).toBe(photo.data[0]);
  });

  it('models list shows imported models beside the registry\'s', async () => {
    const { listModels } = await import('../../src/commands/models.js');
    let text = '';
    await listModels({ write: (s: string) => ((text += s), true) } as unknown as NodeJS.WritableStream);
    expect(text).toMatch(/realesrgan-x4plus\s+RRDBNet \(ESRGAN\)\s+x4/);
    expect(text).toMatch(/compact-x2\s+SRVGGNetCompact\s+x2\s+[\d.]+ KB\s+yes\s+imported \(pth\)/);
    expect(text).toMatch(/rrdb-x2\s+RRDBNet \(ESRGAN\)\s+x2/);
  });
});

describe('names', () => {
  it('refuses a taken, built-in, reserved or path-like name; --force replaces', async () => {
    const pth = file('again.pth', zipPth(srvgg));
    expect(await refused(pth, { name: 'compact-x2' })).toMatch(/a model named "compact-x2" is already imported \(from .*compact-x2\.pth\); use --force to replace it/);
    expect(await refused(pth, { name: 'realesrgan-x4plus' })).toMatch(/"realesrgan-x4plus" is a built-in registry model; choose another with --name/);
    expect(await refused(pth, { name: 'auto' })).toMatch(/cannot be a model name: --model would read it as a keyword/);
    expect(await refused(pth, { name: 'my.onnx' })).toMatch(/cannot be a model name: --model would read it as a file/);
    expect(await refused(pth, { name: 'a/b' })).toMatch(/"a\/b" cannot be a model name/);
    expect(await refused(file('has space.pth', zipPth(srvgg)))).toMatch(/"has space" cannot be a model name .*; give one with --name/);
    const r = await importModel(pth, { dir: models, name: 'compact-x2', force: true });
    expect(r.replaced).toBe(true);
    expect((await loadLocalRegistry(models)).models.filter((m) => m.name === 'compact-x2')).toHaveLength(1);
  });

  it('an unknown name suggests imported models too', async () => {
    await expect(resolveModel('compact-x', { device: 'cpu', precision: 'fp32' })).rejects.toThrow(/unknown model "compact-x"/);
    expect(() => findModel('compact-x')).toThrow(ModelError);
    try {
      findModel('compact-x');
    } catch (e) {
      expect((e as ModelError).hint).toMatch(/"compact-x2"/);
    }
  });

  it('a damaged imported model file is refused with a re-import hint', async () => {
    const p = join(models, 'rrdb-x2.fp16.onnx');
    const good = readFileSync(p);
    writeFileSync(p, Buffer.concat([good.subarray(0, 100), Buffer.from('x'), good.subarray(101)]));
    try {
      const err = await resolveModel('rrdb-x2', { device: 'cpu', precision: 'fp16' }).catch((e: ModelError) => e);
      expect(err).toBeInstanceOf(ModelError);
      expect((err as ModelError).oneLine()).toMatch(/rrdb-x2\.fp16\.onnx is damaged .*; import it again: esrvid models import ".*rrdb-x2\.pth" --name rrdb-x2 --force/);
    } finally {
      writeFileSync(p, good);
    }
  });
});

describe('bad input: one line naming the problem, nothing added', () => {
  let registryBefore: string;
  beforeEach(() => {
    registryBefore = readFileSync(localRegistryPath(models), 'utf8');
  });
  const unchanged = () => expect(readFileSync(localRegistryPath(models), 'utf8')).toBe(registryBefore);

  it('a truncated .pth', async () => {
    const bytes = zipPth(srvgg);
    expect(await refused(file('cut.pth', bytes.subarray(0, bytes.length - 100)))).toMatch(/^cut\.pth: damaged or truncated zip archive/);
    unchanged();
  });

  it('missing keys, wrong shapes, mismatched storages, no inferable scale', async () => {
    const { 'body.2.bias': _, ...missing } = srvgg;
    expect(await refused(file('missing.pth', zipPth(missing)))).toMatch(/^missing\.pth: SRVGGNetCompact: missing tensor body\.2\.bias; the checkpoint is incomplete$/);
    const wrong = { ...srvgg, 'body.2.weight': { shape: [8, 4, 3, 3], data: new Float32Array(288) } };
    expect(await refused(file('shape.pth', zipPth(wrong)))).toMatch(/^shape\.pth: SRVGGNetCompact: body\.2\.weight has shape \[8,4,3,3\], expected \[8,8,3,3\]/);
    expect(await refused(file('storage.pth', zipPth(srvgg, { storageBytes: (i, b) => (i === 3 ? b.subarray(4) : b) })))).toMatch(/storage archive\/data\/3 holds \d+ bytes, but the pickle describes/);
    const noScale = { ...srvgg, 'body.6.weight': { shape: [5, 8, 3, 3], data: new Float32Array(360) }, 'body.6.bias': { shape: [5], data: new Float32Array(5) } };
    expect(await refused(file('scale.pth', zipPth(noScale)))).toMatch(/cannot infer the scale: the last conv body\.6 gives 5 channels/);
    unchanged();
  });

  it('damaged .safetensors', async () => {
    const good = safetensors(srvgg);
    expect(await refused(file('cut.safetensors', good.subarray(0, good.length - 8)))).toMatch(/^cut\.safetensors: tensor body\.\d+\.\w+ ends at byte \d+ of a \d+-byte data buffer: the file is truncated/);
    expect(await refused(file('hdr.safetensors', good.subarray(0, 20)))).toMatch(/header length \d+ is larger than the file/);
    const hole = Buffer.concat([good, Buffer.alloc(4)]);
    expect(await refused(file('hole.safetensors', hole))).toMatch(/4 bytes after the last tensor belong to no tensor/);
    const json = JSON.stringify({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } });
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    expect(await refused(file('overlap.safetensors', Buffer.concat([len, Buffer.from(json), Buffer.alloc(12)])))).toMatch(/tensor b overlaps another tensor's data/);
    const bad = JSON.stringify({ a: { dtype: 'C64', shape: [1], data_offsets: [0, 8] } });
    len.writeBigUInt64LE(BigInt(bad.length));
    expect(await refused(file('dtype.safetensors', Buffer.concat([len, Buffer.from(bad), Buffer.alloc(8)])))).toMatch(/tensor a has unsupported dtype "C64"/);
    unchanged();
  });

  it('.onnx files esrvid cannot feed', async () => {
    expect(await refused(file('fixed.onnx', floatOnnx(srvgg, 'fp32', { fixed: true })))).toMatch(/input input has a fixed size \[n,3,64,64\]; video frames need a dynamic height and width; export it again with dynamic_axes/);
    const g = new GraphBuilder();
    g.inputs.push({ name: g.claim('a'), elemType: 'float', shape: [1, 3, 'h', 'w'] }, { name: g.claim('b'), elemType: 'float', shape: [1, 3, 'h', 'w'] });
    g.node('Add', ['a', 'b'], {}, g.claim('y'));
    g.outputs.push({ name: 'y', elemType: 'float', shape: [1, 3, 'h', 'w'] });
    expect(await refused(file('two.onnx', g.serialize('fp32')))).toMatch(/takes 2 inputs \(a, b\); esrvid feeds one image tensor/);
    const gray = new GraphBuilder();
    gray.inputs.push({ name: gray.claim('x'), elemType: 'float', shape: ['n', 1, 'h', 'w'] });
    gray.node('Identity', ['x'], {}, gray.claim('y'));
    gray.outputs.push({ name: 'y', elemType: 'float', shape: ['n', 1, 'h', 'w'] });
    expect(await refused(file('gray.onnx', gray.serialize('fp32')))).toMatch(/takes 1 channels; esrvid feeds RGB images/);
    // Shapes left symbolic: only the trial run can tell that the output is not RGB.
    const sym = new GraphBuilder();
    sym.inputs.push({ name: sym.claim('x'), elemType: 'float', shape: ['n', 'c', 'h', 'w'] });
    sym.node('Concat', ['x', 'x'], { axis: 1 }, sym.claim('y'));
    sym.outputs.push({ name: 'y', elemType: 'float', shape: ['n', 'c2', 'h', 'w'] });
    expect(await refused(file('six.onnx', sym.serialize('fp32')))).toMatch(/cannot infer the scale: a 23x17 RGB frame gave an output of shape \[1,17,23,6\]/);
    expect(await refused(file('junk.onnx', 'not a model at all'))).toMatch(/^junk\.onnx: not an ONNX model/);
    unchanged();
  });

  it('an ncnn .param without its .bin; an unknown format; a missing file', async () => {
    file('lonely.param', '7767517\n1 1\nInput in 0 1 data\n');
    expect(await refused(join(scratch.dir, 'lonely.param'))).toMatch(/lonely\.param: its weights .*lonely\.bin do not exist; give the \.bin with --bin/);
    expect(await refused(file('notes.txt', 'hello'))).toMatch(/notes\.txt: unrecognised model format; esrvid imports \.pth, \.safetensors/);
    expect(await refused(join(scratch.dir, 'nope.pth'))).toMatch(/model file .*nope\.pth does not exist/);
    unchanged();
  });
});
