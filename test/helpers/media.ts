/** Helpers for integration tests: the bundled ffmpeg/ffprobe, clip generation, and the real CLI. */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const require = createRequire(import.meta.url);
export const FFMPEG: string = require('@ffmpeg-installer/ffmpeg').path;
export const FFPROBE: string = require('@ffprobe-installer/ffprobe').path;
export const ROOT = join(import.meta.dirname, '..', '..');
export const CLI = join(ROOT, 'dist', 'cli.js');
export const PHOTO = join(ROOT, 'test', 'fixtures', 'photos', 'large-chelsea.png');

const run = promisify(execFile);

export async function ffmpeg(args: string[]): Promise<void> {
  await run(FFMPEG, ['-hide_banner', '-loglevel', 'error', '-y', ...args], { maxBuffer: 64 << 20 });
}

export async function ffprobeJson(file: string, extra: string[] = []): Promise<any> {
  const { stdout } = await run(FFPROBE, ['-v', 'error', '-of', 'json', ...extra, file], { maxBuffer: 256 << 20 });
  return JSON.parse(stdout);
}

/** Presentation timestamps (seconds) of a stream's packets, in presentation order. */
export async function packetTimes(file: string, stream = 'v:0'): Promise<number[]> {
  const j = await ffprobeJson(file, ['-select_streams', stream, '-show_entries', 'packet=pts_time']);
  return (j.packets as { pts_time: string }[]).map((p) => Number(p.pts_time)).sort((a, b) => a - b);
}

/** md5 of a stream's packets, copied without decoding: equal means byte-identical. */
export async function streamMd5(file: string, map: string): Promise<string> {
  const { stdout } = await run(FFMPEG, ['-hide_banner', '-loglevel', 'error', '-i', file, '-map', map, '-c', 'copy', '-f', 'md5', '-']);
  return stdout.trim();
}

/** Decodes frames to RGB24 the way esrvid's decoder does (given matrix and range). */
export async function decodeRgb(file: string, opts: { matrix?: string; range?: string; frames?: number; noautorotate?: boolean } = {}): Promise<Buffer> {
  const vf = opts.matrix ? `scale=in_color_matrix=${opts.matrix}:in_range=${opts.range ?? 'tv'}:flags=bicubic+accurate_rnd+full_chroma_int,format=rgb24` : 'format=rgb24';
  const { stdout } = await run(FFMPEG, ['-hide_banner', '-loglevel', 'error', ...(opts.noautorotate ? ['-noautorotate'] : []), '-i', file,
    ...(opts.frames ? ['-frames:v', String(opts.frames)] : []), '-vf', vf, '-vsync', 'passthrough', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'],
  { encoding: 'buffer', maxBuffer: 1 << 30 });
  return stdout;
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: opts.cwd ?? ROOT, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 300_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

export function tempDir(prefix = 'esrvid-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
