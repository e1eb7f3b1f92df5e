/** Parsers for option values that are more than a number. Each failure is one UsageError line. */
import { UsageError } from '../errors.js';

/** Seconds from "90", "90.5", "1:30", "01:30.250" or "1:02:03.5". */
export function parseTimecode(raw: string, option = 'time'): number {
  const m = /^(?:(?:(\d+):)?(\d{1,2}):)?(\d+(?:\.\d+)?)$/.exec(raw.trim());
  if (!m) throw new UsageError(`${option} "${raw}" is not a time`, 'use seconds (90.5) or [hh:]mm:ss[.mmm] (1:30.5)');
  const [, h, mm, ss] = m;
  if ((h !== undefined || mm !== undefined) && Number(ss) >= 60) throw new UsageError(`${option} "${raw}": seconds must be below 60 in mm:ss`);
  if (h !== undefined && Number(mm) >= 60) throw new UsageError(`${option} "${raw}": minutes must be below 60 in hh:mm:ss`);
  return Number(h ?? 0) * 3600 + Number(mm ?? 0) * 60 + Number(ss);
}

/** "a:b" (b excluded) or "a:" (to the end) -> [a, b | undefined]. */
export function parseFrameRange(raw: string): [number, number | undefined] {
  const m = /^(\d+):(\d*)$/.exec(raw.trim());
  if (!m) throw new UsageError(`--frames "${raw}" is not a range`, 'use a:b (frames a to b-1, counted from 0) or a: (to the end)');
  const a = Number(m[1]);
  const b = m[2] === '' ? undefined : Number(m[2]);
  if (b !== undefined && b <= a) throw new UsageError(`--frames ${raw} is empty`, 'use a:b with a < b (b is excluded)');
  return [a, b];
}

/** Commander parser for numbers with a range, failing with one usage line. */
export function numberIn(name: string, min: number, max: number, integer = false) {
  return (raw: string): number => {
    const v = Number(raw);
    if (!Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
      throw new UsageError(`${name} must be ${integer ? 'a whole number' : 'a number'} from ${min} to ${max}, got "${raw}"`);
    }
    return v;
  };
}
