/** Progress without a terminal: plain lines at a modest rate, no cursor control, the smoothed ETA. */
import { describe, expect, it } from 'vitest';
import { cancelSummary, plainReporter } from '../../src/commands/upscale.js';
import type { ProgressEvent } from '../../src/events.js';

function progress(frames: number, elapsedMs: number, totalFrames: number | null = 1000): ProgressEvent {
  return {
    type: 'progress', frames, totalFrames: totalFrames ?? undefined, elapsedMs, decodeQueue: 1, decodeCapacity: 4, encodeQueue: 0, encodeCapacity: 2,
    decodeMs: 0, inferMs: 0.9 * elapsedMs, encodeMs: 0,
  };
}

function collect() {
  let text = '';
  return { stream: { write: (s: string) => ((text += s), true) } as unknown as NodeJS.WritableStream, text: () => text };
}

describe('plain progress lines', () => {
  it('a line once 2 s have passed and 5% more is done, with the smoothed rate and its ETA; no escape codes', () => {
    const out = collect();
    let clock = 0;
    const report = plainReporter(out.stream, 2000, () => clock);
    report({
      type: 'start', input: 'in.mp4', output: 'out.mp4', inputSize: [160, 90], outputSize: [640, 360], model: 'm', device: 'cpu',
      precision: 'fp32', batch: 1, tile: 0, totalFrames: 1000, fps: 24,
    });
    report({ type: 'warning', message: 'variable frame rate detected' });
    // 10 frames/s for 60 s, an event every 200 ms.
    for (let t = 200; t <= 60_000; t += 200) {
      clock = t;
      report(progress(t / 100, t));
    }
    report({ type: 'done', frames: 600, elapsedMs: 60_000, output: 'out.mp4', bytes: 2048, damagedFrames: 0, peakRssBytes: 1, stageMs: { decode: 0, infer: 0, encode: 0 } });
    const lines = out.text().trimEnd().split('\n');
    expect(out.text()).not.toMatch(/\x1b/);
    expect(lines[0]).toBe('esrvid: in.mp4 160x90 -> out.mp4 640x360, model m on cpu');
    expect(lines[1]).toBe('esrvid: warning: variable frame rate detected');
    const progressLines = lines.filter((l) => /frames, /.test(l));
    // 5% of 1000 frames takes 5 s here: 12 lines in 60 s, not 30.
    expect(progressLines).toHaveLength(12);
    expect(progressLines[0]).toBe('esrvid: 50/1000 (5.0%) frames, 10.0 fps, eta 1:35');
    expect(progressLines.at(-1)).toBe('esrvid: 600/1000 (60.0%) frames, 10.0 fps, eta 0:40');
    expect(lines.at(-1)).toBe('esrvid: done: 600 frames in 60.0 s (10.00 fps), 2.0 KB written to out.mp4');
  });

  it('the done line says how many frames repeated the frame before (none: nothing said)', () => {
    const out = collect();
    const report = plainReporter(out.stream, 2000, () => 0);
    report({ type: 'done', frames: 48, elapsedMs: 2_000, output: 'out.mkv', bytes: 4096, damagedFrames: 0, reusedFrames: 24, peakRssBytes: 1, stageMs: { decode: 0, infer: 0, encode: 0 } });
    report({ type: 'done', frames: 48, elapsedMs: 2_000, output: 'out.mkv', bytes: 4096, damagedFrames: 0, reusedFrames: 0, peakRssBytes: 1, stageMs: { decode: 0, infer: 0, encode: 0 } });
    expect(out.text().trimEnd().split('\n')).toEqual([
      'esrvid: done: 48 frames in 2.0 s (24.00 fps), 24 identical to the frame before (not upscaled again), 4.0 KB written to out.mkv',
      'esrvid: done: 48 frames in 2.0 s (24.00 fps), 4.0 KB written to out.mkv',
    ]);
  });

  it('a slow job still reports at least every 30 s; without a frame count, every 2 s', () => {
    const slow = collect();
    const report = plainReporter(slow.stream, 2000, () => 0);
    for (let t = 1000; t <= 120_000; t += 1000) report(progress(t / 1000, t, 100_000));
    expect(slow.text().trimEnd().split('\n')).toHaveLength(4);

    const open = collect();
    const report2 = plainReporter(open.stream, 2000, () => 0);
    for (let t = 200; t <= 10_000; t += 200) report2(progress(t / 100, t, null));
    const lines = open.text().trimEnd().split('\n');
    expect(lines).toHaveLength(5);
    expect(lines[0]).toMatch(/^esrvid: \d+ frames, [\d.]+ fps$/);
  });

  it('the cancel summary says how far the job got', () => {
    expect(cancelSummary(progress(120, 14_230, 480))).toBe('cancelled after 120 of 480 frames in 14.2 s: no output written');
    expect(cancelSummary(undefined)).toBe('cancelled before the first frame: no output written');
  });
});
