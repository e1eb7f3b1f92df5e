/**
 * esrvid's fused CPU kernel for SRVGGNetCompact (src/native/srvgg.c via src/infer/native-cpu.ts):
 * built by `npm run build` on this machine, it must give the canonical ONNX model's frames (real
 * weights, a real photo, sizes that leave partial strips, batches), be chosen by the Upscaler
 * only where it applies, and refuse every graph it does not compute exactly.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import onnxProto from 'onnx-proto';
import { describe, expect, it } from 'vitest';
import { nativeKernel } from '../../src/infer/native-cpu.js';
import { nativePlan } from '../../src/infer/native-plan.js';
import { Upscaler } from '../../src/infer/upscaler.js';
import { pullModel } from '../../src/models/pull.js';
import { onnxPath } from '../../src/models/store.js';
import { byteDifference, upscaleOnCpu } from '../helpers/frame-model.js';
import { crop, readRgb } from '../helpers/image.js';

const { onnx } = onnxProto;
const cpuFlags = readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m)?.[1]?.split(/\s+/) ?? [];
const avx512 = ['avx512f', 'avx512dq', 'avx512bw', 'avx512vl'].every((f) => cpuFlags.includes(f));
const avx2 = ['avx2', 'fma'].every((f) => cpuFlags.includes(f));
/** npm run build compiles the kernel with `cc` (or $CC) when there is one. */
const compiler = spawnSync(process.env.CC || 'cc', ['--version'], { stdio: 'ignore' }).status === 0;
/** Where the kernel runs: the tests of its frames need it (the build machine and CI have AVX-512 and a compiler). */
const usable = (avx512 || avx2) && compiler;

/** A net made with the kernel's instruction set capped at `isa` (ESRVID_NATIVE_ISA is read when the net is made). */
function netFor(kernel: NonNullable<ReturnType<typeof nativeKernel>>, plan: NonNullable<ReturnType<typeof nativePlan>>, isa: 'avx512' | 'avx2'): object {
  const before = process.env.ESRVID_NATIVE_ISA;
  process.env.ESRVID_NATIVE_ISA = isa;
  try {
    expect(kernel.isa()).toBe(isa);
    return kernel.createNet(plan.layers, plan.scale, 3);
  } finally {
    if (before === undefined) delete process.env.ESRVID_NATIVE_ISA;
    else process.env.ESRVID_NATIVE_ISA = before;
  }
}
/** The instruction sets this CPU can run the kernel with: both on the build machine. */
const isas = [...(avx512 ? ['avx512' as const] : []), ...(avx2 ? ['avx2' as const] : [])];

const canonical = (name: string, frames: Uint8Array, n: number, h: number, w: number) => upscaleOnCpu(onnxPath(name), frames, n, h, w);
const compare = (a: Uint8Array, b: Uint8Array) => {
  expect(b.length).toBe(a.length);
  return byteDifference(a, b);
};

async function photoFrames(w: number, h: number, count: number): Promise<Uint8Array> {
  const photo = await readRgb('test/fixtures/photos/chelsea.png');
  const out = new Uint8Array(count * w * h * 3);
  for (let i = 0; i < count; i++) out.set(crop(photo, 20 + 37 * i, 10 + 11 * i, w, h).data, i * w * h * 3);
  return out;
}

