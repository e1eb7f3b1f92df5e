/**
 * `esrvid preview`: one frame (or a few) upscaled and written as an image, to judge a model on
 * the frames that matter before committing hours to the whole video. The frames are found by
 * seeking (src/preview/grab.ts), decoded and colour-converted by the main pipeline's Decoder and
 * upscaled by the same worker, tiling and resize as the main job, so the image is the frame the
 * video will get. Options add a conventional (Lanczos) upscale beside it, zoom into a crop, or
 * put several models side by side (src/preview/layout.ts).
 *
 * Everything that can be refused is checked before any decoding or writing: the point in the
 * video, the crop, the models, the output names.
 */
import { totalmem } from 'node:os';
import { basename, extname, join } from 'node:path';
import { CancelledError, UsageError } from '../errors.js';
import { findFfmpeg } from '../ffmpeg/binaries.js';
import { probe } from '../ffmpeg/probe.js';
import { autoTileSize, bytesPerInputPixel } from '../infer/tiling.js';
import { Upscaler } from '../infer/upscaler.js';
import type { PullEvent } from '../models/pull.js';
import { findModel } from '../models/registry.js';
import { resolveModel, type ResolvedModel } from '../models/resolve.js';
import { targetSize } from '../encode/output-size.js';
import { displaySize, grabFrames, locate, type GrabbedFrame } from './grab.js';
import { checkOutputs, imageFormatFor, seriesNames, writeImage } from './image-file.js';
import { composeGrid, composeSplit, type Panel, type RgbImage } from './layout.js';
import { cut, outputGeometry, planRegion, upscaleImage } from './region.js';
import { resizeRgb } from './resize.js';
import { checkCrop, pointStamp, type CropRect, type PreviewPoint } from './spec.js';

export type CompareMode = 'side' | 'split';

export interface PreviewOptions {
  input: string;
  at: PreviewPoint;
  /** Consecutive frames from `at` on (default 1): name-0001.png, name-0002.png, ... */
  count?: number;
  /** Image file (.png, .jpg/.jpeg, .webp); default `<input name>-<time>.png` in `cwd`. */
  output?: string;
  cwd?: string;
  /** Add the conventional upscale: side by side ('side') or one image split down the middle ('split'). */
  compare?: CompareMode;
  /** Only this region of the frame, source pixels (upscaled with context around it). */
  crop?: CropRect;
  /** Registry name, 'auto', or an esrvid .onnx file (default 'auto'). */
  model?: string;
  /** Several models on the same frame, one labelled panel each (overrides `model`). */
  models?: string[];
  /** Output scale relative to the input (default: the (first) model's). */
  scale?: number;
  device?: 'cpu';
  /** fp32 (default) or int8 (compact models that pass its quality gate). */
  precision?: 'fp32' | 'int8';
  tile?: number | 'auto';
  tilePad?: number;
  memoryBudget?: number;
  threads?: number;
  overwrite?: boolean;
  ffmpegPath?: string;
  ffprobePath?: string;
  signal?: AbortSignal;
  onPull?: (e: PullEvent) => void;
  /** Warnings worth a line (e.g. the video ended before `count` frames). */
  onWarning?: (message: string) => void;
}

export interface PreviewFile {
  path: string;
  bytes: number;
  /** The frame's presentation time: µs on the source clock, and seconds as players show it. */
  ptsUs: number;
  seconds: number;
}

export interface PreviewResult {
  files: PreviewFile[];
  inputSize: [number, number];
  /** Size of one upscaled frame (or crop): each panel of a comparison. */
  panelSize: [number, number];
  /** Size of the written images. */
  imageSize: [number, number];
  models: ResolvedModel[];
  /** Label of the conventional panel. */
  conventionalLabel: string;
}

export const CONVENTIONAL_LABEL = 'Lanczos';
export const MAX_PREVIEW_FRAMES = 1000;

/** `<input name>-<time|fN>.png` in `cwd`. */
export function defaultPreviewName(input: string, at: PreviewPoint, cwd = process.cwd()): string {
  return join(cwd, `${basename(input, extname(input))}-${pointStamp(at)}.png`);
}

/** What a model's panel is called: its registry name, or the file name of an .onnx model. */
export function modelLabel(m: ResolvedModel): string {
  return m.name.includes('/') || m.name.endsWith('.onnx') ? basename(m.name) : m.name;
}

