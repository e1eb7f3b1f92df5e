/** Plain-text formatting shared by the commands' output. */

import type { DoneEvent } from '../events.js';

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n;
  let u = -1;
  do {
    v /= 1024;
    u++;
  } while (v >= 1024 && u < units.length - 1);
  return `${v >= 100 ? v.toFixed(0) : v.toFixed(1)} ${units[u]}`;
}

/** A left-aligned table with a header rule, columns sized to their widest cell. */
export function renderTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd() + '\n';
  return line(header) + line(widths.map((w) => '-'.repeat(w))) + rows.map(line).join('');
}

/** ", N identical to the frame before (not upscaled again)" when the job reused any frame. */
export function reusedNote(e: Pick<DoneEvent, 'reusedFrames'>): string {
  const n = e.reusedFrames ?? 0;
  return n > 0 ? `, ${n} identical to the frame before (not upscaled again)` : '';
}
