import { describe, expect, it } from 'vitest';
import { segmentArgs } from '../../src/encode/encoder-args.js';
import type { Binary } from '../../src/ffmpeg/binaries.js';
import { planColour } from '../../src/ffmpeg/colour.js';
import { hdrFromSideData, mayCarryHdr, x265HdrParams } from '../../src/ffmpeg/hdr.js';
import type { VideoStreamInfo } from '../../src/ffmpeg/probe.js';

/** A first frame's side data as ffprobe 6 prints it for an HDR10 HEVC stream. */
const SIDE_DATA = [
  {
    side_data_type: 'Mastering display metadata',
    red_x: '34000/50000', red_y: '16000/50000', green_x: '13250/50000', green_y: '34500/50000', blue_x: '7500/50000', blue_y: '3000/50000',
    white_point_x: '15635/50000', white_point_y: '16450/50000', min_luminance: '50/10000', max_luminance: '10000000/10000',
  },
  { side_data_type: 'Content light level metadata', max_content: 1000, max_average: 400 },
  { side_data_type: 'H.26[45] User Data Unregistered SEI message' },
];

describe('HDR10 metadata', () => {
  it('is read from the side data in x265\'s units (chromaticity x50000, luminance x10000)', () => {
    const h = hdrFromSideData(SIDE_DATA)!;
    expect(h).toEqual({ masterDisplay: 'G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,50)', maxCll: '1000,400' });
    expect(x265HdrParams(h)).toBe('master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,50):max-cll=1000,400');
    // The same figures as decimals (other ffprobe builds) give the same units.
    const decimal = hdrFromSideData([{ ...SIDE_DATA[0], red_x: '0.68', red_y: '0.32', max_luminance: '1000', min_luminance: '0.005' }]);
    expect(decimal?.masterDisplay).toBe('G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,50)');
  });

  it('each part stands alone; incomplete or absent parts are left out', () => {
    expect(hdrFromSideData([SIDE_DATA[1]!])).toEqual({ maxCll: '1000,400' });
    expect(x265HdrParams({ maxCll: '1000,400' })).toBe('max-cll=1000,400');
    const { green_x: _g, ...noGreen } = SIDE_DATA[0]!;
    expect(hdrFromSideData([noGreen])).toBeUndefined();
    expect(hdrFromSideData([SIDE_DATA[2]!])).toBeUndefined();
    expect(hdrFromSideData([])).toBeUndefined();
  });

  it('only HDR transfers and BT.2020 sources are asked for their first frame', () => {
    expect(mayCarryHdr('smpte2084', 'bt2020')).toBe(true);
    expect(mayCarryHdr('arib-std-b67', undefined)).toBe(true);
    expect(mayCarryHdr(undefined, 'bt2020')).toBe(true);
    expect(mayCarryHdr('bt709', 'bt709')).toBe(false);
    expect(mayCarryHdr(undefined, undefined)).toBe(false);
  });

  it('goes to libx265 as -x265-params; other encoders get nothing they would refuse', () => {
    const ff: Binary = { path: '/ff', version: 'ffmpeg version N-47683', major: 4 };
    const v = {
      index: 0, codec: 'hevc', width: 64, height: 48, pixFmt: 'yuv420p10le', bitDepth: 10, timeBase: [1, 1000], rFrameRate: 25, avgFrameRate: 25,
      startTime: 0, duration: 1, frameCount: 25, sampleAspectRatio: undefined, colorSpace: 'bt2020nc', colorTransfer: 'smpte2084',
      colorPrimaries: 'bt2020', colorRange: 'tv', rotation: 0, stillImage: false, variableFrameRate: false,
    } satisfies VideoStreamInfo;
    const hdr = hdrFromSideData(SIDE_DATA);
    const args = (codec: string) => segmentArgs({
      ffmpeg: ff, frameWidth: 256, frameHeight: 192, outWidth: 256, outHeight: 192, settings: { codec, pixFmt: 'yuv420p10le' },
      colour: planColour(v), hdr, timeBase: [1, 1000],
    }, 'seg.nut');
    const x265 = args('libx265');
    expect(x265[x265.indexOf('-x265-params') + 1]).toBe(x265HdrParams(hdr!));
    expect(x265[x265.indexOf('-color_trc') + 1]).toBe('smpte2084');
    expect(args('libx264')).not.toContain('-x265-params');
  });
});
