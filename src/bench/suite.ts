/**
 * `esrvid bench`: esrvid's inference stage against the PyTorch reference, side by side in one
 * run. For every case (model, frame size, batch) the two runtimes alternate, esrvid then PyTorch,
 * with a short pause between them so neither pays for the other's spinning threads; speeds are
 * medians over the measured runs and the ratio is the median of the per-pair ratios. Then the
 * whole CLI on a real clip against inference alone on frames of the same size, alternating too.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ModelPrecision } from '../models/store.js';
import { measureInt8, type Int8CaseResult } from './int8.js';
import { alternate } from './alternate.js';
import { coreTimeShares, describeCoreTime, loopClip, runEndToEnd, sizedClip, type CoreTime, type EndToEndRun } from './end-to-end.js';
import { FmaProbe, measureFmaPeak, type FmaPeak } from './fma-peak.js';
import { countFlops, type FlopCount } from './flops.js';
import { realFrames, syntheticFrames } from './frames.js';
import { describeMachine, type MachineInfo } from './machine.js';
import { decodeModel, type OnnxGraph } from './onnx-graph.js';
import { describeLever, LEVERS, measureLever, type LeverResult } from './levers.js';
import { OrtStage } from './ort-stage.js';
import { otherLoad, snapshot } from './contention.js';
import { cpuTime } from '../cpu-time.js';
import { compareOutputs, withNetworkOutput, type ParityResult } from './parity.js';
import { planCases, type BenchCase } from './plan.js';
import { framesPerSecond, median, pairedRatio, relativeSpread } from './stats.js';
import type { Architecture } from './torch-weights.js';
import { TorchReference, type TorchInfo } from './torch-reference.js';
import { packageVersion } from '../version.js';

export interface BenchOptions {
  models?: string[];
  sizes?: [number, number][];
  batches?: number[];
  device: 'cpu';
  precision: ModelPrecision;
  /** Also measure each compact model's int8 file against its float32 one (esrvid only). */
  int8: boolean;
  /** Measured runs (pairs, with the reference) per case, after `warmup` unmeasured ones. */
  runs: number;
  warmup: number;
  /**
   * Fast cases get more runs, up to 3 x `runs`, until their measured runs add up to this many
   * ms: a few noisy pairs then cannot decide the median.
   */
  minCaseMs: number;
  threads: number;
  /** esrvid's lanes (default: the pipeline's for `threads`, src/infer/device.ts cpuLanes). */
  lanes?: number;
  reference: 'pytorch' | 'none';
  python: string;
  /** Idle time between alternating runs, ms. */
  pauseMs: number;
  /** Measure each lever (src/bench/levers.ts) on and off, per model at its first size. */
  levers: boolean;
  endToEnd: boolean;
  endToEndRuns: number;
  endToEndModel: string;
  clip: string;
  /** The clip is played this many times in a row (stream copy), so start-up weighs as in a real job. */
  clipLoops: number;
  /** Also measure the pipeline's efficiency for every model and size of the suite (shorter jobs, fewer pairs). */
  efficiencySweep: boolean;
  sweepRuns: number;
  /** Each sweep job is long enough for about this many seconds of inference (24 to 240 frames). */
  sweepSeconds: number;
  /** Use this FMA peak (GFLOP/s) instead of measuring it. */
  peakGflops?: number;
  log: (line: string) => void;
}

/** Other work (cores) below which a measurement counts as taken on a quiet machine. */
export const QUIET_LOAD = 0.3;

/** Largest |difference| of the network outputs (0..1 range) accepted as "the same network". */
export const PARITY_TOLERANCE = 1e-3;

export interface ModelResult {
  name: string;
  path: string;
  architecture: string;
  torchArchitecture?: Architecture;
  flops: FlopCount;
  loadMs: number;
  /** What ran esrvid's side: ONNX Runtime, or esrvid's fused CPU kernel (src/infer/native-cpu.ts). */
  engine?: 'onnxruntime' | 'native';
  parity?: ParityResult & { width: number; height: number; ok: boolean };
}

