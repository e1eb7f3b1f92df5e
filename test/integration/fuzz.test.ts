/**
 * Fuzzing the real CLI with damaged versions of real files: truncations, bit flips, zeroed and
 * duplicated blocks, edited box/element headers. 200 seeded cases; every run must end within its
 * time bound either with a valid output or with a clean error: one line, a documented exit code
 * (never 1, "internal error"), no stack trace, no output or temporary file, no ffmpeg left.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pullModel } from '../../src/models/pull.js';
import { ffmpeg, ffprobeJson, PHOTO, runCli, tempDir } from '../helpers/media.js';

const MODEL = 'realesr-animevideov3-x4';
const CASES = 200;
const { dir, cleanup } = tempDir();
afterAll(cleanup);

/** mulberry32: a small seeded generator, so every failure can be replayed. */
function rng(seed: number) {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Mutation = (b: Buffer, r: () => number) => Buffer;
const at = (b: Buffer, r: () => number) => Math.floor(r() * b.length);
const MUTATIONS: [string, Mutation][] = [
  ['truncate', (b, r) => b.subarray(0, at(b, r))],
  ['flip bits', (b, r) => {
    const c = Buffer.from(b);
    const n = 1 + Math.floor(r() * 20);
    for (let i = 0; i < n; i++) c[at(c, r)] ^= 1 << Math.floor(r() * 8);
    return c;
  }],
  ['zero a block', (b, r) => {
    const c = Buffer.from(b);
    const s = at(c, r);
    c.fill(0, s, Math.min(c.length, s + 1 + Math.floor(r() * 4096)));
    return c;
  }],
  ['duplicate a block', (b, r) => {
    const s = at(b, r);
    const e = Math.min(b.length, s + 1 + Math.floor(r() * 2048));
    return Buffer.concat([b.subarray(0, e), b.subarray(s, e), b.subarray(e)]);
  }],
  ['drop a block', (b, r) => {
    const s = at(b, r);
    return Buffer.concat([b.subarray(0, s), b.subarray(Math.min(b.length, s + 1 + Math.floor(r() * 2048)))]);
  }],
  ['edit a header', (b, r) => {
    // Box/element headers sit near the start; rewrite a 4-byte size or id there.
    const c = Buffer.from(b);
    const s = Math.floor(r() * Math.min(c.length - 4, 600));
    c.writeUInt32BE(Math.floor(r() * 2 ** 32), s);
    return c;
  }],
];

const sources: { name: string; data: Buffer }[] = [];

beforeAll(async () => {
  await pullModel(MODEL);
  const common = ['-loop', '1', '-framerate', '24', '-i', PHOTO, '-f', 'lavfi', '-i', 'sine=sample_rate=48000',
    '-filter_complex', "[0:v]crop=32:18:x='n*3':y=70,format=yuv420p[v]", '-map', '[v]', '-map', '1:a', '-t', '0.5'];
  await ffmpeg([...common, '-c:v', 'libx264', '-c:a', 'aac', join(dir, 'a.mp4')]);
  await ffmpeg([...common, '-c:v', 'libx264', '-c:a', 'libopus', join(dir, 'b.mkv')]);
  await ffmpeg([...common, '-c:v', 'libvpx-vp9', '-c:a', 'libopus', join(dir, 'c.webm')]);
  for (const f of ['a.mp4', 'b.mkv', 'c.webm']) sources.push({ name: f, data: readFileSync(join(dir, f)) });
});

describe('fuzz', () => {
  it(`${CASES} damaged files: a valid output or a clean error, never a hang, crash or leftover`, { timeout: 900_000 }, async () => {
    const outcomes = { ok: 0, refused: 0 } as Record<string, number>;
    const failures: string[] = [];
    // ESRVID_FUZZ_CASES=12,48 replays chosen cases (keeping their files in FUZZ_KEEP_DIR if set).
    const only = process.env.ESRVID_FUZZ_CASES?.split(',').map(Number);
    for (let i = 0; i < CASES; i++) {
      if (only && !only.includes(i)) continue;
      const r = rng(1000 + i);
      const src = sources[i % sources.length]!;
      const [kind, mutate] = MUTATIONS[Math.floor(r() * MUTATIONS.length)]!;
      const ext = src.name.slice(src.name.lastIndexOf('.'));
      const caseDir = join(dir, `case-${i}`);
      (await import('node:fs')).mkdirSync(caseDir);
      const input = join(caseDir, `in${ext}`);
      const output = join(caseDir, 'out.mkv');
      writeFileSync(input, mutate(src.data, r));
      const res = await runCli([input, output, '--model', MODEL, '-q'], { timeoutMs: 60_000 });
      const label = `case ${i} (${src.name}, ${kind}, seed ${1000 + i})`;
      const lines = res.stderr.trim() ? res.stderr.trim().split('\n') : [];
      const leftovers = readdirSync(caseDir).filter((f) => f.includes('.esrvid-'));
      let live: string[] = [];
      try {
        live = execFileSync('pgrep', ['-af', caseDir], { encoding: 'utf8' }).split('\n').filter((l) => l.includes('ffmpeg'));
      } catch {
        /* none */
      }
      if (res.signal) failures.push(`${label}: killed after 60 s (hang)`);
      else if (res.code === 0) {
        const probe = await ffprobeJson(output, ['-show_streams']).catch(() => undefined);
        if (!probe?.streams?.some((s: any) => s.codec_type === 'video' && s.width === 128)) failures.push(`${label}: exit 0 but the output is not a valid 128-px video`);
        outcomes.ok!++;
      } else {
        if (![3, 4, 6].includes(res.code!)) failures.push(`${label}: exit ${res.code}: ${lines.join(' | ')}`);
        if (lines.length !== 1 || !lines[0]!.startsWith('esrvid: ')) failures.push(`${label}: stderr is not one line: ${res.stderr.slice(0, 300)}`);
        if (/\n\s+at /.test(res.stderr)) failures.push(`${label}: stack trace`);
        if (existsSync(output)) failures.push(`${label}: output left after an error`);
        outcomes.refused!++;
      }
      if (leftovers.length) failures.push(`${label}: leftovers ${leftovers.join(', ')}`);
      if (live.length) failures.push(`${label}: ffmpeg still running`);
      if (only) console.log(`${label}: exit ${res.code}, stderr: ${res.stderr.trim()}, files: ${readdirSync(caseDir).join(' ')}`);
      if (!only) rmSync(caseDir, { recursive: true, force: true });
    }
    if (only) return;
    console.log(`fuzz: ${CASES} cases, ${outcomes.ok} upscaled, ${outcomes.refused} refused cleanly, ${failures.length} failures`);
    expect(failures).toEqual([]);
  });
});
