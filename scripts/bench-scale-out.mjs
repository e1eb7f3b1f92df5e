#!/usr/bin/env node
// Coordination overhead of scale-out on one machine: the same job run by 2 workers x 1 inference
// thread and by 1 worker x 2 threads (and, for reference, the main command with 2 threads),
// alternating, RUNS times each; wall time from `esrvid submit` to the joined file, median, ratio;
// planning and joining time from the job. Needs redis-server (scripts/ensure-redis.sh) and a build.
//   RUNS=3 SECONDS=10 SIZE=320x180 node scripts/bench-scale-out.mjs
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const ROOT = join(import.meta.dirname, '..');
const CLI = join(ROOT, 'dist', 'cli.js');
const FFMPEG = require('@ffmpeg-installer/ffmpeg').path;
const RUNS = Number(process.env.RUNS ?? 3);
const SECONDS = Number(process.env.SECONDS ?? 10);
const SIZE = process.env.SIZE ?? '320x180';
const MODEL = process.env.MODEL ?? 'realesr-animevideov3-x4';
const SEGMENT_SECONDS = process.env.SEGMENT_SECONDS ?? '1';
const dir = mkdtempSync(join(tmpdir(), 'esrvid-bench-scale-'));
const src = join(dir, 'src.mp4');

execFileSync(FFMPEG, ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', `testsrc2=size=${SIZE}:rate=24`, '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
  '-t', String(SECONDS), '-c:v', 'libx264', '-g', '12', '-keyint_min', '12', '-sc_threshold', '0', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-shortest', src]);

const srv = createServer().listen(0, '127.0.0.1');
await once(srv, 'listening');
const port = srv.address().port;
srv.close();
const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
await new Promise((r) => setTimeout(r, 500));
const url = `redis://127.0.0.1:${port}`;

const settings = ['--model', MODEL, '--codec', 'libx264', '--crf', '18'];
const run = (args) => new Promise((resolve, reject) => {
  const p = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  p.stdout.on('data', (d) => (out += d));
  p.stderr.on('data', (d) => (err += d));
  p.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`esrvid ${args.join(' ')} exited ${code}: ${err}`))));
});

async function distributed(workers, threads, n) {
  const procs = Array.from({ length: workers }, (_, i) => spawn(process.execPath, [CLI, 'worker', '--redis', url, '--threads', String(threads), '--name', `b${i}`], { stdio: 'ignore' }));
  await new Promise((r) => setTimeout(r, 1500)); // connected and idle before the clock starts
  const t0 = performance.now();
  const out = await run(['submit', src, join(dir, `out-${workers}x${threads}-${n}.mp4`), '--redis', url, ...settings, '--segment-seconds', SEGMENT_SECONDS, '--json', '-q']);
  const wall = (performance.now() - t0) / 1000;
  const done = JSON.parse(out.trim().split('\n').at(-1));
  for (const p of procs) p.kill('SIGTERM');
  await Promise.all(procs.map((p) => once(p, 'close')));
  return { wall, planMs: done.planMs, joinMs: done.result.joinMs };
}

async function single(n) {
  const t0 = performance.now();
  await run([src, join(dir, `out-main-${n}.mp4`), ...settings, '--threads', '2', '-q']);
  return { wall: (performance.now() - t0) / 1000 };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const results = { '2x1': [], '1x2': [], main: [] };
const loads = [];
for (let n = 0; n < RUNS; n++) {
  // Alternate the order so drift in the machine's load falls on both.
  const order = n % 2 === 0 ? ['2x1', '1x2', 'main'] : ['1x2', '2x1', 'main'];
  for (const c of order) {
    loads.push(loadavg()[0]);
    const r = c === 'main' ? await single(n) : c === '2x1' ? await distributed(2, 1, n) : await distributed(1, 2, n);
    results[c].push(r);
    process.stderr.write(`run ${n + 1}/${RUNS} ${c}: ${r.wall.toFixed(2)} s${r.planMs !== undefined ? `, plan ${r.planMs.toFixed(0)} ms, join ${r.joinMs.toFixed(0)} ms` : ''}\n`);
  }
}
redis.kill('SIGTERM');
await once(redis, 'close');
rmSync(dir, { recursive: true, force: true });

const report = {
  date: new Date().toISOString(), cpus: `${cpus().length} x ${cpus()[0]?.model}`, clip: `${SIZE}, ${SECONDS} s at 24 fps (${SECONDS * 24} frames), keyframe every 12 frames, AAC`,
  model: MODEL, segmentSeconds: Number(SEGMENT_SECONDS), runs: RUNS, loadAvg1mAtStarts: loads.map((l) => Number(l.toFixed(2))),
  wallSeconds: Object.fromEntries(Object.entries(results).map(([k, v]) => [k, v.map((r) => Number(r.wall.toFixed(2)))])),
  medianSeconds: Object.fromEntries(Object.entries(results).map(([k, v]) => [k, Number(median(v.map((r) => r.wall)).toFixed(2))])),
  ratio2x1over1x2: Number((median(results['2x1'].map((r) => r.wall)) / median(results['1x2'].map((r) => r.wall))).toFixed(3)),
  planMs: [...results['2x1'], ...results['1x2']].map((r) => Math.round(r.planMs)),
  joinMs: [...results['2x1'], ...results['1x2']].map((r) => Math.round(r.joinMs)),
};
console.log(JSON.stringify(report, null, 2));
