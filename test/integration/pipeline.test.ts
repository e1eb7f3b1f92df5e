/**
 * The main job end to end, with the real ffmpeg, the real ONNX Runtime and a real converted
 * Real-ESRGAN model, on clips made at test time from a real photograph.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nativeKernel } from '../../src/infer/native-cpu.js';
import { pullModel } from '../../src/models/pull.js';
import { onnxPath } from '../../src/models/store.js';
import { psnr } from '../helpers/image.js';
import { decodeRgb, ffmpeg, ffprobeJson, packetTimes, PHOTO, runCli, streamMd5, tempDir } from '../helpers/media.js';

const MODEL = 'realesr-animevideov3-x4';
const { dir, cleanup } = tempDir();
afterAll(cleanup);

/** Irregular frame times (seconds): a variable-frame-rate clip of 20 frames. */
const VFR_TIMES = [0, 0.04, 0.08, 0.125, 0.3, 0.34, 0.38, 0.5, 0.533, 0.566, 0.6, 0.9, 0.94, 0.98, 1.02, 1.2, 1.3, 1.34, 1.38, 1.5];

async function makeSources() {
  const srt = join(dir, 'subs.srt');
  writeFileSync(srt, '1\n00:00:00,100 --> 00:00:00,800\nfirst line\n\n2\n00:00:01,000 --> 00:00:01,400\nsecond line\n');
  const meta = join(dir, 'chapters.txt');
  writeFileSync(meta, ';FFMETADATA1\ntitle=esrvid test clip\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=700\ntitle=One\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=700\nEND=1500\ntitle=Two\n');
  // setpts places frame N at VFR_TIMES[N] (a chain of if()s over N).
  const expr = VFR_TIMES.map((t, n) => `if(eq(N,${n}),${t}/TB,`).join('') + 'N/TB' + ')'.repeat(VFR_TIMES.length);
  await ffmpeg([
    '-loop', '1', '-framerate', '25', '-i', PHOTO,
    '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
    '-f', 'lavfi', '-i', 'sine=frequency=660:sample_rate=44100',
    '-i', srt, '-f', 'ffmetadata', '-i', meta,
    '-filter_complex', `[0:v]crop=48:32:x='n*6':y=60,setpts='${expr}',format=yuv420p[v]`,
    '-map', '[v]', '-map', '1:a', '-map', '2:a', '-map', '3:s', '-map_metadata', '4', '-map_chapters', '4',
    // Only -t ends the clip: -frames:v would stop the muxer before most audio packets are written.
    '-t', '1.6', '-vsync', 'passthrough',
    '-c:v', 'libx264', '-crf', '10', '-colorspace', 'bt709', '-color_primaries', 'bt709', '-color_trc', 'bt709', '-color_range', 'tv',
    '-c:a:0', 'aac', '-c:a:1', 'libopus', '-c:s', 'srt', '-metadata:s:a:1', 'language=fra',
    join(dir, 'vfr.mkv'),
  ]);
  await ffmpeg([
    '-loop', '1', '-framerate', '24', '-i', PHOTO,
    '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
    '-i', srt, '-f', 'ffmetadata', '-i', meta,
    '-filter_complex', "[0:v]crop=48:32:x='n*4':y=50,format=yuv420p[v]",
    '-map', '[v]', '-map', '1:a', '-map', '2:s', '-map_metadata', '3', '-map_chapters', '3', '-t', '0.5',
    '-c:v', 'libx264', '-crf', '10', '-colorspace', 'bt709', '-color_primaries', 'bt709', '-color_trc', 'bt709', '-color_range', 'tv',
    '-c:a', 'aac', '-c:s', 'mov_text',
    join(dir, 'upright.mp4'),
  ]);
  // ffmpeg writes a rotation tag only when remuxing.
  await ffmpeg(['-i', join(dir, 'upright.mp4'), '-map', '0', '-c', 'copy', '-metadata:s:v:0', 'rotate=90', join(dir, 'rotated.mp4')]);
}

beforeAll(async () => {
  await Promise.all([makeSources(), pullModel(MODEL)]);
});

