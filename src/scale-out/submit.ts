/**
 * `esrvid submit`: plans a job (segments on the source's keyframes) and puts it on the queue as
 * one BullMQ flow, then waits for it (or not, with --detach). Submitting the same job again (same
 * input file, settings and output) attaches to it; a failed one is queued again, its finished
 * segments kept and reused; --restart discards it.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { FlowProducer } from 'bullmq';
import { containerFor } from '../encode/containers.js';
import { defaultPixFmt, orientation, targetSize } from '../encode/output-size.js';
import { defaultPrecision } from '../infer/device.js';
import { fingerprint } from '../encode/work-dir.js';
import { CancelledError, InputError, JobFailedError, OutputError, UsageError } from '../errors.js';
import { findFfmpeg } from '../ffmpeg/binaries.js';
import { probe, videoKeyframes } from '../ffmpeg/probe.js';
import { findAnyModel } from '../models/local-registry.js';
import { autoModelName, isModelFile, scaleOf } from '../models/resolve.js';
import { checkOutputPath } from '../encode/output-path.js';
import { jobIdFor, JOIN_QUEUE, QUEUE_PREFIX, SEGMENT_QUEUE, segmentJobId, type JobSettings, type JobSpec } from './job.js';
import { planSegments } from './plan.js';
import { checkRedis, connectionOptions } from './redis.js';
import { JobQueues, jobStatus, type JobStatus } from './status.js';
import { jobFolderFor, SharedDirectory } from './storage.js';

/** The job's settings as given: model and precision may still be defaults the device decides. */
export interface SubmitOptions extends Omit<JobSettings, 'model' | 'precision'> {
  input: string;
  output: string;
  redis: string;
  /** Registry name, an imported model, an .onnx file on shared storage, or 'auto' (chosen for `device`). */
  model: string;
  /** The workers' device: picks the defaults of `model` and `precision`, as the main command does. */
  device: 'cpu' | 'cuda' | 'webgpu';
  precision?: JobSettings['precision'];
  attempts: number;
  backoffSeconds: number;
  overwrite: boolean;
  restart: boolean;
  detach: boolean;
  ffmpeg?: string;
  ffprobe?: string;
  signal: AbortSignal;
  /** How often the waiting submitter reads the job's state, ms (default 1000). */
  pollMs?: number;
  onStatus?: (s: JobStatus) => void;
  log: (line: string) => void;
}

export interface SubmitResult {
  id: string;
  /** The job was already queued (or done) and this submit attached to it. */
  attached: boolean;
  status?: JobStatus;
}

const DAY_S = 86_400;

/**
 * The job's settings, with the model named as every worker will resolve it, and the model's
 * native scale (for the output size shown while waiting). Unknown names and missing files fail
 * here, before anything is queued.
 */
async function settingsFor(o: SubmitOptions): Promise<{ settings: JobSettings; nativeScale: () => Promise<number> }> {
  let model = o.model;
  let nativeScale: () => Promise<number>;
  if (isModelFile(model)) {
    if (!existsSync(model)) throw new UsageError(`model file ${model} does not exist`, 'give a registry name (esrvid models list) or an .onnx file on shared storage');
    model = resolve(model);
    const file = model;
    nativeScale = () => scaleOf(file);
  } else {
    if (model === 'auto') model = autoModelName(o.device);
    const { scale } = (await findAnyModel(model)).model;
    nativeScale = async () => scale;
  }
  const settings: JobSettings = {
    model, scale: o.scale, precision: o.precision ?? defaultPrecision(o.device), tile: o.tile, tilePad: o.tilePad,
    codec: o.codec, crf: o.crf, preset: o.preset, pixFmt: o.pixFmt, segmentSeconds: o.segmentSeconds,
  };
  return { settings, nativeScale };
}

