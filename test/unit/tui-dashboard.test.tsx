/**
 * What the dashboard shows for given events, rendered with ink-testing-library (digits masked
 * where the layout is compared), at several widths, plus its keys and its live mount.
 */
import { EventEmitter } from 'node:events';
import { render } from 'ink-testing-library';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { cleanup } from 'ink-testing-library';
import type { PipelineEvent, ProgressEvent, StartEvent } from '../../src/events.js';
import { Dashboard } from '../../src/tui/dashboard.js';
import { dashboardView, initialDashboardState, markStopping, reduceDashboard, type DashboardState } from '../../src/tui/dashboard-model.js';
import { mountDashboard } from '../../src/tui/mount-dashboard.js';
import { StopKeys } from '../../src/tui/stop-keys.js';

afterEach(cleanup);

const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g;
const plain = (s: string | undefined) => (s ?? '').replace(ANSI, '');
const mask = (s: string | undefined) => plain(s).replace(/\d/g, '#');
const lines = (s: string | undefined) => plain(s).split('\n');

const start: StartEvent = {
  type: 'start', input: 'samples/chelsea.mp4', output: 'chelsea-x4.mp4', inputSize: [160, 90], outputSize: [640, 360],
  model: 'realesr-general-x4v3', device: 'cpu', precision: 'fp32', batch: 1, tile: 0, totalFrames: 480, fps: 24,
};

function progress(frames: number, elapsedMs: number, more: Partial<ProgressEvent> = {}): ProgressEvent {
  return {
    type: 'progress', frames, totalFrames: 480, elapsedMs, decodeQueue: 4, decodeCapacity: 4, encodeQueue: 1, encodeCapacity: 2,
    decodeMs: 0.02 * elapsedMs, inferMs: 0.95 * elapsedMs, encodeMs: 0.03 * elapsedMs, ...more,
  };
}

/** 2 s of start-up, then 20 s of a job at 8 frames/s, with a warning; `now` is the last event's time. */
function midRun(extra: PipelineEvent[] = []): { state: DashboardState; now: number } {
  let s = reduceDashboard(initialDashboardState(), start, 0);
  s = reduceDashboard(s, { type: 'warning', message: 'variable frame rate detected: every frame keeps its source timestamp' }, 0);
  const last = 22_000;
  for (let t = 2000; t <= last; t += 250) s = reduceDashboard(s, progress((8 * (t - 2000)) / 1000, t), t);
  for (const e of extra) s = reduceDashboard(s, e, last);
  return { state: s, now: last };
}

function show(state: DashboardState, now: number, width: number, keys = true) {
  return render(<Dashboard view={dashboardView(state, now)} width={width} keys={keys} />);
}

