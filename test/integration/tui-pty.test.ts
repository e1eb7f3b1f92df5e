/**
 * The real CLI on a real terminal and off one. Under a pseudo-terminal (util-linux `script`, in
 * Debian's essential bsdutils package) the dashboard shows a progress bar, fps and ETA, and `q`
 * stops the job cleanly; without a terminal, progress is plain lines, NDJSON with --json, or
 * nothing with --quiet.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pullModel } from '../../src/models/pull.js';
import { CLI, ffmpeg, ffprobeJson, ROOT, runCli, tempDir } from '../helpers/media.js';

const MODEL = 'realesr-animevideov3-x4';
const SAMPLE = join(ROOT, 'samples', 'chelsea.mp4');
const { dir, cleanup } = tempDir('esrvid-tui-');
afterAll(cleanup);

const ANSI = /\x1b\[[0-9;?]*[A-Za-z]|\x1b[=>]/g;
const strip = (s: string) => s.replace(ANSI, '').replace(/\r/g, '');

/** Ink would hold every frame until exit under CI (as it should in a CI log): this is a terminal. */
function terminalEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, TERM: 'xterm-256color' };
  delete env.CI;
  delete env.CONTINUOUS_INTEGRATION;
  return env;
}

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * Runs the CLI on a pseudo-terminal of the given width. After it exits, the terminal's mode is
 * printed (`icanon` = cooked, as a shell needs it; `-icanon` = left in raw mode).
 */
function onTerminal(args: string[], cols = 100) {
  const cli = [process.execPath, CLI, ...args].map(quote).join(' ');
  const inner = `stty cols ${cols} rows 40; ${cli}; code=$?; echo "tty-after: $(stty -a | grep -o -- '-\\?icanon')"; exit $code`;
  const child = spawn('script', ['-qfec', inner, '/dev/null'], { cwd: dir, env: terminalEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
  let raw = '';
  child.stdout.on('data', (d) => (raw += d));
  child.stderr.on('data', (d) => (raw += d));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return {
    child,
    exited,
    raw: () => raw,
    /** The last frame Ink drew: it erases the previous frame's lines, then writes the next. */
    screen: () => strip(raw.split('\x1b[2K\x1b[G').at(-1) ?? ''),
  };
}

async function until<T>(what: string, probe: () => T | undefined, show: () => string, timeoutMs = 100_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; screen:\n${show()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Processes whose command line mentions this test's folder: ffmpeg children, or the CLI itself. */
function processesUsing(marker: string): { pid: number; argv: string[] }[] {
  const found: { pid: number; argv: string[] }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').filter(Boolean);
      if (argv.some((a) => a.includes(marker))) found.push({ pid: Number(entry), argv });
    } catch {
      // exited while being read
    }
  }
  return found;
}

const isAlive = (pid: number) => existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));

async function frameCount(file: string): Promise<number> {
  const j = await ffprobeJson(file, ['-count_packets', '-select_streams', 'v:0', '-show_entries', 'stream=nb_read_packets']);
  return Number(j.streams[0].nb_read_packets);
}

const LONG = join(dir, 'long.mp4');
const SHORT = join(dir, 'short.mp4');

beforeAll(async () => {
  await pullModel(MODEL);
  // 20 loops of the 48-frame sample: far more work than the test waits for before pressing q.
  await ffmpeg(['-stream_loop', '19', '-i', SAMPLE, '-map', '0:v', '-c:v', 'libx264', '-preset', 'ultrafast', LONG]);
  await ffmpeg(['-i', SAMPLE, '-map', '0:v', '-frames:v', '12', '-c:v', 'libx264', '-preset', 'ultrafast', SHORT]);
});

