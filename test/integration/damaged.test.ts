/**
 * A file with damaged frames in the middle: esrvid decodes what can be decoded, says how many
 * frames are missing, and keeps every other frame at its own timestamp so the sound (copied
 * byte for byte) stays in sync. Never a silent drop that shifts what follows.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pullModel } from '../../src/models/pull.js';
import { ffmpeg, ffprobeJson, packetTimes, PHOTO, runCli, streamMd5, tempDir } from '../helpers/media.js';

const MODEL = 'realesr-animevideov3-x4';
const { dir, cleanup } = tempDir();
afterAll(cleanup);
const clean = join(dir, 'clean.mkv');
const damaged = join(dir, 'damaged.mkv');

beforeAll(async () => {
  await pullModel(MODEL);
  // Grain makes real-sized packets; a keyframe every 12 frames.
  await ffmpeg(['-loop', '1', '-framerate', '24', '-i', PHOTO, '-f', 'lavfi', '-i', 'sine=sample_rate=48000',
    '-filter_complex', "[0:v]crop=64:36:x='n*2':y=60,noise=alls=30:allf=t,format=yuv420p[v]", '-map', '[v]', '-map', '1:a', '-t', '3',
    '-c:v', 'libx264', '-g', '12', '-c:a', 'aac', clean]);
  // Overwrite the middle of the 3rd keyframe's data (and of the frame after it) with noise.
  const packets = (await ffprobeJson(clean, ['-select_streams', 'v', '-show_entries', 'packet=pos,size,flags'])).packets as { pos: string; size: string; flags: string }[];
  const keys = packets.map((p, i) => (p.flags.startsWith('K') ? i : -1)).filter((i) => i >= 0);
  const bytes = readFileSync(clean);
  let seed = 7;
  for (const i of [keys[2]!, keys[2]! + 1]) {
    const p = packets[i]!;
    for (let k = Number(p.pos) + 8; k < Number(p.pos) + Number(p.size) - 4; k++) bytes[k] = (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
  }
  writeFileSync(damaged, bytes);
});

describe('damaged frames in the middle', () => {
  it('decodes what it can, reports the missing frames, keeps timestamps and audio', async () => {
    const out = join(dir, 'out.mkv');
    const r = await runCli([damaged, out, '--model', MODEL, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    const warning = events.find((e) => e.type === 'warning' && /^damaged input/.test(e.message));
    expect(warning, 'a damaged-input warning').toBeDefined();
    const done = events.at(-1);

    const listed = await packetTimes(damaged);
    const outTimes = await packetTimes(out);
    expect(listed).toHaveLength(72);
    expect(done.frames).toBe(outTimes.length);
    expect(done.damagedFrames).toBe(Math.max(0, listed.length - outTimes.length));
    console.log(`damaged clip: ${outTimes.length} of ${listed.length} frames decoded; warning: ${warning.message}`);
    // Time only moves forward, and from the next keyframe after the damage (frame 36) every
    // frame sits exactly where the source put it: nothing after the damage moved.
    outTimes.slice(1).forEach((t, i) => expect(t).toBeGreaterThan(outTimes[i]!));
    for (const t of listed.slice(36)) expect(outTimes.some((o) => Math.abs(o - t) < 0.0011), `source frame at ${t}`).toBe(true); // 1 ms, as Matroska stores it
    expect(outTimes.filter((o) => o >= listed[36]! - 0.0005)).toHaveLength(listed.length - 36);
    expect(await streamMd5(out, '0:a:0')).toBe(await streamMd5(damaged, '0:a:0'));
  });
});
