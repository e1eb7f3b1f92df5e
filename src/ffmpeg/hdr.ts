/**
 * HDR10 static metadata: the mastering display (SMPTE ST 2086) and the content light level
 * (CTA-861.3) a source carries in its first frame's side data. Players use them to tone-map; the
 * upscaled video gets them back as libx265's SEI parameters, the one encoder of the bundled
 * FFmpeg that can write them (its 2018 libx264 cannot).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Binary } from './binaries.js';

export interface HdrMetadata {
  /** x265's `master-display`: G(x,y)B(x,y)R(x,y)WP(x,y)L(max,min), chromaticities in units of 0.00002, luminance in 0.0001 cd/m². */
  masterDisplay?: string;
  /** x265's `max-cll`: MaxCLL,MaxFALL in cd/m². */
  maxCll?: string;
}

/** "34000/50000" (how ffprobe prints the side data's rationals) or a plain number. */
function ratio(v: unknown): number {
  const [n, d] = String(v).split('/').map(Number);
  return d ? n! / d : Number(n);
}

/** The metadata in one frame's `side_data_list` as ffprobe's JSON gives it; undefined when there is none. */
export function hdrFromSideData(list: readonly Record<string, unknown>[]): HdrMetadata | undefined {
  const out: HdrMetadata = {};
  const md = list.find((d) => d.side_data_type === 'Mastering display metadata');
  if (md) {
    const xy = (c: string) => {
      const x = Math.round(ratio(md[`${c}_x`]) * 50000);
      const y = Math.round(ratio(md[`${c}_y`]) * 50000);
      return Number.isFinite(x) && Number.isFinite(y) ? `(${x},${y})` : undefined;
    };
    const [g, b, r, wp] = [xy('green'), xy('blue'), xy('red'), xy('white_point')];
    const max = Math.round(ratio(md.max_luminance) * 10000);
    const min = Math.round(ratio(md.min_luminance) * 10000);
    // A frame may carry only the luminance or only the primaries; x265 needs both.
    if (g && b && r && wp && Number.isFinite(max) && Number.isFinite(min) && max > 0) {
      out.masterDisplay = `G${g}B${b}R${r}WP${wp}L(${max},${min})`;
    }
  }
  const cll = list.find((d) => d.side_data_type === 'Content light level metadata');
  if (cll) {
    const maxContent = Number(cll.max_content);
    const maxAverage = Number(cll.max_average);
    if (Number.isInteger(maxContent) && Number.isInteger(maxAverage) && maxContent > 0) out.maxCll = `${maxContent},${maxAverage}`;
  }
  return out.masterDisplay || out.maxCll ? out : undefined;
}

/** Transfers and primaries of HDR video: only such sources are asked for their first frame. */
export function mayCarryHdr(transfer: string | undefined, primaries: string | undefined): boolean {
  return transfer === 'smpte2084' || transfer === 'arib-std-b67' || primaries === 'bt2020';
}

/** Decodes the first frame of the video stream for its side data (one short ffprobe run). */
export async function probeHdr(ffprobe: Binary, path: string, stream: string): Promise<HdrMetadata | undefined> {
  try {
    const { stdout } = await promisify(execFile)(ffprobe.path,
      ['-v', 'error', '-select_streams', stream, '-read_intervals', '%+#1', '-show_frames', '-show_entries', 'frame=side_data_list', '-of', 'json', path],
      { maxBuffer: 8 << 20, timeout: 60_000 });
    const frames = (JSON.parse(stdout) as { frames?: { side_data_list?: Record<string, unknown>[] }[] }).frames ?? [];
    return hdrFromSideData(frames[0]?.side_data_list ?? []);
  } catch {
    return undefined; // the metadata is a nicety: the main probe has already judged the file
  }
}

/** The one encoder of the bundled FFmpeg that writes the metadata. */
export const HDR_ENCODER = 'libx265';

/** libx265's `-x265-params` value that writes the metadata into the stream. */
export function x265HdrParams(h: HdrMetadata): string {
  return [h.masterDisplay && `master-display=${h.masterDisplay}`, h.maxCll && `max-cll=${h.maxCll}`].filter(Boolean).join(':');
}