export interface CaseResult extends BenchCase {
  esrvidMs: number[];
  torchMs?: number[];
  esrvidFps: number;
  esrvidBestFps: number;
  torchFps?: number;
  torchBestFps?: number;
  /** Median over pairs of esrvid fps / PyTorch fps. */
  ratio?: number;
  esrvidGflops: number;
  torchGflops?: number;
  /** (max - min) / median of esrvid's run times: a noisy machine shows here. */
  esrvidSpread: number;
  /** Cores' worth of CPU time other processes took during the measured runs (Linux). */
  otherLoad?: number;
  /** The FMA kernel's GFLOP/s on all threads right before and after the case (mean): the machine's speed at the time. */
  caseFmaGflops?: number;
}

export interface EndToEndResult {
  clip: string;
  clipLoops: number;
  model: string;
  runs: EndToEndRun[];
  /** Inference-only ms per frame (batch 1, same frame size), one block of frames per pair. */
  inferOnlyMs: number[][];
  endToEndFps: number;
  inferOnlyFps: number;
  /** Cores' worth of other work during each pair: the larger of its end-to-end run's and its inference block's. */
  pairOtherLoad: (number | undefined)[];
  /**
   * Median over pairs of end-to-end fps / inference-only fps, over the quiet pairs (other load
   * <= QUIET_LOAD) when there are any: other work hitting one half of a pair skews its ratio.
   */
  efficiency: number;
  efficiencyPairs: 'quiet' | 'all';
  /** Frames / (the pipeline's own inference time): inference inside the running pipeline. */
  inPipelineInferFps: number;
  /** The pipeline's inference time / its elapsed time: how busy the slowest stage kept. */
  inferBusyShare: number;
  peakRssBytes: number;
  /** Where the jobs' core time went (each share the median over the pairs used for `efficiency`); Linux only. */
  coreTime?: CoreTime;
  /** Inference alone's CPU time / (cores x its wall time): how busy it kept the machine (median over pairs). */
  aloneBusyShare?: number;
}

export interface SuiteResult {
  startedAt: string;
  /** 1-minute load average after each case: the suite itself adds about `threads`; more is other work. */
  loadAverages: number[];
  durationMs: number;
  machine: MachineInfo;
  versions: { esrvid: string; node: string; onnxruntime: string; torch?: TorchInfo; compiler?: string };
  options: Omit<BenchOptions, 'log' | 'python'>;
  /** How esrvid's stage ran: lanes x threads per lane (`options.threads` in all). */
  stage?: { lanes: number; threadsPerLane: number };
  peak?: { gflops: number; measured: FmaPeak[] };
  models: ModelResult[];
  cases: CaseResult[];
  levers: LeverResult[];
  /** int8 against float32, per compact model and frame size (batch 1). */
  int8: Int8CaseResult[];
  endToEnd?: EndToEndResult;
  /** Pipeline efficiency per model and size (the sweep); the headline's own case is `endToEnd` again. */
  efficiencySweep?: SweepRow[];
  notes: string[];
}

export interface SweepRow extends EndToEndResult {
  width: number;
  height: number;
  /** This row is the headline measurement (`endToEnd`), not measured again. */
  reusesEndToEnd: boolean;
}


