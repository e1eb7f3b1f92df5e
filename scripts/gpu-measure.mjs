#!/usr/bin/env node
/**
 * Pure-inference frames/s on a GPU, for scripts/gpu-measure.sh: esrvid's own Upscaler (worker
 * thread, session options, reused slots; one lane: what one call costs, while lanes side by side
 * are scripts/gpu-concurrency.mjs's question) on synthetic frames, for each model x precision x frame
 * size x batch. Per case: one warm-up run (cuDNN's algorithm search happens there; its time is
 * reported apart), then up to --runs measured runs (fewer if --max-case-s is reached), median
 * frames/s, and the GPU memory nvidia-smi saw in use at the peak of the case. A batch that runs
 * out of memory is recorded as such; where even one frame does not fit, the frame is measured in
 * --tile px tiles (window time x tiles per frame). JSON on stdout, progress on stderr.
 *
 * Batches whose input exceeds --max-batch-mp megapixels are skipped (1920x1080 x 4 frames of
 * realesrgan-x4plus would need ~100 GB of activations).
 *
 * --torch fp16[,fp32]: the reference, the same networks in PyTorch on the same GPU
 * (scripts/bench-pytorch.py --device cuda [--half]: channels_last, cuDNN autotuner), same frames,
 * same shapes, timed from uint8 frames in host memory to uint8 frames back, as esrvid's runs.
 * --quality: esrvid's GPU output on the real frames in samples/calibration against its CPU float32
 * output (PSNR), so a fast GPU path is also a correct one.
 *
 *   node scripts/gpu-measure.mjs [--device cuda] [--gpu 0] [--models a,b] [--sizes 640x360,1920x1080]
 *        [--precisions fp16,fp32] [--batches 1,2,4,8] [--runs 5] [--max-case-s 30] [--tile 512] [--tile-pad 16]
 *        [--max-batch-mp 4.2] [--torch fp16,fp32] [--quality 1] [--layouts nchw,nhwc]
 *
 * --layouts: the graph as the model file has it (nchw) and arranged channels-last for the CUDA
 * provider (nhwc, src/models/onnx/arrange-for-cuda.ts), each measured in the same run (default
 * both on CUDA, nchw elsewhere); --quality judges each.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { list, optionValues } from './script-args.mjs';

const args = optionValues();
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
  maxBatchMp: Number(args['max-batch-mp'] ?? 4.2),
  torch: list(args.torch, ''),
  quality: args.quality === '1',
  layouts: list(args.layouts, (args.device ?? 'cuda') === 'cuda' ? 'nchw,nhwc' : 'nchw'),
  /** Written after every case too, so a run cut short keeps what it measured. */
  out: args.out,
};
const log = (s) => process.stderr.write(`gpu-measure: ${s}\n`);

const dist = new URL('../dist/', import.meta.url);
const { Upscaler, InferenceError } = await import(new URL('infer/upscaler.js', dist));
const { resolveModel } = await import(new URL('models/resolve.js', dist));
const { syntheticFrames } = await import(new URL('bench/frames.js', dist));
const { planTiles } = await import(new URL('infer/tiling.js', dist));
const { median } = await import(new URL('bench/stats.js', dist));
const ort = await import('onnxruntime-node');
const { readFile, writeFile, mkdtemp, rm } = await import('node:fs/promises');
const { tmpdir } = await import('node:os');
const { join } = await import('node:path');

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

/** Up to --runs timed calls of `call` (returning its ms), fewer once --max-case-s is spent. */
async function timedRuns(call) {
  const ms = [];
  let spent = 0;
  while (ms.length < o.runs && (ms.length === 0 || spent < o.maxCaseMs)) {
    ms.push(await call());
    spent += ms.at(-1);
  }
  return { runsMs: ms, medianMs: median(ms) };
}

/** Warm-up plus measured runs of one shape; throws the Upscaler's error (out of memory included). */
async function timeShape(up, batch, w, h) {
  let slot = up.allocateSlot(batch, w, h);
  new Uint8Array(slot.input).set(syntheticFrames(batch, w, h));
  const run = async () => {
    const r = await up.run(slot, batch, w, h);
    slot = r.slot;
    return r.ms;
  };
  const firstRunMs = await run();
  return { firstRunMs, ...(await timedRuns(run)) };
}

const save = async () => {
  if (o.out) await writeFile(o.out, `${JSON.stringify(result, null, 2)}\n`);
};