describe('the live dashboard', () => {
  it('says how many frames were reused (identical to the frame before), so a jump in the rate has its reason on screen', () => {
    const { state, now } = midRun([progress(168, 22_000, { reusedFrames: 12 })]);
    const screen = plain(show(state, now, 100).lastFrame());
    expect(screen).toMatch(/█+░+ 168\/480 frames \(12 reused\)  35\.0%/);
    expect(plain(show(midRun().state, now, 100).lastFrame())).not.toContain('reused');
  });

  it('shows the job, the progress bar with frames, percent, elapsed and ETA, throughput, stages and the sparkline', () => {
    const { state, now } = midRun();
    const { lastFrame } = show(state, now, 100);
    const screen = plain(lastFrame());
    expect(screen).toContain('esrvid  samples/chelsea.mp4 160x90 → chelsea-x4.mp4 640x360');
    expect(screen).toContain('realesr-general-x4v3 · cpu · fp32 · batch 1 · tile off');
    expect(screen).toContain('! variable frame rate detected: every frame keeps its source timestamp');
    expect(screen).toMatch(/█+░+ 160\/480 frames  33\.3%/);
    // ETA: 320 frames left at 8 frames/s. The average includes the 2 s of start-up: 160 / 22 s.
    expect(screen).toContain('elapsed 0:22   ETA 0:40');
    expect(screen).toContain('output 8.00 fps now, 7.27 avg   1.84 MP/s now, 1.68 avg');
    // Capacity = rate / busy share: 8 / 0.95 and 8 / 0.03.
    expect(screen).toMatch(/infer\s+8\.42\s+█+\S*\s+95%\s+◀ bottleneck/);
    expect(screen).toMatch(/decode\s+8\.00\s+\S+\s+2%\s+█+ 4\/4/);
    expect(screen).toMatch(/encode\s+267\s+\S+\s+3%\s+█+·+ 1\/2/);
    // 40 blank seconds before the first event, then 20 at the same rate.
    expect(screen).toMatch(/fps, 60 s  {40}█{20} max 8\.00/);
    expect(screen).toContain('q or Ctrl-C: stop');
    expect(mask(lastFrame())).toMatchInlineSnapshot(`
      "esrvid  samples/chelsea.mp# ###x## → chelsea-x#.mp# ###x###
      realesr-general-x#v# · cpu · fp## · batch # · tile off
      ! variable frame rate detected: every frame keeps its source timestamp

      █████████████████████████░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░ ###/### frames  ##.#%
      elapsed #:##   ETA #:##
      output #.## fps now, #.## avg   #.## MP/s now, #.## avg

      stage       f/s  busy                       queue
      decode     #.##  ▍···················   #%  ████████████████████ #/#
      infer      #.##  ███████████████████·  ##%                              ◀ bottleneck
      encode      ###  ▋···················   #%  ██████████·········· #/#
      fps, ## s                                         ████████████████████ max #.##

      q or Ctrl-C: stop"
    `);
  });

  it('fits an 80-column terminal, every line within it', () => {
    const { state, now } = midRun();
    const { lastFrame } = show(state, now, 80);
    for (const l of lines(lastFrame())) expect(l.length, l).toBeLessThanOrEqual(80);
    expect(mask(lastFrame())).toMatchInlineSnapshot(`
      "esrvid  samples/chelsea.mp# ###x## → chelsea-x#.mp# ###x###
      realesr-general-x#v# · cpu · fp## · batch # · tile off
      ! variable frame rate detected: every frame keeps its source timestamp

      ███████████████████░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░ ###/### frames  ##.#%
      elapsed #:##   ETA #:##
      output #.## fps now, #.## avg   #.## MP/s now, #.## avg

      stage       f/s  busy                     queue
      decode     #.##  ▍·················   #%  ██████████████████ #/#
      infer      #.##  █████████████████▏  ##%                            ◀ bottleneck
      encode      ###  ▌·················   #%  █████████········· #/#
      fps, ## s                                         ████████████████████ max #.##

      q or Ctrl-C: stop"
    `);
  });

  it('narrower than 80 columns, it still keeps every line within the width and the essentials visible', () => {
    const { state, now } = midRun();
    const { lastFrame } = show(state, now, 60);
    const screen = plain(lastFrame());
    for (const l of lines(lastFrame())) expect(l.length, l).toBeLessThanOrEqual(60);
    expect(screen).toMatch(/█+░+ 160\/480 frames  33\.3%/);
    expect(screen).toContain('ETA 0:40');
    expect(screen).toContain('8.00 fps now');
    expect(screen).toMatch(/infer\s+8\.42/);
    // The long warning wraps under itself instead of being cut.
    expect(screen).toContain('! variable frame rate detected: every frame keeps its source\n  timestamp\n');
  });

  it('long paths keep their file names', () => {
    const long = reduceDashboard(initialDashboardState(), { ...start, input: `/data/${'very-long-folder-name/'.repeat(6)}holiday.mp4`, output: `/exports/${'x'.repeat(90)}/holiday-x4.mp4` }, 0);
    const header = lines(show(long, 0, 80).lastFrame())[0]!;
    expect(header.length).toBeLessThanOrEqual(80);
    expect(header).toMatch(/^esrvid  …\S*holiday\.mp4 160x90 → …\S*holiday-x4\.mp4 640x360$/);
  });

  it('before the first frame, rates and ETA are dashes, not zeros', () => {
    const s = reduceDashboard(initialDashboardState(), start, 0);
    const screen = plain(show(s, 1500, 80).lastFrame());
    expect(screen).toContain('0/480 frames   0.0%');
    expect(screen).toContain('elapsed 0:02   ETA --:--');
    expect(screen).toContain('output - fps now, - avg');
  });

  it('when stopping, says so, and how to quit at once', () => {
    const { state, now } = midRun();
    const screen = plain(show(markStopping(state), now, 80).lastFrame());
    expect(screen).toContain('stopping: finishing the batch in flight and closing the encoder');
    expect(screen).toContain('q or Ctrl-C again: quit at once');
    expect(screen).not.toContain('q or Ctrl-C: stop');
    expect(screen).toContain('ETA -');
  });

  it('without keyboard input (stdin not a terminal) only Ctrl-C is offered', () => {
    const { state, now } = midRun();
    const screen = plain(show(state, now, 80, false).lastFrame());
    expect(screen).toContain('Ctrl-C: stop');
    expect(screen).not.toContain('q or Ctrl-C');
  });
});

