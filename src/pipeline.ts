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
import { existsSync, realpathSync, statSync } from 'node:fs';
import { access, constants, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import PQueue from 'p-queue';
import { AsyncQueue } from './async-queue.js';
import { Decoder, type DecodedFrame } from './decode/decoder.js';
import { containerFor, defaultCodec, planStreams } from './encode/containers.js';
import { encoderArgs } from './encode/encoder-args.js';
import { fixMp4LastFrame } from './encode/mp4-duration-fix.js';
import { writeRotation } from './encode/rotation.js';
import { Encoder } from './encode/encoder.js';
import { CancelledError, InputError, OutputError, UsageError } from './errors.js';
import type { PipelineEvent } from './events.js';
import { findFfmpeg, type Binary } from './ffmpeg/binaries.js';
import { planColour } from './ffmpeg/colour.js';
import { probe, videoFrameTimes, type MediaInfo } from './ffmpeg/probe.js';
import { autoTileSize, bytesPerInputPixel, copyWindow, placeCore, planTiles } from './infer/tiling.js';
import { Upscaler, type BatchSlot } from './infer/upscaler.js';
import { FramePool } from './decode/frame-pool.js';
import type { PullEvent } from './models/pull.js';
import { resolveModel } from './models/resolve.js';

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
  device?: 'cpu';
  batch?: number;
  threads?: number;
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
}

export interface UpscaleResult {
  output: string;
  frames: number;
  elapsedMs: number;
  bytes: number;
  model: string;
  info: MediaInfo;
}

/** Largest frame side the encoders here accept (x264/x265 refuse larger). */
export const MAX_OUTPUT_SIDE = 16384;

/** Even sizes for chroma-subsampled output: round to the nearest even number (ties up). */
export function targetSize(w: number, h: number, scale: number, pixFmt: string): [number, number] {
  const subsampled = /^(yuv|nv)/.test(pixFmt) && !/^yuv444/.test(pixFmt);
  const fit = (v: number) => (subsampled ? Math.max(2, 2 * Math.round(v / 2)) : Math.max(1, Math.round(v)));
  return [fit(w * scale), fit(h * scale)];
}

function checkOutputPath(input: string, output: string, overwrite: boolean): void {
  const inAbs = realpathSync(input);
  const outAbs = resolve(output);
  if (inAbs === outAbs || (existsSync(outAbs) && realpathSync(outAbs) === inAbs)) {
    throw new UsageError('the output is the input file', 'write the upscaled video to a new file');
  }
  const dir = dirname(outAbs);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new OutputError(`output folder ${dir} does not exist`, 'create it first or choose another path');
  if (existsSync(outAbs)) {
    if (statSync(outAbs).isDirectory()) throw new OutputError(`output ${output} is a directory`, 'give a file name such as out.mp4');
    if (!overwrite) throw new OutputError(`output ${output} already exists`, 'pass -y to overwrite it');
  }
}

interface RangePlan {
  /** Input seek for the decoder and the audio source, seconds from the start (undefined: whole file). */
  seekSeconds?: number;
  durationSeconds?: number;
  /** Frames with a source timestamp at or after this (µs) are not taken. */
  endUs: number;
  /** Exactly this many frames (for --frames). */
  frameCount?: number;
  /** Subtracted from every source timestamp so the output starts at 0. */
  shiftUs: number;
}

/**
 * Turns --start/--end/--frames into seek points on the source's clock. Times are relative to the
 * container's start, as players show them; frame numbers are resolved to exact timestamps by a
 * demux-only scan, so a range is frame-exact even with variable frame rates.
 */
async function planRange(o: UpscaleOptions, info: MediaInfo, ffprobe: Binary): Promise<RangePlan> {
  const base = info.startTime;
  const length = info.duration ?? info.video.duration;
  const whole: RangePlan = { endUs: Infinity, shiftUs: Math.round(Math.max(0, base) * 1e6) };
  let start = o.start;
  let end = o.end;
  let frameCount: number | undefined;
  if (o.frames) {
    const times = await videoFrameTimes(ffprobe, info.path, info.video.index);
    const [a, b] = o.frames;
    if (a >= times.length) throw new InputError(`--frames starts at frame ${a}, but the video has ${times.length} frames`, `use a start below ${times.length}`);
    start = times[a]! / 1e6 - base;
    end = b !== undefined && b < times.length ? times[b]! / 1e6 - base : undefined;
    frameCount = Math.min(b ?? times.length, times.length) - a;
  }
  if (start === undefined && end === undefined) return whole;
  const s = start ?? 0;
  if (length !== undefined && s >= length) {
    throw new InputError(`--start ${s.toFixed(3)} s is beyond the end of the video (${length.toFixed(3)} s)`, `use a start below ${length.toFixed(3)}`);
  }
  return {
    seekSeconds: s,
    durationSeconds: end !== undefined ? end - s : undefined,
    endUs: end !== undefined ? Math.round((base + end) * 1e6) : Infinity,
    frameCount,
    shiftUs: Math.round((base + s) * 1e6),
  };
}

