/** The dashboard's model (events -> numbers) and its text drawings, without React or a terminal. */
import { describe, expect, it } from 'vitest';
import type { ProgressEvent, StartEvent } from '../../src/events.js';
import {
  dashboardView, emaAdd, emaValue, emptyEma, initialDashboardState, markStopping, rateHistory, reduceDashboard, stageFrames,
  type DashboardState,
} from '../../src/tui/dashboard-model.js';
import { dashboardWanted } from '../../src/tui/terminal.js';
import { bar, formatDuration, formatRate, progressBar, sparkline, truncate, truncateStart, wrapWords } from '../../src/tui/text-bars.js';

const start: StartEvent = {
  type: 'start', input: 'in.mp4', output: '/videos/out.mp4', inputSize: [160, 90], outputSize: [640, 360],
  model: 'realesr-general-x4v3', device: 'cpu', precision: 'fp32', batch: 1, tile: 0, totalFrames: 1000, fps: 24,
};

function progress(p: Partial<ProgressEvent> & { frames: number; elapsedMs: number }): ProgressEvent {
  return {
    type: 'progress', totalFrames: 1000, decodeQueue: 0, decodeCapacity: 4, encodeQueue: 0, encodeCapacity: 2,
    decodeMs: 0, inferMs: 0, encodeMs: 0, ...p,
  };
}

/** A job at a steady `fps`, one progress event every 250 ms from t0 for `seconds`; the clock follows the events. */
function steady(fps: number, seconds: number, loads = { decode: 0.05, infer: 0.9, encode: 0.1 }, t0 = 1000, s0 = reduceDashboard(initialDashboardState(), start, 0)) {
  let s = s0;
  let t = t0;
  for (let i = 0; i <= seconds * 4; i++, t += 250) {
    const e = progress({
      frames: Math.round((fps * (t - t0)) / 1000), elapsedMs: t,
      decodeMs: loads.decode * t, inferMs: loads.infer * t, encodeMs: loads.encode * t,
    });
    s = reduceDashboard(s, e, t);
  }
  return { s, t: t - 250 };
}

describe('smoothed rates', () => {
  it('a bias-corrected EMA starts at the first sample and weighs by elapsed time', () => {
    let e = emaAdd(emptyEma, 10, 250);
    expect(emaValue(e)).toBeCloseTo(10, 10);
    e = emaAdd(e, 20, 250);
    expect(emaValue(e)!).toBeGreaterThan(10);
    expect(emaValue(e)!).toBeLessThan(20);
    // Equal time on each side: the early mean is close to the plain mean, not dragged to 0.
    expect(emaValue(e)!).toBeCloseTo(15, 0);
    expect(emaValue(emaAdd(emptyEma, 5, 0))).toBeUndefined();
  });

  it('a steady job reads its true rate, percent, megapixels/s and an ETA from the smoothed rate', () => {
    const { s, t } = steady(8, 20);
    const v = dashboardView(s, t);
    expect(v.fpsNow).toBeCloseTo(8, 1);
    expect(v.frames).toBe(160);
    expect(v.fraction).toBeCloseTo(0.16, 5);
    expect(v.etaMs! / 1000).toBeCloseTo((1000 - 160) / 8, 0);
    expect(v.mpsNow).toBeCloseTo((8 * 640 * 360) / 1e6, 1);
    // The average counts from the pipeline's start (model loading included), so it is lower.
    expect(v.fpsAvg).toBeCloseTo(160 / 21, 2);
    expect(v.mpsAvg).toBeCloseTo(((160 / 21) * 640 * 360) / 1e6, 2);
  });

  it('one burst barely moves the smoothed rate, which the ETA uses', () => {
    const { s, t } = steady(8, 20);
    const last = s.progress!;
    // 20 frames in 250 ms: an instantaneous 80 frames/s.
    const burst = reduceDashboard(s, progress({ frames: last.frames + 20, elapsedMs: last.elapsedMs + 250 }), t + 250);
    const v = dashboardView(burst, t + 250);
    expect(v.fpsNow!).toBeGreaterThan(8);
    expect(v.fpsNow!).toBeLessThan(13);
  });

  it('elapsed and ETA move between events, but a stalled job\'s ETA stops at the next batch', () => {
    // Batches of 8 at 8 frames/s: a batch a second, so the ETA may count down for up to a second.
    const { s, t } = steady(8, 20, undefined, 1000, reduceDashboard(initialDashboardState(), { ...start, batch: 8 }, 0));
    const at = dashboardView(s, t);
    const later = dashboardView(s, t + 500);
    expect(later.elapsedMs - at.elapsedMs).toBe(500);
    expect(at.etaMs! - later.etaMs!).toBeCloseTo(500, 5);
    const stalled = dashboardView(s, t + 3_600_000);
    expect(stalled.elapsedMs - at.elapsedMs).toBe(3_600_000);
    expect(stalled.etaMs! / 1000).toBeCloseTo((1000 - 160 - 8) / stalled.fpsNow!, 5);
  });

  it('without a frame count there is no percent and no ETA, but rates still show', () => {
    const s0 = reduceDashboard(initialDashboardState(), { ...start, totalFrames: undefined }, 0);
    let s = s0;
    for (let i = 0; i < 10; i++) s = reduceDashboard(s, progress({ frames: i * 2, elapsedMs: i * 250, totalFrames: undefined }), i * 250);
    const v = dashboardView(s, 2250);
    expect(v.fraction).toBeUndefined();
    expect(v.etaMs).toBeUndefined();
    expect(v.fpsNow).toBeCloseTo(8, 5);
  });
});

