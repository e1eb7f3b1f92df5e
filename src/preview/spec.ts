/**
 * What a preview is asked for, parsed from the command line: a point in the video (a time or a
 * frame number), an optional crop, a list of models, or a short range for a clip. Each failure is
 * one UsageError line naming the option and the accepted forms.
 */
import { parseTimecode } from '../commands/parse.js';
import { UsageError } from '../errors.js';

/** A time (seconds from the container's start, as players show it) or a frame number (from 0). */
export type PreviewPoint = { kind: 'time'; seconds: number } | { kind: 'frame'; index: number };

export interface CropRect {
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface ClipRange {
  /** Times in seconds (end excluded), or frame numbers a..b-1 (as --frames a:b). */
  kind: 'time' | 'frame';
  start: number;
  end: number;
}

const FRAME = /^f(\d+)$/i;

/** "90", "1:30.5", "01:40:00" (times) or "f123" (frame 123, counted from 0). */
export function parsePoint(raw: string, option = '--at'): PreviewPoint {
  const s = raw.trim();
  const f = FRAME.exec(s);
  if (f) return { kind: 'frame', index: Number(f[1]) };
  if (/^#\d+$/.test(s)) throw new UsageError(`${option} "${raw}": frame numbers are written f${s.slice(1)}`, `use ${option} f${s.slice(1)} (a bare # starts a comment in most shells)`);
  try {
    return { kind: 'time', seconds: parseTimecode(s, option) };
  } catch {
    throw new UsageError(`${option} "${raw}" is neither a time nor a frame number`, 'use seconds (90.5), [hh:]mm:ss[.mmm] (1:30.5) or a frame number f123 (from 0)');
  }
}

/** "x,y,w,h" in source pixels (whole numbers, w and h at least 1). */
export function parseCrop(raw: string): CropRect {
  const m = /^\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*$/.exec(raw);
  if (!m) throw new UsageError(`--crop "${raw}" is not x,y,w,h`, 'give the region in source pixels, e.g. --crop 40,20,64,48');
  const [x, y, w, h] = m.slice(1).map(Number) as [number, number, number, number];
  if (w < 1 || h < 1) throw new UsageError(`--crop "${raw}" is empty`, 'width and height must be at least 1 pixel');
  return { x, y, w, h };
}

/** A crop must lie inside the (displayed) frame. */
export function checkCrop(c: CropRect, width: number, height: number): void {
  if (c.x + c.w > width || c.y + c.h > height) {
    throw new UsageError(`--crop ${c.x},${c.y},${c.w},${c.h} goes outside the ${width}x${height} frame`,
      `keep x+w <= ${width} and y+h <= ${height}`);
  }
}

/** "a,b,c": model names or .onnx files, no duplicates. */
export function parseModelList(raw: string): string[] {
  const names = raw.split(',').map((s) => s.trim()).filter(Boolean);
  if (names.length === 0) throw new UsageError('--models is empty', 'give model names separated by commas, e.g. --models realesr-general-x4v3,realesr-animevideov3-x4');
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) throw new UsageError(`--models names ${dup} twice`);
  return names;
}

/** "start-end" with times (end excluded) or frame numbers "f10-f40" (frames 10..39). */
export function parseClipRange(raw: string): ClipRange {
  const parts = raw.trim().split('-');
  if (parts.length !== 2 || !parts[0] || !parts[1]) {
    throw new UsageError(`--range "${raw}" is not start-end`, 'e.g. --range 1:30-1:35 or --range f100-f150 (end excluded)');
  }
  const a = parsePoint(parts[0], '--range');
  const b = parsePoint(parts[1], '--range');
  if (a.kind !== b.kind) throw new UsageError(`--range "${raw}" mixes a time and a frame number`, 'give both as times or both as frames (f100-f150)');
  const start = a.kind === 'time' ? a.seconds : a.index;
  const end = b.kind === 'time' ? b.seconds : b.index;
  if (!(end > start)) throw new UsageError(`--range "${raw}" is empty`, 'the end (excluded) must come after the start');
  return { kind: a.kind, start, end };
}

/** 6000.5 -> "01-40-00.500": a time for file names (no colons). */
export function fileTime(seconds: number): string {
  const ms = Math.round(seconds * 1000);
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = (ms % 60_000) / 1000;
  return `${String(h).padStart(2, '0')}-${String(m).padStart(2, '0')}-${s.toFixed(3).padStart(6, '0')}`;
}

/** The part of a default file name that says where in the video it is. */
export function pointStamp(p: PreviewPoint): string {
  return p.kind === 'frame' ? `f${p.index}` : fileTime(p.seconds);
}

/** How a point reads in messages: "5.000 s" or "frame 123". */
export function describePoint(p: PreviewPoint): string {
  return p.kind === 'frame' ? `frame ${p.index}` : `${p.seconds.toFixed(3)} s`;
}
