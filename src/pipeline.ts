/**
 * The main job: decode -> upscale -> encode, all three running at once.
 *
 *   ffmpeg (decode) --raw RGB--> FramePool --batch--> inference worker --slots--> ffmpeg (encode)
 *
 * Memory is bounded by the frame pool and the batch slots, never by the video's length. Every
 * frame decoded is a frame encoded, in order, with its source timestamp. Output goes to a
 * temporary file beside the destination and is renamed only when complete; on any failure or
 * cancel, every child process and the worker are stopped and the temporary file is removed.
 */
import { randomBytes } from 'node:crypto';
import { totalmem } from 'node:os';
import { access, constants, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import PQueue from 'p-queue';
import { AsyncQueue } from './async-queue.js';
import { Decoder, type DecodedFrame } from './decode/decoder.js';
import { carriedStreams, containerFor, defaultCodec } from './encode/containers.js';
import { segmentArgs } from './encode/encoder-args.js';
import { SegmentWriter } from './encode/segment-writer.js';
import { defaultPixFmt, orientation, targetSize } from './encode/output-size.js';
import { checkOutputPath } from './encode/output-path.js';
import { createWorkDir, fingerprint, inspectWorkDir, workDirFor, type JobIdentity, type SegmentRecord } from './encode/work-dir.js';
import { joinSegments } from './encode/join.js';
import { planRange, rangeFrameTimes, type RangePlan } from './decode/range.js';
import { CancelledError, DeviceError, EsrvidError, InputError, OutputError, UsageError } from './errors.js';
import type { PipelineEvent } from './events.js';
import { findFfmpeg } from './ffmpeg/binaries.js';
import { i420Matrix, planColour } from './ffmpeg/colour.js';
import { HDR_ENCODER } from './ffmpeg/hdr.js';
import { frameDurationUs, probe, type MediaInfo } from './ffmpeg/probe.js';
import { autoBatch, gpuBytesPerPixel, gpuMemoryBudget, indexablePixels, peakElementsPerPixel } from './infer/batch-plan.js';
import { defaultPrecision, isGpu, type DeviceRequest } from './infer/device.js';
import { queryGpus } from './infer/gpus.js';
import { describePlan, exceedsIndexRange, nextPlan, type InferencePlan } from './infer/oom.js';
import { autoTileSize, bytesPerInputPixel, copyWindow, placeCore, planTiles, type TilePlan } from './infer/tiling.js';
import { nativeKernel } from './infer/native-cpu.js';
import { InferenceError, Upscaler, type BatchSlot } from './infer/upscaler.js';
import { FramePool } from './decode/frame-pool.js';
import type { ModelPrecision } from './models/store.js';
import type { PullEvent } from './models/pull.js';
import { refuseInt8OnGpu } from './models/int8-install.js';
import { resolveModel } from './models/resolve.js';
import { peakRssBytes } from './peak-memory.js';
import { cpuTime, cpuTimeSince, type CpuTime } from './cpu-time.js';

export interface UpscaleOptions {
  input: string;
  output: string;
  /** Output scale relative to the input (default: the model's native scale). */
  scale?: number;
  /** Only frames shown from `start` (inclusive) to `end` (exclusive), in seconds from the start. */
  start?: number;
  end?: number;
  /** Only frames a (inclusive) to b (exclusive), counted from 0 in presentation order. */
  frames?: [number, number | undefined];
  /** Registry name, 'auto', or a path to an esrvid .onnx model. */
  model?: string;
  /** Tile size in input pixels (0: never tile; default 'auto': tile only what would not fit memory). */
  tile?: number | 'auto';
  /** Context around each tile, input pixels (default 16). */
  tilePad?: number;
  /** Memory inference may use, bytes (default: a quarter of RAM, at most 8 GiB); drives 'auto' tiling. */
  memoryBudget?: number;
  /** Length of the resumable video segments, seconds of source (default 10). */
  segmentSeconds?: number;
  /** Require an unfinished job to continue (default: continue one if it matches, else start). */
  resume?: boolean;
  /** Discard an unfinished job for this output and start over. */
  restart?: boolean;
  /** Where the network runs (default 'auto': CUDA, then WebGPU, then the CPU). */
  device?: DeviceRequest;
  /** CUDA device index, counted as CUDA does (default 0). */
  gpu?: number;
  /** Model precision (default: fp16 on a GPU, fp32 on the CPU); int8 runs on the CPU only. */
  precision?: ModelPrecision;
  /** Frames per inference call on a GPU (default: src/infer/batch-plan.ts autoBatch); on the CPU, frames per lane dispatch, one call each (default 1). */
  batch?: number;
  /** Inference threads in all (default: every physical core on the CPU). */
  threads?: number;
  /** CPU sessions upscaling frames side by side, threads / lanes threads each (default: src/infer/device.ts cpuLanes). */
  lanes?: number;
  /**
   * A frame byte-identical to the frame before it reuses that frame's upscaled output instead of
   * being upscaled again (default true): the network gives identical input identical output, so
   * the result is the same, and static scenes, held frames and animation on twos cost nothing.
   */
  reuseIdentical?: boolean;
  codec?: string;
  crf?: number;
  preset?: string;
  pixFmt?: string;
  overwrite?: boolean;
  ffmpegPath?: string;
  ffprobePath?: string;
  signal?: AbortSignal;
  onEvent?: (e: PipelineEvent) => void;
  onPull?: (e: PullEvent) => void;
  /** How often progress events are emitted, ms. */
  progressIntervalMs?: number;
  /** @internal A worker module speaking src/infer/worker-protocol.ts in place of ONNX Runtime (tests). */
  inferenceWorker?: URL;
  /**
   * An open Upscaler (Upscaler.open) to run on instead of opening one; the caller closes it. A
   * job that succeeds leaves it loaded, so the next job with the same model keeps its sessions
   * (a scale-out worker's segments); a job that fails once frames are flowing closes it (calls
   * may still be running): check `usable` before reusing it. `device`, `gpu`, `threads` and
   * `lanes` are then the Upscaler's.
   */
  upscaler?: Upscaler;
  /**
   * @internal Scale-out (src/scale-out): upscale one planned segment of the source into `dir`
   * as one segment file and its record, instead of writing `output` (which then only names the
   * container). No work directory of the output is read or written, and nothing is joined.
   */
  segment?: SegmentJob;
}

/** One segment of a scale-out job: `frames` frames of the source from `firstPtsUs` on. */
export interface SegmentJob {
  index: number;
  /** A folder of this worker's own; the finished segment file and its record are written in it. */
  dir: string;
  frames: number;
  /** Source timestamps (µs) of the segment's first frame and of the frame after its last (Infinity at the end). */
  firstPtsUs: number;
  endPtsUs: number;
}

export interface UpscaleResult {
  output: string;
  frames: number;
  /** Of `frames`, those identical to the frame before, written from its upscaled output. */
  reusedFrames: number;
  elapsedMs: number;
  bytes: number;
  model: string;
  info: MediaInfo;
  /** Scale-out segment mode: the segment written. */
  segment?: SegmentRecord;
}

/** Largest frame side the encoders here accept (x264/x265 refuse larger). */
export const MAX_OUTPUT_SIDE = 16384;

/** Temporary outputs left by runs that were killed (their process is gone) are deleted. */
async function removeStaleTemporaries(outAbs: string): Promise<void> {
  const prefix = `.${basename(outAbs)}.esrvid-`;
  for (const f of await readdir(dirname(outAbs))) {
    const m = f.startsWith(prefix) ? /^(\d+)-[0-9a-f]+\.partial$/.exec(f.slice(prefix.length)) : null;
    if (!m) continue;
    let alive = true;
    try {
      process.kill(Number(m[1]), 0);
    } catch {
      alive = false;
    }
    if (!alive) await rm(join(dirname(outAbs), f), { force: true });
  }
}


export async function upscaleVideo(o: UpscaleOptions): Promise<UpscaleResult> {
  const started = performance.now();
  const cpuAtStart = cpuTime();
  const emit = (e: PipelineEvent) => o.onEvent?.(e);
  const container = containerFor(o.output);
  if (o.scale !== undefined && !(o.scale > 0 && o.scale <= 16)) throw new UsageError(`--scale must be between 0 and 16, got ${o.scale}`);
  if (o.batch !== undefined && !(Number.isInteger(o.batch) && o.batch >= 1 && o.batch <= 64)) throw new UsageError(`--batch must be a whole number from 1 to 64, got ${o.batch}`);

  if (o.start !== undefined && !(o.start >= 0)) throw new UsageError(`--start must be 0 or more, got ${o.start}`);
  if (o.end !== undefined && !(o.end > (o.start ?? 0))) throw new UsageError(`--end (${o.end}) must be after --start (${o.start ?? 0})`);
  if (o.frames && (o.start !== undefined || o.end !== undefined)) throw new UsageError('give either --frames or --start/--end, not both');
  if (o.frames && !(o.frames[0] >= 0 && (o.frames[1] === undefined || o.frames[1] > o.frames[0]))) {
    throw new UsageError(`--frames ${o.frames[0]}:${o.frames[1] ?? ''} is empty`, 'use a:b with a < b (b excluded)');
  }

  if (o.resume && o.restart) throw new UsageError('give --resume or --restart, not both');
  // int8 (QDQ) models are for the CPU: with --device auto it picks the CPU; a GPU device is refused.
  const int8 = o.precision === 'int8';
  if (int8 && o.device !== undefined && o.device !== 'auto') refuseInt8OnGpu(o.device);
  if (o.gpu !== undefined) await checkGpuIndex(o.device ?? 'auto', o.gpu);

  const tools = await findFfmpeg({ ffmpeg: o.ffmpegPath, ffprobe: o.ffprobePath });
  // The device is chosen (the default model and precision depend on it), and the inference
  // threads load ONNX Runtime, while FFmpeg probes the input. A bad input still fails first, and
  // the threads are closed once idle: session 2 took this overlap back after a hang in 1 fuzz
  // case of 800, most likely the abort of a thread terminated while ONNX Runtime was loading,
  // which SessionThread.close() now avoids.
  const opening = o.upscaler ? Promise.resolve(o.upscaler) : Upscaler.open({
    device: int8 ? 'cpu' : o.device ?? 'auto', gpu: o.gpu, threads: o.threads, lanes: o.lanes, precision: o.precision === 'int8' ? 'fp32' : o.precision, workerUrl: o.inferenceWorker,
  });
  opening.catch(() => undefined);
  let ctx: JobContext;
  try {
    const info = await probe(tools.ffprobe, o.input);
    if (!o.segment) checkOutputPath(o.input, o.output, !!o.overwrite);
    const range = o.segment ? segmentRange(o.segment, info) : await planRange(o, info, tools.ffprobe);
    ctx = { started, cpuAtStart, emit, container, tools, info, range };
  } catch (err) {
    if (!o.upscaler) await opening.then((u) => u.close(), () => undefined);
    throw err;
  }
  const upscaler = await opening;
  if (int8 && upscaler.device !== 'cpu') refuseInt8OnGpu(upscaler.device);
  try {
    return await runJob(o, ctx, upscaler);
  } finally {
    if (!o.upscaler) await upscaler.close();
  }
}

/**
 * A scale-out segment as a range: seek to its first frame, stop before the next segment's, and
 * keep timestamps on the whole job's output clock (as a single-process run of the file has them),
 * so the segments join by stream copy.
 */
function segmentRange(seg: SegmentJob, info: MediaInfo): RangePlan {
  return {
    seekSeconds: seg.firstPtsUs / 1e6 - info.startTime,
    endUs: seg.endPtsUs,
    frameCount: seg.frames,
    shiftUs: Math.round(Math.max(0, info.startTime) * 1e6),
  };
}

/** `--gpu N` must name a GPU CUDA can see (when nvidia-smi can tell). */
async function checkGpuIndex(device: DeviceRequest, gpu: number): Promise<void> {
  if (device === 'cpu' || device === 'webgpu') {
    throw new UsageError(`--gpu selects a CUDA GPU; it has no meaning with --device ${device}`, 'use --device cuda (or auto) with --gpu');
  }
  const { gpus } = await queryGpus();
  if (gpus.length > 0 && gpu >= gpus.length) {
    throw new UsageError(`--gpu ${gpu}: CUDA sees ${gpus.length} GPU(s): ${gpus.map((g, i) => `${i} ${g.name}`).join(', ')}`, `use --gpu 0${gpus.length > 1 ? ` to ${gpus.length - 1}` : ''}`);
  }
}

/** A decoded frame with the timestamps of the identical frames right after it, which reuse its upscaled output. */
interface SourceFrame extends DecodedFrame {
  repeatPtsUs: number[];
}

interface JobContext {
  started: number;
  /** CPU time at the job's start, for the `done` event's cpuMs. */
  cpuAtStart: CpuTime;
  emit: (e: PipelineEvent) => void;
  container: ReturnType<typeof containerFor>;
  tools: Awaited<ReturnType<typeof findFfmpeg>>;
  info: MediaInfo;
  range: Awaited<ReturnType<typeof planRange>>;
}

async function runJob(o: UpscaleOptions, ctx: JobContext, upscaler: Upscaler): Promise<UpscaleResult> {
  const { started, cpuAtStart, emit, container, tools, info, range } = ctx;
  const v = info.video;
  const device = upscaler.device;
  const model = await resolveModel(o.model ?? 'auto', { device, precision: o.precision ?? defaultPrecision(device), onPull: o.onPull });
  // The session is created in the worker thread while the job is planned here and FFmpeg starts;
  // awaited before the first batch. A planning error leaves it to upscaler.close().
  const loading = upscaler.load(model.path, model.scale, model.precision);
  loading.catch(() => undefined);
  const scale = o.scale ?? model.scale;
  const codec = o.codec ?? defaultCodec(container);
  const pixFmt = o.pixFmt ?? defaultPixFmt(v.bitDepth);
  const { keepRotationTag, quarterTurn } = orientation(container, v.rotation);
  const inW = quarterTurn ? v.height : v.width;
  const inH = quarterTurn ? v.width : v.height;
  const frameW = inW * model.scale;
  const frameH = inH * model.scale;
  const [outW, outH] = targetSize(inW, inH, scale, pixFmt);
  if (outW > MAX_OUTPUT_SIDE || outH > MAX_OUTPUT_SIDE) {
    throw new InputError(`the upscaled video would be ${outW}x${outH}, larger than the encoders' limit of ${MAX_OUTPUT_SIDE} pixels a side`,
      `use a smaller --scale (at most ${Math.floor((MAX_OUTPUT_SIDE / Math.max(inW, inH)) * 100) / 100})`);
  }

  const colour = planColour(v);
  const carry = carriedStreams(container, info);
  const tilePad = o.tilePad ?? 16;
  // Memory per input pixel and what inference may use: RAM on the CPU; on CUDA, the GPU's free
  // memory as nvidia-smi reports it (fp16 halves the need). Without a figure (WebGPU, no
  // nvidia-smi) the RAM rule stands and the out-of-memory back-off covers the rest.
  let bytesPerPixel = bytesPerInputPixel(model.architecture);
  let budget = o.memoryBudget ?? Math.min(totalmem() * 0.25, 8 * 2 ** 30);
  let batch = o.batch ?? 1;
  // A GPU's kernels index tensors with 32-bit integers: no call may hold more input pixels than that allows.
  const maxPixels = device === 'cpu' ? Infinity : indexablePixels(peakElementsPerPixel(model.architecture, model.scale));
  // Every lane holds its own batch in memory at once; a window may not exceed the indexable size either.
  const lanes = upscaler.lanes;
  if (device === 'cuda') {
    const free = (await queryGpus()).gpus[o.gpu ?? 0]?.memoryFreeBytes;
    if (free !== undefined && Number.isFinite(free)) {
      bytesPerPixel = gpuBytesPerPixel(bytesPerPixel, model.precision === 'fp16' ? 'fp16' : 'fp32');
      budget = o.memoryBudget ?? gpuMemoryBudget(free, (await stat(model.path)).size, lanes);
      batch = o.batch ?? autoBatch(inW, inH, bytesPerPixel, budget / lanes, { maxPixels });
    }
  }
  const tileBudget = Math.min(budget, maxPixels * bytesPerPixel);
  const tile = o.tile === undefined || o.tile === 'auto' ? autoTileSize(inW, inH, batch * lanes, tilePad, bytesPerPixel, tileBudget) : o.tile;
  const tilePlan = tile > 0 && (inW > tile || inH > tile) ? planTiles(inW, inH, tile, tilePad) : undefined;
  const fps = v.avgFrameRate || v.rFrameRate;
  const totalFrames = range.frameCount ?? (range.durationSeconds !== undefined && fps ? Math.round(range.durationSeconds * fps)
    : v.frameCount ?? (v.duration && fps ? Math.round(v.duration * fps) : undefined));

  const frameUs = frameDurationUs(v);
  const outAbs = resolve(o.output);
  const tmp = join(dirname(outAbs), `.${basename(outAbs)}.esrvid-${process.pid}-${randomBytes(3).toString('hex')}.partial`);
  try {
    await access(o.segment?.dir ?? dirname(outAbs), constants.W_OK);
  } catch {
    throw new OutputError(`cannot write to ${o.segment?.dir ?? dirname(outAbs)}`, 'check the folder permissions or choose another output path');
  }

  // Resumable jobs: the work directory's job.json names everything that changes the output's
  // frames; a matching unfinished job is continued, a different one is never mixed in.
  const segmentSeconds = o.segmentSeconds ?? 10;
  if (!(segmentSeconds > 0)) throw new UsageError(`--segment-seconds must be positive, got ${segmentSeconds}`);
  const segmentFrames = o.segment ? o.segment.frames : Math.max(1, Math.round(segmentSeconds * (fps || 25)));
  const workDir = o.segment?.dir ?? workDirFor(outAbs);
  // A segment of a scale-out job has no identity of its own (its job's is in Redis): the input is
  // not read for one.
  const job: JobIdentity | undefined = o.segment ? undefined : {
    input: await fingerprint(o.input),
    settings: {
      model: model.name, modelFile: model.path, scale, outW, outH, codec, crf: o.crf ?? null, preset: o.preset ?? 'medium', pixFmt,
      tile: tilePlan ? tile : 0, tilePad, start: o.start ?? null, end: o.end ?? null, frames: o.frames ?? null, segmentFrames,
      rotateFrames: quarterTurn, ffmpeg: tools.ffmpeg.version,
      // GPUs compute slightly different pixels; CPU jobs keep the identity they had before GPUs.
      ...(device !== 'cpu' ? { device } : {}),
    },
  };
  // A segment of a scale-out job has no output of its own: nothing to clean or resume here.
  if (!o.segment) await removeStaleTemporaries(outAbs);
  const state = o.restart || !job ? ({ kind: 'none' } as const) : await inspectWorkDir(workDir, job);
  if (state.kind === 'other-job') {
    throw new OutputError(`${workDir} holds an unfinished job for this output with another input or other settings`,
      'run again with the same settings to resume it, or add --restart to discard it');
  }
  if (o.resume && (state.kind !== 'same-job' || state.finished.length === 0)) {
    throw new UsageError(`there is nothing to resume for ${o.output}`, 'run without --resume to start the job');
  }
  const resumed = state.kind === 'same-job' ? state.finished : [];
  const resumedFrames = resumed.reduce((n, r) => n + r.frames, 0);
  let seekSeconds = range.seekSeconds;
  let frameLimit = range.frameCount;
  // A segment must start on its planned frame, checked as a resume point is.
  let resumeAtUs: number | undefined = o.segment?.firstPtsUs;
  if (!job) {
    // A segment: the caller made the folder, and there is no job identity to record.
  } else if (resumedFrames > 0) {
    const times = await rangeFrameTimes(o, info, tools.ffprobe, range);
    frameLimit = times.length - resumedFrames;
    if (frameLimit > 0) {
      resumeAtUs = times[resumedFrames]!;
      seekSeconds = resumeAtUs / 1e6 - info.startTime;
    }
  } else await createWorkDir(workDir, job);

  const engine = await upscaler.engineOf();
  // Where the fused kernel runs, its lanes write the encoder's I420 themselves (src/native/yuv.h,
  // swscale's conversion within a level): the encoder converts nothing and the pipe carries half
  // the bytes. Only for yuv420p at the network's own size; ESRVID_I420=0 keeps RGB.
  const i420 = upscaler.writesI420 && process.env.ESRVID_I420 !== '0' && pixFmt === 'yuv420p'
    && outW === frameW && outH === frameH && frameW % 2 === 0 && frameH % 2 === 0 ? i420Matrix(colour) : undefined;
  const frameFormat = i420 ? 'yuv420p' : 'rgb24';
  emit({
    type: 'start', input: o.input, output: o.output, inputSize: [inW, inH], outputSize: [outW, outH],
    model: model.name, modelReason: model.reason, device, deviceReason: upscaler.selection.reason, precision: model.precision, batch, lanes, engine, frameFormat, tile: tilePlan ? tile : 0, totalFrames, fps,
  });
  if (tilePlan && (o.tile === undefined || o.tile === 'auto')) {
    emit({ type: 'warning', message: `frames of ${inW}x${inH} need about ${(inW * inH * bytesPerPixel / 2 ** 30).toFixed(1)} GiB with ${model.name}${isGpu(device) ? ` on ${device}` : ''}: upscaling in ${tilePlan.tiles.length} tiles of ${tile} px (--tile to choose)` });
  }
  if (colour.assumed && !/^(rgb|bgr|gbr|argb|abgr|rgba|bgra)/.test(v.pixFmt)) emit({ type: 'warning', message: `the source declares no colour matrix: assuming ${colour.tags.colorspace} (as players do for ${v.height >= 720 ? 'HD' : 'SD'})` });
  if (v.bitDepth > 8) {
    emit({ type: 'warning', message: `the source is ${v.bitDepth}-bit: the network works on 8-bit RGB, so the upscaled picture has 8-bit precision (written as ${pixFmt})` });
  }
  if (v.variableFrameRate) {
    emit({ type: 'warning', message: 'variable frame rate detected: every frame keeps its source timestamp' });
  }
  if (v.hdr && codec !== HDR_ENCODER) {
    emit({ type: 'warning', message: `the source's HDR10 metadata (mastering display, content light level) is written only by ${HDR_ENCODER}: this output (${codec}) will not carry it; use --codec ${HDR_ENCODER} to keep it` });
  }
  for (const w of carry.warnings) emit({ type: 'warning', message: w });
  if (resumedFrames > 0) {
    emit({ type: 'warning', message: `resuming an unfinished job: ${resumed.length} segment(s), ${resumedFrames} frames already done` });
  }

  const internal = new AbortController();
  const onOuterAbort = () => internal.abort();
  o.signal?.addEventListener('abort', onOuterAbort, { once: true });
  const signal = internal.signal;

  // Two slots per lane: one being upscaled and one queued behind it in the lane's worker (or
  // waiting for the encoder), so a lane never idles between calls.
  const slotsCount = 2 * lanes;
  const decoder = new Decoder({
    ffmpeg: tools.ffmpeg, input: o.input, streamIndex: v.index, width: inW, height: inH, colour,
    // Frames in the slots' units, a batch filling, the newest frame held back (it may be repeated), one decoding.
    noAutorotate: keepRotationTag, poolSize: batch * (slotsCount + 1) + 3, signal, startSeconds: seekSeconds,
  });
  const stage = { decode: 0, infer: 0, encode: 0 };
  let framesOut = resumedFrames;
  /** Frames written from the identical frame before them instead of upscaled again. */
  let reusedFrames = 0;
  let completed = false;
  const writer = new SegmentWriter({
    ffmpeg: tools.ffmpeg, dir: workDir, segmentFrames, firstIndex: o.segment?.index ?? resumed.length,
    track: { width: frameW, height: frameH, format: frameFormat, defaultDurationUs: frameUs },
    argsFor: (partial) => segmentArgs({
      ffmpeg: tools.ffmpeg, frameWidth: frameW, frameHeight: frameH, frameFormat, outWidth: outW, outHeight: outH,
      settings: { codec, crf: o.crf, preset: o.preset ?? 'medium', pixFmt }, colour, hdr: v.hdr, sampleAspectRatio: v.sampleAspectRatio, timeBase: v.timeBase,
    }, partial),
  });
  let lastProgress = 0;
  const interval = o.progressIntervalMs ?? 250;
  const encodeQueue = new PQueue({ concurrency: 1 });
  const freeSlots: BatchSlot[] = [];
  const slotWaiters: ((s: BatchSlot) => void)[] = [];
  const takeSlot = () => freeSlots.pop() ?? new Promise<BatchSlot>((r) => slotWaiters.push(r));
  const giveSlot = (s: BatchSlot) => {
    const w = slotWaiters.shift();
    if (w) w(s);
    else freeSlots.push(s);
  };

  const progress = (force = false) => {
    const now = performance.now();
    if (!force && now - lastProgress < interval) return;
    lastProgress = now;
    emit({
      type: 'progress', frames: framesOut, totalFrames, elapsedMs: now - started,
      decodeQueue: decoder.pool.size - decoder.pool.available, decodeCapacity: decoder.pool.size,
      encodeQueue: encodeQueue.size + encodeQueue.pending, encodeCapacity: slotsCount,
      decodeMs: stage.decode, inferMs: stage.infer, encodeMs: stage.encode, reusedFrames,
    });
  };

  try {
    await loading;
    // Allocated once. After running out of memory the plan only shrinks (fewer frames, smaller
    // tiles), so these slots still hold any batch of any later plan: a retry allocates nothing.
    for (let i = 0; i < slotsCount; i++) {
      freeSlots.push(tilePlan ? upscaler.allocateSlot(batch, tilePlan.windowW, tilePlan.windowH) : upscaler.allocateSlot(batch, inW, inH));
    }
    const frameOutBytes = frameW * frameH * 3;
    /** A frame as the encoder takes it: RGB, or I420 (half the bytes). */
    const frameHandBytes = i420 ? frameOutBytes / 2 : frameOutBytes;
    // Tiled frames are stitched into these before encoding (one per slot: being filled, waiting their turn, being written);
    // made when tiling starts, which the out-of-memory back-off may do mid-job. With I420 a stitched
    // RGB frame is converted into one of outI420 (the kernel's toI420, as its lanes would).
    let outFrames: FramePool | undefined;
    let outI420: { pool: FramePool; scratch: Float32Array } | undefined;
    const ups = upscaler;
    let plan: InferencePlan = { batch, tile: tilePlan ? tile : 0 };
    let tiles: TilePlan | undefined = tilePlan;

    /**
     * After an inference call made under `used` failed with out of memory: the next smaller plan
     * (src/infer/oom.ts), for the caller to run the same frames again. When another lane already
     * moved past `used`, the current plan stands (one failure, one step down). Anything but out
     * of memory, or nothing smaller left, fails the job. The caller has handed the slot back.
     */
    const backOff = (err: unknown, used: InferencePlan): void => {
      if (!(err instanceof InferenceError) || !err.outOfMemory) throw err;
      if (used.batch !== plan.batch || used.tile !== plan.tile) return;
      const next = nextPlan(plan, inW, inH);
      const what = exceedsIndexRange(err.message) ? `the call was too large for ${device}'s kernels`
        : isGpu(device) ? `${device} ran out of memory` : 'inference ran out of memory';
      if (!next) {
        throw new DeviceError(`${what} even at ${describePlan(plan)} (${err.message.replace(/^inference failed: /, '').split('\n')[0]})`,
          isGpu(device) ? 'free GPU memory (nvidia-smi shows who holds it), or use --device cpu' : 'free some memory or use a smaller --tile');
      }
      emit({ type: 'warning', message: `${what} at ${describePlan(plan)}: running the same frames again at ${describePlan(next)}` });
      plan = next;
      tiles = plan.tile > 0 ? planTiles(inW, inH, plan.tile, tilePad) : undefined;
    };
    /** The first failure of any stage; the job stops at it. */
    let stageError: unknown;
    const fail = (err: unknown) => {
      stageError ??= err;
      internal.abort();
    };

    /** Hands upscaled frames to the encoder stage; `done` runs once they are written. */
    const queueEncode = async (frames: Uint8Array[], pts: number[], done: () => void) => {
      await encodeQueue.onSizeLessThan(slotsCount);
      encodeQueue.add(async () => {
        try {
          const t = performance.now();
          for (let i = 0; i < frames.length; i++) {
            if (signal.aborted) return;
            await writer.write(frames[i]!, pts[i]!);
            framesOut++;
          }
          stage.encode += performance.now() - t;
          progress();
        } catch (err) {
          fail(err);
        } finally {
          done();
        }
      });
    };

    /** Hands a unit's upscaled frames to the encoder, after every earlier unit has handed over its own. */
    type HandOver = (frames: Uint8Array[], pts: number[], done: () => void) => Promise<void>;

    /**
     * One inference call. The stage's busy time is the lanes' time shared out over the lanes, so
     * frames / busy seconds stays what the whole stage sustains (the dashboard's capacity).
     */
    const infer = async (slot: BatchSlot, count: number, width: number, height: number, yuv?: Float32Array) => {
      const r = await ups.run(slot, count, width, height, yuv);
      stage.infer += r.ms / lanes;
      return r;
    };

    /** Each upscaled frame, then itself again for every identical source frame after it; with their output timestamps. */
    const withRepeats = (frames: SourceFrame[], outputs: Uint8Array[]): [Uint8Array[], number[]] => {
      const out: Uint8Array[] = [];
      const pts: number[] = [];
      frames.forEach((f, i) => {
        for (const p of [f.ptsUs, ...f.repeatPtsUs]) {
          out.push(outputs[i]!);
          pts.push(p - range.shiftUs);
        }
      });
      return [out, pts];
    };

    /** Frames in order under the current plan: batches of plan.batch, or each frame in tiles. */
    const runFrames = async (frames: SourceFrame[], handOver: HandOver) => {
      for (let i = 0; i < frames.length;) {
        if (tiles) await runTiled(frames[i++]!, handOver);
        else {
          const group = frames.slice(i, i + plan.batch);
          i += group.length;
          await runBatch(group, handOver);
        }
      }
    };

    /** One batch of at most plan.batch frames (runFrames cuts them under the plan of the moment). */
    const runBatch = async (frames: SourceFrame[], handOver: HandOver): Promise<void> => {
      const used = plan;
      const slot = await takeSlot();
      const input = new Uint8Array(slot.input);
      frames.forEach((f, i) => input.set(f.data, i * f.data.byteLength));
      let result: { slot: BatchSlot; ms: number };
      try {
        result = await infer(slot, frames.length, inW, inH, i420);
      } catch (err) {
        if (err instanceof InferenceError && err.slot) giveSlot(err.slot);
        backOff(err, used);
        await runFrames(frames, handOver); // the decoded frames are still held: nothing is lost
        return;
      }
      // Held until inference succeeded, so a retry has them; the decoder may reuse them now.
      for (const f of frames) decoder.pool.release(f.data);
      const back = result.slot;
      const views = frames.map((_, i) => new Uint8Array(back.output, i * frameHandBytes, frameHandBytes));
      await handOver(...withRepeats(frames, views), () => giveSlot(back));
    };

    /** One frame through the tiles, plan.batch windows per inference call, stitched in an output frame. */
    const runTiled = async (frame: SourceFrame, handOver: HandOver) => {
      const pool = (outFrames ??= new FramePool(frameOutBytes, slotsCount));
      const out = await pool.acquire(signal);
      if (!out) return;
      // Out of memory part-way: the whole frame again under the smaller plan (its tiles cover
      // every pixel of `out`, so nothing of the failed attempt survives).
      for (;;) {
        const used = plan;
        try {
          await tileFrame(frame, tiles!, plan.batch, out);
          break;
        } catch (err) {
          backOff(err, used);
        }
      }
      decoder.pool.release(frame.data);
      if (!i420) {
        await handOver(...withRepeats([frame], [out]), () => pool.release(out));
        return;
      }
      const yuvOut = (outI420 ??= { pool: new FramePool(frameHandBytes, slotsCount), scratch: new Float32Array(frameW * frameH) });
      const yuv = await yuvOut.pool.acquire(signal);
      if (yuv) nativeKernel()!.toI420(out, frameH, frameW, i420, yuv, yuvOut.scratch);
      pool.release(out);
      if (yuv) await handOver(...withRepeats([frame], [yuv]), () => yuvOut.pool.release(yuv));
    };

    /** The tiles of one frame, a call per lane at once; rejects with the first failure once all calls are back. */
    const tileFrame = async (frame: DecodedFrame, tp: TilePlan, perCall: number, out: Buffer) => {
      const winOut = tp.windowW * tp.windowH * 3 * model.scale * model.scale;
      const calls = new Set<Promise<void>>();
      let failure: unknown;
      for (let i = 0; i < tp.tiles.length && failure === undefined; i += perCall) {
        while (calls.size >= lanes) await Promise.race(calls);
        if (failure !== undefined) break;
        const group = tp.tiles.slice(i, i + perCall);
        const slot = await takeSlot();
        const input = new Uint8Array(slot.input);
        group.forEach((t, k) => copyWindow(frame.data, tp, t, input, k * tp.windowW * tp.windowH * 3));
        const call = infer(slot, group.length, tp.windowW, tp.windowH).then(({ slot: back }) => {
          const res = new Uint8Array(back.output);
          group.forEach((t, k) => placeCore(res, k * winOut, tp, t, model.scale, out));
          giveSlot(back);
        }, (err: unknown) => {
          if (err instanceof InferenceError && err.slot) giveSlot(err.slot);
          failure ??= err;
        }).finally(() => calls.delete(call));
        calls.add(call);
      }
      await Promise.all(calls);
      if (failure !== undefined) throw failure;
    };

    /**
     * Units of work (a batch, or one tiled frame) run up to one per slot at once, spread over the
     * lanes. Each hands its frames to the encoder only after the unit before it has, so frames
     * leave in decode order whichever lane finishes first; a lane that finished early goes on with
     * the next unit meanwhile. With no more units than slots, the earliest unit (which may need a
     * slot again after running out of memory) always finds one that no later unit is holding.
     */
    const running = new Set<Promise<void>>();
    let handedOver: Promise<void> = Promise.resolve();
    const launch = async (unit: (handOver: HandOver) => Promise<void>) => {
      while (running.size >= slotsCount) await Promise.race(running);
      const before = handedOver;
      let finished!: () => void;
      handedOver = new Promise<void>((r) => (finished = r));
      const handOver: HandOver = async (frames, pts, done) => {
        await before;
        await queueEncode(frames, pts, done);
      };
      const task = unit(handOver).catch(fail).finally(() => {
        finished();
        running.delete(task);
      });
      running.add(task);
    };

    // Decoding runs ahead on its own, bounded by the frame pool, so the next batch is ready
    // the moment a lane finishes the current one.
    const decoded = new AsyncQueue<DecodedFrame>();
    const tickUs = Math.max(1, Math.ceil((1e6 * v.timeBase[0]) / v.timeBase[1]));
    let lastDecodedPtsUs = -Infinity;
    let reordered = 0;
    const decoding = (async () => {
      try {
        let taken = 0;
        if (frameLimit === 0) {
          decoded.close(); // every segment was already done: only the final mux is left
          return;
        }
        for await (const frame of decoder.frames()) {
          if (taken === 0 && resumeAtUs !== undefined && frame.ptsUs !== resumeAtUs) {
            if (o.segment) {
              throw new InputError(`segment ${o.segment.index} cannot start exactly: its first frame decodes at ${frame.ptsUs} µs, expected ${resumeAtUs} µs`,
                'the input may be damaged; check that it plays');
            }
            throw new InputError(`cannot resume exactly: the frame after the finished segments decodes at ${frame.ptsUs} µs, expected ${resumeAtUs} µs`,
              'run again with --restart');
          }
          // The range ends here: stopping the loop stops (and reaps) the decoder.
          if (frame.ptsUs >= range.endUs || taken === frameLimit) {
            decoder.pool.release(frame.data);
            break;
          }
          taken++;
          // Damaged input can give a frame a timestamp at or before the previous one. The frame
          // is kept (never dropped, so nothing drifts) and placed one source tick later.
          const pts = frame.ptsUs > lastDecodedPtsUs ? frame.ptsUs : lastDecodedPtsUs + tickUs;
          if (pts !== frame.ptsUs) reordered++;
          lastDecodedPtsUs = pts;
          decoded.push(pts === frame.ptsUs ? frame : { ...frame, ptsUs: pts });
        }
        decoded.close();
      } catch (err) {
        decoded.close(err);
      }
    })();
    let pending: SourceFrame[] = [];
    const take = async (frame: SourceFrame) => {
      // A frame per unit once tiling; else a batch. The plan may shrink while a batch fills
      // (another lane ran out of memory): runFrames splits it under the plan of the moment.
      pending.push(frame);
      if (tiles || pending.length >= plan.batch) {
        const unit = pending;
        pending = [];
        await launch((handOver) => runFrames(unit, handOver));
      }
    };
    // The newest frame is held back until the next one shows whether it repeats it. A long run
    // of one picture (a still scene) is cut every segment's worth of frames, so progress and
    // resumable segments keep coming; the next run starts with one more upscale.
    const reuse = o.reuseIdentical ?? true;
    let newest: SourceFrame | undefined;
    for (;;) {
      const t = performance.now();
      const next = await decoded.next();
      stage.decode += performance.now() - t;
      if (next.done || signal.aborted) break;
      const frame: SourceFrame = { ...next.value, repeatPtsUs: [] };
      if (!reuse) {
        await take(frame);
        continue;
      }
      if (newest && newest.repeatPtsUs.length < segmentFrames && newest.data.equals(frame.data)) {
        newest.repeatPtsUs.push(frame.ptsUs);
        decoder.pool.release(frame.data);
        reusedFrames++;
        continue;
      }
      if (newest) await take(newest);
      newest = frame;
    }
    if (newest && !signal.aborted) await take(newest);
    if (pending.length && !signal.aborted) {
      const rest = pending;
      await launch((handOver) => runFrames(rest, handOver));
    }
    await Promise.all(running);
    if (stageError) throw stageError;
    await decoding;
    await encodeQueue.onIdle();
    if (stageError) throw stageError;
    if (o.signal?.aborted) throw new CancelledError();
    if (signal.aborted) throw new CancelledError();
    await writer.finish();
    const segments = [...resumed, ...writer.written];
    if (framesOut === 0 || segments.length === 0) {
      if (range.seekSeconds !== undefined) throw new InputError(`no frame of ${o.input} lies in the requested range`, 'check --start/--end/--frames against the video\'s length');
      throw new InputError(`no frame could be decoded from ${o.input}`, 'check that the video plays');
    }
    if (o.segment) {
      const seg = writer.written[0]!;
      if (writer.written.length !== 1 || seg.frames !== o.segment.frames) {
        throw new InputError(`segment ${o.segment.index} decoded ${framesOut} frames, ${o.segment.frames} planned`, 'the input may be damaged; check that it plays');
      }
      completed = true;
      const elapsedMs = performance.now() - started;
      return { output: join(workDir, seg.file), frames: framesOut, reusedFrames, elapsedMs, bytes: seg.bytes, model: model.name, info, segment: seg };
    }
    // Damaged input: count the frames that could not be decoded at all (the container lists
    // them, the decoder gave nothing). The others keep their own timestamps, so nothing drifts.
    let missingFrames = 0;
    if (decoder.damageMessages > 0) {
      const listed = (await rangeFrameTimes(o, info, tools.ffprobe, range)).length;
      missingFrames = Math.max(0, listed - framesOut);
      emit({
        type: 'warning',
        message: missingFrames > 0
          ? `damaged input: ${missingFrames} of ${listed} frames could not be decoded and are missing; every other frame keeps its timestamp, so sound stays in sync`
          : `damaged input: the decoder reported errors in ${decoder.damageMessages} place(s); all ${framesOut} frames were decoded, some may show artefacts`,
      });
    }
    if (reordered > 0) {
      emit({ type: 'warning', message: `${reordered} frame(s) of the damaged input had out-of-order timestamps: each was kept, one tick after the frame before it` });
    }
    // Join the segments and bring in audio, subtitles, chapters and metadata from the source.
    await joinSegments({
      ffmpeg: tools.ffmpeg, ffprobe: tools.ffprobe, input: o.input, info, container, range, workDir, segments, output: tmp,
    });
    await rename(tmp, outAbs);
    completed = true;
    await rm(workDir, { recursive: true, force: true });
    const bytes = (await stat(outAbs)).size;
    progress(true);
    const elapsedMs = performance.now() - started;
    emit({ type: 'done', frames: framesOut, elapsedMs, output: o.output, bytes, damagedFrames: missingFrames, reusedFrames, peakRssBytes: peakRssBytes(), stageMs: { ...stage }, cpuMs: cpuTimeSince(cpuAtStart) });
    return { output: o.output, frames: framesOut, reusedFrames, elapsedMs, bytes, model: model.name, info };
  } catch (caught) {
    internal.abort();
    let err = caught;
    if ((err as NodeJS.ErrnoException)?.code === 'ENOSPC') {
      err = new OutputError('the disk is full', 'free some space', err);
    }
    const kept = resumed.length + writer.written.length;
    const keptFrames = [...resumed, ...writer.written].reduce((n, r) => n + r.frames, 0);
    // Worth keeping for a resume: everything except a problem with the input itself.
    const resumable = !(err instanceof InputError) && !(err instanceof UsageError);
    if (!resumable) await rm(workDir, { recursive: true, force: true });
    const resumeHint = resumable && kept > 0 ? `: ${kept} finished segment(s) (${keptFrames} frames) kept in ${workDir}; run the same command again to resume` : '';
    if (o.signal?.aborted) {
      const of = totalFrames ? ` of ${totalFrames}` : '';
      const when = `cancelled after ${framesOut}${of} frames in ${((performance.now() - started) / 1000).toFixed(1)} s`;
      throw new CancelledError(`${when}${resumeHint || ': no output written'}`);
    }
    if (err instanceof EsrvidError && resumable && kept > 0) {
      throw new EsrvidError(`${err.message}: ${kept} finished segment(s) (${keptFrames} frames) kept in ${workDir}`,
        { exitCode: err.exitCode, hint: `${err.hint ? `${err.hint}, then ` : ''}run the same command again to resume`, cause: err });
    }
    throw err;
  } finally {
    o.signal?.removeEventListener('abort', onOuterAbort);
    encodeQueue.clear();
    await writer.abort();
    // A caller's Upscaler stays open after a job that succeeded (src/scale-out/worker.ts).
    if (!o.upscaler || !completed) await upscaler.close();
    await rm(tmp, { force: true });
    // Nothing finished is nothing to resume: leave no work directory behind.
    if (!completed && resumed.length + writer.written.length === 0) await rm(workDir, { recursive: true, force: true });
  }
}