describe('stages', () => {
  it('inference busy 90% of the time is the bottleneck; its capacity is rate / busy share', () => {
    const { s, t } = steady(9, 20);
    const v = dashboardView(s, t);
    const infer = v.stages.find((x) => x.name === 'infer')!;
    expect(infer.load).toBeCloseTo(0.9, 5);
    expect(infer.fps).toBeCloseTo(10, 0);
    const encode = v.stages.find((x) => x.name === 'encode')!;
    expect(encode.fps).toBeCloseTo(90, -1);
    expect(v.bottleneck).toBe('infer');
  });

  it('inference waiting for frames most of the time marks decode as the bottleneck', () => {
    const { s, t } = steady(5, 10, { decode: 0.7, infer: 0.25, encode: 0.05 });
    const v = dashboardView(s, t);
    expect(v.bottleneck).toBe('decode');
    expect(v.stages[0]!.fps).toBeCloseTo(5, 0);
    expect(v.stages[0]!.load).toBeCloseTo(0.7, 5);
  });

  it('queues are shown as given; frames per stage are estimated from them', () => {
    const e = progress({ frames: 10, elapsedMs: 1000, decodeQueue: 3, encodeQueue: 2 });
    expect(stageFrames(e, 4)).toEqual({ encode: 10, infer: 18, decode: 21 });
    // Never more than the total.
    expect(stageFrames({ ...e, frames: 999 }, 4)).toEqual({ encode: 999, infer: 1000, decode: 1000 });
    const v = dashboardView(reduceDashboard(reduceDashboard(initialDashboardState(), start, 0), e, 1000), 1000);
    expect(v.stages.map((x) => x.queue)).toEqual([[3, 4], undefined, [2, 2]]);
  });
});

