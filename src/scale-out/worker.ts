/**
 * `esrvid worker`: takes segments of any scale-out job from the queue and upscales them on one
 * device, `concurrency` at a time (one per GPU is the rule), and joins a job whose segments are
 * all done. BullMQ holds a lock on each segment while it runs, renewed in the background; a worker
 * that dies stops renewing, and another worker's stalled-job check gives the segment back to the
 * queue once the lock has expired. Failed attempts are retried with exponential back-off.
 */
import { hostname } from 'node:os';
import { Worker, WaitingError, type Job } from 'bullmq';
import { CancelledError, EsrvidError } from '../errors.js';
import type { DeviceRequest } from '../infer/device.js';
import { Upscaler } from '../infer/upscaler.js';
import { reusedNote } from '../commands/format.js';
import { upscaleVideo } from '../pipeline.js';
import { describeSegment, JOIN_QUEUE, QUEUE_PREFIX, SEGMENT_QUEUE, type JobSpec, type JoinResult, type SegmentJobData } from './job.js';
import { joinJob } from './join.js';
import { checkRedis, connectionOptions } from './redis.js';
import { mapPath, SharedDirectory, type PathMap } from './storage.js';
import type { SegmentRecord } from '../encode/work-dir.js';

export interface WorkerOptions {
  redis: string;
  name?: string;
  concurrency: number;
  device?: DeviceRequest;
  gpu?: number;
  threads?: number;
  lanes?: number;
  batch?: number;
  /** How long a segment's lock lasts without renewal: a dead worker's segment is retried after this. */
  lockSeconds: number;
  /** How often the worker looks for stalled segments (default: lockSeconds). */
  stalledSeconds?: number;
  /** A segment whose worker died more often than this fails (default 2). */
  maxStalled: number;
  mapPath: PathMap;
  /** Exit 0 after this many seconds with nothing to do (default: run until stopped). */
  idleExitSeconds?: number;
  ffmpeg?: string;
  ffprobe?: string;
  signal: AbortSignal;
  log: (line: string) => void;
}

/** The progress a segment job reports (job.updateProgress). */
export interface SegmentProgress {
  frames: number;
  total: number;
  worker: string;
}

const oneLine = (err: unknown) => (err instanceof EsrvidError ? err.oneLine() : (err as Error)?.message ?? String(err)).split('\n')[0]!;

