/**
 * CPU time spent by this process and by the child processes it has waited for (FFmpeg, ffprobe),
 * for the `done` event: what a job cost the machine besides its wall time. The benchmark splits
 * it into inference, esrvid's other work, FFmpeg and idle cores.
 */
import { readFileSync } from 'node:fs';

/** Linux reports /proc times in USER_HZ ticks, 100 per second on every mainstream build. */
export const TICK_MS = 10;

/** The fields after "pid (comm) " of a /proc/<pid>/stat line (the command name may hold spaces). */
function statFields(pidStat: string): string[] {
  return pidStat.slice(pidStat.lastIndexOf(')') + 2).split(' ');
}

/** utime + stime of a process from its /proc/<pid>/stat line. */
export function processCpuMs(pidStat: string): number {
  const fields = statFields(pidStat);
  // Field 3 (state) is index 0, so utime (14) and stime (15) are 11 and 12.
  return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
}

/** cutime + cstime: CPU time of the children a process has waited for (and theirs, recursively). */
export function reapedChildrenCpuMs(pidStat: string): number {
  const fields = statFields(pidStat);
  return (Number(fields[13]) + Number(fields[14])) * TICK_MS;
}

export interface CpuTime {
  /** This process, every thread (the main thread, the inference workers and their lanes), ms. */
  processMs: number;
  /** Children waited for so far (Linux: /proc/self/stat, 10 ms ticks); undefined elsewhere. */
  childrenMs?: number;
}

export function cpuTime(): CpuTime {
  const own = process.cpuUsage();
  const processMs = (own.user + own.system) / 1000;
  try {
    return { processMs, childrenMs: reapedChildrenCpuMs(readFileSync('/proc/self/stat', 'utf8')) };
  } catch {
    return { processMs };
  }
}

/** CPU time between two readings, as the `done` event reports it. */
export function cpuTimeSince(start: CpuTime): { process: number; children?: number } {
  const now = cpuTime();
  const process = Math.round(now.processMs - start.processMs);
  return now.childrenMs !== undefined && start.childrenMs !== undefined ? { process, children: now.childrenMs - start.childrenMs } : { process };
}
