/**
 * Comparison images, laid out on raw RGB24 buffers (no image library, so the layout is exact and
 * testable pixel by pixel).
 *
 * Grid (--compare, --models): panels left to right, then top to bottom, in ceil(sqrt(n)) columns;
 * each panel has a label strip above it (white text on near-black) and panels are separated by a
 * gap of the background colour. Two panels are side by side.
 *
 * Split (--compare split): one image the size of a panel; columns left of the middle come from the
 * first panel, the rest from the second, a white line marks the middle, and each half is labelled
 * in its top corner (letters made smaller, down to k = 1, until both labels fit their halves).
 */
import { ADVANCE, GLYPH_H, GLYPH_W, glyph, textWidth } from './bitmap-font.js';

export interface RgbImage {
  data: Uint8Array;
  width: number;
  height: number;
}

export interface Panel extends RgbImage {
  label: string;
}

export type Rgb = readonly [number, number, number];
export const BACKGROUND: Rgb = [24, 24, 24];
export const INK: Rgb = [255, 255, 255];

/** Label magnification: 1 for panels under 320 px, 2 up to 639 px, ... at most 4. */
export function labelScale(panelWidth: number): number {
  return Math.max(1, Math.min(4, Math.floor(panelWidth / 320) + 1));
}

/** Label strip height: the glyph cell plus 2k above and below. */
export function stripHeight(k: number): number {
  return (GLYPH_H + 4) * k;
}

export function gapOf(k: number): number {
  return 2 * k;
}

export function fill(img: RgbImage, x0: number, y0: number, w: number, h: number, c: Rgb): void {
  const x1 = Math.min(img.width, x0 + w);
  const y1 = Math.min(img.height, y0 + h);
  for (let y = Math.max(0, y0); y < y1; y++) {
    for (let x = Math.max(0, x0); x < x1; x++) {
      const i = (y * img.width + x) * 3;
      img.data[i] = c[0];
      img.data[i + 1] = c[1];
      img.data[i + 2] = c[2];
    }
  }
}

/** Draws `text` with its top-left at (x0, y0), magnified k times, clipped to `clipW` columns from x0. */
export function drawText(img: RgbImage, x0: number, y0: number, text: string, k: number, c: Rgb = INK, clipW = Infinity): void {
  const right = Math.min(img.width, x0 + clipW);
  [...text].forEach((ch, n) => {
    const g = glyph(ch);
    const gx = x0 + n * ADVANCE * k;
    for (let y = 0; y < GLYPH_H; y++) {
      for (let x = 0; x < GLYPH_W; x++) {
        if (g[y * GLYPH_W + x]) fill(img, gx + x * k, y0 + y * k, Math.max(0, Math.min(k, right - (gx + x * k))), k, c);
      }
    }
  });
}

/** Copies `src` into `dst` with its top-left at (x0, y0). */
export function blit(dst: RgbImage, src: RgbImage, x0: number, y0: number): void {
  const rowBytes = src.width * 3;
  for (let y = 0; y < src.height; y++) {
    const d = ((y0 + y) * dst.width + x0) * 3;
    dst.data.set(src.data.subarray(y * rowBytes, (y + 1) * rowBytes), d);
  }
}

function canvas(width: number, height: number, c: Rgb = BACKGROUND): RgbImage {
  const img = { data: new Uint8Array(width * height * 3), width, height };
  fill(img, 0, 0, width, height, c);
  return img;
}

export interface GridGeometry {
  columns: number;
  rows: number;
  k: number;
  strip: number;
  gap: number;
  width: number;
  height: number;
  /** Top-left of each panel's image (its label strip is the `strip` rows above). */
  origins: [number, number][];
}

/** Where everything goes for `n` panels of panelW x panelH. */
export function gridGeometry(n: number, panelW: number, panelH: number): GridGeometry {
  const columns = Math.ceil(Math.sqrt(n));
  const rows = Math.ceil(n / columns);
  const k = labelScale(panelW);
  const strip = stripHeight(k);
  const gap = gapOf(k);
  const origins: [number, number][] = [];
  for (let i = 0; i < n; i++) {
    const c = i % columns;
    const r = Math.floor(i / columns);
    origins.push([c * (panelW + gap), r * (strip + panelH + gap) + strip]);
  }
  return { columns, rows, k, strip, gap, width: columns * panelW + (columns - 1) * gap, height: rows * (strip + panelH) + (rows - 1) * gap, origins };
}

export function composeGrid(panels: Panel[]): RgbImage {
  const { width: pw, height: ph } = panels[0]!;
  if (panels.some((p) => p.width !== pw || p.height !== ph)) throw new Error('composeGrid: panels differ in size');
  const g = gridGeometry(panels.length, pw, ph);
  const out = canvas(g.width, g.height);
  panels.forEach((p, i) => {
    const [x, y] = g.origins[i]!;
    drawText(out, x + 2 * g.k, y - g.strip + 2 * g.k, p.label, g.k, INK, pw - 2 * g.k);
    blit(out, p, x, y);
  });
  return out;
}

export interface SplitGeometry {
  k: number;
  /** First column taken from the right-hand panel. */
  middle: number;
  /** The divider covers columns [lineX, lineX + lineW). */
  lineX: number;
  lineW: number;
  /** Label boxes (background) and where their text starts. */
  boxes: { x: number; y: number; w: number; h: number; textX: number; textY: number }[];
}

export function splitGeometry(width: number, leftLabel: string, rightLabel: string): SplitGeometry {
  const middle = Math.floor(width / 2);
  // Each label box stays inside its half: smaller letters for long labels, clipped at k = 1.
  const fits = (k: number) => [leftLabel, rightLabel].every((l) => textWidth(l, k) + 8 * k + Math.max(2, k) <= middle);
  let k = labelScale(width);
  while (k > 1 && !fits(k)) k--;
  const lineW = Math.max(2, k);
  const lineX = middle - Math.floor(lineW / 2);
  const room = Math.max(4 * k + 1, middle - Math.ceil(lineW / 2) - 4 * k);
  const box = (label: string, right: boolean) => {
    const w = Math.min(room, textWidth(label, k) + 4 * k);
    const h = stripHeight(k);
    const x = right ? width - 2 * k - w : 2 * k;
    return { x, y: 2 * k, w, h, textX: x + 2 * k, textY: 4 * k };
  };
  return { k, middle, lineX, lineW, boxes: [box(leftLabel, false), box(rightLabel, true)] };
}

export function composeSplit(left: Panel, right: Panel): RgbImage {
  if (left.width !== right.width || left.height !== right.height) throw new Error('composeSplit: panels differ in size');
  const { width, height } = left;
  const g = splitGeometry(width, left.label, right.label);
  const out: RgbImage = { data: new Uint8Array(right.data), width, height };
  for (let y = 0; y < height; y++) {
    const s = y * width * 3;
    out.data.set(left.data.subarray(s, s + g.middle * 3), s);
  }
  [left.label, right.label].forEach((label, i) => {
    const b = g.boxes[i]!;
    fill(out, b.x, b.y, b.w, b.h, BACKGROUND);
    drawText(out, b.textX, b.textY, label, g.k, INK, b.w - 4 * g.k);
  });
  fill(out, g.lineX, 0, g.lineW, height, INK);
  return out;
}
