import { describe, expect, it } from 'vitest';
import { ADVANCE, GLYPH_H, GLYPH_W, glyph, textWidth } from '../../src/preview/bitmap-font.js';
import { BACKGROUND, composeGrid, composeSplit, drawText, gridGeometry, INK, labelScale, splitGeometry, stripHeight, type Panel, type RgbImage } from '../../src/preview/layout.js';
import { cut, outputGeometry, planRegion } from '../../src/preview/region.js';
import { resizeArgs } from '../../src/preview/resize.js';

const px = (img: RgbImage, x: number, y: number) => [...img.data.subarray((y * img.width + x) * 3, (y * img.width + x) * 3 + 3)];

/** A panel of one flat colour. */
function flat(width: number, height: number, c: [number, number, number], label: string): Panel {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i += 3) data.set(c, i);
  return { data, width, height, label };
}

describe('bitmap font', () => {
  it('every glyph has ink inside its cell; unknown characters are "?"', () => {
    for (const ch of 'AZaz09-._:/()+,=%#\'?gjpqy') {
      const g = glyph(ch);
      expect(g.length).toBe(GLYPH_W * GLYPH_H);
      expect(g.some((b) => b === 1), ch).toBe(true);
    }
    expect(glyph(' ').every((b) => b === 0)).toBe(true);
    expect(glyph('é')).toEqual(glyph('?'));
    // descenders use the two rows below the baseline; capitals do not
    expect(glyph('g').subarray(7 * GLYPH_W).some((b) => b === 1)).toBe(true);
    expect(glyph('G').subarray(7 * GLYPH_W).some((b) => b === 1)).toBe(false);
    expect(textWidth('ab', 2)).toBe((2 * ADVANCE - 1) * 2);
  });

  it('drawText magnifies each ink bit to a k x k block and clips', () => {
    const img: RgbImage = { data: new Uint8Array(40 * 30 * 3), width: 40, height: 30 };
    drawText(img, 1, 2, 'L', 3);
    const g = glyph('L');
    for (let y = 0; y < GLYPH_H * 3; y++) {
      for (let x = 0; x < GLYPH_W * 3; x++) {
        const ink = g[Math.floor(y / 3) * GLYPH_W + Math.floor(x / 3)] === 1;
        expect(px(img, 1 + x, 2 + y)).toEqual(ink ? [...INK] : [0, 0, 0]);
      }
    }
    const clipped: RgbImage = { data: new Uint8Array(40 * 10 * 3), width: 40, height: 10 };
    drawText(clipped, 0, 0, 'MMMMMMMM', 1, INK, 7);
    for (let y = 0; y < 10; y++) for (let x = 7; x < 40; x++) expect(px(clipped, x, y)).toEqual([0, 0, 0]);
  });
});

