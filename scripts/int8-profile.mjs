#!/usr/bin/env node
// Where an ONNX model's time goes, by operator, from ONNX Runtime's own profiler (enableProfiling):
// how BENCHMARKS.md's "int8" breakdown was measured (onnxruntime-node directly, 2 threads).
//   node scripts/int8-profile.mjs models/realesr-animevideov3-x4.onnx models/realesr-animevideov3-x4.int8.onnx [--size 160x90 | --png frame.png] [--runs 10]
// Use a real frame (--png samples/calibration/chelsea-mp4-frame24.png): PRelu's cost depends on the content.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i < 0 ? dflt : args.splice(i, 2)[1];
};
const png = opt('--png', undefined);
const runs = Number(opt('--runs', '10'));
const picture = png ? (await import('../dist/models/calibration-frames.js')).decodeRgbPng(readFileSync(png), png) : undefined;
const [w, h] = picture ? [picture.width, picture.height] : opt('--size', '160x90').split('x').map(Number);
const dir = mkdtempSync(join(tmpdir(), 'esrvid-profile-'));
const frame = new ort.Tensor('uint8', picture?.data ?? Uint8Array.from({ length: w * h * 3 }, (_, i) => (i * 7919 + (i >> 5)) & 255), [1, h, w, 3]);
try {
  for (const file of args) {
    const prefix = join(dir, String(Math.random()).slice(2));
    const s = await ort.InferenceSession.create(file, { intraOpNumThreads: 2, interOpNumThreads: 1, graphOptimizationLevel: 'all', executionMode: 'sequential', enableProfiling: true, profileFilePrefix: prefix, logSeverityLevel: 3 });
    await s.run({ frames: frame });
    for (let r = 0; r < runs; r++) await s.run({ frames: frame });
    s.endProfiling();
    await s.release();
    const json = readdirSync(dir).map((f) => join(dir, f)).find((f) => f.startsWith(prefix));
    const byOp = new Map();
    let total = 0;
    for (const e of JSON.parse(readFileSync(json, 'utf8'))) {
      if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
      const v = byOp.get(e.args.op_name) ?? { us: 0, n: 0 };
      v.us += e.dur;
      v.n++;
      byOp.set(e.args.op_name, v);
      total += e.dur;
    }
    // The warm-up run is in the profile too: runs + 1.
    const per = (us) => (us / (runs + 1) / 1000).toFixed(2);
    console.log(`${file} (${w}x${h}): ${per(total)} ms of kernel time per run`);
    for (const [op, v] of [...byOp].sort((a, b) => b[1].us - a[1].us)) {
      console.log(`  ${op.padEnd(20)} ${per(v.us).padStart(8)} ms ${((100 * v.us) / total).toFixed(1).padStart(5)}%  ${v.n / (runs + 1)} nodes`);
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
