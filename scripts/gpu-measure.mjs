#!/usr/bin/env node
/**
 * Pure-inference frames/s on a GPU, for scripts/gpu-measure.sh: esrvid's own Upscaler (worker
 * thread, session options, reused slots) on synthetic frames, for each model x precision x frame
 * size x batch. Per case: one warm-up run (cuDNN's algorithm search happens there; its time is
 * reported apart), then up to --runs measured runs (fewer if --max-case-s is reached), median
 * frames/s, and the GPU memory nvidia-smi saw in use at the peak of the case. A batch that runs
 * out of memory is recorded as such; where even one frame does not fit, the frame is measured in
 * --tile px tiles (window time x tiles per frame). JSON on stdout, progress on stderr.
 *
 *   node scripts/gpu-measure.mjs [--device cuda] [--gpu 0] [--models a,b] [--sizes 640x360,1920x1080]
 *        [--precisions fp16,fp32] [--batches 1,2,4,8] [--runs 5] [--max-case-s 30] [--tile 512] [--tile-pad 16]
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []));
const list = (v, d) => (v ?? d).split(',').map((s) => s.trim()).filter(Boolean);
const o = {
  device: args.device ?? 'cuda',
  gpu: Number(args.gpu ?? 0),
  models: list(args.models, 'realesr-general-x4v3,realesrgan-x4plus'),
  sizes: list(args.sizes, '640x360,1920x1080').map((s) => s.split('x').map(Number)),
  precisions: list(args.precisions, 'fp16,fp32'),
  batches: list(args.batches, '1,2,4,8').map(Number),
  runs: Number(args.runs ?? 5),
  maxCaseMs: Number(args['max-case-s'] ?? 30) * 1000,
  tile: Number(args.tile ?? 512),
  tilePad: Number(args['tile-pad'] ?? 16),
};
const log = (s) => process.stderr.write(`gpu-measure: ${s}\n`);

const dist = new URL('../dist/', import.meta.url);
const { Upscaler, InferenceError } = await import(new URL('infer/upscaler.js', dist));
const { resolveModel } = await import(new URL('models/resolve.js', dist));
const { syntheticFrames } = await import(new URL('bench/frames.js', dist));
const { planTiles } = await import(new URL('infer/tiling.js', dist));
const ort = await import('onnxruntime-node');

/** GPU memory in use (bytes) on the physical GPU, polled while a case runs. */
function memoryWatch() {
  let peak = 0;
  let stopped = false;
  const smi = process.env.ESRVID_NVIDIA_SMI ?? 'nvidia-smi';
  const visible = process.env.CUDA_VISIBLE_DEVICES?.split(',')[o.gpu];
  const index = visible && /^\d+$/.test(visible) ? visible : String(o.gpu);
  const poll = async () => {
    while (!stopped) {
      try {
        const { stdout } = await promisify(execFile)(smi, ['--query-gpu=memory.used', '--format=csv,noheader,nounits', '-i', index]);
        peak = Math.max(peak, Number(stdout.trim()) * 2 ** 20 || 0);
      } catch {
        return;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const done = poll();
  return async () => {
    stopped = true;
    await done;
    return peak || undefined;
  };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Warm-up plus measured runs of one shape; throws the Upscaler's error (out of memory included). */
async function timeShape(up, batch, w, h) {
  let slot = up.allocateSlot(batch, w, h);
  new Uint8Array(slot.input).set(syntheticFrames(batch, w, h));
  const first = await up.run(slot, batch, w, h);
  slot = first.slot;
  const ms = [];
  let spent = 0;
  while (ms.length < o.runs && (ms.length === 0 || spent < o.maxCaseMs)) {
    const r = await up.run(slot, batch, w, h);
    slot = r.slot;
    ms.push(r.ms);
    spent += r.ms;
  }
  return { firstRunMs: first.ms, runsMs: ms, medianMs: median(ms) };
}

const result = {
  startedAt: new Date().toISOString(),
  onnxruntime: ort.env.versions.common,
  node: process.version,
  options: o,
  cases: [],
  notes: [],
};

for (const name of o.models) {
  for (const precision of o.precisions) {
    let up;
    try {
      const model = await resolveModel(name, { device: o.device, precision });
      const started = performance.now();
      up = await Upscaler.start({ modelPath: model.path, scale: model.scale, device: o.device, gpu: o.gpu });
      log(`${name} ${precision}: loaded on ${o.device} in ${(performance.now() - started).toFixed(0)} ms${up.outputsCopied ? ' (outputs copied)' : ''}`);
      for (const [w, h] of o.sizes) {
        let fitsOneFrame = true;
        for (const batch of o.batches) {
          const c = { model: name, precision, device: o.device, width: w, height: h, batch };
          const stop = memoryWatch();
          try {
            const t = await timeShape(up, batch, w, h);
            Object.assign(c, t, { fps: (1000 * batch) / t.medianMs });
            log(`  ${w}x${h} batch ${batch}: ${c.fps.toFixed(2)} frames/s (first run ${t.firstRunMs.toFixed(0)} ms)`);
          } catch (err) {
            if (!(err instanceof InferenceError) || !err.outOfMemory) throw err;
            c.outOfMemory = err.message.split('\n')[0];
            if (batch === 1) fitsOneFrame = false;
            log(`  ${w}x${h} batch ${batch}: out of memory`);
          }
          c.peakGpuMemoryBytes = await stop();
          result.cases.push(c);
        }
        if (!fitsOneFrame) {
          // The pipeline would tile: one window at a time, as many windows as the frame needs.
          const plan = planTiles(w, h, o.tile, o.tilePad);
          const c = { model: name, precision, device: o.device, width: w, height: h, batch: 1, tiled: { tile: o.tile, tilePad: o.tilePad, windows: plan.tiles.length, windowW: plan.windowW, windowH: plan.windowH } };
          const stop = memoryWatch();
          try {
            const t = await timeShape(up, 1, plan.windowW, plan.windowH);
            Object.assign(c, { windowMedianMs: t.medianMs, firstRunMs: t.firstRunMs, medianMs: t.medianMs * plan.tiles.length, fps: 1000 / (t.medianMs * plan.tiles.length) });
            log(`  ${w}x${h} in ${plan.tiles.length} tiles of ${o.tile} px: ${c.fps.toFixed(2)} frames/s`);
          } catch (err) {
            c.outOfMemory = err.message.split('\n')[0];
          }
          c.peakGpuMemoryBytes = await stop();
          result.cases.push(c);
        }
      }
      if (up.outputsCopied) result.notes.push(`${name} ${precision}: ONNX Runtime ignored the pre-allocated outputs; the worker copied them`);
    } catch (err) {
      result.notes.push(`${name} ${precision}: ${err.oneLine?.() ?? err.message}`);
      log(`${name} ${precision}: ${err.oneLine?.() ?? err.message}`);
    } finally {
      await up?.close();
    }
  }
}
result.finishedAt = new Date().toISOString();
process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
