/**
 * `esrvid preview <input> --at <time|fN> | --range <a-b>`: the CLI face of previewFrames() and
 * previewClip(). Written image paths go to stdout, one per line; a summary line goes to stderr.
 */
import { onStopSignals } from './stop-signals.js';
import { numberIn } from './parse.js';
import { Option, type Command } from 'commander';
import { scopeOptions } from './scope-options.js';
import { CancelledError, UsageError } from '../errors.js';
import { previewClip } from '../preview/clip.js';
import { previewFrames, MAX_PREVIEW_FRAMES, type CompareMode } from '../preview/preview.js';
import { describePoint, parseClipRange, parseCrop, parseModelList, parsePoint, type ClipRange, type CropRect, type PreviewPoint } from '../preview/spec.js';
import { pullReporter } from './models.js';
import { plainReporter, type UpscaleCliOptions } from './upscale.js';

/** The main command's options that mean the same here, and preview's own. */
export interface PreviewCliOptions extends Pick<UpscaleCliOptions,
  'model' | 'scale' | 'tile' | 'tilePad' | 'threads' | 'codec' | 'crf' | 'preset' | 'pixFmt' | 'yes' | 'quiet' | 'ffmpeg' | 'ffprobe'> {
  at?: PreviewPoint;
  range?: ClipRange;
  count?: number;
  output?: string;
  compare?: CompareMode;
  crop?: CropRect;
  models?: string[];
  device: 'cpu';
  precision: 'fp32' | 'int8';
}


function compareMode(raw: string): CompareMode {
  if (raw === 'side' || raw === 'split') return raw;
  throw new UsageError(`--compare "${raw}" is not a layout`, 'use --compare (side by side) or --compare split');
}

function device(raw: string): 'cpu' {
  if (raw === 'cpu') return raw;
  throw new UsageError(`--device ${raw} is not available yet`, 'use --device cpu');
}

export function registerPreview(program: Command, run: (input: string, o: PreviewCliOptions, quiet: boolean) => Promise<void> = runPreview): Command {
  // Everything after `preview` is preview's own, its -q included (src/commands/scope-options.ts).
  scopeOptions(program, ['preview']);
  return program.command('preview')
    .description('upscale the frames you care about (or a short clip) to judge the result before a long job')
    .argument('<input>', 'video to preview')
    .option('--at <time|fN>', 'the frame on screen at this time (seconds or [hh:]mm:ss[.mmm]), or frame N counted from 0 (f123)', (v: string) => parsePoint(v, '--at'))
    .option('--range <a-b>', 'a short clip through the full pipeline, audio included: times (1:30-1:35) or frames (f100-f150), end excluded', parseClipRange)
    .option('-n, --count <n>', `consecutive frames from --at on (name-0001.png, ...)`, numberIn('--count', 1, MAX_PREVIEW_FRAMES, true))
    .option('-o, --output <file>', 'image (.png, .jpg, .webp) or, with --range, video; default <input name>-<time>.png here')
    .option('--compare [layout]', 'add the conventional Lanczos upscale: side by side (default) or "split"', compareMode)
    .option('--crop <x,y,w,h>', 'zoom into this region (source pixels); upscaled with its surroundings as context', parseCrop)
    .option('-m, --model <name|file.onnx>', 'registry model, "auto", or an esrvid .onnx file', 'auto')
    .option('--models <a,b,c>', 'several models on the same frame, one labelled panel each', parseModelList)
    .option('-s, --scale <n>', 'output scale (default: the model\'s); non-native scales are resized with Lanczos', numberIn('--scale', 0.1, 16))
    .option('--device <name>', 'execution device', device, 'cpu')
    .addOption(new Option('--precision <p>', 'model precision (int8: compact models whose int8 output stays within 40 dB of fp32)').choices(['fp32', 'int8']).default('fp32'))
    .option('--tile <n|auto>', 'tile size in input pixels; 0 never tiles', (v: string) => (v === 'auto' ? 'auto' : numberIn('--tile', 0, 65536, true)(v)), 'auto')
    .option('--tile-pad <n>', 'context pixels around each tile', numberIn('--tile-pad', 0, 256, true), 16)
    .option('--threads <n>', 'inference threads (default: all cores)', numberIn('--threads', 1, 256, true))
    .option('--codec <name>', 'with --range: video encoder')
    .option('--crf <n>', 'with --range: encoder quality', numberIn('--crf', 0, 63))
    .option('--preset <name>', 'with --range: x264/x265 preset')
    .option('--pix-fmt <fmt>', 'with --range: output pixel format')
    .option('-y, --yes', 'overwrite existing outputs')
    .option('-q, --quiet', 'print only errors (and the written paths on stdout)')
    .option('--ffmpeg <path>', 'ffmpeg binary to use (or ESRVID_FFMPEG)')
    .option('--ffprobe <path>', 'ffprobe binary to use (or ESRVID_FFPROBE)')
    .action(async (input: string, o: PreviewCliOptions) => {
      await run(input, o, !!o.quiet || !!program.opts().quiet);
    });
}


