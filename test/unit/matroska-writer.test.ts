import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import ffmpeg from '@ffmpeg-installer/ffmpeg';
import ffprobe from '@ffprobe-installer/ffprobe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MatroskaRawWriter } from '../../src/encode/matroska-writer.js';

const run = promisify(execFile);
const W = 16;
const H = 8;

/** A frame whose every byte differs from the same byte in the other frames. */
function makeFrame(index: number): Uint8Array {
  const f = new Uint8Array(W * H * 3);
  for (let j = 0; j < f.length; j++) f[j] = (j * 7 + index * 37 + 11) & 0xff;
  return f;
}

function stream(ptsList: readonly number[], defaultDurationUs?: number) {
  const writer = new MatroskaRawWriter({ width: W, height: H, defaultDurationUs });
  const frames = ptsList.map((_, i) => makeFrame(i));
  const parts: Uint8Array[] = [writer.header()];
  frames.forEach((f, i) => parts.push(...writer.frame(f, ptsList[i]!)));
  return { parts, frames, bytes: Buffer.concat(parts) };
}

async function runBin(bin: string, args: string[]): Promise<Buffer> {
  const { stdout } = await run(bin, args, { encoding: 'buffer', maxBuffer: 64 << 20 });
  return stdout;
}

async function probeJson(args: string[]): Promise<any> {
  return JSON.parse((await runBin(ffprobe.path, ['-v', 'error', '-of', 'json', ...args])).toString('utf8'));
}

/** Parses `-f framemd5` output lines "stream, dts, pts, duration, size, hash" into pts. */
function framemd5Pts(text: string): number[] {
  return text
    .split('\n')
    .filter((l) => /^\d+,/.test(l))
    .map((l) => Number(l.split(',')[2]!.trim()));
}

/** Pipes `parts` into ffmpeg's stdin, honouring backpressure as the real pipeline must. */
function pipeThroughFfmpeg(parts: Uint8Array[], args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(ffmpeg.path, ['-v', 'error', '-f', 'matroska', '-i', 'pipe:0', ...args], {
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`ffmpeg exited ${code}: ${stderr}`))));
    child.stdin.on('error', reject);
    void (async () => {
      for (const p of parts) {
        if (!child.stdin.write(p)) await new Promise((r) => child.stdin.once('drain', r));
      }
      child.stdin.end();
    })();
  });
}

const CASES = [
  { name: 'starting at 0', pts: [0, 41708, 83417, 200000, 241708, 1000000] },
  { name: 'starting at 1.4 s', pts: [1400000, 1441708, 1483417, 1600000, 1641708, 2400000] },
] as const;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'esrvid-mkv-'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('MatroskaRawWriter: layout', () => {
  it('returns the caller’s frame buffer untouched, after a small header', () => {
    const w = new MatroskaRawWriter({ width: W, height: H });
    const rgb = makeFrame(0);
    const parts = w.frame(rgb, 0);
    expect(parts).toHaveLength(2);
    expect(parts[1]).toBe(rgb);
    expect(parts[0]!.byteLength).toBeLessThan(64);
  });

  it('writes the EBML magic, the codec id and the RGB24 FourCC', () => {
    const h = new MatroskaRawWriter({ width: W, height: H }).header();
    expect(h.subarray(0, 4)).toEqual(Buffer.from([0x1a, 0x45, 0xdf, 0xa3]));
    expect(h.includes(Buffer.from('V_UNCOMPRESSED'))).toBe(true);
    expect(h.includes(Buffer.from([0x2e, 0xb5, 0x24, 0x01, 0, 0, 0, 0, 0, 0, 4, 0x52, 0x47, 0x42, 24]))).toBe(true);
  });
});

describe('MatroskaRawWriter: I420 frames', () => {
  it('tags them I420 and takes frames of 1.5 bytes a pixel; odd sizes are refused', () => {
    const w = new MatroskaRawWriter({ width: W, height: H, format: 'yuv420p' });
    expect(w.header().includes(Buffer.from([0x2e, 0xb5, 0x24, 0x01, 0, 0, 0, 0, 0, 0, 4, 0x49, 0x34, 0x32, 0x30]))).toBe(true);
    expect(w.frameBytes).toBe(W * H * 1.5);
    expect(() => w.frame(new Uint8Array(W * H * 3), 0)).toThrow(/384 bytes, expected 192 \(16x8 I420\)/);
    expect(() => new MatroskaRawWriter({ width: 15, height: 8, format: 'yuv420p' })).toThrow(/even width and height/);
  });

  it('ffmpeg reads them back as yuv420p, plane for plane', async () => {
    const w = new MatroskaRawWriter({ width: W, height: H, format: 'yuv420p' });
    const frames = [0, 1, 2].map((i) => makeFrame(i).subarray(0, W * H * 1.5));
    const parts = [w.header(), ...frames.flatMap((f, i) => w.frame(f, i * 40_000))];
    const file = join(dir, 'i420.nut');
    await pipeThroughFfmpeg(parts, ['-c:v', 'rawvideo', '-f', 'nut', '-y', file]);
    const probe = await probeJson(['-show_streams', file]);
    expect(probe.streams[0].pix_fmt).toBe('yuv420p');
    const decoded = await runBin(ffmpeg.path, ['-v', 'error', '-i', file, '-f', 'rawvideo', '-pix_fmt', 'yuv420p', '-']);
    expect(decoded.equals(Buffer.concat(frames))).toBe(true);
  });
});