describe('the final summary', () => {
  it('frames, time, average fps, size and where the file is; the live part is gone', () => {
    const { state, now } = midRun([{
      type: 'done', frames: 480, elapsedMs: 82_400, output: '/videos/chelsea-x4.mp4', bytes: 3_460_000, damagedFrames: 0,
      peakRssBytes: 200e6, stageMs: { decode: 1, infer: 2, encode: 3 },
    }]);
    const { lastFrame } = show(state, now, 80);
    const screen = plain(lastFrame());
    expect(screen).toContain('done  480 frames in 1:22 (5.83 fps average), 3.3 MB');
    expect(screen).toContain('written to /videos/chelsea-x4.mp4');
    expect(screen).toContain('! variable frame rate detected');
    expect(screen).not.toContain('bottleneck');
    expect(screen).not.toContain('Ctrl-C');
    expect(mask(lastFrame())).toMatchInlineSnapshot(`
      "esrvid  samples/chelsea.mp# ###x## → chelsea-x#.mp# ###x###
      realesr-general-x#v# · cpu · fp## · batch # · tile off
      ! variable frame rate detected: every frame keeps its source timestamp
      done  ### frames in #:## (#.## fps average), #.# MB
      written to /videos/chelsea-x#.mp#"
    `);
  });

  it('says how many damaged frames could not be decoded, and wraps a long path rather than cutting it', () => {
    const path = `/videos/${'nested-folder/'.repeat(8)}out.mp4`;
    const { state, now } = midRun([{
      type: 'done', frames: 478, elapsedMs: 9_500, output: path, bytes: 900, damagedFrames: 2,
      peakRssBytes: 1, stageMs: { decode: 1, infer: 2, encode: 3 },
    }]);
    const screen = plain(show(state, now, 80).lastFrame());
    expect(screen).toContain('done  478 frames in 9.5 s (50.3 fps average), 900 B\n2 damaged frame(s) in the source could not be decoded\n');
    expect(screen.replace(/\n/g, '')).toContain(`written to ${path}`);
    for (const l of screen.split('\n')) expect(l.length).toBeLessThanOrEqual(80);
  });

  it('says how many frames repeated the frame before and were not upscaled again', () => {
    const { state, now } = midRun([{
      type: 'done', frames: 480, elapsedMs: 60_000, output: '/v/out.mp4', bytes: 1024, damagedFrames: 0, reusedFrames: 240,
      peakRssBytes: 1, stageMs: { decode: 1, infer: 2, encode: 3 },
    }]);
    const screen = plain(show(state, now, 100).lastFrame());
    expect(screen).toContain('done  480 frames in 1:00 (8.00 fps average), 1.0 KB\n240 frame(s) identical to the frame before: written from its upscaled output, not upscaled again\n');
  });
});

describe('keys', () => {
  it('q and Ctrl-C ask to stop; other keys do nothing', async () => {
    const onStop = vi.fn();
    const { stdin } = render(<StopKeys onStop={onStop} active />);
    await new Promise((r) => setTimeout(r, 10));
    stdin.write('x');
    stdin.write('q');
    stdin.write('\x03');
    await new Promise((r) => setTimeout(r, 10));
    expect(onStop).toHaveBeenCalledTimes(2);
  });

  it('inactive (stdin not a terminal), keys are not read and raw mode is never asked for', async () => {
    const onStop = vi.fn();
    const { stdin } = render(<StopKeys onStop={onStop} active={false} />);
    const raw = vi.spyOn(stdin, 'setRawMode');
    await new Promise((r) => setTimeout(r, 10));
    stdin.write('q');
    expect(onStop).not.toHaveBeenCalled();
    expect(raw).not.toHaveBeenCalled();
  });
});