export async function previewFrames(o: PreviewOptions): Promise<PreviewResult> {
  const count = o.count ?? 1;
  if (!(Number.isInteger(count) && count >= 1 && count <= MAX_PREVIEW_FRAMES)) throw new UsageError(`--count must be a whole number from 1 to ${MAX_PREVIEW_FRAMES}, got ${count}`);
  if (o.scale !== undefined && !(o.scale > 0 && o.scale <= 16)) throw new UsageError(`--scale must be between 0 and 16, got ${o.scale}`);
  if (o.device !== undefined && o.device !== 'cpu') throw new UsageError(`--device ${String(o.device)} is not available yet`, 'use --device cpu');
  const specs = o.models ?? [o.model ?? 'auto'];
  if (o.compare === 'split' && specs.length !== 1) throw new UsageError('--compare split shows one model against Lanczos', 'use --compare (side by side) with --models');
  const output = o.output ?? defaultPreviewName(o.input, o.at, o.cwd);
  imageFormatFor(output);
  // Unknown registry names fail here, before any model is fetched.
  for (const s of specs) if (s !== 'auto' && !s.endsWith('.onnx') && !s.includes('/')) findModel(s);

  const tools = await findFfmpeg({ ffmpeg: o.ffmpegPath, ffprobe: o.ffprobePath });
  const info = await probe(tools.ffprobe, o.input);
  const [inW, inH] = displaySize(info);
  if (o.crop) checkCrop(o.crop, inW, inH);
  const target = await locate(o.at, info, tools.ffprobe);
  const names = seriesNames(output, count);
  checkOutputs(names, !!o.overwrite, o.input);

  const models: ResolvedModel[] = [];
  for (const s of specs) models.push(await resolveModel(s, { device: 'cpu', precision: o.precision ?? 'fp32', onPull: o.onPull }));
  const scale = o.scale ?? models[0]!.scale;
  const frameOut = targetSize(inW, inH, scale, 'yuv420p');
  const region = planRegion(inW, inH, o.crop);
  const geo = outputGeometry(region, inW, inH, frameOut);
  const panelSize: [number, number] = [geo.core.w, geo.core.h];
  const tilePad = o.tilePad ?? 16;
  const budget = o.memoryBudget ?? Math.min(totalmem() * 0.25, 8 * 2 ** 30);
  const tileFor = (m: ResolvedModel) => (o.tile === undefined || o.tile === 'auto'
    ? autoTileSize(region.ww, region.wh, 1, tilePad, bytesPerInputPixel(m.architecture), budget)
    : o.tile);

  const frames = await grabFrames({ ffmpeg: tools.ffmpeg, info, target, count, signal: o.signal });
  if (frames.length < count) o.onWarning?.(`only ${frames.length} frame(s) from the requested point to the end of the video: wrote ${frames.length} of ${count}`);

  const upscalers: Upscaler[] = [];
  const files: PreviewFile[] = [];
  let imageSize: [number, number] = panelSize;
  try {
    // One lane with every thread: a preview waits for each frame, so its latency is what counts.
    for (const m of models) upscalers.push(await Upscaler.start({ modelPath: m.path, scale: m.scale, threads: o.threads, lanes: 1, precision: m.precision }));
    for (const [i, frame] of frames.entries()) {
      if (o.signal?.aborted) throw new CancelledError();
      const img = await renderFrame(frame);
      imageSize = [img.width, img.height];
      const bytes = await writeImage(img, names[i]!);
      files.push({ path: names[i]!, bytes, ptsUs: frame.ptsUs, seconds: frame.seconds });
    }
  } finally {
    await Promise.all(upscalers.map((u) => u.close()));
  }
  return { files, inputSize: [inW, inH], panelSize, imageSize, models, conventionalLabel: CONVENTIONAL_LABEL };

  /** One frame: the upscaled region, or a labelled comparison. */
  async function renderFrame(frame: GrabbedFrame): Promise<RgbImage> {
    const window = cut(frame, region.wx, region.wy, region.ww, region.wh);
    const finish = async (img: RgbImage) => {
      const sized = await resizeRgb(tools.ffmpeg, img, geo.window[0], geo.window[1]);
      return cut(sized, geo.core.x, geo.core.y, geo.core.w, geo.core.h);
    };
    const panels: Panel[] = [];
    if (o.compare) panels.push({ label: CONVENTIONAL_LABEL, ...(await finish(window)) });
    for (const [k, m] of models.entries()) {
      const up = await upscaleImage(upscalers[k]!, m.scale, window, tileFor(m), tilePad);
      panels.push({ label: modelLabel(m), ...(await finish(up)) });
    }
    if (o.compare === 'split') return composeSplit(panels[0]!, panels[1]!);
    if (panels.length === 1) return panels[0]!;
    return composeGrid(panels);
  }
}
