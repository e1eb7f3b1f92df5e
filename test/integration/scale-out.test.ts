/**
 * Scale-out with a real Redis (Debian's redis-server, started here on a free port), real BullMQ,
 * FFmpeg and ONNX Runtime: one job across worker processes, each in its own working folder with
 * one inference thread, checked against a single-process run of the same settings: same frame
 * count, identical frames (lossless FFV1, per-frame MD5), identical timestamps, byte-identical
 * audio and subtitles. Faults: a worker killed with SIGKILL mid-segment, Redis restarted
 * mid-job, a segment that fails on every attempt.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pullModel } from '../../src/models/pull.js';
import { JobQueues, jobStatus, type JobStatus } from '../../src/scale-out/status.js';
import { CLI, FFMPEG, ffmpeg, packetTimes, PHOTO, ROOT, runCli, streamMd5, tempDir, type CliResult } from '../helpers/media.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';

const MODEL = 'realesr-animevideov3-x4';
const { dir, cleanup } = tempDir('esrvid-scale-');
const src = join(dir, 'src.mkv');
const SETTINGS = ['--model', MODEL, '--codec', 'ffv1', '--pix-fmt', 'bgr0'];
/** 96 frames with a keyframe every 12, in segments of at least 1 s (24 frames): 4 segments. */
const SEGMENTS = 4;
/** Short locks, so a killed worker's segment is retried within seconds. */
const FAST_LOCKS = ['--lock-seconds', '2', '--stalled-seconds', '1'];

async function frameHashes(file: string): Promise<string[]> {
  const { stdout } = await promisify(execFile)(FFMPEG, ['-hide_banner', '-loglevel', 'error', '-i', file, '-map', '0:v', '-f', 'framemd5', '-'], { maxBuffer: 64 << 20 });
  return stdout.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(',').map((x) => x.trim()).slice(2).join(' '));
}

interface WorkerProcess {
  name: string;
  child: ChildProcess;
  log: () => string;
  exited: Promise<number | null>;
}
const workers: WorkerProcess[] = [];

