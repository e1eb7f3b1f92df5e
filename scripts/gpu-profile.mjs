#!/usr/bin/env node
/**
 * Where the time of one model's CUDA run goes, per operator, from ONNX Runtime's own profiler:
 * the question left by the GPU measurements (realesrgan-x4plus fp16 at 0.76-0.83x PyTorch's
 * frames/s, realesr-general-x4v3 at 1080p 0.66x). The session is the one the Upscaler makes
 * (same options, the graph arranged channels-last unless --layout nchw), fed uint8 frames as the
 * worker does; two warm-up runs (cuDNN's algorithm search happens in the first), then --runs
 * profiled runs.
 *
 * ONNX Runtime's release builds time each node on the host. CUDA kernels are launched
 * asynchronously, so a node's time is its launch cost unless CUDA_LAUNCH_BLOCKING=1 is set for
 * the process, which makes every launch wait for its kernel: then a node's time is its GPU time
 * (plus the launch). Run it both ways: without, the sum of node times against the run's wall time
 * says whether the host keeps the GPU fed; with, the per-operator split says which kernels cost.
 *
 *   [CUDA_LAUNCH_BLOCKING=1] node scripts/gpu-profile.mjs --model realesrgan-x4plus --size 640x360
 *        [--precision fp16] [--layout nhwc] [--batch 1] [--runs 3] [--gpu 0] [--device cuda] [--torch 1] [--out profile.json]
 *
 * JSON on stdout (and --out): wall ms per run, node ms per run, per operator type (ms per run,
 * nodes, share), per convolution shape, the 15 costliest nodes.
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { optionValues } from './script-args.mjs';

const args = optionValues();
const o = {
  model: args.model ?? 'realesrgan-x4plus',
  size: (args.size ?? '640x360').split('x').map(Number),
  precision: args.precision ?? 'fp16',
  /** nhwc: cuDNN's channels-last kernels (NhwcConv runs on CUDA only, so the CPU smoke test defaults to nchw). */
  layout: args.layout ?? ((args.device ?? 'cuda') === 'cpu' ? 'nchw' : 'nhwc'),
  batch: Number(args.batch ?? 1),
  runs: Number(args.runs ?? 3),
  gpu: Number(args.gpu ?? 0),
  /** cpu: a smoke test of this script on a machine without a GPU. */
  device: args.device ?? 'cuda',
  blocking: process.env.CUDA_LAUNCH_BLOCKING === '1',
};
const log = (s) => process.stderr.write(`gpu-profile: ${s}\n`);

const dist = new URL('../dist/', import.meta.url);
const { resolveModel } = await import(new URL('models/resolve.js', dist));
const { sessionConfig } = await import(new URL('infer/device.js', dist));
const { sessionOptions } = await import(new URL('infer/probe-model.js', dist));
const { arrangeForCuda } = await import(new URL('models/onnx/arrange-for-cuda.js', dist));
const { syntheticFrames } = await import(new URL('bench/frames.js', dist));
const ort = await import('onnxruntime-node');

const [w, h] = o.size;
const model = await resolveModel(o.model, { device: o.device, precision: o.precision });
const bytes = await readFile(model.path);
const graph = o.layout === 'nhwc' ? (arrangeForCuda(bytes).bytes ?? bytes) : bytes;
const tmp = await mkdtemp(join(tmpdir(), 'esrvid-profile-'));
const options = { ...sessionOptions(sessionConfig(o.device, { gpu: o.gpu, threads: o.device === 'cpu' ? 2 : undefined })), enableProfiling: true, profileFilePrefix: join(tmp, 'ort') };
const session = await ort.InferenceSession.create(graph, options);
const input = new ort.Tensor('uint8', syntheticFrames(o.batch, w, h), [o.batch, h, w, 3]);
const output = new ort.Tensor('uint8', new Uint8Array(o.batch * h * w * 3 * model.scale ** 2), [o.batch, h * model.scale, w * model.scale, 3]);
const run = async () => {
  const started = performance.now();
  await session.run({ [session.inputNames[0]]: input }, { [session.outputNames[0]]: output });
  return performance.now() - started;
};
const warmUpMs = [await run(), await run()];
const wallMs = [];
for (let i = 0; i < o.runs; i++) wallMs.push(await run());
session.endProfiling();
await session.release();

