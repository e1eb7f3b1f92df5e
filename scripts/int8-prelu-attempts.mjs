#!/usr/bin/env node
// The PReLU attempts of BENCHMARKS.md ("int8 attempts"), rebuilt and measured: the int8 model as
// shipped (PReLU as Max(x, 0) + a Min(x, 0)), ONNX Runtime's PRelu kept, one LeakyRelu per layer
// (fused by ONNX Runtime into QLinearLeakyRelu, inexact), and the PReLU folded into the next conv
// (exact: W * PReLU(x) = [W a, W (1 - a)] * Concat(x, Relu(x))). Prints each one's PSNR against
// float32 on the calibration frames and its speed against float32 on a real frame (frame 24 of
// samples/chelsea.mp4, 160x90), alternating run by run.
//   npm run build && node scripts/int8-prelu-attempts.mjs [model] [--runs 20]
import { readFileSync } from 'node:fs';
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { readCalibrationFrames } from '../dist/models/calibration-frames.js';
import { makeInt8, measureQuality, upscaleFrames } from '../dist/models/int8.js';
import { equalizablePairs } from '../dist/models/onnx/quantize.js';
import { onnxPath } from '../dist/models/store.js';
import { pullModel } from '../dist/models/pull.js';

const { onnx } = onnxProto;
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i < 0 ? dflt : args.splice(i, 2)[1];
};
const runs = Number(opt('--runs', '20'));
const name = args[0] ?? 'realesr-animevideov3-x4';
await pullModel(name);
const fp32 = new Uint8Array(readFileSync(onnxPath(name, 'fp32')));
const frames = readCalibrationFrames();
const reference = await upscaleFrames(fp32, frames, 2);
const floats = (t) => {
  const raw = new Uint8Array(t.rawData);
  return new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
};

/** Every PReLU replaced by LeakyRelu with its layer's median slope. */
function leaky() {
  const m = onnx.ModelProto.decode(fp32);
  const inits = new Map(m.graph.initializer.map((t) => [t.name, t]));
  for (const n of m.graph.node) {
    if (n.opType !== 'PRelu') continue;
    const a = [...floats(inits.get(n.input[1]))].sort((x, y) => x - y);
    n.opType = 'LeakyRelu';
    n.input = [n.input[0]];
    n.attribute = [{ name: 'alpha', type: onnx.AttributeProto.AttributeType.FLOAT, f: a[a.length >> 1] }];
  }
  m.graph.initializer = m.graph.initializer.filter((t) => m.graph.node.some((n) => n.input.includes(t.name)));
  return { bytes: onnx.ModelProto.encode(m).finish(), extra: [] };
}

/** Each Conv -> PReLU -> Conv as Conv -> Concat(x, Relu(x)) -> Conv with twice the inputs. */
function folded() {
  const m = onnx.ModelProto.decode(fp32);
  const g = m.graph;
  const inits = new Map(g.initializer.map((t) => [t.name, t]));
  const byName = new Map(g.node.map((n) => [n.name, n]));
  const extra = [];
  for (const p of equalizablePairs(m)) {
    const prelu = byName.get(p.prelu);
    const next = byName.get(p.second);
    const a = floats(inits.get(prelu.input[1]));
    const x = prelu.input[0];
    const r = `${x}_relu`;
    const cat = `${x}_cat`;
    prelu.opType = 'Relu';
    prelu.input = [x];
    prelu.output = [r];
    g.node.splice(g.node.indexOf(prelu) + 1, 0, { opType: 'Concat', name: `${prelu.name}_concat`, input: [x, r], output: [cat], attribute: [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 1 }] });
    const wt = inits.get(next.input[1]);
    const wv = floats(wt);
    const [o, c, kh, kw] = wt.dims.map(Number);
    const k = kh * kw;
    const w2 = new Float32Array(o * 2 * c * k);
    for (let oo = 0; oo < o; oo++) for (let cc = 0; cc < c; cc++) for (let j = 0; j < k; j++) {
      const v = wv[(oo * c + cc) * k + j];
      w2[(oo * 2 * c + cc) * k + j] = v * a[cc];
      w2[(oo * 2 * c + c + cc) * k + j] = v * (1 - a[cc]);
    }
    wt.dims = [o, 2 * c, kh, kw];
    wt.rawData = new Uint8Array(w2.buffer);
    next.input[0] = cat;
    extra.push(r);
  }
  g.initializer = g.initializer.filter((t) => g.node.some((n) => n.input.includes(t.name)));
  return { bytes: onnx.ModelProto.encode(m).finish(), extra };
}

const variants = [
  ['PReLU 6: Max(x, 0) + a Min(x, 0) (shipped)', { bytes: fp32, extra: [], equalize: true }],
  ['PReLU 1: ONNX Runtime PRelu', { bytes: fp32, extra: [], equalize: true, keepPrelu: true }],
  ['PReLU 2: LeakyRelu per layer', { ...leaky(), equalize: false }],
  ['PReLU 3: folded into the next conv', { ...folded(), equalize: false }],
];
const sessions = [await ort.InferenceSession.create(fp32, { intraOpNumThreads: 2, logSeverityLevel: 3 })];
for (const [label, v] of variants) {
  const floatQ = await measureQuality(reference, v.bytes, frames, 2);
  const r = await makeInt8(v.bytes, { threads: 2, equalize: v.equalize, extraTensors: v.extra, keepPrelu: v.keepPrelu, frames });
  const q = await measureQuality(reference, r.bytes, frames, 2);
  console.log(`${label}: float variant ${floatQ.minDb.toFixed(1)} dB, int8 ${q.minDb.toFixed(2)} dB (worst frame) against the float32 model`);
  sessions.push(await ort.InferenceSession.create(r.bytes, { intraOpNumThreads: 2, logSeverityLevel: 3 }));
}
// A real frame: PRelu's speed depends on the content (see BENCHMARKS.md), a test pattern flatters it.
const real = frames.find((f) => f.name === 'chelsea-mp4-frame24.png');
const [w, h] = [real.width, real.height];
const frame = new ort.Tensor('uint8', real.data, [1, h, w, 3]);
for (const s of sessions) await s.run({ frames: frame });
const ms = sessions.map(() => []);
for (let r = 0; r < runs; r++) {
  // Rotate the order each round, so a drift in machine speed favours none of them.
  for (let k = 0; k < sessions.length; k++) {
    const i = (k + r) % sessions.length;
    const t = performance.now();
    await sessions[i].run({ frames: frame });
    ms[i].push(performance.now() - t);
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const labels = ['float32', ...variants.map(([l]) => l)];
labels.forEach((l, i) => console.log(`${l}: median ${median(ms[i]).toFixed(1)} ms, best ${Math.min(...ms[i]).toFixed(1)} ms at ${w}x${h}, ${(median(ms[0]) / median(ms[i])).toFixed(2)}x float32`));
