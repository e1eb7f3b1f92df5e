/**
 * Colour handling between the source's YUV and the network's RGB. Converting with the wrong
 * matrix is the classic "colour shift" of upscalers: swscale assumes BT.601 unless told. We use
 * the matrix the source declares; untagged video gets what players assume (BT.709 for HD,
 * BT.601 for SD), and the output is tagged so players do not have to guess again.
 */
import type { VideoStreamInfo } from './probe.js';

export interface ColourPlan {
  /** swscale's name for the YUV<->RGB matrix: bt709, bt601, bt2020, fcc, smpte240m. */
  matrix: string;
  /** 'tv' (limited) or 'pc' (full). */
  range: 'tv' | 'pc';
  /** Tags for the output stream (ffmpeg -color_* values). */
  tags: { colorspace: string; primaries: string; trc: string; range: 'tv' | 'pc' };
  /** True when the source had no matrix tag and a default was chosen. */
  assumed: boolean;
}

const SWS_MATRIX: Record<string, string> = {
  bt709: 'bt709',
  bt470bg: 'bt601',
  smpte170m: 'bt601',
  bt601: 'bt601',
  'bt2020nc': 'bt2020',
  'bt2020c': 'bt2020',
  fcc: 'fcc',
  smpte240m: 'smpte240m',
};

export function planColour(v: VideoStreamInfo): ColourPlan {
  const declared = v.colorSpace && SWS_MATRIX[v.colorSpace] ? v.colorSpace : undefined;
  const hd = v.height >= 720 || v.width >= 1280;
  const sourceSpace = declared ?? (hd ? 'bt709' : 'smpte170m');
  const range: 'tv' | 'pc' = v.colorRange === 'pc' || v.pixFmt.startsWith('yuvj') ? 'pc' : 'tv';
  // The upscaled output is usually HD even from SD sources; it keeps the source's matrix (what
  // was mastered) and carries the tags, so players apply that matrix instead of guessing by size.
  const primaries = v.colorPrimaries && v.colorPrimaries !== 'unknown' ? v.colorPrimaries : sourceSpace === 'bt709' ? 'bt709' : 'smpte170m';
  const trc = v.colorTransfer && v.colorTransfer !== 'unknown' ? v.colorTransfer : sourceSpace === 'bt709' ? 'bt709' : 'smpte170m';
  return {
    matrix: SWS_MATRIX[sourceSpace]!,
    range,
    tags: { colorspace: sourceSpace, primaries, trc, range },
    assumed: !declared,
  };
}

/** Luma weights of red and blue per swscale matrix name (ColourPlan.matrix). */
const LUMA_WEIGHTS: Record<string, [number, number]> = {
  bt709: [0.2126, 0.0722],
  bt601: [0.299, 0.114],
  bt2020: [0.2627, 0.0593],
  fcc: [0.3, 0.11],
  smpte240m: [0.212, 0.087],
};

/**
 * The plan's RGB -> Y'CbCr conversion as the native kernel takes it ([kr, kb, full]), for frames it
 * writes as I420 itself instead of leaving the conversion to the encoder; undefined for a matrix it
 * does not know.
 */
export function i420Matrix(colour: Pick<ColourPlan, 'matrix' | 'range'>): Float32Array | undefined {
  const k = LUMA_WEIGHTS[colour.matrix];
  return k ? Float32Array.of(k[0], k[1], colour.range === 'pc' ? 1 : 0) : undefined;
}
