import { describe, expect, it } from 'vitest';
import { autoTileSize, copyWindow, placeCore, planTiles } from '../../src/infer/tiling.js';

describe('tiling', () => {
  it('covers every pixel exactly once with cores, windows inside the frame', () => {
    const plan = planTiles(100, 70, 32, 10);
    expect([plan.windowW, plan.windowH]).toEqual([52, 52]);
    const seen = new Uint8Array(100 * 70);
    for (const t of plan.tiles) {
      expect(t.wx).toBeGreaterThanOrEqual(0);
      expect(t.wy).toBeGreaterThanOrEqual(0);
      expect(t.wx + plan.windowW).toBeLessThanOrEqual(100);
      expect(t.wy + plan.windowH).toBeLessThanOrEqual(70);
      // the core lies inside its window
      expect(t.x).toBeGreaterThanOrEqual(t.wx);
      expect(t.x + t.w).toBeLessThanOrEqual(t.wx + plan.windowW);
      expect(t.y + t.h).toBeLessThanOrEqual(t.wy + plan.windowH);
      for (let y = t.y; y < t.y + t.h; y++) for (let x = t.x; x < t.x + t.w; x++) seen[y * 100 + x]!++;
    }
    expect(plan.tiles).toHaveLength(4 * 3);
    expect(seen.every((v) => v === 1)).toBe(true);
  });

  it('a frame smaller than the window is one window of the frame size', () => {
    const plan = planTiles(20, 10, 64, 10);
    expect(plan.tiles).toEqual([{ x: 0, y: 0, w: 20, h: 10, wx: 0, wy: 0 }]);
    expect([plan.windowW, plan.windowH]).toEqual([20, 10]);
  });

  it('copy then place with an identity "network" (scale 1) rebuilds the frame', () => {
    const w = 37;
    const h = 23;
    const frame = Uint8Array.from({ length: w * h * 3 }, (_, i) => (i * 7) % 256);
    const plan = planTiles(w, h, 8, 3);
    const out = new Uint8Array(frame.length);
    const win = new Uint8Array(plan.windowW * plan.windowH * 3);
    for (const t of plan.tiles) {
      copyWindow(frame, plan, t, win, 0);
      placeCore(win, 0, plan, t, 1, out);
    }
    expect(Buffer.compare(Buffer.from(out), Buffer.from(frame))).toBe(0);
  });

  it('places scaled cores at scaled positions (nearest x2 "network")', () => {
    const w = 20;
    const h = 12;
    const frame = Uint8Array.from({ length: w * h * 3 }, (_, i) => i % 251);
    const plan = planTiles(w, h, 8, 1);
    const out = new Uint8Array(w * h * 3 * 4);
    const win = new Uint8Array(plan.windowW * plan.windowH * 3);
    const up = new Uint8Array(win.length * 4);
    for (const t of plan.tiles) {
      copyWindow(frame, plan, t, win, 0);
      for (let y = 0; y < plan.windowH * 2; y++) for (let x = 0; x < plan.windowW * 2; x++) for (let c = 0; c < 3; c++) {
        up[(y * plan.windowW * 2 + x) * 3 + c] = win[((y >> 1) * plan.windowW + (x >> 1)) * 3 + c]!;
      }
      placeCore(up, 0, plan, t, 2, out);
    }
    for (let y = 0; y < h * 2; y++) for (let x = 0; x < w * 2; x++) {
      expect(out[(y * w * 2 + x) * 3]).toBe(frame[((y >> 1) * w + (x >> 1)) * 3]);
    }
  });

  it('auto tile size fits the memory budget, or is 0 when the frame fits', () => {
    expect(autoTileSize(640, 360, 1, 10, 850, 4e9)).toBe(0);
    const t = autoTileSize(1920, 1080, 1, 10, 16_000, 2e9);
    expect(t % 16).toBe(0);
    expect((t + 20) ** 2 * 16_000).toBeLessThanOrEqual(2e9);
    expect((t + 36) ** 2 * 16_000).toBeGreaterThan(2e9);
  });
});
