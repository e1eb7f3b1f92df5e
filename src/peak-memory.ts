/** The process's peak resident memory, for the `done` event and the benchmark. */
import { readFileSync } from 'node:fs';

/**
 * Peak resident set size in bytes. On Linux from /proc/self/status (VmHWM, the high-water mark of
 * this program's own memory): getrusage's maxrss survives exec, so a process spawned by a large
 * parent (the benchmark, holding three models) would report the parent's size from the fork
 * before exec. Elsewhere maxrss.
 */
export function peakRssBytes(): number {
  try {
    const m = /^VmHWM:\s+(\d+)\s+kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS * 1024;
}
