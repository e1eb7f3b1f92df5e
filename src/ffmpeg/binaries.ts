/**
 * Finds the ffmpeg and ffprobe executables: an explicit path (--ffmpeg / ESRVID_FFMPEG,
 * --ffprobe / ESRVID_FFPROBE) wins, else the static builds installed with esrvid. The major
 * version matters because option names changed (-vsync in 4.x, -fps_mode from 5.1).
 */
import { execFile } from 'node:child_process';
import { accessSync, chmodSync, constants, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import { UsageError } from '../errors.js';

const require = createRequire(import.meta.url);

export interface Binary {
  path: string;
  /** First line of `-version`. */
  version: string;
  major: number;
}

export interface FfmpegTools {
  ffmpeg: Binary;
  ffprobe: Binary;
}

function bundledPath(pkg: '@ffmpeg-installer/ffmpeg' | '@ffprobe-installer/ffprobe'): string | undefined {
  try {
    return (require(pkg) as { path: string }).path;
  } catch {
    return undefined;
  }
}

function ensureExecutable(path: string): void {
  try {
    accessSync(path, constants.X_OK);
  } catch {
    // npm >= 11 skips dependencies' install scripts unless allowed; the installers' only script
    // is this chmod, so do it here rather than fail.
    try {
      chmodSync(path, 0o755);
    } catch {
      /* reported below by the version probe */
    }
  }
}

async function describe(path: string, name: string): Promise<Binary> {
  if (!existsSync(path)) throw new UsageError(`${name} not found at ${path}`, `pass a working binary with --${name} or ESRVID_${name.toUpperCase()}`);
  ensureExecutable(path);
  try {
    const { stdout } = await promisify(execFile)(path, ['-hide_banner', '-version'], { timeout: 15_000 });
    const version = stdout.split('\n')[0]?.trim() ?? '';
    // Release builds say "ffmpeg version 6.1.1"; git snapshots like the bundled 2018 build say N-47683.
    const m = /version (?:n)?(\d+)\.(\d+)/.exec(version);
    const major = m ? Number(m[1]) : /version N-4\d{4}/.test(version) ? 4 : 99;
    return { path, version, major };
  } catch (err) {
    throw new UsageError(`${name} at ${path} does not run (${(err as Error).message.split('\n')[0]})`, `pass a working binary with --${name} or ESRVID_${name.toUpperCase()}`);
  }
}

let cached: Promise<FfmpegTools> | undefined;
let cachedKey = '';

export function findFfmpeg(opts: { ffmpeg?: string; ffprobe?: string } = {}): Promise<FfmpegTools> {
  const ffmpegPath = opts.ffmpeg ?? process.env.ESRVID_FFMPEG ?? bundledPath('@ffmpeg-installer/ffmpeg');
  const ffprobePath = opts.ffprobe ?? process.env.ESRVID_FFPROBE ?? bundledPath('@ffprobe-installer/ffprobe');
  if (!ffmpegPath) return Promise.reject(new UsageError('no ffmpeg found', 'install esrvid with npm ci, or pass --ffmpeg'));
  if (!ffprobePath) return Promise.reject(new UsageError('no ffprobe found', 'install esrvid with npm ci, or pass --ffprobe'));
  const key = `${ffmpegPath}\0${ffprobePath}`;
  if (!cached || key !== cachedKey) {
    cachedKey = key;
    cached = Promise.all([describe(ffmpegPath, "ffmpeg"), describe(ffprobePath, 'ffprobe')]).then(([ffmpeg, ffprobe]) => ({ ffmpeg, ffprobe }));
    cached.catch(() => (cached = undefined));
  }
  return cached;
}

/** ffmpeg's option for "keep every frame with its own timestamp". */
export function passthroughTiming(ffmpeg: Binary): string[] {
  return ffmpeg.major >= 5 ? ['-fps_mode', 'passthrough'] : ['-vsync', 'passthrough'];
}