describe('MatroskaRawWriter: validation', () => {
  it('rejects bad track dimensions and durations', () => {
    expect(() => new MatroskaRawWriter({ width: 0, height: 8 })).toThrow(/width must be a positive integer/);
    expect(() => new MatroskaRawWriter({ width: 16, height: 2.5 })).toThrow(/height must be a positive integer/);
    expect(() => new MatroskaRawWriter({ width: 16, height: 8, defaultDurationUs: 0 })).toThrow(/defaultDurationUs/);
    expect(() => new MatroskaRawWriter({ width: 16, height: 8, defaultDurationUs: NaN })).toThrow(/defaultDurationUs/);
  });

  it('rejects frames of the wrong size', () => {
    const w = new MatroskaRawWriter({ width: W, height: H });
    expect(() => w.frame(new Uint8Array(W * H * 3 - 1), 0)).toThrow(/383 bytes, expected 384 \(16x8 RGB24\)/);
    expect(() => w.frame(new Uint8Array(W * H * 4), 0)).toThrow(/expected 384/);
  });

  it('rejects non-integer, negative and decreasing timestamps, but allows repeats', () => {
    const w = new MatroskaRawWriter({ width: W, height: H });
    const f = makeFrame(0);
    expect(() => w.frame(f, 1.5)).toThrow(/non-negative integer/);
    expect(() => w.frame(f, NaN)).toThrow(/non-negative integer/);
    expect(() => w.frame(f, -1)).toThrow(/non-negative integer/);
    expect(() => w.frame(f, 2 ** 53)).toThrow(/non-negative integer/);
    w.frame(f, 1000);
    expect(() => w.frame(f, 999)).toThrow(/pts 999 µs is before the previous frame's 1000 µs/);
    expect(() => w.frame(f, 1000)).not.toThrow();
    expect(() => w.frame(f, 1001)).not.toThrow();
  });
});

describe.each(CASES)('MatroskaRawWriter read back by the bundled ffmpeg/ffprobe ($name)', ({ pts }) => {
  let file: string;
  let frames: Uint8Array[];
  let parts: Uint8Array[];
  beforeAll(async () => {
    ({ frames, parts } = stream(pts, 41708.33));
    file = join(dir, `in-${pts[0]}.mkv`);
    await writeFile(file, Buffer.concat(parts));
  });

  it('ffprobe sees rawvideo rgb24 at the written size', async () => {
    const { streams } = await probeJson(['-show_entries', 'stream=codec_name,pix_fmt,width,height,time_base', file]);
    expect(streams).toEqual([
      { codec_name: 'rawvideo', pix_fmt: 'rgb24', width: W, height: H, time_base: '1/1000000' },
    ]);
  });

  it('ffprobe sees exactly the written timestamps', async () => {
    const { packets } = await probeJson(['-show_entries', 'packet=pts', file]);
    expect(packets.map((p: { pts: number }) => p.pts)).toEqual([...pts]);
    const { frames: probed } = await probeJson(['-show_entries', 'frame=pts_time', file]);
    const times = probed.map((f: { pts_time: string }) => Number(f.pts_time));
    expect(times).toHaveLength(pts.length);
    times.forEach((t: number, i: number) => expect(Math.abs(t * 1e6 - pts[i]!)).toBeLessThan(1));
  });

  it('ffmpeg 4.1 decodes exactly the written bytes and timestamps', async () => {
    const raw = await runBin(ffmpeg.path, [
      '-v', 'error', '-f', 'matroska', '-i', file,
      '-vsync', 'passthrough', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-',
    ]);
    expect(raw.length).toBe(frames.length * W * H * 3);
    frames.forEach((f, i) => expect(raw.subarray(i * f.length, (i + 1) * f.length).equals(f), `frame ${i}`).toBe(true));

    // framemd5 prints pts in the encoder's time base; matching it to the demuxer's 1 µs one makes
    // this a check of 4.1's own reading, not just the newer ffprobe's.
    const md5 = await runBin(ffmpeg.path, [
      '-v', 'error', '-f', 'matroska', '-i', file,
      '-vsync', 'passthrough', '-copyts', '-enc_time_base', '-1', '-f', 'framemd5', '-',
    ]);
    expect(framemd5Pts(md5.toString('utf8'))).toEqual([...pts]);
  });

  it('ffmpeg 4.1 encodes from stdin keeping each frame’s timestamp and pixels', async () => {
    const out = join(dir, `out-${pts[0]}.mkv`);
    await pipeThroughFfmpeg(parts, [
      '-c:v', 'libx264rgb', '-qp', '0',
      // Without -enc_time_base, 4.1 encodes in 1/frame-rate ticks and snaps VFR pts to that grid;
      // without -copyts it shifts the first pts to 0.
      '-vsync', 'passthrough', '-copyts', '-enc_time_base', '-1',
      '-y', out,
    ]);
    const { frames: probed } = await probeJson(['-show_entries', 'frame=pts_time', out]);
    const times = probed.map((f: { pts_time: string }) => Number(f.pts_time));
    expect(times).toHaveLength(pts.length);
    // Matroska output stores milliseconds.
    times.forEach((t: number, i: number) => expect(Math.abs(t * 1e6 - pts[i]!), `frame ${i}`).toBeLessThanOrEqual(1000));

    // qp 0 with libx264rgb is lossless, so the pixels must survive the round trip too.
    const raw = await runBin(ffmpeg.path, ['-v', 'error', '-i', out, '-vsync', 'passthrough', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-']);
    expect(raw.equals(Buffer.concat(frames))).toBe(true);
  });
});
