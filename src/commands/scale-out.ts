/**
 * `esrvid submit`, `esrvid worker`, `esrvid status`: one job shared by several GPUs and hosts
 * through BullMQ on Redis (src/scale-out). BullMQ is loaded only when one of them runs.
 */
import { Option, type Command } from 'commander';
import { numberIn } from './parse.js';
import type { JobStatus } from '../scale-out/status.js';
import { parsePathMap, type PathMap } from '../scale-out/storage.js';
import { CancelledError, EsrvidError, UsageError } from '../errors.js';
import { clusterOf, doneEventOf, progressEventOf, startEventOf } from '../scale-out/progress-events.js';
import { onStopSignals } from './stop-signals.js';
import { DEFAULT_REDIS } from '../scale-out/redis.js';
import { dashboardWanted } from '../tui/terminal.js';
import type { DashboardHandle } from '../tui/mount-dashboard.js';

const redisOption = () => new Option('--redis <url>', 'the Redis server coordinating the job (or ESRVID_REDIS)').default(process.env.ESRVID_REDIS ?? DEFAULT_REDIS);

/** One plain line per change of the job's state, at most every `everyMs` (and at least every 30 s). */
function plainStatus(stream: NodeJS.WritableStream, everyMs = 2000): (s: JobStatus) => void {
  let last = '';
  let lastAt = 0;
  return (s) => {
    const c = clusterOf(s);
    const line = `${s.framesDone}/${s.frames} frames (${s.frames ? ((100 * s.framesDone) / s.frames).toFixed(1) : '0.0'}%), segments ${c.done} done, ${c.active} active, ${c.waiting} waiting of ${c.segments}; workers: ${c.workers.join(', ') || 'none'}${s.state === 'joining' ? '; joining' : ''}`;
    const now = performance.now();
    if ((line !== last && now - lastAt >= everyMs) || now - lastAt >= 30_000 || s.state === 'joining' && !last.endsWith('joining')) {
      stream.write(`esrvid: ${line}\n`);
      last = line;
      lastAt = now;
    }
  };
}

