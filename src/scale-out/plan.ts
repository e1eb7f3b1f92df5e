/**
 * Splits a video into segments for a scale-out job. Segments start on the source's keyframes, so
 * each worker's decoder seeks straight to its first frame (no frames decoded twice), and they
 * are exact frame ranges: every frame of the source lies in exactly one segment, in order. The
 * segments' files are later joined by stream copy.
 */

export interface PlannedSegment {
  index: number;
  /** Frames [start, end) of the source, counted from 0 in presentation order. */
  start: number;
  end: number;
  /** Source timestamps (µs) of the first and last frame. */
  firstPtsUs: number;
  lastPtsUs: number;
  /** Source timestamp (µs) of the frame after the last one; null for the last segment. */
  endPtsUs: number | null;
}

/**
 * `times`: every frame's presentation time (µs), sorted. `keyframes`: the keyframes' times.
 * Each segment runs from a keyframe to the first keyframe at least `segmentSeconds` later (or to
 * the end). Frame 0 always starts the first segment, keyframe or not (an open GOP's leading
 * frames); when keyframes are further apart than `segmentSeconds`, each segment is one GOP.
 */
export function planSegments(times: readonly number[], keyframes: readonly number[], segmentSeconds: number): PlannedSegment[] {
  if (!(segmentSeconds > 0)) throw new RangeError(`segment length must be positive, got ${segmentSeconds}`);
  const n = times.length;
  if (n === 0) return [];
  const keys = new Set(keyframes);
  // Frame indices where a segment may start (a keyframe; the first of equal timestamps).
  const cuts: number[] = [];
  for (let i = 1; i < n; i++) if (keys.has(times[i]!) && times[i] !== times[i - 1]) cuts.push(i);
  const lengthUs = segmentSeconds * 1e6;
  const segments: PlannedSegment[] = [];
  let start = 0;
  let c = 0;
  while (start < n) {
    const target = times[start]! + lengthUs;
    while (c < cuts.length && (cuts[c]! <= start || times[cuts[c]!]! < target)) c++;
    const end = c < cuts.length ? cuts[c]! : n;
    segments.push({
      index: segments.length, start, end, firstPtsUs: times[start]!, lastPtsUs: times[end - 1]!, endPtsUs: end < n ? times[end]! : null,
    });
    start = end;
  }
  return segments;
}
