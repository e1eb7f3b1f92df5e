/**
 * A full disk stops the job cleanly (exit 5, one line), keeps the finished segments, and the same
 * command completes the job once there is space, identical to a run that never ran out.
 * Runs on a small tmpfs mounted for the test (CI runs as root, as the build machines do).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pullModel } from '../../src/models/pull.js';
import { FFMPEG, ffmpeg, PHOTO, runCli, streamMd5, tempDir } from '../helpers/media.js';

const MODEL = 'realesr-animevideov3-x4';
const { dir, cleanup } = tempDir();
const small = join(dir, 'small');

beforeAll(async () => {
  await pullModel(MODEL);
  mkdirSync(small);
  // 3 MiB: room for a few lossless segments, not for the whole job.
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', small]);
  await ffmpeg(['-loop', '1', '-framerate', '24', '-i', PHOTO, '-f', 'lavfi', '-i', 'sine=sample_rate=48000',
    '-filter_complex', "[0:v]crop=64:36:x='n*2':y=60,format=yuv420p[v]", '-map', '[v]', '-map', '1:a', '-t', '4',
    '-c:v', 'libx264', '-c:a', 'aac', join(dir, 'src.mp4')]);
});
afterAll(() => {
  try {
    execFileSync('umount', [small]);
  } finally {
    cleanup();
  }
});

const args = (out: string) => [join(dir, 'src.mp4'), out, '--model', MODEL, '--codec', 'ffv1', '--pix-fmt', 'bgr0', '--segment-seconds', '0.5'];

describe('disk full', () => {
  it('stops cleanly, keeps finished segments, and completes once space is freed', { timeout: 300_000 }, async () => {
    const out = join(small, 'out.mkv');
    const full = await runCli([...args(out), '-q']);
    expect(full.code).toBe(5);
    console.log(full.stderr.trim());
    const lines = full.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^esrvid: the disk is full.*finished segment\(s\) .* kept in .*run the same command again to resume/);
    expect(existsSync(out)).toBe(false);
    const work = join(small, '.out.mkv.esrvid-work');
    const segments = readdirSync(work).filter((f) => /^seg-\d+\.nut$/.test(f));
    expect(segments.length).toBeGreaterThan(0);
    expect(readdirSync(work).filter((f) => f.includes('.partial'))).toEqual([]);
    expect(readdirSync(small).filter((f) => f.endsWith('.partial'))).toEqual([]);

    execFileSync('mount', ['-o', 'remount,size=64m', small]);
    const again = await runCli([...args(out), '--json']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(new RegExp(`resuming an unfinished job: ${segments.length} segment`));

    const reference = join(dir, 'reference.mkv');
    expect((await runCli([...args(reference), '-q'])).code).toBe(0);
    const hashes = (f: string) => execFileSync(FFMPEG, ['-loglevel', 'error', '-i', f, '-map', '0:v', '-f', 'framemd5', '-'], { encoding: 'utf8' })
      .split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(',').slice(2).join(','));
    expect(hashes(out)).toEqual(hashes(reference));
    expect(hashes(out)).toHaveLength(96);
    expect(await streamMd5(out, '0:a:0')).toBe(await streamMd5(reference, '0:a:0'));
    expect(existsSync(work)).toBe(false);
  });
});