function startWorker(name: string, redis: string, env: NodeJS.ProcessEnv = {}): WorkerProcess {
  const cwd = join(dir, `worker-${name}`);
  mkdirSync(cwd, { recursive: true });
  const child = spawn(process.execPath, [CLI, 'worker', '--redis', redis, '--name', name, '--threads', '1', ...FAST_LOCKS],
    { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (d) => (log += d));
  const w = { name, child, log: () => log, exited: new Promise<number | null>((r) => child.on('close', (code) => r(code))) };
  workers.push(w);
  return w;
}

/** SIGTERM: a worker gives back what it runs and exits 130. */
async function stopWorker(w: WorkerProcess): Promise<number | null> {
  w.child.kill('SIGTERM');
  return w.exited;
}

const submitArgs = (out: string, redis: string, extra: string[] = []) => ['submit', src, out, '--redis', redis, ...SETTINGS, '--segment-seconds', '1', '--backoff', '0.2', ...extra];

/** Polls the job's status until `until` holds (Redis errors while it restarts are waited out). */
async function pollStatus(q: JobQueues, id: string, until: (s: JobStatus) => boolean, timeoutMs = 120_000): Promise<JobStatus> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const s = await jobStatus(q, id).catch(() => undefined);
    if (s && until(s)) return s;
    if (Date.now() > end) throw new Error(`status never reached the condition: ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Processes whose command line mentions the test folder (workers, ffmpeg children). */
async function liveProcessesInTestDir(): Promise<string[]> {
  const { stdout } = await promisify(execFile)('ps', ['-eo', 'pid=,args=']);
  return stdout.split('\n').filter((l) => l.includes(dir) && !l.includes('redis-server'));
}

let reference: { frames: string[]; times: number[]; audio: string; subs: string };
let redis: RedisServer;

beforeAll(async () => {
  await pullModel(MODEL);
  const srt = join(dir, 's.srt');
  writeFileSync(srt, '1\n00:00:00,500 --> 00:00:02,000\nhello\n\n2\n00:00:02,500 --> 00:00:03,500\nagain\n');
  await ffmpeg(['-loop', '1', '-framerate', '24', '-i', PHOTO, '-f', 'lavfi', '-i', 'sine=frequency=500:sample_rate=48000', '-i', srt,
    '-filter_complex', "[0:v]crop=96:54:x='n*2':y=60,format=yuv420p[v]", '-map', '[v]', '-map', '1:a', '-map', '2:s', '-t', '4',
    '-c:v', 'libx264', '-g', '12', '-keyint_min', '12', '-sc_threshold', '0', '-c:a', 'aac', '-c:s', 'srt', src]);
  const ref = join(dir, 'reference.mkv');
  const r = await runCli([src, ref, ...SETTINGS, '--threads', '1', '-q']);
  expect(r.code, r.stderr).toBe(0);
  reference = { frames: await frameHashes(ref), times: await packetTimes(ref), audio: await streamMd5(ref, '0:a:0'), subs: await streamMd5(ref, '0:s:0') };
  expect(reference.frames).toHaveLength(96);
  mkdirSync(join(dir, 'redis'));
  redis = await startRedis(join(dir, 'redis'));
}, 120_000);

afterAll(async () => {
  for (const w of workers) if (w.child.exitCode === null) w.child.kill('SIGKILL');
  await Promise.all(workers.map((w) => w.exited));
  await redis?.stop();
  cleanup();
});

async function expectSameAsReference(out: string): Promise<void> {
  expect(await frameHashes(out)).toEqual(reference.frames);
  expect(await packetTimes(out)).toEqual(reference.times);
  expect(await streamMd5(out, '0:a:0')).toBe(reference.audio);
  expect(await streamMd5(out, '0:s:0')).toBe(reference.subs);
}

describe('scale-out (esrvid submit / worker / status on Redis)', () => {
  it('one job across 3 workers; one killed with SIGKILL mid-segment: its segment is retried elsewhere, the output is frame-identical', { timeout: 180_000 }, async () => {
    const out = join(dir, 'killed.mkv');
    const pool = ['w1', 'w2', 'w3'].map((n) => startWorker(n, redis.url));
    const queued = await runCli(submitArgs(out, redis.url, ['--detach']), { cwd: dir });
    expect(queued.code, queued.stderr).toBe(0);
    const id = queued.stdout.trim();
    expect(id).toMatch(/^j[0-9a-f]{12}$/);
    expect(queued.stderr).toMatch(new RegExp(`job ${id}: 96 frames in ${SEGMENTS} segment\\(s\\) cut on keyframes`));
    // Submitting the same job again attaches to it and waits for it.
    const waiting = runCli(submitArgs(out, redis.url), { cwd: dir });
    const q = new JobQueues(redis.url);
    try {
      const mid = await pollStatus(q, id, (s) => s.segments.some((g) => g.state === 'active' && g.frames > 0 && g.frames < g.end - g.start));
      const seg = mid.segments.find((g) => g.state === 'active' && g.frames > 0 && g.frames < g.end - g.start)!;
      const victim = pool.find((w) => w.name === seg.worker)!;
      victim.child.kill('SIGKILL');
      await victim.exited;

      const r: CliResult = await waiting;
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(new RegExp(`job ${id} was already submitted .*: attached to it`));
      expect(r.stderr).toMatch(/done: job j[0-9a-f]{12}, 96 frames, written to/);
      await expectSameAsReference(out);

      const after = await jobStatus(q, id);
      expect(after!.state).toBe('done');
      expect(after!.segments.map((g) => g.state)).toEqual(Array(SEGMENTS).fill('done'));
      const retried = after!.segments[seg.index]!;
      expect(retried.worker).toBeDefined();
      expect(retried.worker).not.toBe(victim.name);
      // Every segment was written by a live worker's own log, the killed one's by another.
      const survivors = pool.filter((w) => w !== victim);
      expect(survivors.map((w) => w.log()).join('')).toMatch(new RegExp(`${id} segment ${seg.index} \\(frames ${seg.start}-${seg.end - 1}\\): done`));
      // A worker's later segments keep the model sessions of its earlier ones (pigeonhole: some
      // survivor did at least two segments), and the frames above are still the reference's.
      expect(survivors.map((w) => w.log()).join('')).toMatch(/: done, \d+ frames in [\d.]+ s \(model sessions kept from the previous segment\)/);
      // `esrvid status` reads the same.
      const st = await runCli(['status', id, '--redis', redis.url, '--json']);
      expect(st.code, st.stderr).toBe(0);
      expect(JSON.parse(st.stdout)).toMatchObject({ id, state: 'done', frames: 96, framesDone: 96 });
    } finally {
      await q.close();
    }
    // Nothing left behind: no job folder, no partial output.
    expect(readdirSync(dir).filter((f) => f.includes('.esrvid-'))).toEqual([]);
    for (const w of pool.filter((p) => p !== pool.find((v) => v.child.signalCode === 'SIGKILL'))) expect(await stopWorker(w)).toBe(130);
    expect(await liveProcessesInTestDir()).toEqual([]);
  });

  it('Redis restarted mid-job (append-only file): the job resumes and completes', { timeout: 180_000 }, async () => {
    mkdirSync(join(dir, 'redis-aof'));
    const aof = await startRedis(join(dir, 'redis-aof'), { appendOnly: true });
    const out = join(dir, 'redis-restart.mkv');
    const pool = ['r1', 'r2'].map((n) => startWorker(n, aof.url));
    const q = new JobQueues(aof.url);
    try {
      const queued = await runCli(submitArgs(out, aof.url, ['--detach']), { cwd: dir });
      expect(queued.code, queued.stderr).toBe(0);
      const id = queued.stdout.trim();
      const waiting = runCli(submitArgs(out, aof.url), { cwd: dir });
      await pollStatus(q, id, (s) => s.segments.some((g) => g.state === 'done') && s.segments.some((g) => g.state !== 'done'));
      await aof.stop();
      await new Promise((r) => setTimeout(r, 1000));
      await aof.start();
      const r = await waiting;
      expect(r.code, r.stderr).toBe(0);
      await expectSameAsReference(out);
      // The workers saw Redis go and come back, and carried on.
      expect(pool.map((w) => w.log()).join('')).toMatch(/lost Redis \(connect ECONNREFUSED [^)]*\); reconnecting\n(.*\n)*.*Redis is back/);
    } finally {
      await q.close();
      for (const w of pool) if (w.child.exitCode === null) await stopWorker(w);
      await aof.stop();
    }
    expect(readdirSync(dir).filter((f) => f.includes('.esrvid-'))).toEqual([]);
  });

  it('a segment failing on every attempt fails the job naming it (exit 10), finished segments kept and reused by the next submit', { timeout: 180_000 }, async () => {
    const out = join(dir, 'failing.mkv');
    const failing = ['f1', 'f2'].map((n) => startWorker(n, redis.url, { ESRVID_TEST_FAIL_SEGMENT: '1' }));
    const r = await runCli(submitArgs(out, redis.url, ['--attempts', '3']), { cwd: dir });
    expect(r.code, r.stderr).toBe(10);
    const line = r.stderr.trim().split('\n').at(-1)!;
    expect(line).toMatch(/^esrvid: job (j[0-9a-f]{12}) failed: segment 1 \(frames 24-47\) failed 3 times: injected failure \(ESRVID_TEST_FAIL_SEGMENT=1\); finished segments are kept in .*\.esrvid-scale-j[0-9a-f]{12}; fix the cause and submit the same job again/);
    const id = /job (j[0-9a-f]{12}) failed/.exec(line)![1]!;
    const folder = join(dir, `.failing.mkv.esrvid-scale-${id}`);
    const q = new JobQueues(redis.url);
    try {
      // The other segments go on; once they are done, they are on shared storage with their records.
      const s = await pollStatus(q, id, (st) => st.segments.filter((g) => g.index !== 1).every((g) => g.state === 'done'));
      expect(s.state).toBe('failed');
      expect(s.segments[1]).toMatchObject({ state: 'failed', failedAttempts: 3 });
    } finally {
      await q.close();
    }
    const files = readdirSync(folder);
    expect(files.filter((f) => /^seg-\d+\.nut$/.test(f)).sort()).toEqual(['seg-00000.nut', 'seg-00002.nut', 'seg-00003.nut']);
    expect(files.filter((f) => /^seg-\d+\.json$/.test(f)).sort()).toEqual(['seg-00000.json', 'seg-00002.json', 'seg-00003.json']);
    expect(existsSync(out)).toBe(false);
    for (const w of failing) expect(await stopWorker(w)).toBe(130);

    // Fixed: the same job again redoes only segment 1.
    const fixed = startWorker('fixed', redis.url);
    const again = await runCli(submitArgs(out, redis.url), { cwd: dir });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(new RegExp(`job ${id} had failed: queued again; finished segments are kept`));
    expect(fixed.log().match(/already finished on shared storage, kept/g)).toHaveLength(3);
    expect(fixed.log()).toMatch(new RegExp(`${id} segment 1 \\(frames 24-47\\): done`));
    await expectSameAsReference(out);
    expect(await stopWorker(fixed)).toBe(130);
    expect(existsSync(folder)).toBe(false);
  });

  it('a worker stopped with SIGTERM mid-segment gives the segment back (no failed attempt) and exits 130; another finishes the job', { timeout: 180_000 }, async () => {
    const out = join(dir, 'given-back.mkv');
    const first = startWorker('g1', redis.url);
    const queued = await runCli(submitArgs(out, redis.url, ['--detach']), { cwd: dir });
    expect(queued.code, queued.stderr).toBe(0);
    const id = queued.stdout.trim();
    const q = new JobQueues(redis.url);
    try {
      const mid = await pollStatus(q, id, (s) => s.segments.some((g) => g.state === 'active' && g.frames > 0 && g.frames < g.end - g.start));
      const seg = mid.segments.find((g) => g.state === 'active')!;
      expect(await stopWorker(first)).toBe(130);
      expect(first.log()).toMatch(new RegExp(`${id} segment ${seg.index} \\(frames ${seg.start}-${seg.end - 1}\\): given back to the queue`));
      const back = await jobStatus(q, id);
      expect(back!.segments[seg.index]).toMatchObject({ state: 'waiting', failedAttempts: 0 });
      const second = startWorker('g2', redis.url);
      const r = await runCli(submitArgs(out, redis.url), { cwd: dir });
      expect(r.code, r.stderr).toBe(0);
      await expectSameAsReference(out);
      expect(await stopWorker(second)).toBe(130);
    } finally {
      await q.close();
    }
    expect(readdirSync(dir).filter((f) => f.includes('.esrvid-'))).toEqual([]);
  });

  it('the same job submitted again attaches to it; --restart discards and queues it afresh', { timeout: 60_000 }, async () => {
    const out = join(dir, 'resubmitted.mkv');
    const first = await runCli(submitArgs(out, redis.url, ['--detach']), { cwd: dir });
    expect(first.code, first.stderr).toBe(0);
    const id = first.stdout.trim();
    const again = await runCli(submitArgs(out, redis.url, ['--detach']), { cwd: dir });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout.trim()).toBe(id);
    expect(again.stderr).toMatch(new RegExp(`job ${id} was already submitted \\(waiting-children\\): attached to it`));
    expect(again.stderr).not.toMatch(/cut on keyframes/);
    // Another setting is another job.
    const other = await runCli(submitArgs(out, redis.url, ['--detach', '--scale', '2']), { cwd: dir });
    expect(other.code, other.stderr).toBe(0);
    expect(other.stdout.trim()).not.toBe(id);
    const restarted = await runCli(submitArgs(out, redis.url, ['--detach', '--restart']), { cwd: dir });
    expect(restarted.code, restarted.stderr).toBe(0);
    expect(restarted.stdout.trim()).toBe(id);
    expect(restarted.stderr).toMatch(new RegExp(`job ${id}: 96 frames in ${SEGMENTS} segment\\(s\\) cut on keyframes`));
    const st = await runCli(['status', id, '--redis', redis.url]);
    expect(st.code, st.stderr).toBe(0);
    expect(st.stdout).toMatch(/^job j[0-9a-f]{12}: running, 0\/96 frames \(0\.0%\)/);
    expect(st.stdout).toContain(`segments: 0 done, 0 active, ${SEGMENTS} waiting, 0 retrying, 0 failed, of ${SEGMENTS}`);
    // Leave no queued work for the tests after this one.
    const q = new JobQueues(redis.url);
    try {
      for (const j of [id, other.stdout.trim()]) {
        await (await q.joins.getJob(j))!.remove({ removeChildren: true });
        rmSync(join(dir, `.resubmitted.mkv.esrvid-scale-${j}`), { recursive: true, force: true });
      }
    } finally {
      await q.close();
    }
  });

  it('an unreachable Redis is one line and exit 9', async () => {
    const r = await runCli(['status', 'j000000000000', '--redis', 'redis://127.0.0.1:1']);
    expect(r.code).toBe(9);
    expect(r.stderr).toBe('esrvid: cannot reach Redis at redis://127.0.0.1:1: ECONNREFUSED 127.0.0.1:1; start redis-server or pass --redis\n');
    const w = await runCli(['worker', '--redis', 'redis://127.0.0.1:1']);
    expect(w.code).toBe(9);
  });
});

describe('BullMQ is loaded only by submit, worker and status', () => {
  it('not by the main command, bench or models; by status', async () => {
    // A resolve hook that reports every import of bullmq or ioredis.
    const hook = join(dir, 'hook.mjs');
    const register = join(dir, 'register.mjs');
    writeFileSync(hook, "export async function resolve(s, c, next) { if (/^(bullmq|ioredis)$/.test(s)) console.error('LOADED ' + s); return next(s, c); }\n");
    writeFileSync(register, `import { register } from 'node:module';\nregister(${JSON.stringify(`file://${hook}`)});\n`);
    const run = (args: string[]) => promisify(execFile)(process.execPath, ['--import', register, CLI, ...args], { cwd: ROOT }).then((r) => r.stderr, (e) => String(e.stderr));
    expect(await run(['--help'])).not.toMatch(/LOADED/);
    expect(await run(['bench', '--help'])).not.toMatch(/LOADED/);
    expect(await run(['models', 'list'])).not.toMatch(/LOADED/);
    expect(await run([join(dir, 'missing.mp4'), join(dir, 'x.mp4')])).not.toMatch(/LOADED/);
    expect(await run(['status', 'j000000000000', '--redis', 'redis://127.0.0.1:1'])).toMatch(/LOADED bullmq/);
  });
});
