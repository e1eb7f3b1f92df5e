/**
 * Crash-safe resume: a job killed with SIGKILL (early, mid-way, and during the final join) is
 * resumed by running the same command again, and the result is indistinguishable from an
 * uninterrupted run: same frames (hashes of decoded frames, lossless codec), same timestamps,
 * audio and subtitles byte-identical. Nothing is left behind afterwards.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pullModel } from '../../src/models/pull.js';
import { CLI, FFMPEG, ffmpeg, packetTimes, PHOTO, ROOT, runCli, streamMd5, tempDir } from '../helpers/media.js';

const MODEL = 'realesr-animevideov3-x4';
const { dir, cleanup } = tempDir();
afterAll(cleanup);
const src = join(dir, 'src.mkv');
/** 96 frames in segments of 12: eight segments. */
const jobArgs = (out: string) => [src, out, '--model', MODEL, '--codec', 'ffv1', '--pix-fmt', 'bgr0', '--segment-seconds', '0.5', '-q'];

async function frameHashes(file: string): Promise<string[]> {
  const { stdout } = await promisify(execFile)(FFMPEG, ['-hide_banner', '-loglevel', 'error', '-i', file, '-map', '0:v', '-f', 'framemd5', '-'], { maxBuffer: 64 << 20 });
  return stdout.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(',').map((x) => x.trim()).slice(2).join(' '));
}

const workDir = (out: string) => join(dir, `.${out.split('/').pop()}.esrvid-work`);
const finishedSegments = (out: string) => (existsSync(workDir(out)) ? readdirSync(workDir(out)).filter((f) => /^seg-\d+\.json$/.test(f)).length : 0);

/** Starts the job and SIGKILLs it once `when()` is true (polled); resolves when it is dead. */
async function killWhen(out: string, when: () => boolean): Promise<void> {
  const child = spawn(process.execPath, [CLI, ...jobArgs(out)], { cwd: ROOT, stdio: 'ignore' });
  const closed = new Promise((r) => child.on('close', r));
  await new Promise<void>((resolve, reject) => {
    const t = setInterval(() => {
      if (when()) {
        clearInterval(t);
        child.kill('SIGKILL');
        resolve();
      } else if (child.exitCode !== null) {
        clearInterval(t);
        reject(new Error('the job finished before it could be killed'));
      }
    }, 5);
  });
  await closed;
}

let reference: { frames: string[]; times: number[]; audio: string; subs: string };

beforeAll(async () => {
  await pullModel(MODEL);
  const srt = join(dir, 's.srt');
  (await import('node:fs')).writeFileSync(srt, '1\n00:00:00,500 --> 00:00:02,000\nhello\n\n2\n00:00:02,500 --> 00:00:03,500\nagain\n');
  await ffmpeg(['-loop', '1', '-framerate', '24', '-i', PHOTO, '-f', 'lavfi', '-i', 'sine=frequency=500:sample_rate=48000', '-i', srt,
    '-filter_complex', "[0:v]crop=64:36:x='n*2':y=60,format=yuv420p[v]", '-map', '[v]', '-map', '1:a', '-map', '2:s', '-t', '4',
    '-c:v', 'libx264', '-c:a', 'libopus', '-c:s', 'srt', src]);
  const ref = join(dir, 'reference.mkv');
  const r = await runCli(jobArgs(ref));
  expect(r.code, r.stderr).toBe(0);
  reference = { frames: await frameHashes(ref), times: await packetTimes(ref), audio: await streamMd5(ref, '0:a:0'), subs: await streamMd5(ref, '0:s:0') };
  expect(reference.frames).toHaveLength(96);
  expect(existsSync(workDir(ref))).toBe(false); // removed on success
});

describe('resume after kill -9', () => {
  it.each([
    ['early (after the first segment)', 1],
    ['mid-way (after four segments)', 4],
  ])('%s', { timeout: 180_000 }, async (_label, segments) => {
    const out = join(dir, `killed-${segments}.mkv`);
    await killWhen(out, () => finishedSegments(out) >= segments);
    expect(existsSync(out)).toBe(false);
    const kept = finishedSegments(out);
    expect(kept).toBeGreaterThanOrEqual(segments);
    expect(kept).toBeLessThan(8);

    const again = await runCli([...jobArgs(out).filter((a) => a !== '-q'), '--json']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/resuming an unfinished job: \d+ segment\(s\), \d+ frames already done/);
    expect(await frameHashes(out)).toEqual(reference.frames);
    expect(await packetTimes(out)).toEqual(reference.times);
    expect(await streamMd5(out, '0:a:0')).toBe(reference.audio);
    expect(await streamMd5(out, '0:s:0')).toBe(reference.subs);
    expect(existsSync(workDir(out))).toBe(false);
    expect(readdirSync(dir).filter((f) => f.includes(`killed-${segments}`) && f.includes('.esrvid-'))).toEqual([]);
  });

  it('during the final join', { timeout: 180_000 }, async () => {
    const out = join(dir, 'killed-join.mkv');
    // The concat list is written just before the join starts.
    await killWhen(out, () => existsSync(join(workDir(out), 'segments.ffconcat')));
    expect(existsSync(out)).toBe(false);
    expect(finishedSegments(out)).toBe(8);
    const again = await runCli(jobArgs(out));
    expect(again.code, again.stderr).toBe(0);
    expect(await frameHashes(out)).toEqual(reference.frames);
    expect(await streamMd5(out, '0:a:0')).toBe(reference.audio);
    expect(readdirSync(dir).filter((f) => f.includes('killed-join') && f.includes('.esrvid-'))).toEqual([]);
  });

  it('a different job for the same output is never mixed in', async () => {
    const out = join(dir, 'other.mkv');
    await killWhen(out, () => finishedSegments(out) >= 1);
    const r = await runCli([...jobArgs(out), '--scale', '2']);
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/holds an unfinished job for this output with another input or other settings; .*--restart/);
    const restarted = await runCli([...jobArgs(out), '--scale', '2', '--restart']);
    expect(restarted.code, restarted.stderr).toBe(0);
    expect(existsSync(workDir(out))).toBe(false);
  });
});
