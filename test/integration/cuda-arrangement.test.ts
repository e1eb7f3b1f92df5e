/**
 * The registry models arranged for the CUDA provider (channels-last, src/models/onnx/arrange-for-cuda.ts).
 * NhwcConv has no CPU kernel, so here each NhwcConv is put back as Transpose -> Conv (weights
 * turned back to M x C x kH x kW) -> Transpose and the graph runs on the CPU: everything the
 * rewrite did besides the convolution's own layout (slopes, Concat axes, Resize scales, the pixel
 * shuffle, the ends) must give the canonical model's frames. The NhwcConv kernel itself is
 * checked on a GPU by scripts/gpu-measure.sh (the layouts' outputs against each other).
 */
import { readFileSync } from 'node:fs';
import onnxProto from 'onnx-proto';
import { describe, expect, it } from 'vitest';
import { Upscaler } from '../../src/infer/upscaler.js';
import { arrangeForCuda, ohwi } from '../../src/models/onnx/arrange-for-cuda.js';
import { pullModel } from '../../src/models/pull.js';
import { onnxPath } from '../../src/models/store.js';
import { byteDifference, upscaleOnCpu } from '../helpers/frame-model.js';
import { crop, readRgb } from '../helpers/image.js';

const { onnx } = onnxProto;
const INTS = onnx.AttributeProto.AttributeType.INTS;

/** OHWI weights back to OIHW. */
function oihw(raw: Uint8Array, [m, kh, kw, c]: number[], size: number): Uint8Array {
  const out = new Uint8Array(raw.byteLength);
  for (let o = 0; o < m!; o++) for (let y = 0; y < kh!; y++) for (let x = 0; x < kw!; x++) for (let i = 0; i < c!; i++) {
    const from = (((o * kh! + y) * kw! + x) * c! + i) * size;
    const to = (((o * c! + i) * kh! + y) * kw! + x) * size;
    out.set(raw.subarray(from, from + size), to);
  }
  return out;
}

/** The arranged graph with every NhwcConv written as the CPU can run it. */
function withNchwConvs(bytes: Uint8Array): Uint8Array {
  const model = onnx.ModelProto.decode(bytes);
  const g = model.graph!;
  const inits = new Map(g.initializer!.map((t) => [t.name!, t]));
  g.node = g.node!.flatMap((n) => {
    if (n.opType !== 'NhwcConv') return [n];
    const [x, w, ...rest] = n.input!;
    const t = inits.get(w!)!;
    const dims = t.dims!.map(Number);
    g.initializer!.push({ ...t, name: `${w}_oihw`, dims: [dims[0]!, dims[3]!, dims[1]!, dims[2]!], rawData: oihw(t.rawData!, dims, 4) });
    const y = n.output![0]!;
    return [
      { opType: 'Transpose', input: [x!], output: [`${y}_in`], attribute: [{ name: 'perm', type: INTS, ints: [0, 3, 1, 2] }] },
      { ...n, opType: 'Conv', domain: '', input: [`${y}_in`, `${w}_oihw`, ...rest], output: [`${y}_out`] },
      { opType: 'Transpose', input: [`${y}_out`], output: [y], attribute: [{ name: 'perm', type: INTS, ints: [0, 2, 3, 1] }] },
    ];
  });
  return onnx.ModelProto.encode(model).finish();
}

const upscale = (model: Uint8Array, img: { data: Uint8Array; width: number; height: number }) => upscaleOnCpu(model, img.data, 1, img.height, img.width);

const ops = (bytes: Uint8Array) => {
  const counts = new Map<string, number>();
  for (const n of onnx.ModelProto.decode(bytes).graph!.node!) counts.set(n.opType!, (counts.get(n.opType!) ?? 0) + 1);
  return counts;
};

