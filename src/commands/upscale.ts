/** `esrvid <input> <output>`: the CLI face of upscaleVideo(). */
import { CancelledError } from '../errors.js';
import type { PipelineEvent } from '../events.js';
import { upscaleVideo, type UpscaleOptions } from '../pipeline.js';
import { pullReporter } from './models.js';
import { formatBytes } from './format.js';

export interface UpscaleCliOptions {
  scale?: number;
  model: string;
  batch?: number;
  threads?: number;
  codec?: string;
  crf?: number;
  preset?: string;
  pixFmt?: string;
  yes?: boolean;
  ffmpeg?: string;
  ffprobe?: string;
  quiet?: boolean;
  json?: boolean;
}

/** Plain progress for logs and pipes: a line every few seconds, no cursor control. */
export function plainReporter(stream: NodeJS.WritableStream, everyMs = 2000): (e: PipelineEvent) => void {
  let last = -Infinity;
  return (e) => {
    switch (e.type) {
      case 'start':
        stream.write(`esrvid: ${e.input} ${e.inputSize.join('x')} -> ${e.output} ${e.outputSize.join('x')}, model ${e.model} on ${e.device}${e.modelReason ? ` (${e.modelReason})` : ''}\n`);
        break;
      case 'warning':
        stream.write(`esrvid: warning: ${e.message}\n`);
        break;
      case 'progress': {
        if (e.elapsedMs - last < everyMs) return;
        last = e.elapsedMs;
        const fps = e.frames / (e.elapsedMs / 1000);
        const total = e.totalFrames ? `/${e.totalFrames} (${((100 * e.frames) / e.totalFrames).toFixed(1)}%)` : '';
        const eta = e.totalFrames && fps > 0 ? `, eta ${Math.max(0, (e.totalFrames - e.frames) / fps).toFixed(0)} s` : '';
        stream.write(`esrvid: ${e.frames}${total} frames, ${fps.toFixed(2)} fps${eta}\n`);
        break;
      }
      case 'done':
        stream.write(`esrvid: done: ${e.frames} frames in ${(e.elapsedMs / 1000).toFixed(1)} s (${(e.frames / (e.elapsedMs / 1000)).toFixed(2)} fps), ${formatBytes(e.bytes)} written to ${e.output}\n`);
        break;
    }
  };
}

export function jsonReporter(stream: NodeJS.WritableStream): (e: PipelineEvent) => void {
  return (e) => stream.write(`${JSON.stringify(e)}\n`);
}

export async function runUpscale(input: string, output: string, o: UpscaleCliOptions): Promise<void> {
  const controller = new AbortController();
  let interrupts = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    interrupts++;
    if (interrupts > 1) process.exit(130); // a second Ctrl-C forces the exit
    if (!o.quiet && !o.json) process.stderr.write(`\nesrvid: ${sig}: stopping (press Ctrl-C again to force)\n`);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const onEvent = o.json ? jsonReporter(process.stdout) : o.quiet ? undefined : plainReporter(process.stderr);
  const opts: UpscaleOptions = {
    input, output, scale: o.scale, model: o.model, batch: o.batch, threads: o.threads, codec: o.codec, crf: o.crf,
    preset: o.preset, pixFmt: o.pixFmt, overwrite: !!o.yes, ffmpegPath: o.ffmpeg, ffprobePath: o.ffprobe,
    signal: controller.signal, onEvent, onPull: pullReporter(process.stderr, !!o.quiet || !!o.json),
  };
  try {
    await upscaleVideo(opts);
  } catch (err) {
    if (controller.signal.aborted) throw new CancelledError('cancelled: no output written');
    throw err;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
