/**
 * How much of the machine other work took while a case ran: CPU time the whole machine spent
 * busy (/proc/stat) minus what this process (ONNX Runtime's threads included), the PyTorch
 * reference and finished end-to-end runs spent, per second of wall time. 0 means the cores were ours; 1 means one core's
 * worth of other work on average. Linux only; undefined elsewhere.
 */
import { readFileSync } from 'node:fs';
import { cpuTime, processCpuMs, TICK_MS } from '../cpu-time.js';

export interface CpuSnapshot {
  wallMs: number;
  machineBusyMs: number;
  ownMs: number;
}

/** Busy time of all CPUs from the first line of /proc/stat (everything but idle and iowait). */
export function machineBusyMs(procStat: string): number {
  const line = procStat.split('\n').find((l) => l.startsWith('cpu '));
  if (!line) return Number.NaN;
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
  void idle;
  void iowait;
  return ((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)) * TICK_MS;
}

/**
 * `livePids`: children still running (the PyTorch reference); finished children (an end-to-end
 * run and its FFmpeg processes) are counted through this process's reaped-children time.
 */
export function snapshot(livePids: readonly number[] = []): CpuSnapshot | undefined {
  try {
    const own = cpuTime();
    if (own.childrenMs === undefined) return undefined;
    let ownMs = own.processMs + own.childrenMs;
    for (const pid of livePids) ownMs += processCpuMs(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    return { wallMs: performance.now(), machineBusyMs: machineBusyMs(readFileSync('/proc/stat', 'utf8')), ownMs };
  } catch {
    return undefined;
  }
}

/** Cores' worth of other work between two snapshots (never below 0: tick rounding). */
export function otherLoad(a: CpuSnapshot | undefined, b: CpuSnapshot | undefined): number | undefined {
  if (!a || !b || b.wallMs <= a.wallMs) return undefined;
  const other = (b.machineBusyMs - a.machineBusyMs) - (b.ownMs - a.ownMs);
  return Math.max(0, other / (b.wallMs - a.wallMs));
}
