import { describe, expect, it } from 'vitest';
import { decoderArgs } from '../../src/decode/decoder.js';
import { containerFor, planStreams } from '../../src/encode/containers.js';
import { encoderArgs, type EncoderArgsInput } from '../../src/encode/encoder-args.js';
import { rotationRemuxArgs } from '../../src/encode/rotation.js';
import { passthroughTiming, type Binary } from '../../src/ffmpeg/binaries.js';
import { planColour } from '../../src/ffmpeg/colour.js';
import type { VideoStreamInfo } from '../../src/ffmpeg/probe.js';
import { targetSize } from '../../src/pipeline.js';

const ff4: Binary = { path: '/ff', version: 'ffmpeg version N-47683', major: 4 };
const ff6: Binary = { path: '/ff', version: 'ffmpeg version 6.1.1', major: 6 };
const video = (o: Partial<VideoStreamInfo> = {}): VideoStreamInfo => ({
  index: 0, codec: 'h264', width: 640, height: 360, pixFmt: 'yuv420p', bitDepth: 8, timeBase: [1, 12288], rFrameRate: 24,
  avgFrameRate: 24, startTime: 0, duration: 2, frameCount: 48, sampleAspectRatio: undefined, colorSpace: undefined,
  colorTransfer: undefined, colorPrimaries: undefined, colorRange: undefined, rotation: 0, stillImage: false, variableFrameRate: false, ...o,
});
/** The value that follows a flag. */
const after = (args: string[], flag: string) => args[args.indexOf(flag) + 1];

