import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { registerPreview, runPreview, type PreviewCliOptions } from '../../src/commands/preview.js';
import { InputError, UsageError } from '../../src/errors.js';
import type { MediaInfo } from '../../src/ffmpeg/probe.js';
import { clipJob, defaultClipName } from '../../src/preview/clip.js';
import { locate } from '../../src/preview/grab.js';
import { imageFormatFor, seriesNames } from '../../src/preview/image-file.js';
import { defaultPreviewName } from '../../src/preview/preview.js';
import { checkCrop, fileTime, parseClipRange, parseCrop, parseModelList, parsePoint } from '../../src/preview/spec.js';

describe('preview option values', () => {
  it('--at: seconds, [hh:]mm:ss[.mmm] or fN', () => {
    expect(parsePoint('5')).toEqual({ kind: 'time', seconds: 5 });
    expect(parsePoint('01:40:00')).toEqual({ kind: 'time', seconds: 6000 });
    expect(parsePoint('1:30.25')).toEqual({ kind: 'time', seconds: 90.25 });
    expect(parsePoint('f123')).toEqual({ kind: 'frame', index: 123 });
    expect(parsePoint('F0')).toEqual({ kind: 'frame', index: 0 });
    expect(() => parsePoint('#12')).toThrow(/frame numbers are written f12/);
    expect(() => parsePoint('f-1')).toThrow(UsageError);
    expect(() => parsePoint('soon')).toThrow(/neither a time nor a frame number/);
    expect(() => parsePoint('1:75')).toThrow(UsageError);
  });

  it('--crop x,y,w,h, inside the frame', () => {
    expect(parseCrop('40, 20,64,48')).toEqual({ x: 40, y: 20, w: 64, h: 48 });
    expect(() => parseCrop('1,2,3')).toThrow(/is not x,y,w,h/);
    expect(() => parseCrop('1,2,0,4')).toThrow(/is empty/);
    expect(() => parseCrop('-1,2,3,4')).toThrow(UsageError);
    expect(() => checkCrop({ x: 0, y: 0, w: 160, h: 90 }, 160, 90)).not.toThrow();
    expect(() => checkCrop({ x: 150, y: 10, w: 20, h: 20 }, 160, 90)).toThrow(/goes outside the 160x90 frame/);
    expect(() => checkCrop({ x: 0, y: 80, w: 20, h: 11 }, 160, 90)).toThrow(UsageError);
  });

  it('--models a,b,c and --range a-b', () => {
    expect(parseModelList('a, b,c')).toEqual(['a', 'b', 'c']);
    expect(() => parseModelList(' , ')).toThrow(/is empty/);
    expect(() => parseModelList('a,a')).toThrow(/twice/);
    expect(parseClipRange('1:30-1:35')).toEqual({ kind: 'time', start: 90, end: 95 });
    expect(parseClipRange('f100-f150')).toEqual({ kind: 'frame', start: 100, end: 150 });
    expect(() => parseClipRange('5-5')).toThrow(/is empty/);
    expect(() => parseClipRange('f1-2')).toThrow(/mixes a time and a frame/);
    expect(() => parseClipRange('5')).toThrow(/is not start-end/);
  });

  it('file names: times without colons, series numbered, format by extension', () => {
    expect(fileTime(6000.5)).toBe('01-40-00.500');
    expect(fileTime(5)).toBe('00-00-05.000');
    expect(defaultPreviewName('/v/film.mkv', { kind: 'time', seconds: 6000 }, '/out')).toBe('/out/film-01-40-00.000.png');
    expect(defaultPreviewName('film.mp4', { kind: 'frame', index: 7 }, '/out')).toBe('/out/film-f7.png');
    expect(defaultClipName('/v/film.mkv', { kind: 'time', start: 90, end: 95 }, '/o')).toBe('/o/film-00-01-30.000-00-01-35.000.mp4');
    expect(seriesNames('a/b.png', 1)).toEqual(['a/b.png']);
    expect(seriesNames('a/b.png', 3)).toEqual(['a/b-0001.png', 'a/b-0002.png', 'a/b-0003.png']);
    expect(imageFormatFor('x.PNG')).toBe('png');
    expect(imageFormatFor('x.jpg')).toBe('jpeg');
    expect(imageFormatFor('x.jpeg')).toBe('jpeg');
    expect(imageFormatFor('x.webp')).toBe('webp');
    expect(() => imageFormatFor('x.gif')).toThrow(/cannot tell the image format of x\.gif/);
  });

  it('--range is the main job with --start/--end or --frames', () => {
    const t = clipJob({ input: 'in.mp4', output: 'c.mp4', range: { kind: 'time', start: 90, end: 95 }, model: 'm', codec: 'ffv1' });
    expect(t).toMatchObject({ input: 'in.mp4', output: 'c.mp4', start: 90, end: 95, model: 'm', codec: 'ffv1' });
    expect(t.frames).toBeUndefined();
    const f = clipJob({ input: 'in.mp4', output: 'c.mp4', range: { kind: 'frame', start: 10, end: 40 } });
    expect(f.frames).toEqual([10, 40]);
    expect(f.start).toBeUndefined();
  });
});

