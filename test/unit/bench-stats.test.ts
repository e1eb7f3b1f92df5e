import { describe, expect, it } from 'vitest';
import { framesPerSecond, median, pairedRatio, quantile, relativeSpread } from '../../src/bench/stats.js';
import { bestPeak } from '../../src/bench/suite.js';
import { machineBusyMs, otherLoad } from '../../src/bench/contention.js';
import { cpuTime, cpuTimeSince, processCpuMs, reapedChildrenCpuMs } from '../../src/cpu-time.js';
import { execFileSync } from 'node:child_process';

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

describe('contention from /proc', () => {
  it('machine busy time excludes idle and iowait', () => {
    expect(machineBusyMs('cpu  100 5 50 9000 40 3 2 10 0 0\ncpu0 1 2 3 4\n')).toBe((100 + 5 + 50 + 3 + 2 + 10) * 10);
  });

  it('process CPU time survives a command name with spaces and parentheses', () => {
    const stat = '4242 (python3 (x) y) S 1 4242 4242 0 -1 4194304 100 0 0 0 250 30 70 5 20 0 3 0 100 0 0';
    expect(processCpuMs(stat)).toBe((250 + 30) * 10);
    expect(reapedChildrenCpuMs(stat)).toBe((70 + 5) * 10);
  });

  it('a job\'s CPU time: this process\'s own, and its waited-for children\'s (Linux)', () => {
    const start = cpuTime();
    const until = performance.now() + 150;
    let x = 0;
    while (performance.now() < until) x += Math.sqrt(x + 1);
    expect(x).toBeGreaterThan(0);
    // A child that spins for 300 ms of its own CPU, reaped by execFileSync.
    execFileSync(process.execPath, ['-e', 'const t = process.cpuUsage(); while ((process.cpuUsage(t).user) < 300000);']);
    const used = cpuTimeSince(start);
    expect(used.process).toBeGreaterThanOrEqual(120);
    expect(used.process).toBeLessThan(2000);
    if (process.platform === 'linux') {
      expect(used.children).toBeGreaterThanOrEqual(280);
      expect(used.children).toBeLessThan(3000);
    } else expect(used.children).toBeUndefined();
  });

  it('other load: busy time not spent by us, per wall time, in cores', () => {
    const a = { wallMs: 0, machineBusyMs: 10_000, ownMs: 5_000 };
    expect(otherLoad(a, { wallMs: 1000, machineBusyMs: 12_000, ownMs: 6_500 })).toBeCloseTo(0.5);
    expect(otherLoad(a, { wallMs: 1000, machineBusyMs: 11_000, ownMs: 6_100 })).toBe(0);
    expect(otherLoad(undefined, a)).toBeUndefined();
  });
});

describe('alternate: side-by-side timing', () => {
  it('ABBA order, warm-up pairs dropped, more pairs while the kept time is short', async () => {
    const { alternate } = await import('../../src/bench/alternate.js');
    const order: string[] = [];
    let n = 0;
    const a = async () => (order.push('a'), ++n);
    const b = async () => (order.push('b'), 100 + ++n);
    let startedAt = -1;
    const r = await alternate(a, b, { warmup: 1, runs: 2, onMeasuring: () => (startedAt = order.length) });
    expect(order).toEqual(['a', 'b', 'b', 'a', 'a', 'b']);
    expect(startedAt).toBe(2);
    expect(r).toEqual({ a: [4, 5], b: [103, 106] });
    // 2 kept pairs of ~2 ms each are under 10 ms: up to 3 x 2 pairs are run.
    const fast = await alternate(async () => 1, async () => 1, { warmup: 0, runs: 2, minCaseMs: 10 });
    expect(fast.a).toHaveLength(5);
    const capped = await alternate(async () => 1, undefined, { warmup: 0, runs: 2, minCaseMs: 1000 });
    expect(capped).toEqual({ a: [1, 1, 1, 1, 1, 1], b: [] });
  });
});
