/** `esrvid <input> <output>`: the CLI face of upscaleVideo(). */
import { CancelledError } from '../errors.js';
import type { PipelineEvent, ProgressEvent } from '../events.js';
import { upscaleVideo, type UpscaleOptions } from '../pipeline.js';
import { dashboardView, initialDashboardState, reduceDashboard } from '../tui/dashboard-model.js';
import type { DashboardHandle } from '../tui/mount-dashboard.js';
import { dashboardWanted } from '../tui/terminal.js';
import { formatDuration, formatRate } from '../tui/text-bars.js';
import { pullReporter } from './models.js';
import { formatBytes, reusedNote } from './format.js';

export interface UpscaleCliOptions {
  scale?: number;
  start?: number;
  end?: number;
  frames?: [number, number | undefined];
  model: string;
  batch?: number;
  device?: 'auto' | 'cpu' | 'cuda' | 'webgpu';
  gpu?: number;
  precision?: 'fp32' | 'fp16' | 'int8';
  tile?: number | 'auto';
  tilePad?: number;
  segmentSeconds?: number;
  resume?: boolean;
  restart?: boolean;
  threads?: number;
  lanes?: number;
  /** false with --no-reuse-identical. */
  reuseIdentical?: boolean;
  codec?: string;
  crf?: number;
  preset?: string;
  pixFmt?: string;
  yes?: boolean;
  ffmpeg?: string;
  ffprobe?: string;
  quiet?: boolean;
  json?: boolean;
  /** false with --no-tui: plain lines even on a terminal. */
  tui?: boolean;
}

/**
 * Plain progress for logs and pipes: no cursor control, and a modest rate: a line once `everyMs`
 * has passed and the job has passed another 5% mark (or, with no frame count, every `everyMs`),
 * and at least every 30 s, so long jobs do not flood a log. The ETA uses the dashboard's smoothed rate.
 */
export function plainReporter(stream: NodeJS.WritableStream, everyMs = 2000, now = () => performance.now()): (e: PipelineEvent) => void {
  let state = initialDashboardState();
  let lastAt = 0;
  let lastStep = 0;
  return (e) => {
    state = reduceDashboard(state, e, now());
    switch (e.type) {
      case 'start':
        stream.write(`esrvid: ${e.input} ${e.inputSize.join('x')} -> ${e.output} ${e.outputSize.join('x')}, model ${e.model} on ${e.device}${e.engine === 'native' ? ' (fused kernel)' : ''}${e.modelReason ? ` (${e.modelReason})` : ''}\n`);
        if (e.deviceReason) stream.write(`esrvid: device ${e.device}, ${e.precision}, batch ${e.batch}: ${e.deviceReason}\n`);
        break;
      case 'warning':
        stream.write(`esrvid: warning: ${e.message}\n`);
        break;
      case 'progress': {
        const since = e.elapsedMs - lastAt;
        // Which 5% mark the job has passed (integers: no rounding drift between lines).
        const step = e.totalFrames ? Math.floor((e.frames * 20) / e.totalFrames) : undefined;
        const due = since >= everyMs && (step === undefined || step > lastStep || since >= 30_000);
        if (!due || e.frames === 0) return;
        lastAt = e.elapsedMs;
        lastStep = step ?? 0;
        const v = dashboardView(state, now());
        const total = e.totalFrames ? `/${e.totalFrames} (${((100 * e.frames) / e.totalFrames).toFixed(1)}%)` : '';
        const eta = v.etaMs !== undefined ? `, eta ${formatDuration(v.etaMs)}` : '';
        stream.write(`esrvid: ${e.frames}${total} frames, ${formatRate(v.fpsNow ?? v.fpsAvg)} fps${eta}\n`);
        break;
      }
      case 'done':
        stream.write(`esrvid: done: ${e.frames} frames in ${(e.elapsedMs / 1000).toFixed(1)} s (${(e.frames / (e.elapsedMs / 1000)).toFixed(2)} fps)${reusedNote(e)}, ${formatBytes(e.bytes)} written to ${e.output}\n`);
        break;
    }
  };
}

export function jsonReporter(stream: NodeJS.WritableStream): (e: PipelineEvent) => void {
  return (e) => stream.write(`${JSON.stringify(e)}\n`);
}

/** The one-line summary of a cancelled job: how far it got, and that nothing was left behind. */
export function cancelSummary(last: ProgressEvent | undefined): string {
  if (!last) return 'cancelled before the first frame: no output written';
  const of = last.totalFrames ? ` of ${last.totalFrames}` : '';
  return `cancelled after ${last.frames}${of} frames in ${(last.elapsedMs / 1000).toFixed(1)} s: no output written`;
}

export async function runUpscale(input: string, output: string, o: UpscaleCliOptions): Promise<void> {
  const controller = new AbortController();
  const useDashboard = dashboardWanted(o, process.stdout);
  // Loaded only for the dashboard: --json, --quiet and plain runs never load React.
  const tui = useDashboard ? await import('../tui/mount-dashboard.js') : undefined;
  let dashboard: DashboardHandle | undefined;
  let lastProgress: ProgressEvent | undefined;
  let stops = 0;
  // SIGINT, SIGTERM, and q or Ctrl-C on the dashboard (raw mode turns Ctrl-C into a key) all land here.
  const stop = (why: string) => {
    stops++;
    if (stops > 1) process.exit(130); // asked twice: exit at once (Ink puts the terminal back on exit)
    if (dashboard) dashboard.stopping();
    else if (!o.quiet && !o.json) process.stderr.write(`\nesrvid: ${why}: stopping (press Ctrl-C again to force)\n`);
    controller.abort();
  };
  const onSignal = (sig: NodeJS.Signals) => stop(sig);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const report = o.json ? jsonReporter(process.stdout) : o.quiet || tui ? undefined : plainReporter(process.stderr);
  const onEvent = (e: PipelineEvent) => {
    if (e.type === 'progress') lastProgress = e;
    report?.(e);
    if (tui) {
      // Mounted at the start event, once any model download (with its own progress bar) is over.
      dashboard ??= tui.mountDashboard({ stdout: process.stdout, stdin: process.stdin, onStop: () => stop('stop') });
      dashboard.onEvent(e);
    }
  };
  const opts: UpscaleOptions = {
    input, output, scale: o.scale, start: o.start, end: o.end, frames: o.frames, model: o.model, batch: o.batch, device: o.device, gpu: o.gpu, precision: o.precision, tile: o.tile, tilePad: o.tilePad, segmentSeconds: o.segmentSeconds, resume: o.resume, restart: o.restart, threads: o.threads, lanes: o.lanes, reuseIdentical: o.reuseIdentical, codec: o.codec, crf: o.crf,
    preset: o.preset, pixFmt: o.pixFmt, overwrite: !!o.yes, ffmpegPath: o.ffmpeg, ffprobePath: o.ffprobe,
    signal: controller.signal, onEvent, onPull: pullReporter(process.stderr, !!o.quiet || !!o.json),
  };
  try {
    await upscaleVideo(opts);
  } catch (err) {
    // The pipeline's own summary says what was kept for resuming; fall back to ours.
    if (controller.signal.aborted) throw err instanceof CancelledError ? err : new CancelledError(cancelSummary(lastProgress));
    throw err;
  } finally {
    // The terminal is given back before the error handler prints its line.
    await dashboard?.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