describe('history, warnings, stop and summary', () => {
  it('the sparkline holds one frames/s value per second for the last minute', () => {
    // 30 s at 4 fps then 60 s at 8 fps: the last minute is all 8.
    const a = steady(4, 30);
    const s0 = a.s;
    let s: DashboardState = s0;
    const f0 = s0.progress!.frames;
    for (let i = 1; i <= 240; i++) {
      const t = a.t + i * 250;
      s = reduceDashboard(s, progress({ frames: f0 + 2 * i, elapsedMs: t }), t);
    }
    const h = dashboardView(s, a.t + 60_000).history;
    expect(h).toHaveLength(60);
    for (const v of h) expect(v).toBeCloseTo(8, 5);
    // Events older than a minute are dropped, one kept to interpolate the first second.
    expect(s.history.length).toBeLessThanOrEqual(242);
    expect(s.history[0]!.t).toBeLessThanOrEqual(s.history.at(-1)!.t - 60_000);
    // A young job: seconds before its first event are blank.
    const young = rateHistory([{ t: 1000, frames: 0 }, { t: 3000, frames: 10 }]);
    expect(young.filter((v) => v === undefined)).toHaveLength(58);
    expect(young.slice(-2)).toEqual([5, 5]);
  });

  it('warnings are kept in order without repeats; only the last few are shown, with a count', () => {
    let s = reduceDashboard(initialDashboardState(), start, 0);
    for (const m of ['vfr', 'matrix', 'vfr', 'subs', 'gpu']) s = reduceDashboard(s, { type: 'warning', message: m }, 0);
    const v = dashboardView(s, 0);
    expect(v.warnings).toEqual(['matrix', 'subs', 'gpu']);
    expect(v.hiddenWarnings).toBe(1);
  });

  it('stopping drops the ETA; done gives the summary with the average rate and the full path', () => {
    const { s, t } = steady(8, 5);
    expect(dashboardView(markStopping(s), t).stopping).toBe(true);
    expect(dashboardView(markStopping(s), t).etaMs).toBeUndefined();
    const done = reduceDashboard(s, {
      type: 'done', frames: 1000, elapsedMs: 125_000, output: 'out.mp4', bytes: 5_000_000, damagedFrames: 0, peakRssBytes: 1,
      stageMs: { decode: 1, infer: 2, encode: 3 },
    }, t + 1);
    const v = dashboardView(done, t + 10_000);
    expect(v.done!.fps).toBe(8);
    expect(v.done!.path).toBe(`${process.cwd()}/out.mp4`);
    expect(v.elapsedMs).toBe(125_000);
    expect(v.fraction).toBe(1);
    expect(v.etaMs).toBe(0);
  });
});

describe('text drawings', () => {
  it('bars are exactly their width, with eighth cells', () => {
    expect(bar(0.5, 4)).toBe('██  ');
    expect(bar(0.5, 1)).toBe('▌');
    expect(bar(1 / 16, 1)).toBe('▏');
    expect(bar(2, 3)).toBe('███');
    expect(bar(Number.NaN, 3, '·')).toBe('···');
    expect(progressBar(0.25, 8)).toEqual(['██', '░░░░░░']);
  });

  it('sparklines scale to their largest value and leave gaps blank', () => {
    expect(sparkline([0, 4, 8, undefined])).toBe('▁▅█ ');
    expect(sparkline([0, 0])).toBe('▁▁');
  });

  it('durations, rates and truncation', () => {
    expect(formatDuration(7_400)).toBe('0:07');
    expect(formatDuration(754_000)).toBe('12:34');
    expect(formatDuration(3_723_000)).toBe('1:02:03');
    expect([formatRate(0.523), formatRate(7.414), formatRate(28.34), formatRate(283.4), formatRate(undefined)]).toEqual(['0.52', '7.41', '28.3', '283', '-']);
    expect(truncate('abcdef', 4)).toBe('abc…');
    expect(truncateStart('/a/long/path/out.mp4', 10)).toBe('…h/out.mp4');
    expect(truncateStart('out.mp4', 10)).toBe('out.mp4');
    expect(wrapWords('the source declares  no colour matrix', 12)).toEqual(['the source', 'declares no', 'colour', 'matrix']);
    expect(wrapWords('abcdefghij xy', 4)).toEqual(['abcd', 'efgh', 'ij', 'xy']);
  });
});

describe('when the dashboard is used', () => {
  const tty = { isTTY: true };
  it('only on a terminal, outside CI, without --json, --quiet or --no-tui', () => {
    expect(dashboardWanted({}, tty, { TERM: 'xterm' })).toBe(true);
    expect(dashboardWanted({}, { isTTY: false }, {})).toBe(false);
    expect(dashboardWanted({}, {}, {})).toBe(false);
    expect(dashboardWanted({ tui: false }, tty, {})).toBe(false);
    expect(dashboardWanted({ json: true }, tty, {})).toBe(false);
    expect(dashboardWanted({ quiet: true }, tty, {})).toBe(false);
    expect(dashboardWanted({}, tty, { CI: 'true' })).toBe(false);
    expect(dashboardWanted({}, tty, { CI: 'false' })).toBe(true);
    expect(dashboardWanted({}, tty, { TERM: 'dumb' })).toBe(false);
  });
});