describe('comparison layouts', () => {
  it('labels grow with the panel: k = 1 under 320 px, at most 4', () => {
    expect([labelScale(192), labelScale(320), labelScale(640), labelScale(3840)]).toEqual([1, 2, 3, 4]);
    expect(stripHeight(2)).toBe(26);
  });

  it('grid: ceil(sqrt(n)) columns, a label strip above each panel, gaps of background', () => {
    expect(gridGeometry(2, 100, 50)).toMatchObject({ columns: 2, rows: 1, k: 1, strip: 13, gap: 2, width: 202, height: 63, origins: [[0, 13], [102, 13]] });
    expect(gridGeometry(3, 100, 50)).toMatchObject({ columns: 2, rows: 2, width: 202, height: 128, origins: [[0, 13], [102, 13], [0, 78]] });
    expect(gridGeometry(5, 100, 50).columns).toBe(3);

    const panels = [flat(100, 50, [200, 0, 0], 'Lanczos'), flat(100, 50, [0, 200, 0], 'model-a'), flat(100, 50, [0, 0, 200], 'model-b')];
    const img = composeGrid(panels);
    expect([img.width, img.height]).toEqual([202, 128]);
    expect(px(img, 0, 13)).toEqual([200, 0, 0]);
    expect(px(img, 99, 62)).toEqual([200, 0, 0]);
    expect(px(img, 100, 30)).toEqual([...BACKGROUND]); // gap
    expect(px(img, 102, 13)).toEqual([0, 200, 0]);
    expect(px(img, 50, 78)).toEqual([0, 0, 200]);
    expect(px(img, 150, 100)).toEqual([...BACKGROUND]); // the empty fourth cell
    // Each strip holds exactly its label: redraw it on a blank strip and compare.
    for (const [i, p] of panels.entries()) {
      const [x, y] = gridGeometry(3, 100, 50).origins[i]!;
      const expected: RgbImage = { data: new Uint8Array(100 * 13 * 3), width: 100, height: 13 };
      for (let j = 0; j < expected.data.length; j += 3) expected.data.set(BACKGROUND, j);
      drawText(expected, 2, 2, p.label, 1, INK, 98);
      const strip = cut(img, x, y - 13, 100, 13);
      expect(Buffer.from(strip.data).equals(Buffer.from(expected.data)), p.label).toBe(true);
    }
  });

  it('split: left half from the first panel, a white line, both halves labelled in their corners', () => {
    const left = flat(640, 360, [200, 0, 0], 'Lanczos');
    const right = flat(640, 360, [0, 200, 0], 'realesr-general-x4v3');
    const g = splitGeometry(640, left.label, right.label);
    // k would be 3 for 640 px, but the model's name only fits its half at k = 2.
    expect(g).toMatchObject({ k: 2, middle: 320, lineX: 319, lineW: 2 });
    const img = composeSplit(left, right);
    expect([img.width, img.height]).toEqual([640, 360]);
    expect(px(img, 10, 200)).toEqual([200, 0, 0]);
    expect(px(img, 318, 200)).toEqual([200, 0, 0]);
    expect(px(img, 320, 200)).toEqual([...INK]);
    expect(px(img, 322, 200)).toEqual([0, 200, 0]);
    expect(px(img, 630, 200)).toEqual([0, 200, 0]);
    const [lb, rb] = g.boxes;
    expect(lb!.x).toBe(4);
    expect(rb!.x + rb!.w).toBe(640 - 4);
    expect(rb!.x).toBeGreaterThan(g.lineX + g.lineW);
    expect(px(img, lb!.x, lb!.y)).toEqual([...BACKGROUND]);
    expect(px(img, rb!.x + rb!.w - 1, rb!.y + rb!.h - 1)).toEqual([...BACKGROUND]);
  });

  it('split: a label too long for its half is clipped inside it', () => {
    const long = 'a-very-long-model-file-name-that-cannot-fit.onnx';
    const g = splitGeometry(200, 'Lanczos', long);
    expect(g.k).toBe(1);
    const [lb, rb] = g.boxes;
    expect(lb!.x + lb!.w).toBeLessThanOrEqual(g.lineX);
    expect(rb!.x).toBeGreaterThanOrEqual(g.lineX + g.lineW);
    const img = composeSplit(flat(200, 60, [200, 0, 0], 'Lanczos'), flat(200, 60, [0, 200, 0], long));
    for (let y = 0; y < 60; y++) for (let x = g.lineX; x < g.lineX + g.lineW; x++) expect(px(img, x, y)).toEqual([...INK]);
  });
});

describe('crop regions', () => {
  it('context is real image around the crop, clamped at the frame edges', () => {
    expect(planRegion(160, 90)).toEqual({ wx: 0, wy: 0, ww: 160, wh: 90, cx: 0, cy: 0, cw: 160, ch: 90 });
    expect(planRegion(320, 180, { x: 100, y: 60, w: 40, h: 30 }, 48)).toEqual({ wx: 52, wy: 12, ww: 136, wh: 126, cx: 48, cy: 48, cw: 40, ch: 30 });
    expect(planRegion(160, 90, { x: 0, y: 70, w: 20, h: 20 }, 48)).toEqual({ wx: 0, wy: 22, ww: 68, wh: 68, cx: 0, cy: 48, cw: 20, ch: 20 });
  });

  it('output geometry: native scale is exact, the full frame takes the pipeline size', () => {
    const r = planRegion(320, 180, { x: 100, y: 60, w: 40, h: 30 }, 48);
    expect(outputGeometry(r, 320, 180, [1280, 720])).toEqual({ window: [544, 504], core: { x: 192, y: 192, w: 160, h: 120 } });
    expect(outputGeometry(planRegion(161, 91), 161, 91, [484, 274])).toEqual({ window: [484, 274], core: { x: 0, y: 0, w: 484, h: 274 } });
  });

  it('cut copies a rectangle', () => {
    const img: RgbImage = { data: Uint8Array.from({ length: 4 * 3 * 3 }, (_, i) => i), width: 4, height: 3 };
    const c = cut(img, 1, 1, 2, 2);
    expect([...c.data]).toEqual([15, 16, 17, 18, 19, 20, 27, 28, 29, 30, 31, 32]);
    expect(() => cut(img, 3, 0, 2, 1)).toThrow(/outside/);
  });

  it('resizing uses the main pipeline\'s Lanczos filter', () => {
    const args = resizeArgs([160, 90], [320, 180]);
    expect(args.slice(args.indexOf('-s'), args.indexOf('-s') + 2)).toEqual(['-s', '160x90']);
    expect(args[args.indexOf('-vf') + 1]).toBe('scale=320:180:flags=lanczos+accurate_rnd+full_chroma_int,format=rgb24');
  });
});