/** Options that make sense only with --at (images) or only with --range (a clip). */
function checkCombination(o: PreviewCliOptions): void {
  if (!o.at && !o.range) throw new UsageError('say which frames to preview', 'add --at <time|fN> for an image or --range <a-b> for a clip');
  if (o.at && o.range) throw new UsageError('give --at or --range, not both');
  const imageOnly = { '--count': o.count, '--compare': o.compare, '--crop': o.crop, '--models': o.models };
  const clipOnly = { '--codec': o.codec, '--crf': o.crf, '--preset': o.preset, '--pix-fmt': o.pixFmt };
  const given = (opts: Record<string, unknown>) => Object.entries(opts).filter(([, v]) => v !== undefined).map(([k]) => k);
  if (o.range && given(imageOnly).length) throw new UsageError(`${given(imageOnly).join(', ')}: only for images (--at), not for a --range clip`);
  if (o.at && given(clipOnly).length) throw new UsageError(`${given(clipOnly).join(', ')}: only for --range clips, not for images`);
  if (o.models && o.model !== 'auto') throw new UsageError('give --model or --models, not both');
}

export async function runPreview(input: string, raw: PreviewCliOptions, quiet: boolean): Promise<void> {
  // Commander gives `true` for a bare --compare.
  const o: PreviewCliOptions = { ...raw, compare: (raw.compare as unknown) === true ? 'side' : raw.compare };
  checkCombination(o);
  const controller = new AbortController();
  const releaseSignals = onStopSignals(controller);
  const common = {
    input, output: o.output, model: o.model, scale: o.scale, device: o.device, precision: o.precision, tile: o.tile, tilePad: o.tilePad, threads: o.threads,
    overwrite: !!o.yes, ffmpegPath: o.ffmpeg, ffprobePath: o.ffprobe, signal: controller.signal, onPull: pullReporter(process.stderr, quiet),
  };
  try {
    if (o.range) {
      const r = await previewClip({
        ...common, range: o.range, codec: o.codec, crf: o.crf, preset: o.preset, pixFmt: o.pixFmt,
        onEvent: quiet ? undefined : plainReporter(process.stderr),
      });
      process.stdout.write(`${r.output}\n`);
      return;
    }
    const at = o.at!;
    const r = await previewFrames({
      ...common, at, count: o.count, compare: o.compare, crop: o.crop, models: o.models,
      onWarning: (m) => process.stderr.write(`esrvid: warning: ${m}\n`),
    });
    if (!quiet) {
      const first = r.files[0]!;
      const shown = first.seconds.toFixed(3);
      const what = o.crop ? `crop ${o.crop.x},${o.crop.y},${o.crop.w},${o.crop.h} of ` : '';
      process.stderr.write(`esrvid: preview of ${input} at ${describePoint(at)}: ${what}frame at ${shown} s, ${r.inputSize.join('x')} -> ${r.panelSize.join('x')}`
        + ` with ${r.models.map((m) => m.name).join(', ')}${o.compare ? ` against ${r.conventionalLabel}` : ''}; ${r.files.length} image(s) of ${r.imageSize.join('x')}\n`);
    }
    for (const f of r.files) process.stdout.write(`${f.path}\n`);
  } catch (err) {
    if (controller.signal.aborted) throw err instanceof CancelledError ? err : new CancelledError('cancelled');
    throw err;
  } finally {
    releaseSignals();
  }
}