describe('where a preview seeks', () => {
  const info = (o: { duration?: number; fps?: number; vfr?: boolean; start?: number }): MediaInfo => ({
    path: 'x', formatName: 'mov', duration: o.duration ?? 600, startTime: o.start ?? 0, streams: [], chapters: 0,
    video: { avgFrameRate: o.fps ?? 25, rFrameRate: o.fps ?? 25, variableFrameRate: !!o.vfr, duration: o.duration ?? 600 } as MediaInfo['video'],
  });
  const ffprobe = { path: '/nonexistent', version: '', major: 4 };

  it('a time seeks two frame intervals early and wants the frame on screen then', async () => {
    const t = await locate({ kind: 'time', seconds: 590 }, info({}), ffprobe);
    expect(t.seekSeconds).toBeCloseTo(589.92, 9);
    expect(t.targetUs).toBe(590_000_000);
    // The container's start offsets the source clock, not the seek.
    const s = await locate({ kind: 'time', seconds: 10 }, info({ start: 1.5 }), ffprobe);
    expect(s.seekSeconds).toBeCloseTo(9.92, 9);
    expect(s.targetUs).toBe(11_500_000);
    expect((await locate({ kind: 'time', seconds: 10 }, info({ vfr: true }), ffprobe)).seekSeconds).toBe(8);
    expect((await locate({ kind: 'time', seconds: 0.01 }, info({}), ffprobe)).seekSeconds).toBe(0);
  });

  it('a time at or beyond the end is an input error', async () => {
    await expect(locate({ kind: 'time', seconds: 600 }, info({}), ffprobe)).rejects.toThrow(InputError);
    await expect(locate({ kind: 'time', seconds: 700 }, info({}), ffprobe)).rejects.toThrow(/beyond the end of the video \(600\.000 s\)/);
  });
});

describe('esrvid preview command line', () => {
  /** A program with the upscale command's options of the same names, as src/cli.ts has. */
  async function parse(argv: string[]): Promise<{ input: string; o: PreviewCliOptions; parent: Record<string, unknown> }> {
    const program = new Command('esrvid').exitOverride()
      .option('-q, --quiet').option('--debug')
      .option('-m, --model <name>', 'model', 'auto').option('-s, --scale <n>', 'scale', Number)
      .option('--tile <n>').option('-y, --yes').option('--crf <n>', 'crf', Number);
    let got: { input: string; o: PreviewCliOptions } | undefined;
    registerPreview(program, async (input, o) => {
      got = { input, o };
    });
    await program.parseAsync(['node', 'esrvid', ...argv]);
    return { ...got!, parent: program.opts() };
  }

  it('preview gets its own -m, -s, --tile, -y, -o', async () => {
    const { input, o, parent } = await parse(['preview', 'in.mp4', '--at', 'f12', '-m', 'realesr-animevideov3-x4', '-s', '2', '--tile', '64', '-y', '-o', 'x.webp', '--compare', 'split', '--crop', '1,2,3,4', '-n', '3']);
    expect(input).toBe('in.mp4');
    expect(o).toMatchObject({ at: { kind: 'frame', index: 12 }, model: 'realesr-animevideov3-x4', scale: 2, tile: 64, yes: true, output: 'x.webp', compare: 'split', crop: { x: 1, y: 2, w: 3, h: 4 }, count: 3, device: 'cpu', tilePad: 16 });
    expect(parent).toMatchObject({ model: 'auto' });
    expect(parent.yes).toBeUndefined();
  });

  it('bad values are one usage line', async () => {
    await expect(parse(['preview', 'in.mp4', '--at', 'later'])).rejects.toThrow(UsageError);
    await expect(parse(['preview', 'in.mp4', '--at', '1', '--device', 'cuda'])).rejects.toThrow(/--device cuda is not available yet/);
    await expect(parse(['preview', 'in.mp4', '--at', '1', '--compare', 'overlay'])).rejects.toThrow(/is not a layout/);
    await expect(parse(['preview', 'in.mp4', '--at', '1', '-n', '0'])).rejects.toThrow(/--count must be/);
  });

  it('options that do not go together are refused before any work', async () => {
    const run = (o: Partial<PreviewCliOptions>) => runPreview('does-not-exist.mp4', { model: 'auto', device: 'cpu', ...o }, true);
    await expect(run({})).rejects.toThrow(/say which frames to preview/);
    await expect(run({ at: { kind: 'time', seconds: 1 }, range: { kind: 'time', start: 1, end: 2 } })).rejects.toThrow(/not both/);
    await expect(run({ range: { kind: 'time', start: 1, end: 2 }, count: 2, crop: { x: 0, y: 0, w: 1, h: 1 } })).rejects.toThrow(/--count, --crop: only for images/);
    await expect(run({ at: { kind: 'time', seconds: 1 }, crf: 0 })).rejects.toThrow(/--crf: only for --range clips/);
    await expect(run({ at: { kind: 'time', seconds: 1 }, model: 'x', models: ['a', 'b'] })).rejects.toThrow(/--model or --models/);
  });
});