export async function runSuite(o: BenchOptions): Promise<SuiteResult> {
  const started = performance.now();
  const startedAt = new Date().toISOString();
  const notes: string[] = [];
  const tmp = await mkdtemp(join(tmpdir(), 'esrvid-bench-'));
  const { loadRegistry } = await import('../models/registry.js');
  const registry = loadRegistry();
  const architectureOf = (m: string) => registry.models.find((r) => r.name === m)?.architecture ?? '';
  const cases = planCases({ models: o.models, sizes: o.sizes, batches: o.batches, architectureOf });
  const result: SuiteResult = {
    startedAt,
    durationMs: 0,
    machine: describeMachine(),
    versions: { esrvid: packageVersion(), node: process.version, onnxruntime: (await import('onnxruntime-node')).env.versions.common },
    options: withoutRuntime(o),
    loadAverages: [],
    models: [],
    cases: [],
    levers: [],
    int8: [],
    notes,
  };
  const peaks: FmaPeak[] = [];
  /** The FMA kernel, kept for the probes around each case (none with --peak-gflops). */
  let probe: FmaProbe | undefined;
  const measurePeak = async () => {
    if (o.peakGflops !== undefined) return;
    try {
      probe ??= await FmaProbe.build();
      const p = await measureFmaPeak(o.threads, { tries: 2, probe });
      peaks.push(p);
      o.log(`FMA peak: ${p.gflops512.toFixed(0)} GFLOP/s at 512 bits, ${p.gflops256.toFixed(0)} at 256 bits (${o.threads} threads); one thread ${p.gflopsOneThread.toFixed(0)}`);
    } catch (err) {
      if (peaks.length === 0) notes.push(`FMA peak not measured: ${(err as Error).message}; give --peak-gflops`);
    }
  };

  let torch: TorchReference | undefined;
  try {
    await measurePeak();
    if (o.reference === 'pytorch') {
      if (o.precision !== 'fp32') notes.push(`PyTorch reference skipped: it runs float32 only (PyTorch has no fast ${o.precision === 'fp16' ? 'float16 convolution on CPU' : 'int8 path for these networks here'})`);
      else {
        try {
          torch = await TorchReference.start(o.python, o.threads);
          result.versions.torch = torch.info;
          o.log(`PyTorch ${torch.info.torch} (${o.python}), ${torch.info.threads} threads, oneDNN ${torch.info.mkldnn ? 'on' : 'off'}`);
        } catch (err) {
          notes.push(`PyTorch reference skipped: ${(err as Error).message.split('\n')[0]} (scripts/bench.sh installs Debian's python3-torch)`);
        }
      }
    }

    const { resolveModel } = await import('../models/resolve.js');
    const { pullReporter } = await import('../commands/models.js');
    const modelNames = [...new Set(cases.map((c) => c.model))];
    // Every model is resolved (and pulled) first, so a mistyped name fails before any measuring.
    const resolved = [];
    const { ModelError } = await import('../errors.js');
    for (const name of modelNames) {
      let model;
      try {
        model = await resolveModel(name, { device: o.device, precision: o.precision, onPull: pullReporter(process.stderr) });
      } catch (err) {
        // With --precision int8, a model without an int8 file (RRDBNet, or under the quality gate) is skipped, not fatal.
        if (o.precision !== 'int8' || !(err instanceof ModelError)) throw err;
        notes.push(`${name}: skipped: ${err.oneLine()}`);
        o.log(`${name}: skipped: ${err.oneLine()}`);
        continue;
      }
      // FLOPs and the reference's weights always come from the float32 graph.
      const fp32 = model.precision === 'fp32' ? model.path : (await resolveModel(name, { device: o.device, precision: 'fp32' })).path;
      resolved.push({ model, fp32 });
    }
    for (const { model, fp32 } of resolved) {
      try {
        await measureModel(model, fp32, cases.filter((k) => k.model === model.name), torch, tmp, o, result, probe);
      } catch (err) {
        // One model failing (a worker crash, memory) still leaves the others' numbers.
        notes.push(`${model.name}: measurement failed: ${(err as Error).message.split('\n')[0]}`);
        o.log(`  ${model.name} failed: ${(err as Error).message.split('\n')[0]}`);
      }
    }

    if (o.levers) {
      for (const lever of LEVERS) {
        for (const { model } of resolved) {
          const first = cases.find((k) => k.model === model.name);
          if (!first || (lever.architecture && !model.architecture.startsWith(lever.architecture))) continue;
          try {
            const r = await measureLever(lever, model, { width: first.width, height: first.height, batch: lever.batch ?? 1 }, o);
            result.levers.push(r);
            o.log(`  ${describeLever(r)}`);
          } catch (err) {
            notes.push(`lever "${lever.name}" on ${model.name}: measurement failed: ${(err as Error).message.split('\n')[0]}`);
          }
        }
      }
    }

    if (o.int8 && o.precision === 'fp32') await measureInt8Rows(resolved.map((r) => r.model), cases, o, result);
    if (o.endToEnd) result.endToEnd = await measureEndToEnd(o, notes, tmp);
    if (o.efficiencySweep) result.efficiencySweep = await measureSweep(o, result, tmp);
    // A second look at the peak after a long suite, when the machine may have been busier or quieter.
    if (performance.now() - started > 60_000) await measurePeak();
  } finally {
    await probe?.close();
    await torch?.close();
    await rm(tmp, { recursive: true, force: true });
  }
  if (o.peakGflops !== undefined) result.peak = { gflops: o.peakGflops, measured: [] };
  else if (peaks.length > 0) result.peak = { gflops: bestPeak(peaks), measured: peaks };
  result.durationMs = performance.now() - started;
  return result;
}

