import { describe, expect, it } from 'vitest';
import { describeSegment, jobIdFor, segmentJobId, type JobSettings } from '../../src/scale-out/job.js';
import { formatStatus, type JobStatus } from '../../src/scale-out/status.js';
import { mapPath, parsePathMap } from '../../src/scale-out/storage.js';

const source = { path: '/mnt/r/in.mkv', size: 1000, mtimeMs: 5, headSha256: 'ab' };
const settings: JobSettings = { model: 'realesrgan-x4plus', precision: 'fp16', tile: 'auto', tilePad: 16, preset: 'medium', segmentSeconds: 10 };

describe('scale-out job identity', () => {
  it('the same input, settings and output give the same id; any change gives another', () => {
    const id = jobIdFor(source, settings, '/mnt/r/out.mkv');
    expect(id).toMatch(/^j[0-9a-f]{12}$/);
    expect(jobIdFor({ ...source }, { ...settings }, '/mnt/r/out.mkv')).toBe(id);
    expect(jobIdFor({ ...source, mtimeMs: 6 }, settings, '/mnt/r/out.mkv')).not.toBe(id);
    expect(jobIdFor(source, { ...settings, scale: 2 }, '/mnt/r/out.mkv')).not.toBe(id);
    expect(jobIdFor(source, settings, '/mnt/r/out2.mkv')).not.toBe(id);
    // BullMQ refuses ':' in custom job ids.
    expect(segmentJobId(id, 7)).toBe(`${id}-s00007`);
  });

  it('names a segment by its frames, counted from 0, last one included', () => {
    expect(describeSegment({ index: 3, start: 72, end: 96, firstPtsUs: 0, lastPtsUs: 0, endPtsUs: null })).toBe('segment 3 (frames 72-95)');
  });
});

describe('--map-path', () => {
  it('maps paths under FROM to TO, first match wins, other paths unchanged', () => {
    const map = parsePathMap('/data/render=/srv/r', parsePathMap('/mnt/render=/data/render'));
    expect(mapPath('/mnt/render/film.mkv', map)).toBe('/data/render/film.mkv');
    expect(mapPath('/mnt/render', map)).toBe('/data/render');
    expect(mapPath('/mnt/rendering/x.mkv', map)).toBe('/mnt/rendering/x.mkv');
    expect(mapPath('/elsewhere/x.mkv', map)).toBe('/elsewhere/x.mkv');
    expect(() => parsePathMap('/mnt/render')).toThrow(/FROM=TO/);
    expect(() => parsePathMap('=/x')).toThrow(/FROM=TO/);
  });
});

describe('status text', () => {
  it('a line per segment, totals, workers, the failure', () => {
    const s: JobStatus = {
      id: 'j0123456789ab', state: 'failed', input: '/r/in.mkv', output: '/r/out.mkv', frames: 96, framesDone: 36, planMs: 12, submittedAt: 0,
      model: 'realesr-animevideov3-x4', precision: 'fp32', video: { width: 96, height: 54, fps: 24, outWidth: 384, outHeight: 216 },
      workers: ['a:1', 'b:2'], failure: 'segment 1 (frames 24-47) failed 3 times: boom',
      segments: [
        { index: 0, start: 0, end: 24, state: 'done', frames: 24, worker: 'a:1', failedAttempts: 0 },
        { index: 1, start: 24, end: 48, state: 'failed', frames: 0, failedAttempts: 3, error: 'boom' },
        { index: 2, start: 48, end: 72, state: 'active', frames: 12, worker: 'b:2', failedAttempts: 0 },
        { index: 3, start: 72, end: 96, state: 'retrying', frames: 0, failedAttempts: 1, error: 'ffmpeg quit' },
      ],
    };
    expect(formatStatus(s)).toBe([
      'job j0123456789ab: failed, 36/96 frames (37.5%), /r/in.mkv -> /r/out.mkv',
      '  segment   0  frames 0-23  done by a:1',
      '  segment   1  frames 24-47  failed after 3 attempt(s): boom',
      '  segment   2  frames 48-71  active on b:2, 12/24 frames (50%)',
      '  segment   3  frames 72-95  retrying after 1 failed attempt(s): ffmpeg quit',
      'segments: 1 done, 1 active, 0 waiting, 1 retrying, 1 failed, of 4',
      'workers: a:1, b:2',
      'failed: segment 1 (frames 24-47) failed 3 times: boom',
    ].join('\n'));
  });
});

describe('submit on a terminal: the dashboard follows the job', () => {
  it('shows the job, frames, segments and workers instead of the stage table', async () => {
    const React = await import('react');
    const { render } = await import('ink-testing-library');
    const { Dashboard } = await import('../../src/tui/dashboard.js');
    const { dashboardView, initialDashboardState, reduceDashboard } = await import('../../src/tui/dashboard-model.js');
    const { progressEventOf, startEventOf } = await import('../../src/scale-out/progress-events.js');
    const s: JobStatus = {
      id: 'j0123456789ab', state: 'running', input: '/r/in.mkv', output: '/r/out.mkv', frames: 96, framesDone: 36, planMs: 12, submittedAt: 0,
      model: 'realesr-animevideov3-x4', precision: 'fp32', video: { width: 96, height: 54, fps: 24, outWidth: 384, outHeight: 216 }, workers: ['a:1', 'b:2'],
      segments: [
        { index: 0, start: 0, end: 24, state: 'done', frames: 24, worker: 'a:1', failedAttempts: 0 },
        { index: 1, start: 24, end: 48, state: 'active', frames: 12, worker: 'b:2', failedAttempts: 0 },
        { index: 2, start: 48, end: 72, state: 'waiting', frames: 0, failedAttempts: 0 },
        { index: 3, start: 72, end: 96, state: 'retrying', frames: 0, failedAttempts: 1 },
      ],
    };
    let state = reduceDashboard(initialDashboardState(), startEventOf(s), 0);
    state = reduceDashboard(state, progressEventOf({ ...s, framesDone: 20 }, 2000), 2000);
    state = reduceDashboard(state, progressEventOf(s, 4000), 4000);
    const { lastFrame, unmount } = render(React.createElement(Dashboard, { view: dashboardView(state, 4000), width: 80, keys: false }));
    const text = (lastFrame() ?? '').replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
    unmount();
    expect(text).toContain('/r/in.mkv 96x54 → /r/out.mkv 384x216');
    expect(text).toContain('realesr-animevideov3-x4 · fp32 · scale-out: segments on esrvid workers');
    expect(text).toContain('36/96 frames');
    expect(text).toMatch(/segments +█+·+ 1\/4 done · 1 active · 2 waiting/);
    expect(text).toContain('workers  2: a:1, b:2');
    expect(text).not.toContain('bottleneck');
    expect(text).not.toContain('stage');
    for (const line of text.split('\n')) expect(line.length).toBeLessThanOrEqual(80);
  });
});