describe.each([
  // name, convolutions, crop size
  ['realesr-general-x4v3', 34, 96],
  ['realesr-animevideov3-x4', 18, 96],
  ['realesrgan-x4plus', 351, 36],
] as const)('%s arranged for CUDA (NHWC)', (name, convs, size) => {
  it('has only NHWC convolutions, no layout Transpose at the ends, and gives the canonical frames', async () => {
    await pullModel(name);
    const canonical = new Uint8Array(readFileSync(onnxPath(name)));
    const r = arrangeForCuda(canonical);
    expect(r.skipped).toBeUndefined();
    // As the Upscaler reads the file (a Buffer: its decoded tensors are views into a shared pool).
    expect(Buffer.compare(arrangeForCuda(readFileSync(onnxPath(name))).bytes!, r.bytes!)).toBe(0);
    expect(r.convs).toBe(convs);
    const after = ops(r.bytes!);
    expect(after.get('NhwcConv')).toBe(convs);
    expect(after.get('Conv')).toBeUndefined();
    // The canonical graph's two layout Transposes are gone; the pixel shuffle brings one of its own.
    expect(ops(canonical).get('Transpose')).toBe(2);
    expect(after.get('Transpose') ?? 0).toBe(after.has('Shape') ? 1 : 0);

    const h = (size * 2) / 3;
    const photo = crop(await readRgb('test/fixtures/photos/chelsea.png'), 40, 20, size, h);
    const [a, b] = [await upscale(canonical, photo), await upscale(withNchwConvs(r.bytes!), photo)];
    expect(b.length).toBe(size * h * 48);
    expect(byteDifference(a, b).worst).toBe(0);
  });

  it('arranges the fp16 file the same way, its weights moved element for element', async () => {
    const fp16 = new Uint8Array(readFileSync(onnxPath(name, 'fp16')));
    const r = arrangeForCuda(fp16);
    expect(r.convs).toBe(convs);
    const before = onnx.ModelProto.decode(fp16).graph!;
    const after = onnx.ModelProto.decode(r.bytes!).graph!;
    const firstConv = before.node!.find((n) => n.opType === 'Conv')!;
    const nhwcConv = after.node!.find((n) => n.opType === 'NhwcConv')!;
    const w0 = before.initializer!.find((t) => t.name === firstConv.input![1])!;
    const w1 = after.initializer!.find((t) => t.name === nhwcConv.input![1])!;
    const [m, c, kh, kw] = w0.dims!.map(Number);
    expect(w1.dims!.map(Number)).toEqual([m, kh, kw, c]);
    expect(w1.dataType).toBe(onnx.TensorProto.DataType.FLOAT16);
    // Output channel 5, input channel 2, row 1, column 2, in both layouts.
    const at = (raw: Uint8Array, i: number) => raw[i * 2]! | (raw[i * 2 + 1]! << 8);
    expect(at(w1.rawData!, ((5 * kh! + 1) * kw! + 2) * c! + 2)).toBe(at(w0.rawData!, ((5 * c! + 2) * kh! + 1) * kw! + 2));
  });
});

describe('arrangeForCuda', () => {
  it('is what the Upscaler hands the session when the configuration asks for it', async () => {
    await pullModel('realesr-animevideov3-x4');
    // The CPU has no NhwcConv kernel: its refusal shows the arranged graph reached the session.
    const start = Upscaler.start({ modelPath: onnxPath('realesr-animevideov3-x4'), scale: 4, device: 'cpu', threads: 1, session: { arrangeForCpu: false, arrangeForCuda: true } });
    await expect(start).rejects.toThrow(/NhwcConv/);
  });

  it('moves weights from M x C x kH x kW to M x kH x kW x C', () => {
    const raw = new Uint8Array(2 * 3 * 2 * 2).map((_, i) => i);
    const out = ohwi(raw, [2, 3, 2, 2], 1);
    // out[o][y][x][i] = raw[o][i][y][x]
    expect(out[((1 * 2 + 0) * 2 + 1) * 3 + 2]).toBe(raw[((1 * 3 + 2) * 2 + 0) * 2 + 1]);
    expect([...out.slice(0, 6)]).toEqual([0, 4, 8, 1, 5, 9]);
  });

  it('leaves a graph without the layout Transposes, or with operators it does not know, as it is, saying why', async () => {
    await pullModel('realesr-animevideov3-x4');
    const model = onnx.ModelProto.decode(new Uint8Array(readFileSync(onnxPath('realesr-animevideov3-x4'))));
    model.graph!.node![0]!.attribute = [{ name: 'perm', type: INTS, ints: [0, 1, 2, 3] }];
    const r = arrangeForCuda(onnx.ModelProto.encode(model).finish());
    expect(r.bytes).toBeUndefined();
    expect(r.skipped).toMatch(/enter through one NHWC -> NCHW Transpose/);
    model.graph!.node!.push({ opType: 'QuantizeLinear', domain: 'com.microsoft', input: [], output: [] });
    expect(arrangeForCuda(onnx.ModelProto.encode(model).finish()).skipped).toMatch(/outside the ONNX domain/);
    // An operator between the convolutions that has no NHWC form here (GlobalAveragePool).
    const pooled = onnx.ModelProto.decode(new Uint8Array(readFileSync(onnxPath('realesr-animevideov3-x4'))));
    const conv = pooled.graph!.node!.find((n) => n.opType === 'Conv')!;
    pooled.graph!.node!.splice(pooled.graph!.node!.indexOf(conv) + 1, 0, { opType: 'GlobalAveragePool', input: [conv.output![0]!], output: ['pooled'] });
    expect(arrangeForCuda(onnx.ModelProto.encode(pooled).finish())).toEqual({ convs: 0, skipped: 'GlobalAveragePool is not rewritten for NHWC' });
  });
});
