/** The machine and software a benchmark ran on, for its report. */
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus, release, totalmem } from 'node:os';

export interface MachineInfo {
  cpu: string;
  /** x86 family/model, e.g. "AMD family 26 model 2 (Zen 5)". */
  cpuId: string;
  logicalCpus: number;
  memoryBytes: number;
  avx512: boolean;
  kernel: string;
}

export function describeMachine(): MachineInfo {
  let cpuinfo = '';
  try {
    cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    // not Linux: fall back to what os.cpus() says
  }
  const field = (name: string) => new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm').exec(cpuinfo)?.[1]?.trim();
  const vendor = field('vendor_id');
  const family = field('cpu family');
  const model = field('model');
  const flags = field('flags') ?? '';
  return {
    cpu: field('model name') ?? cpus()[0]?.model ?? 'unknown',
    cpuId: family ? `${vendor ?? ''} family ${family} model ${model ?? '?'}${amdCore(vendor, Number(family))}`.trim() : 'unknown',
    logicalCpus: availableParallelism(),
    memoryBytes: totalmem(),
    avx512: /\bavx512f\b/.test(flags),
    kernel: release(),
  };
}

function amdCore(vendor: string | undefined, family: number): string {
  if (vendor !== 'AuthenticAMD') return '';
  const names: Record<number, string> = { 23: 'Zen/Zen 2', 25: 'Zen 3/Zen 4', 26: 'Zen 5' };
  return names[family] ? ` (${names[family]})` : '';
}