describe('on a terminal: the dashboard', () => {
  // In raw mode Ctrl-C reaches the dashboard as a key (0x03), not as SIGINT: both must stop the same way.
  it.each([['q', 'q'], ['Ctrl-C', '\x03']])('shows the progress bar, fps and ETA; %s stops cleanly with a one-line summary and no child left', { timeout: 180_000 }, async (name, key) => {
    const out = join(dir, `stopped-${name}.mp4`);
    const run = onTerminal([LONG, out, '--model', MODEL]);
    const screen = await until('the dashboard with a rate and an ETA', () => {
      const s = run.screen();
      return /█+░+ [1-9]\d*\/960 frames +\d+\.\d%/.test(s) && /\d\.?\d* fps now/.test(s) && /ETA \d+:\d\d/.test(s) ? s : undefined;
    }, run.screen);
    expect(screen).toMatch(/^esrvid +\S*long\.mp4 160x90 → \S*stopped-\S+\.mp4 640x360$/m);
    // Lanes are shown when there is more than one (one per core, up to 4).
    expect(screen).toMatch(new RegExp(`${MODEL} · cpu · fp32 · batch 1 · (\\d+ lanes · )?(fused kernel · )?tile off`));
    expect(screen).toMatch(/^elapsed \d+:\d\d +ETA \d+:\d\d$/m);
    expect(screen).toMatch(/^output [\d.]+ fps now, [\d.]+ avg +[\d.]+ MP\/s now, [\d.]+ avg$/m);
    expect(screen).toMatch(/^decode .*\d+\/\d+$/m);
    expect(screen).toMatch(/^infer +[\d.]+ /m);
    // Slots: two per lane.
    expect(screen).toMatch(/^encode .*\d+\/(2|4|6|8)$/m);
    expect(screen).toMatch(/^fps, \d+ s .* max [\d.]+$/m);
    expect(screen).toContain('q or Ctrl-C: stop');
    for (const line of screen.split('\n')) expect(line.length, line).toBeLessThanOrEqual(100);

    const children = processesUsing(dir).filter((p) => p.argv[0]!.endsWith('ffmpeg'));
    expect(children.length).toBeGreaterThanOrEqual(1); // the decoder and the encoder of this job

    run.child.stdin.write(key);
    const code = await run.exited;
    const text = strip(run.raw());
    expect(code, text.slice(-2000)).toBe(130);
    expect(text).toContain('stopping: finishing the batch in flight and closing the encoder');
    const summary = text.split('\n').filter((l) => l.startsWith('esrvid: '));
    expect(summary).toHaveLength(1);
    expect(summary[0]).toMatch(/^esrvid: cancelled after \d+ of 960 frames in [\d.]+ s/);
    // The terminal is given back: cooked mode, cursor shown after it was hidden.
    expect(text).toMatch(/tty-after: icanon/);
    expect(run.raw().lastIndexOf('\x1b[?25h')).toBeGreaterThan(run.raw().lastIndexOf('\x1b[?25l'));
    // No output, no temporary file; a work folder only if the summary says segments were kept.
    const left = readdirSync(dir);
    expect(left).not.toContain(`stopped-${name}.mp4`);
    expect(left.filter((f) => f.endsWith('.partial'))).toEqual([]);
    expect(left.includes(`.stopped-${name}.mp4.esrvid-work`)).toBe(/kept in/.test(summary[0]!));
    for (const c of children) expect(isAlive(c.pid), c.argv.join(' ')).toBe(false);
    expect(processesUsing(out).filter((p) => isAlive(p.pid))).toEqual([]);
  });

  it('runs to the end and leaves the summary: frames, time, average fps, size, where the file is', { timeout: 120_000 }, async () => {
    const out = join(dir, 'done.mp4');
    const run = onTerminal([SAMPLE, out, '--model', MODEL], 80);
    const code = await run.exited;
    const screen = run.screen();
    expect(code, screen).toBe(0);
    expect(screen).toMatch(/^done {2}48 frames in [\d.]+ s \([\d.]+ fps average\), [\d.]+ [KM]B$/m);
    expect(screen).toContain(`written to ${out}`);
    expect(screen).not.toContain('Ctrl-C');
    expect(screen).toMatch(/tty-after: icanon/);
    expect(await frameCount(out)).toBe(48);
  });

  it('--no-tui: plain lines even on a terminal, with no cursor control codes', { timeout: 120_000 }, async () => {
    const run = onTerminal([SHORT, join(dir, 'plain-tty.mp4'), '--model', MODEL, '--no-tui']);
    const code = await run.exited;
    const text = run.raw().replace(/\r/g, '');
    expect(code, text).toBe(0);
    expect(text).not.toMatch(/\x1b/);
    expect(text).toMatch(/^esrvid: \S*short\.mp4 160x90 -> \S*plain-tty\.mp4 640x360, model realesr-animevideov3-x4 on cpu( \(fused kernel\))?$/m);
    expect(text).toMatch(/^esrvid: done: 12 frames in [\d.]+ s \([\d.]+ fps\), [\d.]+ [KM]?B written to \S*plain-tty\.mp4$/m);
  });
});

