import { describe, expect, it } from 'vitest';
import { framesPerSecond, median, pairedRatio, quantile, relativeSpread } from '../../src/bench/stats.js';
import { bestPeak } from '../../src/bench/suite.js';

describe('bench statistics', () => {
  it('median of odd and even samples, unsorted input untouched', () => {
    const xs = [5, 1, 3];
    expect(median(xs)).toBe(3);
    expect(xs).toEqual([5, 1, 3]);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
  });

  it('quantiles interpolate between samples', () => {
    expect(quantile([0, 10], 0.25)).toBe(2.5);
    expect(quantile([3, 1, 2], 0)).toBe(1);
    expect(quantile([3, 1, 2], 1)).toBe(3);
  });

  it('paired ratio is the median of per-pair ratios, not a ratio of medians', () => {
    // The machine halves its speed for the middle pair: per-pair ratios stay 2.
    const a = [20, 10, 20];
    const b = [10, 5, 10];
    expect(pairedRatio(a, b)).toBe(2);
    // A ratio of medians taken from unpaired runs would disagree here; pairs do not.
    expect(pairedRatio([4, 9, 1], [2, 3, 1])).toBe(2);
    // Unequal lengths use the pairs that exist; zero denominators are skipped.
    expect(pairedRatio([6, 6, 6], [3, 0])).toBe(2);
  });

  it('frames per second and spread', () => {
    expect(framesPerSecond(4, 500)).toBe(8);
    expect(framesPerSecond(1, 0)).toBeNaN();
    expect(relativeSpread([90, 100, 110])).toBeCloseTo(0.2);
    expect(relativeSpread([100])).toBe(0);
  });

  it('peak: the best all-thread figure, or threads x one thread when a neighbour held a core', () => {
    const quiet = { gflops512: 540, gflops256: 270, gflopsOneThread: 272, threads: 2, compiler: 'cc' };
    const busy = { gflops512: 300, gflops256: 140, gflopsOneThread: 250, threads: 2, compiler: 'cc' };
    expect(bestPeak([quiet])).toBe(544);
    expect(bestPeak([busy])).toBe(500);
    expect(bestPeak([busy, quiet])).toBe(544);
  });
});
