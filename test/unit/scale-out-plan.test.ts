import { describe, expect, it } from 'vitest';
import { planSegments, type PlannedSegment } from '../../src/scale-out/plan.js';

/** Times of n frames at a constant rate (µs). */
const cfr = (n: number, fps = 24, startUs = 0) => Array.from({ length: n }, (_, i) => startUs + Math.round((i * 1e6) / fps));
const every = (times: number[], k: number) => times.filter((_, i) => i % k === 0);

/** No gap, no overlap, in order, every frame once; the timestamps match the frames. */
function expectExactCover(segs: PlannedSegment[], times: number[]): void {
  expect(segs[0]!.start).toBe(0);
  expect(segs.at(-1)!.end).toBe(times.length);
  segs.forEach((s, i) => {
    expect(s.index).toBe(i);
    expect(s.end).toBeGreaterThan(s.start);
    if (i > 0) expect(s.start).toBe(segs[i - 1]!.end);
    expect(s.firstPtsUs).toBe(times[s.start]);
    expect(s.lastPtsUs).toBe(times[s.end - 1]);
    expect(s.endPtsUs).toBe(s.end < times.length ? times[s.end] : null);
  });
  expect(segs.reduce((n, s) => n + (s.end - s.start), 0)).toBe(times.length);
}

describe('planSegments (keyframe segment planner)', () => {
  it('cuts on the first keyframe at least the segment length later', () => {
    const times = cfr(96); // 4 s at 24 fps, keyframe every 10 frames
    const segs = planSegments(times, every(times, 10), 1);
    expectExactCover(segs, times);
    // 1 s = 24 frames: the first keyframe at or after frame 24 is 30, then 60 (>= 54), then 90 (>= 84).
    expect(segs.map((s) => [s.start, s.end])).toEqual([[0, 30], [30, 60], [60, 90], [90, 96]]);
    for (const s of segs) expect(every(times, 10)).toContain(s.firstPtsUs);
  });

  it('one keyframe: one segment, whatever the length asked for', () => {
    const times = cfr(50);
    const segs = planSegments(times, [0], 0.1);
    expectExactCover(segs, times);
    expect(segs).toHaveLength(1);
  });

  it('a segment longer than the clip: one segment', () => {
    const times = cfr(48);
    const segs = planSegments(times, every(times, 8), 60);
    expect(segs).toEqual([{ index: 0, start: 0, end: 48, firstPtsUs: 0, lastPtsUs: times[47], endPtsUs: null }]);
  });

  it('keyframes further apart than the segment length: one GOP per segment', () => {
    const times = cfr(100);
    const segs = planSegments(times, every(times, 25), 0.2);
    expectExactCover(segs, times);
    expect(segs.map((s) => s.start)).toEqual([0, 25, 50, 75]);
  });

  it('variable frame rate: cuts by time, not by frame count', () => {
    // 40 frames 10 ms apart, then 20 frames 100 ms apart; keyframe every 5 frames.
    const times = [...Array.from({ length: 40 }, (_, i) => i * 10_000), ...Array.from({ length: 20 }, (_, i) => 400_000 + i * 100_000)];
    const segs = planSegments(times, every(times, 5), 0.5);
    expectExactCover(segs, times);
    // 0.5 s after 0 is 500000 µs: frame 41 (500000) is not a keyframe, 45 (900000) is.
    expect(segs.map((s) => s.start)).toEqual([0, 45, 50, 55]);
    expect(segs[1]!.firstPtsUs).toBe(900_000);
  });

  it('a first frame that is not a keyframe (open GOP) still starts the first segment', () => {
    const times = cfr(30, 24, 80_000);
    const segs = planSegments(times, [times[2]!, times[14]!, times[26]!], 0.25);
    expectExactCover(segs, times);
    expect(segs.map((s) => s.start)).toEqual([0, 14, 26]);
  });

  it('keyframe timestamps that are not frames, and duplicate timestamps, never make empty segments', () => {
    const times = [0, 40_000, 80_000, 80_000, 120_000, 160_000];
    const segs = planSegments(times, [0, 80_000, 100_000, 160_000], 0.01);
    expectExactCover(segs, times);
    expect(segs.map((s) => s.start)).toEqual([0, 2, 5]);
  });

  it('no frames: no segments; a non-positive length is refused', () => {
    expect(planSegments([], [], 1)).toEqual([]);
    expect(() => planSegments([0], [0], 0)).toThrow(/positive/);
  });
});
