import { describe, expect, it } from 'vitest';
import { decoderArgs } from '../../src/decode/decoder.js';
import { containerFor, planStreams } from '../../src/encode/containers.js';
import { muxArgs, rangeCutArgs, segmentArgs, type MuxArgsInput } from '../../src/encode/encoder-args.js';
import { passthroughTiming, type Binary } from '../../src/ffmpeg/binaries.js';
import { planColour } from '../../src/ffmpeg/colour.js';
import type { VideoStreamInfo } from '../../src/ffmpeg/probe.js';
import { targetSize } from '../../src/encode/output-size.js';

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

  const colour709 = planColour(video({ colorSpace: 'bt709' }));
  const seg = (o: Partial<Parameters<typeof segmentArgs>[0]> = {}) => segmentArgs({
    ffmpeg: ff4, frameWidth: 2560, frameHeight: 1440, outWidth: 2560, outHeight: 1440,
    settings: { codec: 'libx264', pixFmt: 'yuv420p', preset: 'slow' }, colour: colour709, timeBase: [1, 12288], ...o,
  }, 'seg.partial');

  it('a segment encoder keeps source timestamps in the source time base and tags colour', () => {
    const args = seg();
    expect(args.slice(args.indexOf('-f'), args.indexOf('-f') + 4)).toEqual(['-f', 'matroska', '-i', 'pipe:0']);
    expect(after(args, '-enc_time_base:v')).toBe('1:12288');
    expect(after(args, '-vsync')).toBe('passthrough');
    expect(args).toContain('-copyts');
    expect(after(args, '-colorspace')).toBe('bt709');
    expect(after(args, '-crf')).toBe('18');
    expect(after(args, '-preset')).toBe('slow');
    expect(after(args, '-vf')).toBe('scale=out_color_matrix=bt709:out_range=tv:flags=accurate_rnd+full_chroma_int,format=yuv420p');
    expect(args.slice(-3)).toEqual(['-f', 'nut', 'seg.partial']);
  });

  it('a non-native scale adds a Lanczos resize; RGB output skips the matrix and colour tags', () => {
    const args = seg({ outWidth: 1280, outHeight: 720, settings: { codec: 'ffv1', pixFmt: 'bgr0' } });
    expect(after(args, '-vf')).toBe('scale=1280:720:flags=lanczos+accurate_rnd+full_chroma_int,format=bgr0');
    expect(args).not.toContain('-colorspace');
    expect(args).not.toContain('-crf');
  });

  it('I420 frames (the fused kernel converted them) skip the conversion but keep the colour tags; nothing else takes them', () => {
    const args = seg({ frameFormat: 'yuv420p' });
    expect(after(args, '-vf')).toBe('format=yuv420p');
    expect(after(args, '-colorspace')).toBe('bt709');
    expect(after(args, '-color_range')).toBe('tv');
    expect(() => seg({ frameFormat: 'yuv420p', settings: { codec: 'libx264', pixFmt: 'yuv444p' } })).toThrow(/I420 frames encode only as yuv420p/);
    expect(() => seg({ frameFormat: 'yuv420p', outWidth: 1280, outHeight: 720 })).toThrow(/at their own size/);
  });

  const mux = (o: Partial<MuxArgsInput> = {}) => muxArgs({
    source: 'in.mkv', output: 'out.tmp', container: 'mp4', sourceVideoIndex: 0, timeBase: [1, 12288], shiftUs: 0,
    streams: [{ index: 1, type: 'audio', codec: 'copy' }, { index: 3, type: 'subtitle', codec: 'mov_text' }],
    concatList: 'list.ffconcat', firstPtsUs: 0, rotationTag: 90, ...o,
  });

  it('the mux copies the joined video, copies audio, converts subtitles, writes rotation, starts fast', () => {
    const args = mux();
    expect(args.slice(args.indexOf('concat') - 1, args.indexOf('concat') + 5)).toEqual(['-f', 'concat', '-safe', '0', '-i', 'list.ffconcat']);
    expect(after(args, '-c:v')).toBe('copy');
    expect(after(args, '-c:a:0')).toBe('copy');
    expect(after(args, '-c:s:0')).toBe('mov_text');
    expect(after(args, '-map_metadata:s:a:0')).toBe('1:s:1');
    expect(after(args, '-video_track_timescale')).toBe('12288');
    expect(after(args, '-movflags')).toBe('+faststart');
    expect(after(args, '-metadata:s:v:0')).toBe('rotate=90');
    expect(args.at(-1)).toBe('out.tmp');
  });

  it('Matroska output gets no MP4 flags; a late first frame is shifted back into place', () => {
    const args = mux({ container: 'matroska', firstPtsUs: 80_000 });
    expect(args).not.toContain('-movflags');
    expect(args.slice(args.indexOf('concat') + 3, args.indexOf('concat') + 7)).toEqual(['-itsoffset', '0.080000', '-i', 'list.ffconcat']);
  });

  it('a lead moves the frames and the source\'s streams later by the same amount (whole files only)', () => {
    const args = mux({ container: 'matroska', firstPtsUs: 0, shiftUs: 0, leadUs: 21_333 });
    expect(args.slice(args.indexOf('concat') + 3, args.indexOf('concat') + 7)).toEqual(['-itsoffset', '0.021333', '-i', 'list.ffconcat']);
    expect(args.slice(args.indexOf('list.ffconcat') + 1, args.indexOf('list.ffconcat') + 5)).toEqual(['-itsoffset', '0.021333', '-i', 'in.mkv']);
    // A range's streams come from its cut file, already on the frames' clock: no lead.
    expect(mux({ container: 'matroska', leadUs: 21_333, cutFile: 'cut.mkv' })).not.toContain('-itsoffset');
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
    // MP4's own text subtitles cannot be copied into Matroska (FFmpeg has no codec id for them there).
    const fromMp4 = planStreams('matroska', [{ index: 2, type: 'subtitle', codec: 'mov_text', attachedPic: false }]);
    expect(fromMp4.streams).toEqual([{ index: 2, type: 'subtitle', codec: 'srt' }]);
    expect(fromMp4.warnings.join(' ')).toMatch(/mov_text.*converted to SubRip/);
  });

  it('target sizes: exact for native scales, nearest even for 4:2:0', () => {
    expect(targetSize(160, 90, 4, 'yuv420p')).toEqual([640, 360]);
    expect(targetSize(161, 91, 3, 'yuv420p')).toEqual([484, 274]); // 483 -> 484, 273 -> 274
    expect(targetSize(161, 91, 3, 'yuv444p')).toEqual([483, 273]);
    expect(targetSize(100, 75, 1.5, 'yuv420p')).toEqual([150, 112]); // 112.5 -> 112 (nearest even)
  });
});