export async function submitJob(o: SubmitOptions): Promise<SubmitResult> {
  if (o.segmentSeconds <= 0) throw new UsageError(`--segment-seconds must be positive, got ${o.segmentSeconds}`);
  const input = resolve(o.input);
  const output = resolve(o.output);
  if (!existsSync(input)) throw new InputError(`input ${input} does not exist`, 'check the path');
  containerFor(output);
  // An existing output is refused below only when the job is queued, not when attaching to it.
  checkOutputPath(input, output, true);
  const { settings, nativeScale } = await settingsFor(o);
  await checkRedis(o.redis);
  const source = await fingerprint(input);
  const id = jobIdFor(source, settings, output);
  const folder = jobFolderFor(output, id);
  const storage = new SharedDirectory(folder);
  const q = new JobQueues(o.redis);
  try {
    let attached = false;
    const existing = await q.joins.getJob(id);
    if (existing) {
      const state = await existing.getState();
      if (o.restart || state === 'failed' || (state === 'completed' && !existsSync(output))) {
        try {
          await existing.remove({ removeChildren: true });
        } catch (err) {
          throw new UsageError(`job ${id} cannot be discarded while workers run its segments (${(err as Error).message})`, 'stop its workers first, or wait for it');
        }
        if (o.restart) await storage.removeAll();
        else if (state === 'failed') o.log(`job ${id} had failed: queued again; finished segments are kept and not redone`);
      } else {
        attached = true;
        o.log(`job ${id} was already submitted (${state === 'completed' ? 'done' : state}): attached to it`);
      }
    } else if (o.restart) await storage.removeAll();
    if (!attached) {
      if (existsSync(output) && !o.overwrite) throw new OutputError(`output ${o.output} already exists`, 'pass -y to overwrite it');
      const tools = await findFfmpeg({ ffmpeg: o.ffmpeg, ffprobe: o.ffprobe });
      const info = await probe(tools.ffprobe, input);
      const planStarted = performance.now();
      const { times, keyframes } = await videoKeyframes(tools.ffprobe, input, info.video.index);
      const segments = planSegments(times, keyframes, o.segmentSeconds);
      if (segments.length === 0) throw new InputError(`no video frame found in ${o.input}`, 'check that the video plays');
      const planMs = performance.now() - planStarted;
      const v = info.video;
      const scale = settings.scale ?? (await nativeScale());
      // The size the workers will write, as the main command computes it.
      const { quarterTurn } = orientation(containerFor(output), v.rotation);
      const [w, h] = quarterTurn ? [v.height, v.width] : [v.width, v.height];
      const [outWidth, outHeight] = targetSize(w, h, scale, settings.pixFmt ?? defaultPixFmt(v.bitDepth));
      const spec: JobSpec = {
        id, input, output, folder, source, settings, frames: times.length, segments, attempts: o.attempts,
        video: { width: w, height: h, fps: v.avgFrameRate || v.rFrameRate, outWidth, outHeight },
        backoffMs: Math.round(o.backoffSeconds * 1000), submittedAt: Date.now(), planMs,
      };
      await storage.writeTextAtomic('job.json', `${JSON.stringify(spec, null, 2)}\n`);
      const { segments: _all, ...shared } = spec;
      const keep = { removeOnComplete: { age: 7 * DAY_S }, removeOnFail: { age: 30 * DAY_S } };
      const retry = { attempts: o.attempts, backoff: { type: 'exponential', delay: spec.backoffMs } };
      const flows = new FlowProducer({ connection: connectionOptions(o.redis), prefix: QUEUE_PREFIX });
      flows.on('error', () => {});
      try {
        await flows.add({
          name: 'join', queueName: JOIN_QUEUE, data: spec, opts: { jobId: id, ...retry, ...keep },
          children: segments.map((segment) => ({
            name: 'segment', queueName: SEGMENT_QUEUE, data: { spec: shared, segment },
            opts: { jobId: segmentJobId(id, segment.index), ...retry, ...keep, failParentOnFailure: true },
          })),
        });
      } finally {
        await flows.close();
      }
      o.log(`job ${id}: ${times.length} frames in ${segments.length} segment(s) cut on keyframes (planned in ${planMs.toFixed(0)} ms), queued on ${o.redis}; segments in ${folder}`);
    }
    if (o.detach) {
      o.log(`follow it with: esrvid status ${id} --redis ${o.redis}`);
      return { id, attached };
    }
    return { id, attached, status: await waitFor(q, id, folder, o) };
  } finally {
    await q.close();
  }
}

async function waitFor(q: JobQueues, id: string, folder: string, o: SubmitOptions): Promise<JobStatus> {
  let redisLost = false;
  let warnedNoWorkers = false;
  const started = Date.now();
  for (;;) {
    if (o.signal.aborted) {
      throw new CancelledError(`stopped waiting: job ${id} goes on with the workers (esrvid status ${id} --redis ${o.redis}; submit it again to wait for it)`);
    }
    let s: JobStatus | undefined;
    try {
      s = await jobStatus(q, id);
      if (redisLost) o.log('Redis is back');
      redisLost = false;
    } catch (err) {
      if (!redisLost) o.log(`lost Redis (${(err as Error).message}); waiting for it to come back`);
      redisLost = true;
    }
    if (s) {
      o.onStatus?.(s);
      if (s.state === 'done') return s;
      if (s.state === 'failed') {
        throw new JobFailedError(`job ${id} failed: ${s.failure}`, `finished segments are kept in ${folder}; fix the cause and submit the same job again to redo only the rest`);
      }
      if (!warnedNoWorkers && s.workers.length === 0 && Date.now() - started > 3000) {
        warnedNoWorkers = true;
        o.log(`no worker is connected yet: start one per GPU with esrvid worker --redis ${o.redis}`);
      }
    } else if (!redisLost) {
      throw new JobFailedError(`job ${id} is no longer on the queue (removed by another submit --restart?)`, 'submit it again');
    }
    await new Promise<void>((r) => {
      const t = setTimeout(r, o.pollMs ?? 1000);
      o.signal.addEventListener('abort', () => { clearTimeout(t); r(); }, { once: true });
    });
  }
}