export function registerScaleOut(program: Command): void {
  const quiet = () => !!program.opts().quiet;
  const log = (line: string) => { if (!quiet()) process.stderr.write(`esrvid: ${line}\n`); };

  program.command('submit')
    .description('split a video into segments on its keyframes and queue them for esrvid workers on Redis; waits for the result unless --detach')
    .argument('<input>', 'video to upscale (on storage every worker can reach)')
    .argument('<output>', 'where the joined video is written (also on shared storage)')
    .addOption(redisOption())
    .option('-s, --scale <n>', 'output scale (default: the model\'s, 4)', numberIn('--scale', 0.1, 16))
    .option('-m, --model <name|file.onnx>', 'registry model, "auto" (chosen for --device), or an .onnx file on shared storage', 'auto')
    .addOption(new Option('--device <name>', 'the device the workers run on: picks the default --model and --precision').choices(['cpu', 'cuda', 'webgpu']).default('cpu'))
    .addOption(new Option('--precision <p>', 'model precision for every worker (default: fp16 for cuda/webgpu, fp32 for cpu)').choices(['fp32', 'fp16']))
    .option('--tile <n|auto>', 'tile size in input pixels; 0 never tiles', (v: string) => (v === 'auto' ? 'auto' : numberIn('--tile', 0, 65536, true)(v)), 'auto')
    .option('--tile-pad <n>', 'context pixels around each tile', numberIn('--tile-pad', 0, 256, true), 16)
    .option('--codec <name>', 'video encoder (libx264, libx265, libvpx-vp9, ffv1, ...)')
    .option('--crf <n>', 'encoder quality (lower is better)', numberIn('--crf', 0, 63))
    .option('--preset <name>', 'x264/x265 speed preset', 'medium')
    .option('--pix-fmt <fmt>', 'output pixel format')
    .option('--segment-seconds <s>', 'segment length: each runs from a keyframe to the first keyframe at least this much later', numberIn('--segment-seconds', 0.04, 86400), 10)
    .option('--attempts <n>', 'attempts per segment before the job fails', numberIn('--attempts', 1, 100, true), 3)
    .option('--backoff <s>', 'wait before the first retry of a failed segment, doubled for each further one', numberIn('--backoff', 0, 3600), 5)
    .option('-y, --yes', 'overwrite the output if it exists')
    .option('--restart', 'discard this job (queue entries and finished segments) and start over')
    .option('--detach', 'queue the job and exit; follow it with esrvid status')
    .option('--no-tui', 'plain progress lines instead of the live dashboard, even on a terminal')
    .option('--ffmpeg <path>', 'ffmpeg binary to use (or ESRVID_FFMPEG)')
    .option('--ffprobe <path>', 'ffprobe binary to use (or ESRVID_FFPROBE)')
    .action(async (input: string, output: string, o: Record<string, any>) => {
      const json = !!program.opts().json;
      const { submitJob } = await import('../scale-out/submit.js');
      const controller = new AbortController();
      const release = onStopSignals(controller, (sig) => log(`${sig}: no longer waiting (the job goes on)`));
      // On a terminal the single-job dashboard follows the job (loaded only then, as for the main command).
      const tui = dashboardWanted({ json, quiet: quiet(), tui: o.tui }, process.stdout) && !o.detach ? await import('../tui/mount-dashboard.js') : undefined;
      let dashboard: DashboardHandle | undefined;
      const started = performance.now();
      const report = json ? (s: JobStatus) => process.stdout.write(`${JSON.stringify({ type: 'status', ...s })}\n`)
        : tui ? (s: JobStatus) => {
          if (!dashboard) {
            dashboard = tui.mountDashboard({ stdout: process.stdout, stdin: process.stdin, onStop: () => controller.abort() });
            dashboard.onEvent(startEventOf(s));
          }
          dashboard.onEvent(progressEventOf(s, performance.now() - started));
          if (s.state === 'done') dashboard.onEvent(doneEventOf(s, performance.now() - started));
        }
        : quiet() ? undefined : plainStatus(process.stderr);
      try {
        const r = await submitJob({
          input, output, redis: o.redis, model: o.model, device: o.device, scale: o.scale, precision: o.precision, tile: o.tile, tilePad: o.tilePad,
          codec: o.codec, crf: o.crf, preset: o.preset, pixFmt: o.pixFmt, segmentSeconds: o.segmentSeconds, attempts: o.attempts, backoffSeconds: o.backoff,
          overwrite: !!o.yes, restart: !!o.restart, detach: !!o.detach, ffmpeg: o.ffmpeg, ffprobe: o.ffprobe, signal: controller.signal, onStatus: report,
          // Once the dashboard is up, news goes into it (as the pipeline's warnings do), not across it.
          log: (line) => (dashboard ? dashboard.onEvent({ type: 'warning', message: line }) : log(line)),
        });
        if (json) process.stdout.write(`${JSON.stringify({ type: r.status ? 'done' : 'queued', id: r.id, attached: r.attached, ...(r.status ? { result: r.status.result, planMs: r.status.planMs } : {}) })}\n`);
        else if (r.status?.result && !dashboard) log(`done: job ${r.id}, ${r.status.result.frames} frames, written to ${r.status.result.output} (joined by ${r.status.result.joinedBy} in ${(r.status.result.joinMs / 1000).toFixed(2)} s)`);
        else if (quiet() || r.status === undefined) process.stdout.write(`${r.id}\n`);
      } catch (err) {
        if (json) {
          if (err instanceof EsrvidError) process.stdout.write(`${JSON.stringify({ type: 'error', message: err.oneLine(), exitCode: err.exitCode })}\n`);
        }
        throw err;
      } finally {
        await dashboard?.close();
        release();
      }
    });

  program.command('worker')
    .description('upscale segments of queued jobs on one device (one worker per GPU) and join finished jobs, until stopped')
    .addOption(redisOption())
    .option('--concurrency <n>', 'segments at a time (one per GPU)', numberIn('--concurrency', 1, 64, true), 1)
    .addOption(new Option('--device <name>', 'where the network runs').choices(['auto', 'cpu', 'cuda', 'webgpu']).default('auto'))
    .option('--gpu <index>', 'which CUDA GPU, counted from 0', numberIn('--gpu', 0, 63, true))
    .option('--threads <n>', 'inference threads (default: all cores; 1 on a GPU)', numberIn('--threads', 1, 256, true))
    .option('--lanes <n>', 'frames upscaled side by side per segment (default: CPU one lane per core, up to 4; CUDA 1)', numberIn('--lanes', 1, 64, true))
    .option('-b, --batch <n>', 'frames per inference call', numberIn('--batch', 1, 64, true))
    .option('--name <name>', 'how status names this worker (default host:pid[:gpuN])')
    .option('--lock-seconds <s>', 'lock on a running segment, renewed while the worker lives; a dead worker\'s segment is retried after it (or ESRVID_LOCK_SECONDS)', numberIn('--lock-seconds', 1, 3600), Number(process.env.ESRVID_LOCK_SECONDS ?? 30))
    .option('--stalled-seconds <s>', 'how often to look for segments of dead workers (default: --lock-seconds)', numberIn('--stalled-seconds', 1, 3600))
    .option('--max-stalled <n>', 'a segment whose worker died more than this many times fails', numberIn('--max-stalled', 0, 100, true), 2)
    .option('--map-path <from=to>', 'shared storage mounted elsewhere here: read the submitter\'s FROM paths under TO (repeatable)', (v: string, prev: PathMap | undefined) => {
      try {
        return parsePathMap(v, prev);
      } catch (err) {
        throw new UsageError((err as Error).message, 'e.g. --map-path /mnt/render=/data/render');
      }
    })
    .option('--idle-exit <s>', 'exit (0) after this many seconds without work', numberIn('--idle-exit', 1, 86400))
    .option('--ffmpeg <path>', 'ffmpeg binary to use (or ESRVID_FFMPEG)')
    .option('--ffprobe <path>', 'ffprobe binary to use (or ESRVID_FFPROBE)')
    .action(async (o: Record<string, any>) => {
      const { runWorker } = await import('../scale-out/worker.js');
      const controller = new AbortController();
      const release = onStopSignals(controller, (sig) => log(`${sig}: giving the running segment(s) back to the queue and stopping (again to force)`));
      try {
        const why = await runWorker({
          redis: o.redis, name: o.name, concurrency: o.concurrency, device: o.device, gpu: o.gpu, threads: o.threads, lanes: o.lanes, batch: o.batch,
          lockSeconds: o.lockSeconds, stalledSeconds: o.stalledSeconds, maxStalled: o.maxStalled, mapPath: o.mapPath ?? [], idleExitSeconds: o.idleExit,
          ffmpeg: o.ffmpeg, ffprobe: o.ffprobe, signal: controller.signal, log,
        });
        if (why === 'stopped') {
          throw new CancelledError('worker stopped');
        }
        log('no work for --idle-exit seconds: stopping');
        // Nothing else runs; Redis connections still reconnecting must not keep the process alive.
        process.exit(0);
      } finally {
        release();
      }
    });

  program.command('status')
    .description('show a scale-out job: each segment waiting, active (worker, progress), done or failed; totals; workers')
    .argument('<job>', 'the job id submit printed')
    .addOption(redisOption())
    .option('--json', 'the status as one JSON object')
    .action(async (id: string, o: Record<string, any>) => {
      const { checkRedis } = await import('../scale-out/redis.js');
      const { JobQueues, jobStatus, formatStatus } = await import('../scale-out/status.js');
      await checkRedis(o.redis);
      const q = new JobQueues(o.redis);
      try {
        const s = await jobStatus(q, id);
        if (!s) {
          throw new UsageError(`no job ${id} on ${o.redis}`, 'give the id esrvid submit printed (jobs are kept 7 days after they finish)');
        }
        process.stdout.write(o.json || program.opts().json ? `${JSON.stringify(s)}\n` : `${formatStatus(s)}\n`);
      } finally {
        await q.close();
      }
    });
}