describe('ranges', () => {
  const streams = [{ index: 1, type: 'audio' as const, codec: 'copy' }, { index: 2, type: 'subtitle' as const, codec: 'mov_text' }];
  it('the cut pass seeks, then cuts the carried streams on their own timestamps', () => {
    const args = rangeCutArgs({ source: 's.mkv', output: 'cut.mp4', container: 'mp4', streams, seekSeconds: 12.5, startUs: 12_540_000, endUs: 15_540_000 });
    expect(args).toContain('-copyts');
    const src = args.indexOf('s.mkv');
    expect(args.slice(src - 3, src + 1)).toEqual(['-ss', '12.500000', '-i', 's.mkv']);
    expect(after(args, '-c:s:0')).toBe('mov_text');
    expect(args.slice(-7)).toEqual(['-ss', '12.540000', '-to', '15.540000', '-f', 'mp4', 'cut.mp4']);
  });

  it('the mux then takes streams from the cut file by position and metadata from the source', () => {
    const args = muxArgs({
      source: 's.mkv', output: 'o', container: 'mp4', streams, sourceVideoIndex: 0, timeBase: [1, 1000],
      shiftUs: 12_540_000, cutFile: 'cut.mp4', concatList: 'l', firstPtsUs: 0, rotationTag: 0,
    });
    expect(args).not.toContain('-itsoffset');
    expect(args.slice(args.indexOf('cut.mp4') - 1, args.indexOf('cut.mp4') + 3)).toEqual(['-i', 'cut.mp4', '-i', 's.mkv']);
    expect(after(args, '-c:s:0')).toBe('copy');
    expect(after(args, '-map_metadata')).toBe('2');
    expect(args.filter((x, i) => args[i - 1] === '-map')).toEqual(['0:v:0', '1:0', '1:1']);
  });
});