export async function runWorker(o: WorkerOptions): Promise<'stopped' | 'idle'> {
  await checkRedis(o.redis);
  const name = o.name ?? `${hostname()}:${process.pid}${o.gpu !== undefined ? `:gpu${o.gpu}` : ''}`;
  const inflight = new Set<AbortController>();
  let stopping = false;
  /**
   * Upscalers kept between segments, one per segment running at once: the next segment of the
   * same model keeps its sessions instead of creating them again (on an H100, cuDNN's first call
   * of a frame size took 6-12 s per segment for realesrgan-x4plus). A failed segment's Upscaler
   * is closed, so the next one starts clean.
   */
  const spare: Upscaler[] = [];
  const takeUpscaler = async (precision: 'fp32' | 'fp16' | undefined): Promise<Upscaler> => {
    let u: Upscaler | undefined;
    while ((u = spare.pop())) {
      if (u.usable) return u;
      await u.close();
    }
    return Upscaler.open({ device: o.device ?? 'auto', gpu: o.gpu, threads: o.threads, lanes: o.lanes, precision });
  };

  const processSegment = async (job: Job<SegmentJobData, SegmentRecord>, token?: string): Promise<SegmentRecord> => {
    const { spec, segment } = job.data;
    const storage = new SharedDirectory(mapPath(spec.folder, o.mapPath));
    const total = segment.end - segment.start;
    const what = `${spec.id} ${describeSegment(segment)}`;
    const done = await storage.finishedSegment(segment.index);
    if (done && done.frames === total) {
      o.log(`${what}: already finished on shared storage, kept`);
      return done;
    }
    // Test hook: this worker fails this segment on every attempt (the failure path's test).
    if (process.env.ESRVID_TEST_FAIL_SEGMENT === String(segment.index)) throw new Error(`injected failure (ESRVID_TEST_FAIL_SEGMENT=${segment.index})`);
    o.log(`${what}: started (attempt ${job.attemptsMade + 1} of ${job.opts.attempts ?? 1})`);
    const attempt = await storage.newAttempt(segment.index, name);
    const controller = new AbortController();
    inflight.add(controller);
    let lastReport = 0;
    const report = (frames: number) => job.updateProgress({ frames, total, worker: name } satisfies SegmentProgress).catch(() => {});
    let upscaler: Upscaler | undefined;
    let kept = false;
    try {
      const s = spec.settings;
      upscaler = await takeUpscaler(s.precision);
      const result = await upscaleVideo({
        upscaler,
        input: mapPath(spec.input, o.mapPath), output: mapPath(spec.output, o.mapPath),
        model: s.model, scale: s.scale, precision: s.precision, tile: s.tile, tilePad: s.tilePad, codec: s.codec, crf: s.crf, preset: s.preset, pixFmt: s.pixFmt,
        device: o.device, gpu: o.gpu, threads: o.threads, lanes: o.lanes, batch: o.batch, ffmpegPath: o.ffmpeg, ffprobePath: o.ffprobe,
        segment: { index: segment.index, dir: attempt, frames: total, firstPtsUs: segment.firstPtsUs, endPtsUs: segment.endPtsUs ?? Infinity },
        signal: controller.signal,
        onEvent: (e) => {
          if (e.type !== 'progress' || performance.now() - lastReport < 500) return;
          lastReport = performance.now();
          void report(e.frames);
        },
      });
      const record = result.segment!;
      // Read before the Upscaler goes back to the spares, where another segment may load it.
      const reused = upscaler.reused;
      if (!stopping && upscaler.usable) {
        spare.push(upscaler);
        kept = true;
      }
      await storage.commitSegment(attempt, record);
      await report(total);
      o.log(`${what}: done, ${total} frames in ${(result.elapsedMs / 1000).toFixed(1)} s${reused ? ' (model sessions kept from the previous segment)' : ''}${reusedNote(result)}`);
      return record;
    } catch (err) {
      await storage.dropAttempt(attempt);
      if (stopping && token) {
        // Stopped by SIGINT/SIGTERM: the segment goes back to the queue without costing an attempt.
        await job.moveToWait(token);
        o.log(`${what}: given back to the queue`);
        throw new WaitingError();
      }
      if (err instanceof CancelledError) throw new Error('cancelled');
      o.log(`${what}: failed: ${oneLine(err)}`);
      throw new Error(oneLine(err));
    } finally {
      inflight.delete(controller);
      if (!kept) await upscaler?.close();
    }
  };

  const processJoin = async (job: Job<JobSpec, JoinResult>): Promise<JoinResult> => {
    const spec = job.data;
    o.log(`${spec.id}: all ${spec.segments.length} segments done, joining`);
    const paths = { input: mapPath(spec.input, o.mapPath), output: mapPath(spec.output, o.mapPath), folder: mapPath(spec.folder, o.mapPath) };
    try {
      const result = await joinJob(spec, paths, name, { ffmpeg: o.ffmpeg, ffprobe: o.ffprobe });
      o.log(`${spec.id}: joined ${result.frames} frames into ${paths.output} in ${(result.joinMs / 1000).toFixed(2)} s`);
      return result;
    } catch (err) {
      o.log(`${spec.id}: join failed: ${oneLine(err)}`);
      throw new Error(oneLine(err));
    }
  };

  const common = {
    connection: connectionOptions(o.redis), prefix: QUEUE_PREFIX, name,
    lockDuration: o.lockSeconds * 1000, stalledInterval: (o.stalledSeconds ?? o.lockSeconds) * 1000, maxStalledCount: o.maxStalled,
    autorun: false,
  };
  const segments = new Worker<SegmentJobData, SegmentRecord>(SEGMENT_QUEUE, processSegment, { ...common, concurrency: o.concurrency });
  const joins = new Worker<JobSpec, JoinResult>(JOIN_QUEUE, processJoin, { ...common, concurrency: 1 });
  let redisDown = false;
  for (const w of [segments, joins]) {
    w.on('error', (err) => {
      if (redisDown) return;
      redisDown = true;
      o.log(`lost Redis (${oneLine(err)}); reconnecting`);
    });
  }
  // Whatever the queue does next shows the connection works again.
  const back = () => {
    if (redisDown) o.log('Redis is back');
    redisDown = false;
  };
  for (const ev of ['active', 'completed', 'failed'] as const) segments.on(ev, back);
  joins.on('active', back);

  const stop = new Promise<'stopped'>((resolve) => {
    const onStop = () => {
      stopping = true;
      for (const c of inflight) c.abort();
      resolve('stopped');
    };
    if (o.signal.aborted) onStop();
    else o.signal.addEventListener('abort', onStop, { once: true });
  });
  let idle: Promise<'idle'> | undefined;
  let idleTimer: NodeJS.Timeout | undefined;
  if (o.idleExitSeconds !== undefined) {
    const ms = o.idleExitSeconds * 1000;
    idle = new Promise((resolve) => {
      const arm = () => {
        clearTimeout(idleTimer);
        idleTimer = setTimeout(() => (inflight.size === 0 ? resolve('idle') : arm()), ms);
      };
      arm();
      segments.on('active', arm);
      segments.on('completed', arm);
      segments.on('failed', arm);
      joins.on('completed', arm);
    });
  }
  o.log(`worker ${name} on ${o.redis}: ${o.concurrency} segment(s) at a time${o.device ? `, --device ${o.device}` : ''}${o.gpu !== undefined ? ` --gpu ${o.gpu}` : ''}${o.threads ? `, ${o.threads} thread(s)` : ''}`);
  for (const w of [segments, joins]) w.run().catch((err: unknown) => o.log(`worker stopped: ${oneLine(err)}`));
  const why = await Promise.race([stop, ...(idle ? [idle] : [])]);
  clearTimeout(idleTimer);
  stopping = true;
  for (const c of inflight) c.abort();
  // close() waits for BullMQ to hand back what it holds, which needs Redis: with Redis gone, the
  // worker still stops (what it held is retried once its lock expires).
  const closed = Promise.all([segments.close(), joins.close()]);
  let timer: NodeJS.Timeout | undefined;
  const gaveUp = await Promise.race([closed.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), 10_000)))]);
  clearTimeout(timer);
  if (gaveUp) {
    o.log('Redis did not answer while stopping: stopped without it');
    await Promise.race([Promise.all([segments.close(true), joins.close(true)]), new Promise((r) => setTimeout(r, 1000))]);
  }
  await Promise.all(spare.splice(0).map((u) => u.close()));
  return why;
}