describe('without a terminal', () => {
  it('--json: one event per line on stdout, start first, done last with the output\'s frame count', { timeout: 120_000 }, async () => {
    const out = join(dir, 'events.mp4');
    const r = await runCli([SAMPLE, out, '--model', MODEL, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    const lines = r.stdout.trimEnd().split('\n');
    const events = lines.map((l) => JSON.parse(l));
    expect(events.every((e) => ['start', 'progress', 'warning', 'done'].includes(e.type))).toBe(true);
    expect(events[0].type).toBe('start');
    expect(events[0]).toMatchObject({ output: out, inputSize: [160, 90], outputSize: [640, 360], model: MODEL, device: 'cpu', batch: 1 });
    expect(events.filter((e) => e.type === 'start')).toHaveLength(1);
    expect(events.at(-1).type).toBe('done');
    expect(events.filter((e) => e.type === 'done')).toHaveLength(1);
    const progress = events.filter((e) => e.type === 'progress');
    expect(progress.length).toBeGreaterThan(0);
    for (const p of progress) expect(Object.keys(p).sort()).toEqual(['decodeCapacity', 'decodeMs', 'decodeQueue', 'elapsedMs', 'encodeCapacity', 'encodeMs', 'encodeQueue', 'frames', 'inferMs', 'reusedFrames', 'totalFrames', 'type']);
    const done = events.at(-1);
    expect(done.frames).toBe(48);
    expect(done.frames).toBe(await frameCount(out));
    expect(done.reusedFrames).toBe(0); // the sample repeats no frame
    // The job's CPU time: esrvid's own (inference most of it) and FFmpeg's, no more than the
    // cores could give in the elapsed time (the children's 10 ms ticks round up to one each).
    expect(done.cpuMs.process).toBeGreaterThan(done.cpuMs.children);
    expect(done.cpuMs.children).toBeGreaterThan(0);
    expect(done.cpuMs.process + done.cpuMs.children).toBeLessThanOrEqual(availableParallelism() * done.elapsedMs + 50);
  });

  it('--json: a failure is an error event on stdout too, with the same line and exit code', async () => {
    const r = await runCli([join(dir, 'missing.mp4'), join(dir, 'never.mp4'), '--json']);
    expect(r.code).toBe(3);
    const events = r.stdout.trimEnd().split('\n').map((l) => JSON.parse(l));
    expect(events).toHaveLength(1);
    expect(events[0]).toEqual({ type: 'error', message: expect.stringContaining('missing.mp4'), exitCode: 3 });
    expect(r.stderr).toBe(`esrvid: ${events[0].message}\n`);
  });

  it('--json: an invalid option is an error event too (exit 2); help and other commands are untouched', async () => {
    for (const bad of [['--scale', '99'], ['--frobnicate']]) {
      const r = await runCli([SAMPLE, join(dir, 'never.mp4'), '--json', ...bad]);
      expect(r.code).toBe(2);
      const events = r.stdout.trimEnd().split('\n').map((l) => JSON.parse(l));
      expect(events).toEqual([{ type: 'error', message: expect.any(String), exitCode: 2 }]);
      expect(r.stderr).toContain(events[0].message.split(' ')[0]);
    }
    const help = await runCli(['--json', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--no-tui');
    expect(help.stdout).not.toContain('"type":"error"');
    // Another command's failure is its own business: no event on its stdout.
    const other = await runCli(['models', 'path', 'no-such-model', '--json']);
    expect(other.code).not.toBe(0);
    expect(other.stdout).not.toContain('"type":"error"');
  });

  it('stdout not a terminal: plain progress on stderr, nothing on stdout, no escape codes', { timeout: 120_000 }, async () => {
    const r = await runCli([SHORT, join(dir, 'plain-pipe.mp4'), '--model', MODEL], { env: terminalEnv() });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).not.toMatch(/\x1b/);
    expect(r.stderr).toMatch(/^esrvid: done: 12 frames in /m);
  });

  it('--quiet: nothing at all on success', { timeout: 120_000 }, async () => {
    const r = await runCli([SHORT, join(dir, 'quiet.mp4'), '--model', MODEL, '--quiet']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('');
    expect(await frameCount(join(dir, 'quiet.mp4'))).toBe(12);
  });
});