/** int8 rows for the compact models of the suite: each size it measures, at batch 1. */
async function measureInt8Rows(models: { name: string; path: string; scale: number; architecture: string }[], cases: BenchCase[], o: BenchOptions, result: SuiteResult): Promise<void> {
  const { int8File, int8Supported } = await import('../models/int8-install.js');
  const { pullReporter } = await import('../commands/models.js');
  for (const model of models.filter((m) => int8Supported(m.architecture))) {
    const sizes = [...new Map(cases.filter((c) => c.model === model.name).map((c) => [`${c.width}x${c.height}`, [c.width, c.height] as [number, number]])).values()];
    try {
      const { path, entry } = await int8File(model.name, { architecture: model.architecture, onEvent: pullReporter(process.stderr) });
      o.log(`${model.name} int8: ${entry.minPsnrDb.toFixed(1)} dB PSNR (worst frame) against float32${entry.offered ? '' : ', under the gate: not offered'}`);
      result.int8.push(...await measureInt8({
        name: model.name, scale: model.scale, fp32Path: model.path, int8Path: path,
        minPsnrDb: entry.minPsnrDb, medianPsnrDb: entry.medianPsnrDb, offered: entry.offered,
      }, sizes, o));
    } catch (err) {
      result.notes.push(`${model.name}: int8 measurement failed: ${(err as Error).message.split('\n')[0]}`);
    }
  }
}

/**
 * The machine's peak from the measurements: the best all-thread figure, or threads x the best
 * one-thread figure when that is higher (a neighbour busy on one core lowers the all-thread
 * figure, not the one-thread one; on an idle machine the two agree).
 */
export function bestPeak(peaks: readonly FmaPeak[]): number {
  return Math.max(...peaks.map((p) => Math.max(p.gflops512, p.gflops256, p.gflopsOneThread * p.threads)));
}

