/**
 * HDR10 sources keep their mastering display and content light level: read from the first
 * frame, written back by libx265 into every segment, through the join; other encoders warn that
 * they drop it. SDR sources cost no extra probe. Real ffmpeg, real weights.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findFfmpeg } from '../../src/ffmpeg/binaries.js';
import { probe } from '../../src/ffmpeg/probe.js';
import { pullModel } from '../../src/models/pull.js';
import { FFPROBE, ffmpeg, runCli, tempDir } from '../helpers/media.js';

const MODEL = 'realesr-animevideov3-x4';
const MASTER = 'G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,50)';
const { dir, cleanup } = tempDir();
afterAll(cleanup);
const hdrSrc = join(dir, 'hdr.mkv');
const sdrSrc = join(dir, 'sdr.mkv');

beforeAll(async () => {
  await pullModel(MODEL);
  await Promise.all([
    ffmpeg(['-f', 'lavfi', '-i', 'testsrc2=s=64x48:r=24:d=1', '-pix_fmt', 'yuv420p10le', '-c:v', 'libx265', '-x265-params',
      `log-level=error:keyint=12:master-display=${MASTER}:max-cll=1000,400:colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc`,
      '-color_primaries', 'bt2020', '-color_trc', 'smpte2084', '-colorspace', 'bt2020nc', hdrSrc]),
    ffmpeg(['-f', 'lavfi', '-i', 'testsrc2=s=48x32:r=24:d=0.25', '-pix_fmt', 'yuv420p', '-c:v', 'libx264', '-colorspace', 'bt709', '-color_primaries', 'bt709', '-color_trc', 'bt709', sdrSrc]),
  ]);
});

/** The side data of the first frame of a file's video and of its frame at `at` seconds. */
async function sideData(file: string, at = 0): Promise<Record<string, unknown>[]> {
  const { stdout } = await promisify(execFile)(FFPROBE, ['-v', 'error', '-select_streams', 'V:0', '-read_intervals', `${at}%+#1`,
    '-show_frames', '-show_entries', 'frame=side_data_list,pts_time', '-of', 'json', file]);
  return (JSON.parse(stdout).frames[0]?.side_data_list ?? []) as Record<string, unknown>[];
}
const hdrOnly = (list: Record<string, unknown>[]) => list.filter((d) => /Mastering display|Content light level/.test(String(d.side_data_type)));

describe('HDR10 metadata', () => {
  it('is probed from HDR sources only', async () => {
    const { ffprobe } = await findFfmpeg();
    expect((await probe(ffprobe, hdrSrc)).video.hdr).toEqual({ masterDisplay: MASTER, maxCll: '1000,400' });
    expect((await probe(ffprobe, sdrSrc)).video.hdr).toBeUndefined();
  });

  it('libx265 writes the source\'s mastering display and light level into the output, in every segment', async () => {
    const out = join(dir, 'hdr-x265.mkv');
    // Segments of 0.5 s: the second segment's first frame must carry the metadata too.
    const r = await runCli([hdrSrc, out, '--model', MODEL, '--device', 'cpu', '--codec', 'libx265', '--segment-seconds', '0.5', '--json', '-y']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(/HDR10 metadata/);
    const source = hdrOnly(await sideData(hdrSrc));
    expect(source).toHaveLength(2);
    expect(hdrOnly(await sideData(out))).toEqual(source);
    expect(hdrOnly(await sideData(out, 0.5))).toEqual(source);
    const v = JSON.parse((await promisify(execFile)(FFPROBE, ['-v', 'error', '-select_streams', 'V:0', '-show_streams', '-of', 'json', out])).stdout).streams[0];
    expect([v.codec_name, v.pix_fmt, v.color_transfer, v.color_primaries, v.color_space]).toEqual(['hevc', 'yuv420p10le', 'smpte2084', 'bt2020', 'bt2020nc']);
  });

  it('another encoder warns that it drops the metadata (one line that says what to do)', async () => {
    const out = join(dir, 'hdr-x264.mkv');
    const r = await runCli([hdrSrc, out, '--model', MODEL, '--device', 'cpu', '--json', '-y']);
    expect(r.code, r.stderr).toBe(0);
    const warnings = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((e) => e.type === 'warning').map((e) => e.message);
    expect(warnings).toContain('the source\'s HDR10 metadata (mastering display, content light level) is written only by libx265: this output (libx264) will not carry it; use --codec libx265 to keep it');
    expect(hdrOnly(await sideData(out))).toEqual([]);
  });
});