// The profile: Chrome trace events; 'model_run' (Session) spans each run, 'Node' events its nodes.
const file = (await readdir(tmp)).find((f) => f.endsWith('.json'));
const events = JSON.parse(await readFile(join(tmp, file), 'utf8'));
await rm(tmp, { recursive: true, force: true });
const runs = events.filter((e) => e.cat === 'Session' && e.name === 'model_run').slice(-o.runs);
const inRuns = (e) => runs.some((r) => e.ts >= r.ts && e.ts <= r.ts + r.dur);
const nodes = events.filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time') && inRuns(e));
const perRun = (us) => us / 1000 / o.runs;
const nodeMs = perRun(nodes.reduce((s, e) => s + e.dur, 0));
const group = (key) => {
  const m = new Map();
  for (const e of nodes) {
    const k = key(e);
    const g = m.get(k) ?? { key: k, us: 0, count: 0 };
    g.us += e.dur;
    g.count += 1;
    m.set(k, g);
  }
  return [...m.values()].sort((a, b) => b.us - a.us).map((g) => ({ key: g.key, msPerRun: perRun(g.us), nodesPerRun: g.count / o.runs, share: g.us / 1000 / o.runs / nodeMs }));
};
const shape = (s) => (s ?? []).map((t) => Object.values(t)[0]?.join('x')).join(',');
const result = {
  options: o,
  onnxruntime: ort.env.versions.common,
  providers: [...new Set(nodes.map((e) => e.args?.provider))],
  warmUpMs,
  wallMs,
  nodeMsPerRun: nodeMs,
  byOperator: group((e) => e.args?.op_name),
  byConvolution: group((e) => (/Conv/.test(e.args?.op_name) ? `${e.args.op_name} ${shape(e.args.input_type_shape)} -> ${shape(e.args.output_type_shape)}` : 'other')),
  costliestNodes: group((e) => `${e.name.replace(/_kernel_time$/, '')} (${e.args?.op_name})`).slice(0, 15),
};
log(`${o.model} ${o.precision} ${o.layout} ${w}x${h} b${o.batch}${o.blocking ? ' (launch blocking)' : ''}: wall ${wallMs.map((x) => x.toFixed(1)).join('/')} ms, nodes ${nodeMs.toFixed(1)} ms per run`);
for (const g of result.byOperator.slice(0, 8)) log(`  ${g.key}: ${g.msPerRun.toFixed(2)} ms (${(100 * g.share).toFixed(1)}%, ${g.nodesPerRun} nodes)`);
// --torch 1: the same network and shape in PyTorch under its own profiler (kernel-level GPU times).
if (args.torch === '1') {
  try {
    const { TorchReference, defaultPython } = await import(new URL('bench/torch-reference.js', dist));
    const { decodeModel } = await import(new URL('bench/onnx-graph.js', dist));
    const ref = await TorchReference.start(process.env.ESRVID_BENCH_PYTHON ?? defaultPython(), 4, { device: o.device === 'cpu' ? 'cpu' : `cuda:${o.gpu}`, half: o.precision === 'fp16' });
    const dir = await mkdtemp(join(tmpdir(), 'esrvid-torch-'));
    try {
      const fp32 = await resolveModel(o.model, { device: 'cpu', precision: 'fp32' });
      await ref.loadGraph('m', decodeModel(new Uint8Array(await readFile(fp32.path))), dir);
      await writeFile(join(dir, 'in.u8'), syntheticFrames(o.batch, w, h));
      result.torch = { ...ref.info, ...(await ref.profile('m', join(dir, 'in.u8'), o.batch, w, h, o.runs)) };
      log(`PyTorch: wall ${result.torch.wallMs.map((x) => x.toFixed(1)).join('/')} ms, kernels ${result.torch.kernelMsPerRun.toFixed(1)} ms per run`);
      for (const k of result.torch.kernels.slice(0, 6)) log(`  ${k.msPerRun.toFixed(2)} ms x${k.perRun}: ${k.name.slice(0, 100)}`);
    } finally {
      await ref.close();
      await rm(dir, { recursive: true, force: true });
    }
  } catch (err) {
    result.torchError = err.message;
    log(`PyTorch: ${err.message}`);
  }
}
if (args.out) await writeFile(args.out, `${JSON.stringify(result, null, 2)}\n`);
process.stdout.write(`${JSON.stringify(result, null, 2)}\n`, () => process.exit(0));