async function measureModel(
  model: { name: string; path: string; scale: number; architecture: string; precision: ModelPrecision },
  fp32: string,
  modelCases: BenchCase[],
  torch: TorchReference | undefined,
  tmp: string,
  o: BenchOptions,
  result: SuiteResult,
  probe?: FmaProbe,
): Promise<void> {
  const { name } = model;
  const graph = decodeModel(await readFile(fp32));
  const flops = countFlops(graph);
  const stage = await OrtStage.open(model.path, model.scale, o.threads, { precision: model.precision, lanes: o.lanes });
  result.stage ??= { lanes: stage.lanes, threadsPerLane: stage.threadsPerLane ?? o.threads };
  const mr: ModelResult = { name, path: model.path, architecture: model.architecture, flops, loadMs: stage.loadMs, engine: stage.engine };
  result.models.push(mr);
  o.log(`${name}: ${(flops.convFlopsPerInputPixel / 1e6).toFixed(2)} MFLOP per input pixel, ${flops.convCount} convolutions, ${(flops.parameterCount / 1e6).toFixed(2)} M parameters`);
  let reference = torch;
  if (torch) {
    try {
      const r = await loadReference(torch, name, graph, tmp, o.threads);
      mr.torchArchitecture = r.architecture;
      mr.parity = r.parity;
      o.log(`  PyTorch ${r.architecture.type} matches: max |diff| ${r.parity.maxAbs.toExponential(1)}, ${(100 * r.parity.sameByte).toFixed(3)}% same 8-bit values`);
      if (!r.parity.ok) {
        result.notes.push(`${name}: PyTorch output differs from ONNX by ${r.parity.maxAbs.toExponential(2)} (> ${PARITY_TOLERANCE}); not compared`);
        reference = undefined;
      }
    } catch (err) {
      result.notes.push(`${name}: PyTorch reference failed: ${(err as Error).message.split('\n')[0]}`);
      reference = undefined;
    }
  }
  try {
    for (const c of modelCases) {
      const r = await measureCase(c, stage, reference, flops, tmp, o, probe);
      result.cases.push(r);
      result.loadAverages.push(loadavg()[0]!);
      o.log(caseLine(r));
    }
  } finally {
    await stage.close();
    await reference?.release(name).catch(() => undefined);
  }
}

async function loadReference(torch: TorchReference, key: string, graph: OnnxGraph, tmp: string, threads: number) {
  const architecture = await torch.loadGraph(key, graph, tmp);
  // One small frame through both: ONNX Runtime with the float network output exposed.
  const [width, height] = [32, 24];
  const frame = syntheticFrames(1, width, height, 7);
  const inPath = join(tmp, 'parity.u8');
  const outPath = join(tmp, 'parity.f32');
  await writeFile(inPath, frame);
  await torch.infer(key, inPath, outPath, 1, width, height);
  const theirs = new Float32Array(new Uint8Array(await readFile(outPath)).buffer);
  const ort = await import('onnxruntime-node');
  const variant = withNetworkOutput(graph);
  const session = await ort.InferenceSession.create(variant.bytes, { intraOpNumThreads: threads });
  let ours: Float32Array;
  try {
    const out = await session.run({ [graph.inputName]: new ort.Tensor('uint8', frame, [1, height, width, 3]) });
    ours = out[variant.name]!.data as Float32Array;
  } finally {
    await session.release();
  }
  const parity = compareOutputs(ours, theirs);
  return { architecture, parity: { ...parity, width, height, ok: parity.maxAbs <= PARITY_TOLERANCE } };
}

/** FLOP per thread of a probe around a case: ~0.1 s at 180 GFLOP/s a thread. */
const PROBE_FLOP = 2e10;