describe('esrvid in out: nothing of the source lost', () => {
  it('VFR Matroska with two audio tracks, subtitles and chapters, lossless output', async () => {
    const src = join(dir, 'vfr.mkv');
    const out = join(dir, 'vfr-x4.mkv');
    const r = await runCli([src, out, '--model', MODEL, '--codec', 'ffv1', '--pix-fmt', 'bgr0', '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);

    // --json: one event per line, start first, done last with the output's frame count.
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(events[0].type).toBe('start');
    expect(events.at(-1).type).toBe('done');
    expect(events.some((e) => e.type === 'warning' && /variable frame rate/.test(e.message))).toBe(true);

    const [inTimes, outTimes] = await Promise.all([packetTimes(src), packetTimes(out)]);
    expect(inTimes.length).toBe(VFR_TIMES.length);
    expect(outTimes.length).toBe(inTimes.length);
    expect(events.at(-1).frames).toBe(outTimes.length);
    outTimes.forEach((t, i) => expect(Math.abs(t - inTimes[i]!), `frame ${i}`).toBeLessThanOrEqual(0.001));

    const probeIn = await ffprobeJson(src, ['-show_streams', '-show_chapters']);
    const probeOut = await ffprobeJson(out, ['-show_streams', '-show_chapters']);
    const v = probeOut.streams.find((s: any) => s.codec_type === 'video');
    expect([v.width, v.height]).toEqual([48 * 4, 32 * 4]);
    const kinds = (p: any, t: string) => p.streams.filter((s: any) => s.codec_type === t).length;
    expect(kinds(probeOut, 'audio')).toBe(2);
    expect(kinds(probeOut, 'subtitle')).toBe(kinds(probeIn, 'subtitle'));
    expect(probeOut.chapters.map((c: any) => [c.start_time, c.tags?.title])).toEqual(probeIn.chapters.map((c: any) => [c.start_time, c.tags?.title]));
    expect(probeOut.streams.find((s: any) => s.codec_name === 'opus').tags.language).toBe('fra');

    // 1.6 s of 48 kHz AAC is 75 packets: the fixture really has its audio.
    expect((await packetTimes(src, 'a:0')).length).toBeGreaterThan(70);
    expect((await packetTimes(out, 'a:0')).length).toBe((await packetTimes(src, 'a:0')).length);
    for (const map of ['0:a:0', '0:a:1', '0:s:0']) {
      expect(await streamMd5(out, map), map).toBe(await streamMd5(src, map));
    }

    // Every output frame equals the model's output on the decoded source frame.
    const session = await ort.InferenceSession.create(onnxPath(MODEL), { intraOpNumThreads: 2 });
    const inRgb = await decodeRgb(src, { matrix: 'bt709', range: 'tv' });
    const outRgb = await decodeRgb(out);
    const inBytes = 48 * 32 * 3;
    const outBytes = inBytes * 16;
    expect(outRgb.length).toBe(outBytes * VFR_TIMES.length);
    // Every frame, so a frame from another lane handed over out of order would show.
    for (let k = 0; k < VFR_TIMES.length; k++) {
      const res = await session.run({ frames: new ort.Tensor('uint8', new Uint8Array(inRgb.subarray(k * inBytes, (k + 1) * inBytes)), [1, 32, 48, 3]) });
      const expected = res.upscaled!.data as Uint8Array;
      expect(psnr(outRgb.subarray(k * outBytes, (k + 1) * outBytes), expected).db, `frame ${k}`).toBeGreaterThanOrEqual(45);
    }
    await session.release();
  });

  it.each([
    // Where the fused kernel runs (AVX-512 and a C compiler, as on the build machine), and ONNX Runtime.
    ...(nativeKernel() ? [['native', {}]] as const : []),
    ['onnxruntime', { ESRVID_NATIVE: '0' }],
  ] as const)('lanes (%s): one session and three sessions side by side give the same frames, in order', async (engine, env) => {
    const src = join(dir, 'vfr.mkv');
    const outs = [];
    for (const lanes of [1, 3]) {
      const out = join(dir, `lanes-${lanes}-${engine}.mkv`);
      const r = await runCli([src, out, '--model', MODEL, '--codec', 'ffv1', '--pix-fmt', 'bgr0', '--json', '--device', 'cpu', '--threads', String(lanes), '--lanes', String(lanes)], { env });
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout.split('\n')[0]!)).toMatchObject({ type: 'start', lanes, engine });
      outs.push(await decodeRgb(out));
    }
    expect(outs[0]!.length).toBe(48 * 32 * 3 * 16 * VFR_TIMES.length);
    expect(Buffer.compare(outs[0]!, outs[1]!)).toBe(0);
  });

  it('VFR source to MP4: every frame decodable, timestamps within 1 ms', async () => {
    const src = join(dir, 'vfr.mkv');
    const out = join(dir, 'vfr-x4.mp4');
    const r = await runCli([src, out, '--model', MODEL, '-q']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const decoded = await ffprobeJson(out, ['-count_frames', '-select_streams', 'v:0', '-show_entries', 'stream=nb_read_frames']);
    expect(Number(decoded.streams[0].nb_read_frames)).toBe(VFR_TIMES.length);
    const [inTimes, outTimes] = await Promise.all([packetTimes(src), packetTimes(out)]);
    expect(outTimes.length).toBe(inTimes.length);
    outTimes.forEach((t, i) => expect(Math.abs(t - inTimes[i]!), `frame ${i}`).toBeLessThanOrEqual(0.001));
    expect(await streamMd5(out, '0:a:0')).toBe(await streamMd5(src, '0:a:0'));
  });

  it('MP4 with rotation, colour tags, mov_text subtitles and chapters keeps them all', async () => {
    const src = join(dir, 'rotated.mp4');
    const out = join(dir, 'rotated-x2.mp4');
    const r = await runCli([src, out, '--model', MODEL, '--scale', '2', '-q']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const pin = await ffprobeJson(src, ['-show_streams', '-show_chapters']);
    const pout = await ffprobeJson(out, ['-show_streams', '-show_chapters', '-show_format']);
    const vin = pin.streams.find((s: any) => s.codec_type === 'video');
    const vout = pout.streams.find((s: any) => s.codec_type === 'video');
    // --scale 2 with a x4 model: the network runs at x4, Lanczos brings it to x2.
    expect([vout.width, vout.height]).toEqual([vin.width * 2, vin.height * 2]);
    expect(Number(vout.nb_frames)).toBe(Number(vin.nb_frames));
    // Decoded (not just stored) frames: an edit list cutting the last frame would show here.
    const decodedFrames = async (f: string) => Number((await ffprobeJson(f, ['-count_frames', '-select_streams', 'v:0', '-show_entries', 'stream=nb_read_frames'])).streams[0].nb_read_frames);
    expect(await decodedFrames(out)).toBe(await decodedFrames(src));
    const rot = (s: any) => s.side_data_list?.find((d: any) => 'rotation' in d)?.rotation ?? Number(s.tags?.rotate ?? 0);
    expect(rot(vin)).not.toBe(0);
    expect(rot(vout)).toBe(rot(vin));
    for (const k of ['color_space', 'color_primaries', 'color_transfer', 'color_range']) expect(vout[k], k).toBe(vin[k]);
    expect(pout.streams.filter((s: any) => s.codec_type === 'subtitle').map((s: any) => s.codec_name)).toEqual(['mov_text']);
    expect(pout.chapters.length).toBe(pin.chapters.length);
    expect(await streamMd5(out, '0:a:0')).toBe(await streamMd5(src, '0:a:0'));
    expect(await packetTimes(out)).toEqual(await packetTimes(src));
  });

  it('MP4 to Matroska: MP4\'s text subtitles become SubRip (they cannot be copied), with a warning; audio byte-identical and in sync', async () => {
    const src = join(dir, 'rotated.mp4');
    const out = join(dir, 'from-mp4.mkv');
    const r = await runCli([src, out, '--model', MODEL, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/"type":"warning","message":"subtitle stream \d+ \(mov_text, MP4's text format\) converted to SubRip/);
    const pout = await ffprobeJson(out, ['-show_streams']);
    expect(pout.streams.filter((s: any) => s.codec_type === 'subtitle').map((s: any) => s.codec_name)).toEqual(['subrip']);
    const asSrt = async (f: string, name: string) => {
      await ffmpeg(['-i', f, '-map', '0:s:0', join(dir, name)]);
      return readFileSync(join(dir, name), 'utf8');
    };
    const [srt, original] = [await asSrt(out, 'out.srt'), await asSrt(src, 'in.srt')];
    // SubRip written from the .mkv counts from the file's start; the video starts at the lead.
    const outVideoStart = Math.round((await packetTimes(out, 'v:0'))[0]! * 1000) - Math.round((await packetTimes(src, 'v:0'))[0]! * 1000);
    const cues = (t: string) => t.trim().split(/\n\n+/).map((c) => c.split('\n'));
    const ms = (time: string) => time.split(/[:,]/).map(Number).reduce((acc, v, i) => acc + v * [3_600_000, 60_000, 1000, 1][i]!, 0);
    expect(cues(srt).length).toBe(cues(original).length);
    cues(srt).forEach((cue, i) => {
      const want = cues(original)[i]!;
      // The words; the style tags FFmpeg writes for mov_text's font differ in nesting.
      const words = (lines: string[]) => lines.slice(2).map((l) => l.replace(/<[^>]+>/g, ''));
      expect(words(cue)).toEqual(words(want));
      expect(words(cue).join('').length).toBeGreaterThan(0);
      // Every stream moved by the same lead (the source's AAC starts 21 ms before its video): cue
      // times against the video's first frame are the source's, to SubRip's millisecond.
      const [a, b] = [cue[1]!.split(' --> ').map(ms), want[1]!.split(' --> ').map(ms)];
      a.forEach((t, k) => expect(Math.abs(t - outVideoStart - b[k]!)).toBeLessThanOrEqual(1));
    });
    // Audio against video as in the source: the first packets' distance, to the millisecond.
    const firstPts = async (f: string, sel: string) => (await packetTimes(f, sel))[0]!;
    const [inV, inA, outV, outA] = [await firstPts(src, 'v:0'), await firstPts(src, 'a:0'), await firstPts(out, 'v:0'), await firstPts(out, 'a:0')];
    expect(inA - inV).toBeLessThan(-0.02);
    expect(Math.abs((outA - outV) - (inA - inV))).toBeLessThanOrEqual(0.001);
    expect(await streamMd5(out, '0:a:0')).toBe(await streamMd5(src, '0:a:0'));
  });
});

describe('10-bit sources', () => {
  it('get 10-bit output by default and a warning about the network\'s 8-bit precision', async () => {
    const src = join(dir, 'ten-bit.mkv');
    await ffmpeg(['-f', 'lavfi', '-i', 'testsrc2=size=48x32:rate=24', '-t', '0.25', '-c:v', 'libx264', '-pix_fmt', 'yuv420p10le', src]);
    const out = join(dir, 'ten-bit-x4.mkv');
    const r = await runCli([src, out, '--model', MODEL, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/the source is 10-bit: the network works on 8-bit RGB/);
    const v = (await ffprobeJson(out, ['-show_streams'])).streams[0];
    expect(v.pix_fmt).toBe('yuv420p10le');
    expect([v.width, v.height]).toEqual([192, 128]);
  });
});

describe('frame ranges', () => {
  it('--start/--end takes exactly the frames shown in [start, end), audio trimmed to them and in sync', async () => {
    const src = join(dir, 'vfr.mkv');
    const out = join(dir, 'range.mkv');
    const r = await runCli([src, out, '--model', MODEL, '--start', '0.3', '--end', '1.0', '-q']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const inTimes = await packetTimes(src);
    const wanted = inTimes.filter((t) => t >= 0.3 && t < 1.0);
    const outTimes = await packetTimes(out);
    expect(outTimes.length).toBe(wanted.length);
    // The output starts at 0: each frame keeps its distance from the range start.
    outTimes.forEach((t, i) => expect(Math.abs(t - (wanted[i]! - 0.3)), `frame ${i}`).toBeLessThanOrEqual(0.001));
    for (const a of ['a:0', 'a:1']) {
      const audio = await packetTimes(out, a);
      // Within one audio frame of the start (Opus may begin a few ms early: its pre-roll).
      expect(Math.abs(audio[0]!), a).toBeLessThan(0.03);
      expect(audio.at(-1)!, a).toBeLessThan(0.7);
      expect(audio.at(-1)!, a).toBeGreaterThan(0.6);
    }
  });

  it('--frames a:b is frame-exact on a variable-frame-rate clip', async () => {
    const src = join(dir, 'vfr.mkv');
    const out = join(dir, 'frames.mp4');
    const r = await runCli([src, out, '--model', MODEL, '--frames', '4:11', '-q']);
    expect(r.code, r.stderr).toBe(0);
    const inTimes = await packetTimes(src);
    const outTimes = await packetTimes(out);
    expect(outTimes.length).toBe(7);
    outTimes.forEach((t, i) => expect(Math.abs(t - (inTimes[4 + i]! - inTimes[4]!)), `frame ${i}`).toBeLessThanOrEqual(0.001));
    const decoded = await ffprobeJson(out, ['-count_frames', '-select_streams', 'v:0', '-show_entries', 'stream=nb_read_frames']);
    expect(Number(decoded.streams[0].nb_read_frames)).toBe(7);
  });

  it('a start beyond the end is refused before any work, with no file written', async () => {
    const out = join(dir, 'late.mp4');
    const r = await runCli([join(dir, 'vfr.mkv'), out, '--model', MODEL, '--start', '10']);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/^esrvid: --start 10\.000 s is beyond the end of the video \(1\.\d+ s\)/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    const { existsSync, readdirSync } = await import('node:fs');
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(dir).filter((f) => f.includes('.esrvid-'))).toEqual([]);
  });
});