describe('the native kernel', () => {
  it('is built and usable here exactly when the CPU has AVX-512 or AVX2 and there is a C compiler', () => {
    expect(nativeKernel() !== null).toBe(usable);
    if (usable && !process.env.ESRVID_NATIVE_ISA) expect(nativeKernel()!.isa()).toBe(avx512 ? 'avx512' : 'avx2');
  });

  describe.each([
    ['realesr-general-x4v3', 34],
    ['realesr-animevideov3-x4', 18],
  ] as const)('%s', (name, layers) => {
    it('is recognised: every convolution 3x3, a slope per channel on all but the last, pixel shuffle x4', async () => {
      await pullModel(name);
      const plan = nativePlan(readFileSync(onnxPath(name)))!;
      expect(plan.scale).toBe(4);
      expect(plan.layers.length).toBe(layers);
      expect(plan.layers.map((l) => `${l.cin}>${l.cout}`).join()).toBe(['3>64', ...Array(layers - 2).fill('64>64'), '64>48'].join());
      expect(plan.layers.filter((l) => l.slope?.length === 64).length).toBe(layers - 1);
      expect(plan.layers.at(-1)!.slope).toBeUndefined();
    });

    it.runIf(usable).each(isas)('gives the canonical model\'s frames with %s: a photo at 97x61 (partial strips), two frames in one call', async (isa) => {
      const kernel = nativeKernel()!;
      const plan = nativePlan(readFileSync(onnxPath(name)))!;
      const net = netFor(kernel, plan, isa);
      const [w, h] = [97, 61];
      const frames = await photoFrames(w, h, 2);
      const out = new Uint8Array(2 * w * h * 48);
      kernel.run(net, frames, 2, h, w, out);
      const { worst, share } = compare(await canonical(name, frames, 2, h, w), out);
      // Summation order differs from ONNX Runtime's: a value on a .5 boundary may round the other way.
      expect(worst).toBeLessThanOrEqual(1);
      expect(share).toBeLessThan(1e-3);
      // The second frame is not the first frame's output again.
      expect(Buffer.compare(out.subarray(0, w * h * 48), out.subarray(w * h * 48))).not.toBe(0);
    });
  });

  it('refuses graphs it does not compute: RRDBNet, the fp16 file, another activation, another pixel order, a strided convolution', async () => {
    await pullModel('realesrgan-x4plus');
    expect(nativePlan(readFileSync(onnxPath('realesrgan-x4plus')))).toBeUndefined();
    expect(nativePlan(readFileSync(onnxPath('realesr-animevideov3-x4', 'fp16')))).toBeUndefined();
    const edited = (edit: (nodes: onnxProto.onnx.INodeProto[]) => void) => {
      const m = onnx.ModelProto.decode(readFileSync(onnxPath('realesr-animevideov3-x4')));
      edit(m.graph!.node!);
      return nativePlan(onnx.ModelProto.encode(m).finish());
    };
    expect(edited(() => {})).toBeDefined();
    expect(edited((nodes) => {
      const p = nodes.find((n) => n.opType === 'PRelu')!;
      p.opType = 'Relu';
      p.input = [p.input![0]!];
    })).toBeUndefined();
    expect(edited((nodes) => {
      nodes.find((n) => n.opType === 'DepthToSpace')!.attribute!.find((a) => a.name === 'mode')!.s = new TextEncoder().encode('DCR');
    })).toBeUndefined();
    expect(edited((nodes) => {
      nodes.filter((n) => n.opType === 'Conv')[3]!.attribute!.find((a) => a.name === 'strides')!.ints = [2, 2];
    })).toBeUndefined();
  });

  it.runIf(usable)('threads split a frame into bands of rows: the same bytes as one thread, with more threads than rows too', async () => {
    const kernel = nativeKernel()!;
    const plan = nativePlan(readFileSync(onnxPath('realesr-animevideov3-x4')))!;
    for (const [w, h] of [[53, 29], [31, 3]]) {
      const frames = await photoFrames(w, h, 2);
      const outputs = [1, 2, 5].map((threads) => {
        const out = new Uint8Array(2 * w * h * 48);
        // Two calls: the second reuses the started threads and the maps the first left.
        const net = kernel.createNet(plan.layers, plan.scale, 3, threads);
        kernel.run(net, frames, 1, h, w, new Uint8Array(w * h * 48));
        kernel.run(net, frames, 2, h, w, out);
        return Buffer.from(out);
      });
      expect(outputs[1]!.equals(outputs[0]!)).toBe(true);
      expect(outputs[2]!.equals(outputs[0]!)).toBe(true);
    }
  });

  it.runIf(usable)('refuses buffers smaller than the frames, in one line', () => {
    const kernel = nativeKernel()!;
    const plan = nativePlan(readFileSync(onnxPath('realesr-animevideov3-x4')))!;
    const net = kernel.createNet(plan.layers, plan.scale, 3);
    expect(() => kernel.run(net, new Uint8Array(8 * 8 * 3), 1, 8, 8, new Uint8Array(10))).toThrow('run: buffers smaller than the frames');
  });
});

describe.runIf(usable)('the Upscaler on the CPU', () => {
  const model = () => onnxPath('realesr-animevideov3-x4');
  it.each([
    { lanes: 2, frames: 2, what: 'one-thread lanes' },
    { lanes: 1, frames: 1, what: 'one lane of two threads (a preview\'s)' },
  ])('runs compact models on the native kernel in $what, with the canonical frames', async ({ lanes, frames: n }) => {
    const up = await Upscaler.start({ modelPath: model(), scale: 4, threads: 2, lanes });
    try {
      expect(up.engine).toBe('native');
      const [w, h] = [40, 24];
      const sent = up.allocateSlot(n, w, h);
      // The fused kernel's slots are shared with the lanes: the same memory comes back, written in place.
      expect(sent.input).toBeInstanceOf(SharedArrayBuffer);
      expect(sent.output).toBeInstanceOf(SharedArrayBuffer);
      const frames = await photoFrames(w, h, n);
      new Uint8Array(sent.input).set(frames);
      new Uint8Array(sent.output).fill(7);
      const slot = (await up.run(sent, n, w, h)).slot;
      expect(new Uint8Array(slot.output)[0]).toBe(new Uint8Array(sent.output)[0]);
      expect(Buffer.from(sent.output).equals(Buffer.from(slot.output))).toBe(true);
      const { worst, share } = compare(await canonical('realesr-animevideov3-x4', frames, n, h, w), new Uint8Array(slot.output));
      expect(worst).toBeLessThanOrEqual(1);
      expect(share).toBeLessThan(1e-3);
    } finally {
      await up.close();
    }
  });

  it('keeps ONNX Runtime for RRDBNet, and when the configuration says so', async () => {
    await pullModel('realesrgan-x4plus');
    for (const o of [
      { modelPath: onnxPath('realesrgan-x4plus'), threads: 2, lanes: 2 },
      { modelPath: model(), threads: 2, lanes: 2, session: { nativeCpu: false } },
    ]) {
      const up = await Upscaler.start({ scale: 4, ...o });
      try {
        expect(up.engine).toBe('onnxruntime');
        // ONNX Runtime's binding refuses tensors over shared memory: its slots are ArrayBuffers, transferred.
        expect(up.allocateSlot(1, 8, 8).output).toBeInstanceOf(ArrayBuffer);
      } finally {
        await up.close();
      }
    }
  });
});
