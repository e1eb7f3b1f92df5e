/**
 * Cancelling a running job (SIGINT, SIGTERM) stops every ffmpeg child and the worker within a
 * few seconds, exits with 130, and leaves neither the output nor a temporary file.
 */
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pullModel } from '../../src/models/pull.js';
import { CLI, ffmpeg, PHOTO, ROOT, tempDir } from '../helpers/media.js';

const MODEL = 'realesr-general-x4v3';
const { dir, cleanup } = tempDir();
afterAll(cleanup);

beforeAll(async () => {
  await pullModel(MODEL);
  // Long enough (about a minute of work) that the job is surely mid-way when stopped.
  await ffmpeg(['-loop', '1', '-framerate', '24', '-i', PHOTO, '-f', 'lavfi', '-i', 'sine=sample_rate=48000',
    '-filter_complex', "[0:v]crop=160:90:x='mod(n,160)':y=40,format=yuv420p[v]", '-map', '[v]', '-map', '1:a', '-t', '20',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-c:a', 'aac', join(dir, 'long.mp4')]);
});

function liveChildren(marker: string): string[] {
  try {
    return execFileSync('pgrep', ['-af', marker], { encoding: 'utf8' }).split('\n').filter((l) => l.includes('ffmpeg'));
  } catch {
    return [];
  }
}

describe.each(['SIGINT', 'SIGTERM'] as const)('cancel with %s', (signal) => {
  it('stops cleanly: exit 130, one line, no output, no temp file, no ffmpeg left', { timeout: 120_000 }, async () => {
    const out = join(dir, `cancelled-${signal}.mp4`);
    const child = spawn(process.execPath, [CLI, join(dir, 'long.mp4'), out, '--model', MODEL, '--json'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const progressed = new Promise<void>((resolve) => child.stdout.on('data', (d) => {
      stdout += d;
      if (/"type":"progress","frames":[1-9]/.test(stdout)) resolve();
    }));
    const exited = new Promise<{ code: number | null; at: number }>((resolve) => child.on('close', (code) => resolve({ code, at: performance.now() })));
    await progressed;
    expect(liveChildren(dir).length).toBe(2); // the decoder and the encoder of this job
    const sent = performance.now();
    child.kill(signal);
    const { code, at } = await exited;
    expect(code).toBe(130);
    expect(at - sent).toBeLessThan(10_000);
    const lines = stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^esrvid: cancelled/);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(dir).filter((f) => f.includes('.esrvid-'))).toEqual([]);
    expect(liveChildren(dir)).toEqual([]);
  });
});
