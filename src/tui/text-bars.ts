/**
 * Text drawings for the dashboard: bars, sparklines, durations. Plain strings of a known width,
 * so the components can lay out columns without measuring anything.
 */

const EIGHTHS = ['', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];
const SPARKS = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

function clamp01(v: number): number {
  return Number.isFinite(v) ? Math.min(1, Math.max(0, v)) : 0;
}

/** A bar of exactly `width` cells, filled to `fraction` (0-1) with eighth-cell resolution. */
export function bar(fraction: number, width: number, empty = ' '): string {
  if (width <= 0) return '';
  const eighths = Math.round(clamp01(fraction) * width * 8);
  const full = Math.floor(eighths / 8);
  const part = EIGHTHS[eighths % 8]!;
  return ('█'.repeat(full) + part).padEnd(width, empty);
}

/** The progress bar: whole cells on a visible track, [filled, track] so each can be coloured. */
export function progressBar(fraction: number, width: number): [string, string] {
  if (width <= 0) return ['', ''];
  const full = Math.floor(clamp01(fraction) * width);
  return ['█'.repeat(full), '░'.repeat(width - full)];
}

/**
 * One character per value, scaled to the largest value shown (so the shape is visible whatever
 * the speed); `undefined` (no data yet) is a blank.
 */
export function sparkline(values: readonly (number | undefined)[]): string {
  const max = Math.max(0, ...values.map((v) => v ?? 0));
  return values
    .map((v) => {
      if (v === undefined) return ' ';
      if (max <= 0) return SPARKS[0];
      return SPARKS[Math.min(SPARKS.length - 1, Math.floor((v / max) * (SPARKS.length - 1) + 0.5))];
    })
    .join('');
}

/** 0:07, 12:34, 1:02:03: elapsed times and ETAs. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/** Short jobs in seconds (6.5 s), long ones as a clock (12:34). */
export function formatSeconds(ms: number): string {
  return ms < 60_000 ? `${(ms / 1000).toFixed(1)} s` : formatDuration(ms);
}

/** Three significant digits are enough to read a rate: 0.52, 7.41, 28.3, 283. */
export function formatRate(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return '-';
  if (v >= 100) return v.toFixed(0);
  if (v >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

/** Cuts a string to `width` cells with an ellipsis (the dashboard's text is single-width). */
export function truncate(s: string, width: number): string {
  if (width <= 0) return '';
  return s.length <= width ? s : `${s.slice(0, Math.max(0, width - 1))}…`;
}

/** Cuts from the left, for paths, whose end (the file name) is the part worth keeping. */
export function truncateStart(s: string, width: number): string {
  if (width <= 0) return '';
  return s.length <= width ? s : `…${s.slice(s.length - width + 1)}`;
}

/** Word-wraps to `width` (words longer than a line are cut), with no space left at a line's start. */
export function wrapWords(text: string, width: number): string[] {
  const out: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    for (let w = word; w.length > 0; ) {
      const room = line ? width - line.length - 1 : width;
      if (w.length <= room) {
        line = line ? `${line} ${w}` : w;
        w = '';
      } else if (line) {
        out.push(line);
        line = '';
      } else {
        out.push(w.slice(0, width));
        w = w.slice(width);
      }
    }
  }
  if (line) out.push(line);
  return out;
}