const result = {
  startedAt: new Date().toISOString(),
  onnxruntime: ort.env.versions.common,
  node: process.version,
  options: o,
  cases: [],
  notes: [],
};

/** The session configuration of a layout (the Upscaler's `session` changes). */
const layoutSession = (layout) => ({ arrangeForCuda: layout === 'nhwc' });

const variants = o.models.flatMap((name) => o.precisions.flatMap((precision) => o.layouts.map((layout) => [name, precision, layout])));
for (const [name, precision, layout] of variants) {
  let up;
  try {
    const model = await resolveModel(name, { device: o.device, precision });
    const started = performance.now();
    up = await Upscaler.start({ modelPath: model.path, scale: model.scale, device: o.device, gpu: o.gpu, lanes: 1, session: layoutSession(layout) });
    log(`${name} ${precision} ${layout}: loaded on ${o.device} in ${(performance.now() - started).toFixed(0)} ms${up.outputsCopied ? ' (outputs copied)' : ''}`);
    for (const [w, h] of o.sizes) {
      let fitsOneFrame = true;
      for (const batch of o.batches) {
        if (batch > 1 && (batch * w * h) / 1e6 > o.maxBatchMp) continue;
        const c = { model: name, precision, layout, device: o.device, width: w, height: h, batch };
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
        await save();
      }
      if (!fitsOneFrame) {
        // The pipeline would tile: one window at a time, as many windows as the frame needs.
        const plan = planTiles(w, h, o.tile, o.tilePad);
        const c = { model: name, precision, layout, device: o.device, width: w, height: h, batch: 1, tiled: { tile: o.tile, tilePad: o.tilePad, windows: plan.tiles.length, windowW: plan.windowW, windowH: plan.windowH } };
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
    if (up.outputsCopied) result.notes.push(`${name} ${precision} ${layout}: ONNX Runtime ignored the pre-allocated outputs; the worker copied them`);
  } catch (err) {
    result.notes.push(`${name} ${precision} ${layout}: ${err.oneLine?.() ?? err.message}`);
    log(`${name} ${precision} ${layout}: ${err.oneLine?.() ?? err.message}`);
  } finally {
    await up?.close();
  }
}
/** The same shapes in PyTorch on the same GPU. */
async function torchReference() {
  const { TorchReference, defaultPython } = await import(new URL('bench/torch-reference.js', dist));
  const { decodeModel } = await import(new URL('bench/onnx-graph.js', dist));
  const tmp = await mkdtemp(join(tmpdir(), 'esrvid-torch-'));
  try {
    for (const precision of o.torch) {
      const ref = await TorchReference.start(process.env.ESRVID_BENCH_PYTHON ?? defaultPython(), 4, { device: args['torch-device'] ?? `cuda:${o.gpu}`, half: precision === 'fp16' });
      result.torch ??= { ...ref.info };
      log(`PyTorch ${ref.info.torch} on ${ref.info.gpu} (CUDA ${ref.info.cuda}, cuDNN ${ref.info.cudnn}), ${precision}`);
      try {
        for (const name of o.models) {
          const model = await resolveModel(name, { device: 'cpu', precision: 'fp32' });
          await ref.loadGraph(name, decodeModel(new Uint8Array(await readFile(model.path))), tmp);
          for (const [w, h] of o.sizes) {
            for (const batch of o.batches) {
              if (batch > 1 && (batch * w * h) / 1e6 > o.maxBatchMp) continue;
              const c = { model: name, precision, engine: 'pytorch', width: w, height: h, batch };
              const input = join(tmp, 'in.u8');
              await writeFile(input, syntheticFrames(batch, w, h));
              try {
                const first = await ref.timed(name, input, batch, w, h);
                // cuDNN's autotuner ran in the first call; a second settles the allocator.
                await ref.timed(name, input, batch, w, h);
                let peak = first.peakBytes;
                const t = await timedRuns(async () => {
                  const r = await ref.timed(name, input, batch, w, h);
                  peak = r.peakBytes;
                  return r.ms;
                });
                Object.assign(c, { firstRunMs: first.ms, ...t, fps: (1000 * batch) / t.medianMs, peakAllocatedBytes: peak });
                log(`  PyTorch ${name} ${precision} ${w}x${h} batch ${batch}: ${c.fps.toFixed(2)} frames/s`);
              } catch (err) {
                c.error = err.message.split('\n')[0];
                log(`  PyTorch ${name} ${precision} ${w}x${h} batch ${batch}: ${c.error}`);
                if (/out of memory/i.test(c.error)) c.outOfMemory = true;
              }
              result.torchCases.push(c);
              await save();
            }
          }
          await ref.release(name);
        }
      } finally {
        await ref.close();
      }
    }
  } catch (err) {
    result.notes.push(`PyTorch reference: ${err.message}`);
    log(`PyTorch reference: ${err.message}`);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** PSNR of the GPU's output against the CPU's float32 output on the real calibration frames. */
async function quality() {
  const { readCalibrationFrames } = await import(new URL('models/calibration-frames.js', dist));
  const { psnrDb: psnr } = await import(new URL('models/int8.js', dist));
  const frames = readCalibrationFrames();
  const upscale = async (up, f) => {
    let slot = up.allocateSlot(1, f.width, f.height);
    new Uint8Array(slot.input).set(f.data);
    slot = (await up.run(slot, 1, f.width, f.height)).slot;
    return new Uint8Array(slot.output).slice();
  };
  for (const name of o.models) {
    const cpuModel = await resolveModel(name, { device: 'cpu', precision: 'fp32' });
    const cpu = await Upscaler.start({ modelPath: cpuModel.path, scale: cpuModel.scale, device: 'cpu' });
    const reference = [];
    try {
      for (const f of frames) reference.push(await upscale(cpu, f));
    } finally {
      await cpu.close();
    }
    for (const precision of o.precisions) {
      for (const layout of o.layouts) {
        const model = await resolveModel(name, { device: o.device, precision });
        const up = await Upscaler.start({ modelPath: model.path, scale: model.scale, device: o.device, gpu: o.gpu, lanes: 1, session: layoutSession(layout) });
        try {
          const per = [];
          for (const [i, f] of frames.entries()) per.push({ frame: f.name, width: f.width, height: f.height, psnrDb: psnr(await upscale(up, f), reference[i]) });
          const worst = Math.min(...per.map((p) => p.psnrDb));
          result.quality.push({ model: name, precision, layout, device: o.device, against: 'cpu fp32', worstPsnrDb: worst, frames: per });
          log(`quality ${name} ${precision} ${layout}: worst ${worst.toFixed(2)} dB vs CPU float32 over ${per.length} real frames`);
        } finally {
          await up.close();
        }
      }
    }
  }
}

/**
 * Which nodes ONNX Runtime leaves off the GPU, and the copies it adds around them: its warnings at
 * session creation, which esrvid's own sessions keep quiet (they go to stderr, read from there).
 */
async function placement() {
  const { arrangeForCuda } = await import(new URL('models/onnx/arrange-for-cuda.js', dist));
  for (const name of o.models) {
    const model = await resolveModel(name, { device: o.device, precision: 'fp16' });
    const bytes = await readFile(model.path);
    for (const layout of o.layouts) {
      log(`placement check: ${name} fp16 ${layout} (ONNX Runtime's warnings follow, if any)`);
      // The graph as the Upscaler hands it to the session, in a session of its own with ONNX Runtime's placement log on.
      const graph = layout === 'nhwc' ? (arrangeForCuda(bytes).bytes ?? bytes) : bytes;
      const s = await ort.InferenceSession.create(graph, { executionProviders: [{ name: o.device, deviceId: o.gpu }], logSeverityLevel: 1 });
      await s.release();
    }
  }
}

if (o.device === 'cuda') await placement().catch((err) => result.notes.push(`placement: ${err.message}`));
result.torchCases = [];
result.quality = [];
if (o.torch.length) await torchReference();
if (o.quality) {
  try {
    await quality();
  } catch (err) {
    result.notes.push(`quality: ${err.oneLine?.() ?? err.message}`);
    log(`quality: ${err.oneLine?.() ?? err.message}`);
  }
}
result.finishedAt = new Date().toISOString();
await save();
// Exit explicitly: on the H100 this process once stayed alive for minutes after its last CUDA
// session closed, most likely in ONNX Runtime's CUDA teardown at exit (known to hang or abort
// after much CUDA work in one process); the results are written by then, and gpu-measure.sh
// kills a process that has not exited 20 s after writing them.
process.stdout.write(`${JSON.stringify(result, null, 2)}\n`, () => process.exit(0));