/** A terminal stand-in: a resizable stdout that records what is written, and a keyboard. */
class FakeStdout extends EventEmitter {
  columns: number;
  rows = 40;
  isTTY = true;
  written = '';
  constructor(columns: number) {
    super();
    this.columns = columns;
  }
  write = (s: string, cb?: () => void) => {
    this.written += s;
    cb?.();
    return true;
  };
  /** The last frame drawn (Ink erases the previous frame's lines, then writes the next). */
  lastScreen(): string {
    return plain(this.written.split('\x1b[2K\x1b[G').at(-1));
  }
}

class FakeStdin extends EventEmitter {
  isTTY: boolean;
  rawMode: boolean[] = [];
  private data: string | null = null;
  constructor(tty: boolean) {
    super();
    this.isTTY = tty;
  }
  type(s: string) {
    this.data = s;
    this.emit('readable');
  }
  read = () => {
    const d = this.data;
    this.data = null;
    return d;
  };
  setRawMode(on: boolean) {
    this.rawMode.push(on);
  }
  setEncoding() {}
  ref() {}
  unref() {}
  resume() {}
  pause() {}
}

describe('the mounted dashboard', () => {
  const tick = () => new Promise((r) => setTimeout(r, 30));

  it('redraws to the new width on resize, stops on q, and gives the terminal back on close', async () => {
    const stdout = new FakeStdout(120);
    const stdin = new FakeStdin(true);
    const onStop = vi.fn();
    let clock = 0;
    const dash = mountDashboard({ stdout: stdout as never, stdin: stdin as never, onStop, redrawMs: 10, now: () => clock });
    dash.onEvent(start);
    for (let t = 2000; t <= 6000; t += 250) {
      clock = t;
      dash.onEvent(progress(Math.floor((6 * (t - 2000)) / 1000), t));
    }
    await tick();
    const wide = stdout.lastScreen();
    expect(Math.max(...wide.split('\n').map((l) => l.length))).toBeGreaterThan(80);
    expect(wide).toContain('24/480 frames');

    stdout.columns = 80;
    stdout.emit('resize');
    await tick();
    const narrow = stdout.lastScreen();
    expect(narrow).toContain('24/480 frames');
    for (const l of narrow.split('\n')) expect(l.length, l).toBeLessThanOrEqual(80);

    stdin.type('q');
    await tick();
    expect(onStop).toHaveBeenCalledTimes(1);
    dash.stopping();
    await dash.close();
    expect(stdout.written).toContain('stopping: finishing the batch in flight');
    // Raw mode was switched on for the keys, and off again at the end; the cursor is shown.
    expect(stdin.rawMode[0]).toBe(true);
    expect(stdin.rawMode.at(-1)).toBe(false);
    expect(stdout.written.endsWith('\x1b[?25h')).toBe(true);
  });

  it('with stdin not a terminal it never touches raw mode, and the end leaves the summary on screen', async () => {
    const stdout = new FakeStdout(80);
    const stdin = new FakeStdin(false);
    const dash = mountDashboard({ stdout: stdout as never, stdin: stdin as never, onStop: () => {}, redrawMs: 10, now: () => 0 });
    dash.onEvent(start);
    dash.onEvent({ type: 'done', frames: 480, elapsedMs: 60_000, output: '/v/out.mp4', bytes: 1024, damagedFrames: 0, peakRssBytes: 1, stageMs: { decode: 0, infer: 0, encode: 0 } });
    await dash.close();
    expect(stdin.rawMode).toEqual([]);
    expect(stdout.lastScreen()).toContain('done  480 frames in 1:00 (8.00 fps average), 1.0 KB');
    expect(stdout.lastScreen()).toContain('written to /v/out.mp4');
  });
});