describe('ffmpeg argument builders', () => {
  it('passthrough timing uses the option of the ffmpeg version', () => {
    expect(passthroughTiming(ff4)).toEqual(['-vsync', 'passthrough']);
    expect(passthroughTiming(ff6)).toEqual(['-fps_mode', 'passthrough']);
  });

  it('the decoder reports timestamps in microseconds and converts with the source matrix', () => {
    const colour = planColour(video({ height: 1080, width: 1920 }));
    const args = decoderArgs({ ffmpeg: ff4, input: 'in.mp4', streamIndex: 2, colour, noAutorotate: true, startSeconds: 5 });
    expect(after(args, '-vf')).toBe('settb=1/1000000,showinfo,scale=in_color_matrix=bt709:in_range=tv:flags=bicubic+accurate_rnd+full_chroma_int,format=rgb24');
    expect(after(args, '-map')).toBe('0:2');
    expect(args.indexOf('-noautorotate')).toBeLessThan(args.indexOf('-i'));
    expect(args.indexOf('-ss')).toBeLessThan(args.indexOf('-i')); // fast input seek
    expect(args.slice(-5)).toEqual(['-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1']);
  });

  it('colour: declared matrices are kept; untagged HD is BT.709, untagged SD is BT.601', () => {
    expect(planColour(video({ colorSpace: 'bt709', height: 480 })).matrix).toBe('bt709');
    expect(planColour(video({ height: 1080, width: 1920 }))).toMatchObject({ matrix: 'bt709', assumed: true });
    expect(planColour(video({ height: 480 }))).toMatchObject({ matrix: 'bt601', assumed: true, tags: { colorspace: 'smpte170m' } });
    expect(planColour(video({ pixFmt: 'yuvj420p' })).range).toBe('pc');
  });

  const base = (o: Partial<EncoderArgsInput> = {}): EncoderArgsInput => ({
    ffmpeg: ff4, source: 'in.mkv', output: 'out.tmp', container: 'mp4', frameWidth: 2560, frameHeight: 1440, outWidth: 2560,
    outHeight: 1440, settings: { codec: 'libx264', pixFmt: 'yuv420p', preset: 'slow' }, colour: planColour(video({ colorSpace: 'bt709' })),
    streams: [{ index: 1, type: 'audio', codec: 'copy' }, { index: 3, type: 'subtitle', codec: 'mov_text' }], sourceVideoIndex: 0,
    timeBase: [1, 12288], shiftUs: 0, ...o,
  });

  it('the encoder keeps source timestamps, copies audio, converts subtitles, tags colour, and starts fast', () => {
    const args = encoderArgs(base());
    expect(args.slice(args.indexOf('-f'), args.indexOf('-f') + 4)).toEqual(['-f', 'matroska', '-i', 'pipe:0']);
    expect(after(args, '-c:a:0')).toBe('copy');
    expect(after(args, '-c:s:0')).toBe('mov_text');
    expect(after(args, '-map_metadata:s:a:0')).toBe('1:s:1');
    expect(after(args, '-enc_time_base:v')).toBe('1:12288');
    expect(after(args, '-video_track_timescale')).toBe('12288');
    expect(after(args, '-vsync')).toBe('passthrough');
    expect(args).toContain('-copyts');
    expect(after(args, '-colorspace')).toBe('bt709');
    expect(after(args, '-movflags')).toBe('+faststart');
    expect(after(args, '-crf')).toBe('18');
    expect(after(args, '-preset')).toBe('slow');
    expect(after(args, '-vf')).toBe('scale=out_color_matrix=bt709:out_range=tv:flags=accurate_rnd+full_chroma_int,format=yuv420p');
    expect(args.at(-1)).toBe('out.tmp');
  });

  it('a non-native scale adds a Lanczos resize; RGB output skips the matrix; Matroska has no MP4 flags', () => {
    const args = encoderArgs(base({ container: 'matroska', outWidth: 1280, outHeight: 720, settings: { codec: 'ffv1', pixFmt: 'bgr0' } }));
    expect(after(args, '-vf')).toBe('scale=1280:720:flags=lanczos+accurate_rnd+full_chroma_int,format=bgr0');
    expect(args).not.toContain('-movflags');
    expect(args).not.toContain('-colorspace');
    expect(args).not.toContain('-crf');
  });

  it('the rotation remux is a stream copy that writes the tag', () => {
    const args = rotationRemuxArgs('a.mp4', 'b.mp4', 90, 'mp4');
    expect(after(args, '-c')).toBe('copy');
    expect(after(args, '-metadata:s:v:0')).toBe('rotate=90');
  });

  it('containers: by extension, streams carried or converted as each container allows', () => {
    expect(containerFor('x.MKV')).toBe('matroska');
    expect(() => containerFor('x.avi')).toThrow(/cannot tell the output format from ".avi"/);
    const streams = [
      { index: 1, type: 'audio' as const, codec: 'aac', attachedPic: false },
      { index: 2, type: 'audio' as const, codec: 'flac', attachedPic: false },
      { index: 3, type: 'subtitle' as const, codec: 'subrip', attachedPic: false },
      { index: 4, type: 'subtitle' as const, codec: 'hdmv_pgs_subtitle', attachedPic: false },
      { index: 5, type: 'attachment' as const, codec: 'ttf', attachedPic: false },
    ];
    expect(planStreams('matroska', streams).streams.map((s) => s.codec)).toEqual(['copy', 'copy', 'copy', 'copy', 'copy']);
    const mp4 = planStreams('mp4', streams);
    expect(mp4.streams.map((s) => [s.index, s.codec])).toEqual([[1, 'copy'], [2, 'aac'], [3, 'mov_text']]);
    expect(mp4.warnings.join(' ')).toMatch(/hdmv_pgs_subtitle.*left out/);
    expect(planStreams('webm', streams).streams.map((s) => s.codec)).toEqual(['libopus', 'libopus', 'webvtt']);
  });

  it('target sizes: exact for native scales, nearest even for 4:2:0', () => {
    expect(targetSize(160, 90, 4, 'yuv420p')).toEqual([640, 360]);
    expect(targetSize(161, 91, 3, 'yuv420p')).toEqual([484, 274]); // 483 -> 484, 273 -> 274
    expect(targetSize(161, 91, 3, 'yuv444p')).toEqual([483, 273]);
    expect(targetSize(100, 75, 1.5, 'yuv420p')).toEqual([150, 112]); // 112.5 -> 112 (nearest even)
  });
});

describe('ranges in the encoder', () => {
  it('seeks and shifts the source, then cuts copied streams on output time', async () => {
    const { encoderArgs } = await import('../../src/encode/encoder-args.js');
    const { planColour } = await import('../../src/ffmpeg/colour.js');
    const args = encoderArgs({
      ffmpeg: { path: '/ff', version: '', major: 4 }, source: 's.mkv', output: 'o', container: 'matroska', frameWidth: 8, frameHeight: 8,
      outWidth: 8, outHeight: 8, settings: { codec: 'ffv1', pixFmt: 'bgr0' }, colour: planColour({ height: 8, width: 8, pixFmt: 'yuv420p' } as never),
      streams: [], sourceVideoIndex: 0, timeBase: [1, 1000], shiftUs: 12_500_000, range: { start: 12.5, duration: 3 },
    });
    const src = args.indexOf('s.mkv');
    expect(args.slice(src - 5, src + 1)).toEqual(['-ss', '12.500000', '-itsoffset', '-12.500000', '-i', 's.mkv']);
    const out = args.indexOf('-map_chapters');
    expect(args.slice(out + 2, out + 6)).toEqual(['-ss', '0', '-t', '3.000000']);
  });
});
