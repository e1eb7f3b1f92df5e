/**
 * Bad input never leaves a mess: each case below runs the real CLI and must end with the
 * documented exit code, exactly one line on stderr and no stack trace, no output file, no
 * temporary file beside it, no ffmpeg left running, and the input untouched.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pullModel } from '../../src/models/pull.js';
import { manifestPath, onnxPath } from '../../src/models/store.js';
import { ffmpeg, PHOTO, runCli, tempDir } from '../helpers/media.js';

const MODEL = 'realesr-animevideov3-x4';
const { dir, cleanup } = tempDir();
afterAll(cleanup);
const p = (name: string) => join(dir, name);
const md5 = (f: string) => createHash('md5').update(readFileSync(f)).digest('hex');

beforeAll(async () => {
  await pullModel(MODEL);
  await ffmpeg(['-f', 'lavfi', '-i', 'testsrc2=size=64x36:rate=24', '-f', 'lavfi', '-i', 'sine=sample_rate=48000', '-t', '1', '-c:v', 'libx264', '-c:a', 'aac', p('good.mp4')]);
  await ffmpeg(['-f', 'lavfi', '-i', 'sine=sample_rate=48000', '-t', '1', '-c:a', 'aac', p('audio-only.m4a')]);
  await ffmpeg(['-f', 'lavfi', '-i', 'color=c=gray:size=4200x64:rate=1', '-frames:v', '1', '-c:v', 'libx264', p('too-wide.mp4')]);
  writeFileSync(p('empty.mp4'), '');
  writeFileSync(p('text.mp4'), 'this is not a video\n'.repeat(50));
  const good = readFileSync(p('good.mp4'));
  writeFileSync(p('truncated.mp4'), good.subarray(0, Math.floor(good.length / 3))); // faststart off: moov is at the end
  mkdirSync(p('a-folder.mp4'));
  writeFileSync(p('exists.mp4'), 'keep me');
  // A models folder holding a damaged copy of the model.
  mkdirSync(p('models'));
  copyFileSync(manifestPath(MODEL), join(p('models'), `${MODEL}.manifest.json`));
  const onnx = readFileSync(onnxPath(MODEL));
  onnx[onnx.length - 100] ^= 0xff;
  writeFileSync(join(p('models'), `${MODEL}.onnx`), onnx);
  copyFileSync(onnxPath(MODEL, 'fp16'), join(p('models'), `${MODEL}.fp16.onnx`));
});

interface Case {
  name: string;
  args: () => string[];
  code: number;
  message: RegExp;
  env?: Record<string, string>;
  /** Output path that must not exist afterwards (default out-<n>.mp4 in the temp dir). */
  keepOutput?: boolean;
}

const out = (name: string) => p(`out-${name.replace(/\W+/g, '-')}.mp4`);
const cases: Case[] = [
  { name: 'missing file', args: () => [p('nope.mp4')], code: 3, message: /input .*nope\.mp4 does not exist/ },
  { name: 'a directory', args: () => [p('a-folder.mp4')], code: 3, message: /is a directory/ },
  { name: 'an empty file', args: () => [p('empty.mp4')], code: 3, message: /is empty \(0 bytes\)/ },
  { name: 'a text file named .mp4', args: () => [p('text.mp4')], code: 3, message: /is not a readable video/ },
  { name: 'a truncated MP4 (no moov)', args: () => [p('truncated.mp4')], code: 3, message: /is not a readable video/ },
  { name: 'audio only', args: () => [p('audio-only.m4a')], code: 3, message: /has no video stream \(audio\)/ },
  { name: 'an upscaled size over the encoder limit', args: () => [p('too-wide.mp4')], code: 3, message: /16800x256, larger than the encoders' limit.*--scale/ },
  { name: 'output folder missing', args: () => [p('good.mp4'), p('no/such/dir/out.mp4')], code: 5, message: /output folder .* does not exist/ },
  { name: 'output == input', args: () => [p('good.mp4'), p('good.mp4')], code: 2, message: /the output is the input file/ },
  { name: 'output exists without -y', args: () => [p('good.mp4'), p('exists.mp4')], code: 5, message: /already exists; pass -y/, keepOutput: true },
  { name: 'unknown output format', args: () => [p('good.mp4'), p('out.avi')], code: 2, message: /cannot tell the output format from "\.avi"/ },
  { name: 'unknown model', args: () => [p('good.mp4'), '--model', 'realesrgan-x4plu'], code: 4, message: /unknown model "realesrgan-x4plu"; did you mean "realesrgan-x4plus"/ },
  { name: 'damaged model file', args: () => [p('good.mp4'), '--model', MODEL], env: { ESRVID_MODELS_DIR: p('models') }, code: 4, message: /is damaged \(sha256 .*esrvid models pull realesr-animevideov3-x4 --force/ },
  { name: '--scale 0', args: () => [p('good.mp4'), '--scale', '0'], code: 2, message: /--scale must be a number from 0\.1 to 16, got "0"/ },
  { name: '--batch -1', args: () => [p('good.mp4'), '--batch', '-1'], code: 2, message: /--batch must be a whole number from 1 to 64, got "-1"/ },
  { name: '--start after --end', args: () => [p('good.mp4'), '--start', '5', '--end', '2'], code: 2, message: /--end \(2\) must be after --start \(5\)/ },
  { name: 'an unknown option', args: () => [p('good.mp4'), '--sclae', '2'], code: 2, message: /unknown option '--sclae'/ },
];

describe('bad input: one line, documented exit code, nothing left behind', () => {
  it.each(cases)('$name', async (c) => {
    const before = existsSync(p('good.mp4')) ? md5(p('good.mp4')) : '';
    const args = c.args();
    const target = args.length >= 2 && !args[1]!.startsWith('-') ? args[1]! : out(c.name);
    const full = args.length >= 2 && !args[1]!.startsWith('-') ? args : [args[0]!, target, ...args.slice(1)];
    // A small model unless the case is about the model itself.
    const r = await runCli(full.includes('--model') ? full : [...full, '--model', MODEL], { env: c.env });
    expect(r.code, r.stderr).toBe(c.code);
    const lines = r.stderr.trim().split('\n');
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/^esrvid: /);
    expect(lines[0]).toMatch(c.message);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    if (!c.keepOutput && target !== p('good.mp4')) expect(existsSync(target)).toBe(false);
    if (c.keepOutput) expect(readFileSync(target, 'utf8')).toBe('keep me');
    expect(readdirSync(dir).filter((f) => f.includes('.esrvid-'))).toEqual([]);
    expect(md5(p('good.mp4'))).toBe(before);
    // No ffmpeg left working on this output.
    let live = '';
    try {
      live = execFileSync('pgrep', ['-af', target], { encoding: 'utf8' });
    } catch {
      /* pgrep exits 1 when nothing matches */
    }
    expect(live.split('\n').filter((l) => l.includes('ffmpeg'))).toEqual([]);
  });

  it('a still image is upscaled as a one-frame video', async () => {
    const target = p('still.mkv');
    const r = await runCli([PHOTO, target, '--model', MODEL, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const done = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    expect(done.frames).toBe(1);
  });
});
