/**
 * Tiling for frames too large to upscale in one piece. A frame is cut into core tiles; each is
 * upscaled inside a larger window that adds `pad` pixels of real neighbouring image as context
 * (windows shift inward at the frame's edges rather than inventing pixels), and only the core of
 * each result is kept. With enough context the seams vanish: the network's output at a pixel
 * depends only on its neighbourhood. All windows have one size so tiles batch together.
 */

export interface Tile {
  /** Core region, input pixels. */
  x: number;
  y: number;
  w: number;
  h: number;
  /** Window origin, input pixels (window size is the plan's). */
  wx: number;
  wy: number;
}

export interface TilePlan {
  width: number;
  height: number;
  windowW: number;
  windowH: number;
  tiles: Tile[];
}

export function planTiles(width: number, height: number, tile: number, pad: number): TilePlan {
  if (!(tile >= 8)) throw new Error(`tile size ${tile} is too small`);
  const windowW = Math.min(width, tile + 2 * pad);
  const windowH = Math.min(height, tile + 2 * pad);
  const tiles: Tile[] = [];
  for (let y = 0; y < height; y += tile) {
    for (let x = 0; x < width; x += tile) {
      const w = Math.min(tile, width - x);
      const h = Math.min(tile, height - y);
      const wx = Math.min(Math.max(0, x - pad), width - windowW);
      const wy = Math.min(Math.max(0, y - pad), height - windowH);
      tiles.push({ x, y, w, h, wx, wy });
    }
  }
  return { width, height, windowW, windowH, tiles };
}

/** Copies a tile's window out of an RGB24 frame into `dst` at `dstOffset` (row by row). */
export function copyWindow(frame: Uint8Array, plan: TilePlan, t: Tile, dst: Uint8Array, dstOffset: number): void {
  const rowBytes = plan.windowW * 3;
  for (let r = 0; r < plan.windowH; r++) {
    const s = ((t.wy + r) * plan.width + t.wx) * 3;
    dst.set(frame.subarray(s, s + rowBytes), dstOffset + r * rowBytes);
  }
}

/** Copies the core of an upscaled window (at `srcOffset` in `src`) into the upscaled frame. */
export function placeCore(src: Uint8Array, srcOffset: number, plan: TilePlan, t: Tile, scale: number, out: Uint8Array): void {
  const winW = plan.windowW * scale;
  const outW = plan.width * scale;
  const cx = (t.x - t.wx) * scale;
  const cy = (t.y - t.wy) * scale;
  const rowBytes = t.w * scale * 3;
  for (let r = 0; r < t.h * scale; r++) {
    const s = srcOffset + ((cy + r) * winW + cx) * 3;
    const d = ((t.y * scale + r) * outW + t.x * scale) * 3;
    out.set(src.subarray(s, s + rowBytes), d);
  }
}

/**
 * Memory ONNX Runtime (CPU) needs per input pixel, measured with onnxruntime-node 1.29 on
 * 640x360 (SRVGGNetCompact: ~820 B) and 256x256 frames (RRDBNet: ~16 KB, its dense blocks and
 * x4 upsampling keep many wide tensors alive).
 */
export function bytesPerInputPixel(architecture: string): number {
  return /SRVGG/i.test(architecture) ? 850 : 16_000;
}

/**
 * The largest tile (multiple of 16) whose windows, `batch` at a time, fit `budget` bytes; 0 when
 * the whole frame fits and no tiling is needed.
 */
export function autoTileSize(width: number, height: number, batch: number, pad: number, bytesPerPixel: number, budget: number): number {
  if (width * height * batch * bytesPerPixel <= budget) return 0;
  const side = Math.sqrt(budget / (batch * bytesPerPixel));
  const tile = Math.floor((side - 2 * pad) / 16) * 16;
  return Math.max(32, tile);
}
