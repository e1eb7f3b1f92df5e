/**
 * The part of a frame a preview upscales, and the upscaling itself. A crop is upscaled inside a
 * window that adds CROP_CONTEXT pixels of the real surrounding image on every side (clamped to
 * the frame, where a full-frame run also sees the frame's edge), and only the crop is kept: the
 * network's output at a pixel depends on its neighbourhood, so with that context the crop's
 * borders come out as in a full-frame run. Large windows are tiled exactly as the main pipeline
 * tiles frames (src/infer/tiling.ts).
 */
import { planTiles, copyWindow, placeCore } from '../infer/tiling.js';
import type { Upscaler } from '../infer/upscaler.js';
import type { CropRect } from './spec.js';
import type { RgbImage } from './layout.js';

/**
 * Context around a crop, input pixels. The compact models (SRVGGNetCompact, 16-32 convolutions)
 * see at most 33 pixels away; RRDBNet sees farther, but its influence beyond ~20 px is below one
 * grey level (tiling with 16 px of context gives 64 dB).
 */
export const CROP_CONTEXT = 48;

export interface RegionPlan {
  /** The window fed to the network, input pixels. */
  wx: number;
  wy: number;
  ww: number;
  wh: number;
  /** The region kept, relative to the window. */
  cx: number;
  cy: number;
  cw: number;
  ch: number;
}

/** The whole frame, or a crop with `context` pixels around it (clamped to the frame). */
export function planRegion(width: number, height: number, crop?: CropRect, context = CROP_CONTEXT): RegionPlan {
  if (!crop) return { wx: 0, wy: 0, ww: width, wh: height, cx: 0, cy: 0, cw: width, ch: height };
  const wx = Math.max(0, crop.x - context);
  const wy = Math.max(0, crop.y - context);
  const ww = Math.min(width, crop.x + crop.w + context) - wx;
  const wh = Math.min(height, crop.y + crop.h + context) - wy;
  return { wx, wy, ww, wh, cx: crop.x - wx, cy: crop.y - wy, cw: crop.w, ch: crop.h };
}

/** Copies a rectangle out of an RGB image. */
export function cut(img: RgbImage, x: number, y: number, w: number, h: number): RgbImage {
  if (x < 0 || y < 0 || x + w > img.width || y + h > img.height) throw new Error(`cut ${x},${y},${w},${h} outside ${img.width}x${img.height}`);
  if (x === 0 && y === 0 && w === img.width && h === img.height) return img;
  const data = new Uint8Array(w * h * 3);
  for (let r = 0; r < h; r++) {
    const s = ((y + r) * img.width + x) * 3;
    data.set(img.data.subarray(s, s + w * 3), r * w * 3);
  }
  return { data, width: w, height: h };
}

/**
 * Sizes after upscaling: the window is resized to `window` and the kept region is `core` within
 * it. `frameOut` is the size the whole frame gets (the main pipeline's target size).
 */
export function outputGeometry(plan: RegionPlan, frameW: number, frameH: number, frameOut: [number, number]): { window: [number, number]; core: { x: number; y: number; w: number; h: number } } {
  const sx = frameOut[0] / frameW;
  const sy = frameOut[1] / frameH;
  if (plan.ww === frameW && plan.wh === frameH && plan.cw === frameW && plan.ch === frameH) {
    return { window: frameOut, core: { x: 0, y: 0, w: frameOut[0], h: frameOut[1] } };
  }
  const window: [number, number] = [Math.max(1, Math.round(plan.ww * sx)), Math.max(1, Math.round(plan.wh * sy))];
  const x = Math.round(plan.cx * sx);
  const y = Math.round(plan.cy * sy);
  const w = Math.min(window[0] - x, Math.max(1, Math.round(plan.cw * sx)));
  const h = Math.min(window[1] - y, Math.max(1, Math.round(plan.ch * sy)));
  return { window, core: { x, y, w, h } };
}

/**
 * Upscales an RGB image at the model's native scale; tiled (tile size and context in input
 * pixels, as the main pipeline's --tile/--tile-pad) when it is larger than `tile`.
 */
export async function upscaleImage(ups: Upscaler, modelScale: number, img: RgbImage, tile: number, tilePad: number): Promise<RgbImage> {
  const { width, height } = img;
  const outW = width * modelScale;
  const outH = height * modelScale;
  if (!(tile > 0 && (width > tile || height > tile))) {
    const slot = ups.allocateSlot(1, width, height);
    new Uint8Array(slot.input).set(img.data);
    const { slot: back } = await ups.run(slot, 1, width, height);
    return { data: new Uint8Array(back.output), width: outW, height: outH };
  }
  const plan = planTiles(width, height, tile, tilePad);
  const out = new Uint8Array(outW * outH * 3);
  let slot = ups.allocateSlot(1, plan.windowW, plan.windowH);
  for (const t of plan.tiles) {
    copyWindow(img.data, plan, t, new Uint8Array(slot.input), 0);
    const r = await ups.run(slot, 1, plan.windowW, plan.windowH);
    slot = r.slot;
    placeCore(new Uint8Array(slot.output), 0, plan, t, modelScale, out);
  }
  return { data: out, width: outW, height: outH };
}