export async function upscaleVideo(o: UpscaleOptions): Promise<UpscaleResult> {
  const started = performance.now();
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

  const tools = await findFfmpeg({ ffmpeg: o.ffmpegPath, ffprobe: o.ffprobePath });
  const info = await probe(tools.ffprobe, o.input);
  checkOutputPath(o.input, o.output, !!o.overwrite);
  const v = info.video;
  const range = await planRange(o, info, tools.ffprobe);

  const device = o.device ?? 'cpu';
  const model = await resolveModel(o.model ?? 'auto', { device, precision: 'fp32', onPull: o.onPull });
  const scale = o.scale ?? model.scale;
  const codec = o.codec ?? defaultCodec(container);
  const pixFmt = o.pixFmt ?? (v.bitDepth > 8 ? 'yuv420p10le' : 'yuv420p');

  // MP4/MOV keep the stored orientation and a rotation tag (lossless); other containers cannot
  // carry the tag through ffmpeg, so there the frames are rotated on decode.
  const keepRotationTag = container === 'mp4' || container === 'mov';
  const quarterTurn = !keepRotationTag && (v.rotation === 90 || v.rotation === 270);
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
  const carry = planStreams(container, info.streams.filter((s) => s.index !== v.index && !s.attachedPic));
  const batch = o.batch ?? 1;
  const tilePad = o.tilePad ?? 16;
  const bytesPerPixel = bytesPerInputPixel(model.architecture);
  const budget = o.memoryBudget ?? Math.min(totalmem() * 0.25, 8 * 2 ** 30);
  const tile = o.tile === undefined || o.tile === 'auto' ? autoTileSize(inW, inH, batch, tilePad, bytesPerPixel, budget) : o.tile;
  const tilePlan = tile > 0 && (inW > tile || inH > tile) ? planTiles(inW, inH, tile, tilePad) : undefined;
  const fps = v.avgFrameRate || v.rFrameRate;
  const totalFrames = range.frameCount ?? (range.durationSeconds !== undefined && fps ? Math.round(range.durationSeconds * fps)
    : v.frameCount ?? (v.duration && fps ? Math.round(v.duration * fps) : undefined));

  const frameDurationUs = fps > 0 ? 1e6 / fps : 40_000;
  let firstPtsUs: number | undefined;
  let lastPtsUs = 0;
  const outAbs = resolve(o.output);
  const tmp = join(dirname(outAbs), `.${basename(outAbs)}.esrvid-${process.pid}-${randomBytes(3).toString('hex')}.partial`);
  const rotated = `${tmp}.rotated`;
  try {
    await access(dirname(outAbs), constants.W_OK);
  } catch {
    throw new OutputError(`cannot write to ${dirname(outAbs)}`, 'check the folder permissions or choose another output path');
  }

  emit({
    type: 'start', input: o.input, output: o.output, inputSize: [inW, inH], outputSize: [outW, outH],
    model: model.name, modelReason: model.reason, device, precision: model.precision, batch, tile: tilePlan ? tile : 0, totalFrames, fps,
  });
  if (tilePlan && (o.tile === undefined || o.tile === 'auto')) {
    emit({ type: 'warning', message: `frames of ${inW}x${inH} need about ${(inW * inH * bytesPerPixel / 2 ** 30).toFixed(1)} GiB with ${model.name}: upscaling in ${tilePlan.tiles.length} tiles of ${tile} px (--tile to choose)` });
  }
  if (colour.assumed && !/^(rgb|bgr|gbr|argb|abgr|rgba|bgra)/.test(v.pixFmt)) emit({ type: 'warning', message: `the source declares no colour matrix: assuming ${colour.tags.colorspace} (as players do for ${v.height >= 720 ? 'HD' : 'SD'})` });
  if (v.variableFrameRate) {
    emit({ type: 'warning', message: 'variable frame rate detected: every frame keeps its source timestamp' });
  }
  for (const w of carry.warnings) emit({ type: 'warning', message: w });

  const internal = new AbortController();
  const onOuterAbort = () => internal.abort();
  o.signal?.addEventListener('abort', onOuterAbort, { once: true });
  const signal = internal.signal;

  const slotsCount = 2;
  const decoder = new Decoder({
    ffmpeg: tools.ffmpeg, input: o.input, streamIndex: v.index, width: inW, height: inH, colour,
    noAutorotate: keepRotationTag, poolSize: batch * 2 + 2, signal, startSeconds: range.seekSeconds,
  });
  let upscaler: Upscaler | undefined;
  let encoder: Encoder | undefined;
  const stage = { decode: 0, infer: 0, encode: 0 };
  let framesOut = 0;
  let lastProgress = 0;
  const interval = o.progressIntervalMs ?? 250;
  const encodeQueue = new PQueue({ concurrency: 1 });
  const freeSlots: BatchSlot[] = [];
  let slotWaiter: ((s: BatchSlot) => void) | undefined;
  const takeSlot = () => freeSlots.pop() ?? new Promise<BatchSlot>((r) => (slotWaiter = r));
  const giveSlot = (s: BatchSlot) => {
    const w = slotWaiter;
    slotWaiter = undefined;
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
      decodeMs: stage.decode, inferMs: stage.infer, encodeMs: stage.encode,
    });
  };

  try {
    upscaler = await Upscaler.start({ modelPath: model.path, scale: model.scale, threads: o.threads });
    for (let i = 0; i < slotsCount; i++) {
      freeSlots.push(tilePlan ? upscaler.allocateSlot(batch, tilePlan.windowW, tilePlan.windowH) : upscaler.allocateSlot(batch, inW, inH));
    }
    // Tiled frames are stitched into these before encoding (two: one filling, one being written).
    const outFrames = new FramePool(tilePlan ? frameW * frameH * 3 : 1, tilePlan ? slotsCount : 0);
    encoder = new Encoder(tools.ffmpeg, encoderArgs({
      ffmpeg: tools.ffmpeg, source: o.input, output: tmp, container, frameWidth: frameW, frameHeight: frameH,
      outWidth: outW, outHeight: outH, settings: { codec, crf: o.crf, preset: o.preset ?? 'medium', pixFmt }, colour,
      streams: carry.streams, sourceVideoIndex: v.index, timeBase: v.timeBase,
      sampleAspectRatio: v.sampleAspectRatio, shiftUs: range.shiftUs,
      range: range.seekSeconds !== undefined ? { start: range.seekSeconds, duration: range.durationSeconds } : undefined,
    }), frameW, frameH, frameDurationUs);
    const enc = encoder;
    const ups = upscaler;
    const frameOutBytes = frameW * frameH * 3;
    let encodeError: unknown;

    /** Hands upscaled frames to the encoder stage (in order); `done` runs once they are written. */
    const queueEncode = async (frames: Uint8Array[], pts: number[], done: () => void) => {
      firstPtsUs ??= pts[0];
      lastPtsUs = pts.at(-1)!;
      await encodeQueue.onSizeLessThan(slotsCount);
      encodeQueue.add(async () => {
        try {
          const t = performance.now();
          for (let i = 0; i < frames.length; i++) {
            if (signal.aborted) return;
            await enc.writeFrame(frames[i]!, pts[i]!);
            framesOut++;
          }
          stage.encode += performance.now() - t;
          progress();
        } catch (err) {
          encodeError ??= err;
          internal.abort();
        } finally {
          done();
        }
      });
    };

    const runBatch = async (frames: DecodedFrame[]) => {
      const slot = await takeSlot();
      const input = new Uint8Array(slot.input);
      frames.forEach((f, i) => {
        input.set(f.data, i * f.data.byteLength);
        decoder.pool.release(f.data); // copied: the decoder may reuse it now
      });
      const { slot: back, ms } = await ups.run(slot, frames.length, inW, inH);
      stage.infer += ms;
      const views = frames.map((_, i) => new Uint8Array(back.output, i * frameOutBytes, frameOutBytes));
      await queueEncode(views, frames.map((f) => f.ptsUs - range.shiftUs), () => giveSlot(back));
    };

    /** One frame through the tiles, `batch` windows per inference call, stitched in an output frame. */
    const runTiled = async (frame: DecodedFrame) => {
      const plan = tilePlan!;
      const out = await outFrames.acquire(signal);
      if (!out) return;
      const winOut = plan.windowW * plan.windowH * 3 * model.scale * model.scale;
      for (let i = 0; i < plan.tiles.length; i += batch) {
        const group = plan.tiles.slice(i, i + batch);
        const slot = await takeSlot();
        const input = new Uint8Array(slot.input);
        group.forEach((t, k) => copyWindow(frame.data, plan, t, input, k * plan.windowW * plan.windowH * 3));
        const { slot: back, ms } = await ups.run(slot, group.length, plan.windowW, plan.windowH);
        stage.infer += ms;
        const res = new Uint8Array(back.output);
        group.forEach((t, k) => placeCore(res, k * winOut, plan, t, model.scale, out));
        giveSlot(back);
      }
      decoder.pool.release(frame.data);
      await queueEncode([out], [frame.ptsUs - range.shiftUs], () => outFrames.release(out));
    };

    // Decoding runs ahead on its own, bounded by the frame pool, so the next batch is ready
    // the moment inference finishes the current one.
    const decoded = new AsyncQueue<DecodedFrame>();
    const decoding = (async () => {
      try {
        let taken = 0;
        for await (const frame of decoder.frames()) {
          // The range ends here: stopping the loop stops (and reaps) the decoder.
          if (frame.ptsUs >= range.endUs || taken === range.frameCount) {
            decoder.pool.release(frame.data);
            break;
          }
          taken++;
          decoded.push(frame);
        }
        decoded.close();
      } catch (err) {
        decoded.close(err);
      }
    })();
    let pending: DecodedFrame[] = [];
    for (;;) {
      const t = performance.now();
      const next = await decoded.next();
      stage.decode += performance.now() - t;
      if (next.done || signal.aborted) break;
      if (tilePlan) {
        await runTiled(next.value);
        continue;
      }
      pending.push(next.value);
      if (pending.length === batch) {
        const b = pending;
        pending = [];
        await runBatch(b);
      }
    }
    if (pending.length && !signal.aborted) await runBatch(pending);
    await decoding;
    await encodeQueue.onIdle();
    if (encodeError) throw encodeError;
    if (o.signal?.aborted) throw new CancelledError();
    if (signal.aborted) throw new CancelledError();
    await enc.finish();
    if (framesOut !== enc.frames) throw new Error(`internal: ${framesOut} frames counted, ${enc.frames} written`);
    if (framesOut === 0) {
      if (range.seekSeconds !== undefined) throw new InputError(`no frame of ${o.input} lies in the requested range`, 'check --start/--end/--frames against the video\'s length');
      throw new InputError(`no frame could be decoded from ${o.input}`, 'check that the video plays');
    }
    if (decoder.damageMessages > 0) {
      emit({ type: 'warning', message: `the decoder reported ${decoder.damageMessages} damaged-data message(s); ${framesOut} frames were decoded and kept with their timestamps` });
    }
    let final = tmp;
    if (keepRotationTag && v.rotation !== 0) {
      // The tag is written so the output's display matrix reports what the source's did.
      await writeRotation(tools.ffmpeg, tmp, rotated, (360 - v.rotation) % 360, container as 'mp4' | 'mov');
      final = rotated;
    }
    if (keepRotationTag && firstPtsUs !== undefined) {
      await fixMp4LastFrame(final, lastPtsUs - firstPtsUs + frameDurationUs, frameDurationUs);
    }
    await rename(final, outAbs);
    const bytes = (await stat(outAbs)).size;
    progress(true);
    const elapsedMs = performance.now() - started;
    emit({ type: 'done', frames: framesOut, elapsedMs, output: o.output, bytes, damagedFrames: decoder.damageMessages, peakRssBytes: process.resourceUsage().maxRSS * 1024, stageMs: { ...stage } });
    return { output: o.output, frames: framesOut, elapsedMs, bytes, model: model.name, info };
  } catch (err) {
    internal.abort();
    if (o.signal?.aborted && !(err instanceof CancelledError)) throw new CancelledError();
    throw err;
  } finally {
    o.signal?.removeEventListener('abort', onOuterAbort);
    encodeQueue.clear();
    await encoder?.kill();
    await upscaler?.close();
    await rm(tmp, { force: true });
    await rm(rotated, { force: true });
  }
}