async function measureCase(c: BenchCase, stage: OrtStage, torch: TorchReference | undefined, flops: FlopCount, tmp: string, o: BenchOptions, probe?: FmaProbe): Promise<CaseResult> {
  // The machine's FMA speed right before and after the case: a shared machine slowed for minutes
  // slows both runtimes alike, and the case's % of peak is also given against this speed.
  const speed = () => probe?.gflops(o.threads, 512, PROBE_FLOP).catch(() => undefined);
  const speedBefore = await speed();
  const frames = realFrames(c.batch, c.width, c.height);
  const input = join(tmp, `frames-${c.batch}x${c.width}x${c.height}.u8`);
  if (torch) await writeFile(input, frames);
  const runEsrvid = () => stage.time(c.batch, c.width, c.height, frames);
  const runTorch = async () => {
    await sleep(o.pauseMs);
    const ms = await torch!.time(c.model, input, c.batch, c.width, c.height);
    await sleep(o.pauseMs);
    return ms;
  };
  const pids = torch?.pid ? [torch.pid] : [];
  let before: ReturnType<typeof snapshot>;
  const { a: esrvidMs, b: torchMs } = await alternate(runEsrvid, torch ? runTorch : undefined, {
    warmup: o.warmup, runs: o.runs, minCaseMs: o.minCaseMs, onMeasuring: () => (before = snapshot(pids)),
  });
  const load = otherLoad(before, snapshot(pids));
  const speedAfter = await speed();
  const fps = (ms: number[]) => ms.map((t) => framesPerSecond(c.batch, t));
  const gflops = (f: number) => (f * c.width * c.height * flops.convFlopsPerInputPixel) / 1e9;
  const esrvidFps = median(fps(esrvidMs));
  const r: CaseResult = {
    ...c,
    esrvidMs,
    esrvidFps,
    esrvidBestFps: Math.max(...fps(esrvidMs)),
    esrvidGflops: gflops(esrvidFps),
    esrvidSpread: relativeSpread(esrvidMs),
    ...(load === undefined ? {} : { otherLoad: load }),
    ...(speedBefore !== undefined && speedAfter !== undefined ? { caseFmaGflops: (speedBefore + speedAfter) / 2 } : {}),
  };
  if (torch) {
    r.torchMs = torchMs;
    r.torchFps = median(fps(torchMs));
    r.torchBestFps = Math.max(...fps(torchMs));
    r.torchGflops = gflops(r.torchFps);
    r.ratio = pairedRatio(fps(esrvidMs), fps(torchMs));
  }
  return r;
}

export function caseLine(r: CaseResult): string {
  const ref = r.torchFps !== undefined ? `, PyTorch ${r.torchFps.toFixed(2)} fps, esrvid/PyTorch ${r.ratio!.toFixed(2)}x` : '';
  const busy = r.otherLoad !== undefined ? `; other work ${r.otherLoad.toFixed(1)} cores` : '';
  const speed = r.caseFmaGflops !== undefined ? `; FMA kernel around it ${r.caseFmaGflops.toFixed(0)} GFLOP/s` : '';
  return `  ${r.model} ${r.width}x${r.height} batch ${r.batch}: esrvid ${r.esrvidFps.toFixed(2)} fps (${r.esrvidGflops.toFixed(0)} GFLOP/s)${ref}${busy}${speed}`;
}

async function measureEndToEnd(o: BenchOptions, notes: string[], tmp: string): Promise<EndToEndResult | undefined> {
  let clip = o.clip;
  if (o.clipLoops > 1) {
    try {
      clip = await loopClip(o.clip, o.clipLoops, tmp);
    } catch (err) {
      notes.push(`end-to-end skipped: cannot loop ${o.clip}: ${(err as Error).message.split('\n')[0]}`);
      return undefined;
    }
  }
  const pairs = await measurePairs(clip, o.endToEndModel, o.endToEndRuns, 16, o, notes);
  return pairs && { clip: o.clip, clipLoops: o.clipLoops, ...pairs };
}

/**
 * Pipeline efficiency for every model and frame size of the suite (batch 1, the CLI's default):
 * a real clip scaled to the size, long enough for about `sweepSeconds` of inference (24 to 240
 * frames), in pairs as the headline measurement. The headline's own model and size reuse it.
 */
async function measureSweep(o: BenchOptions, result: SuiteResult, tmp: string): Promise<SweepRow[]> {
  const rows: SweepRow[] = [];
  const seen = new Set<string>();
  for (const c of result.cases) {
    const key = `${c.model} ${c.width}x${c.height}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const e = result.endToEnd;
    const headline = e?.model === c.model && e.runs[0]?.inputSize[0] === c.width && e.runs[0]?.inputSize[1] === c.height;
    if (headline) {
      rows.push({ ...e, width: c.width, height: c.height, reusesEndToEnd: true });
      continue;
    }
    // The case's slowest batch speed sets the length (batch 1 where it was measured).
    const fps = Math.min(...result.cases.filter((k) => k.model === c.model && k.width === c.width && k.height === c.height).map((k) => k.esrvidFps));
    const frames = sweepFrames(fps, o.sweepSeconds);
    o.log(`pipeline efficiency, ${key}: ${frames} frames`);
    let clip: string;
    try {
      clip = await sizedClip(o.clip, c.width, c.height, frames, tmp);
    } catch (err) {
      result.notes.push(`pipeline efficiency of ${key} skipped: cannot make its clip: ${(err as Error).message.split('\n')[0]}`);
      continue;
    }
    const pairs = await measurePairs(clip, c.model, o.sweepRuns, 3, o, result.notes);
    await rm(clip, { force: true });
    if (pairs) rows.push({ clip: o.clip, clipLoops: 1, ...pairs, width: c.width, height: c.height, reusesEndToEnd: false });
  }
  return rows;
}

/** Frames for a sweep job of about `seconds` of inference at `fps`: at least 24 (12 per lane of two), at most 240. */
export function sweepFrames(fps: number, seconds: number): number {
  if (!(fps > 0)) return 24;
  return Math.max(24, Math.min(240, Math.round(fps * seconds)));
}

/**
 * The whole CLI on `clip`, `runs` times, each paired with inference alone on frames of the job's
 * size (at least `minBlocks` blocks); undefined if a job failed (the note says why).
 */
async function measurePairs(clip: string, modelName: string, runCount: number, minBlocks: number, o: BenchOptions, notes: string[]): Promise<Omit<EndToEndResult, 'clip' | 'clipLoops'> | undefined> {
  const { resolveModel } = await import('../models/resolve.js');
  const model = await resolveModel(modelName, { device: o.device, precision: o.precision });
  let stage: OrtStage | undefined;
  const runs: EndToEndRun[] = [];
  const inferOnlyMs: number[][] = [];
  const pairOtherLoad: (number | undefined)[] = [];
  const pairCoreTime: (CoreTime | undefined)[] = [];
  const pairAloneBusy: number[] = [];
  const cores = availableParallelism();
  try {
    /** One whole CLI job, and the other processes' load while it ran; undefined if it failed. */
    const timeJob = async () => {
      const before = snapshot();
      try {
        const run = await runEndToEnd(clip, modelName, o.threads, { lanes: o.lanes, precision: o.precision });
        return { run, load: otherLoad(before, snapshot()) };
      } catch (err) {
        notes.push(`end-to-end run of ${modelName} failed: ${(err as Error).message}`);
        return undefined;
      }
    };
    /**
     * Inference alone on frames of the job's size at batch 1 (the CLI's default), after one
     * warm-up: blocks of two calls per lane, enough for about half the job's frames (at least
     * `minBlocks`), so the denominator averages over seconds of the machine's speed as the job does.
     */
    const timeInference = async (job: EndToEndRun) => {
      const [w, h] = job.inputSize;
      stage ??= await OrtStage.open(model.path, model.scale, o.threads, { precision: model.precision, lanes: o.lanes });
      const frames = realFrames(1, w, h);
      await stage.time(1, w, h, frames);
      const blocks = Math.max(minBlocks, Math.min(96, Math.ceil(job.frames / 2 / (2 * stage.lanes))));
      const before = snapshot();
      const cpuBefore = cpuTime().processMs;
      const wallBefore = performance.now();
      const block: number[] = [];
      for (let k = 0; k < blocks; k++) block.push(await stage.time(1, w, h, frames));
      const wallMs = performance.now() - wallBefore;
      const cpuMs = cpuTime().processMs - cpuBefore;
      // Each block is two single-frame calls per lane.
      return { block, load: otherLoad(before, snapshot()), cpuMsPerFrame: cpuMs / (blocks * 2 * stage.lanes), busyShare: cpuMs / (cores * wallMs) };
    };
    for (let i = 0; i < runCount; i++) {
      // ABBA: every other pair times inference alone first (on the first pair's frame size and
      // length), so a drift in the machine's speed favours neither side of the ratio.
      const inferenceFirst = i % 2 === 1;
      const alone = inferenceFirst ? await timeInference(runs[0]!) : undefined;
      if (alone) await sleep(o.pauseMs);
      const job = await timeJob();
      if (!job) return undefined;
      await sleep(o.pauseMs);
      const { block, load: blockLoad, cpuMsPerFrame, busyShare } = alone ?? await timeInference(job.run);
      if (!alone) await sleep(o.pauseMs);
      const { run } = job;
      runs.push(run);
      inferOnlyMs.push(block);
      pairCoreTime.push(coreTimeShares(run, cpuMsPerFrame, cores));
      pairAloneBusy.push(busyShare);
      // A pair is as quiet as its busier half: a burst during the shorter inference block counts fully.
      const loads = [job.load, blockLoad];
      const load = loads.some((l) => l === undefined) ? undefined : Math.max(...(loads as number[]));
      pairOtherLoad.push(load);
      const e2eFps = framesPerSecond(run.frames, run.elapsedMs);
      const inferFps = framesPerSecond(block.length, block.reduce((a, b) => a + b, 0));
      o.log(`  end to end ${run.frames} frames ${run.inputSize.join('x')}: ${e2eFps.toFixed(2)} fps (peak RSS ${(run.peakRssBytes / 2 ** 20).toFixed(0)} MiB); inference alone ${inferFps.toFixed(2)} fps`
        + `${inferenceFirst ? ' (timed first)' : ''}${load === undefined ? '' : `; other work ${load.toFixed(1)} cores`}`
        + `${pairCoreTime.at(-1) ? `; core time: ${describeCoreTime(pairCoreTime.at(-1)!)}` : ''}`);
    }
  } finally {
    await stage?.close();
  }
  const e2e = runs.map((r) => framesPerSecond(r.frames, r.elapsedMs));
  const infer = inferOnlyMs.map((b) => framesPerSecond(b.length, b.reduce((x, y) => x + y, 0)));
  const quiet = pairOtherLoad.map((l, i) => (l !== undefined && l <= QUIET_LOAD ? i : -1)).filter((i) => i >= 0);
  const pick = <T>(xs: T[]) => (quiet.length > 0 ? quiet.map((i) => xs[i]!) : xs);
  const shares = pick(pairCoreTime).filter((c): c is CoreTime => c !== undefined);
  const medianShare = (k: keyof CoreTime) => median(shares.map((c) => c[k]));
  const coreTime = shares.length > 0
    ? { inference: medianShare('inference'), esrvidOther: medianShare('esrvidOther'), ffmpeg: medianShare('ffmpeg'), idle: medianShare('idle') }
    : undefined;
  return {
    model: modelName,
    runs,
    inferOnlyMs,
    endToEndFps: median(e2e),
    inferOnlyFps: median(infer),
    pairOtherLoad,
    efficiency: pairedRatio(pick(e2e), pick(infer)),
    efficiencyPairs: quiet.length > 0 ? 'quiet' : 'all',
    inPipelineInferFps: median(runs.map((r) => framesPerSecond(r.frames, r.stageMs.infer))),
    inferBusyShare: median(runs.map((r) => r.stageMs.infer / r.elapsedMs)),
    peakRssBytes: Math.max(...runs.map((r) => r.peakRssBytes)),
    ...(coreTime ? { coreTime } : {}),
    aloneBusyShare: median(pick(pairAloneBusy)),
  };
}

function withoutRuntime(o: BenchOptions): SuiteResult['options'] {
  const { log: _log, python: _python, ...options } = o;
  return options;
}
