/**
 * `esrvid bench`: inference speed of esrvid's ONNX Runtime stage against the PyTorch reference,
 * the machine's FMA peak and the whole pipeline's efficiency (BENCHMARKS.md). Only the option
 * schema lives here; the suite is imported when the command runs, and imports neither FFmpeg
 * nor the terminal UI (the end-to-end part runs the CLI as a child process).
 */
import { availableParallelism } from 'node:os';
import { Option, type Command } from 'commander';
import { scopeOptions } from './scope-options.js';
import { UsageError } from '../errors.js';

export interface BenchCliOptions {
  model?: string[];
  size?: string[];
  batch?: string[];
  device: string;
  precision: 'fp32' | 'fp16' | 'int8';
  int8: boolean;
  runs: number;
  warmup: number;
  minTime: number;
  threads?: number;
  lanes?: number;
  reference: 'pytorch' | 'none';
  python?: string;
  pause: number;
  levers?: boolean;
  e2e?: boolean;
  e2eRuns: number;
  e2eModel: string;
  clip?: string;
  clipLoops: number;
  sweep?: boolean;
  sweepRuns: number;
  sweepSeconds: number;
  peakGflops?: number;
  json?: boolean;
  write?: string | boolean;
  quiet?: boolean;
}

const collect = (v: string, prev: string[] | undefined) => [...(prev ?? []), v];

function wholeNumber(name: string, min: number, max: number) {
  return (raw: string): number => {
    const v = Number(raw);
    if (!Number.isInteger(v) || v < min || v > max) throw new UsageError(`${name} must be a whole number from ${min} to ${max}, got "${raw}"`);
    return v;
  };
}

export function registerBench(program: Command, run: (o: BenchCliOptions, quiet: boolean) => Promise<void> = runBench): Command {
  // Everything after `bench` is bench's own, -q and --json included (src/commands/scope-options.ts).
  scopeOptions(program, ['bench']);
  return program.command('bench')
    .description('measure inference frames/s against the PyTorch reference, % of FMA peak, and end-to-end efficiency')
    .option('-m, --model <names>', 'models to measure, comma-separated or repeated (default: realesr-general-x4v3, realesr-animevideov3-x4, realesrgan-x4plus)', collect)
    .option('--size <WxH>', 'frame sizes, e.g. 320x180 (default: 160x90, 320x180, 640x360; 64x64, 128x72 for RRDBNet)', collect)
    .option('-b, --batch <n>', 'batch sizes (default: 1, plus 2 and 4 where frames are small)', collect)
    .addOption(new Option('--device <name>', 'execution device').choices(['cpu', 'cuda']).default('cpu'))
    .addOption(new Option('--precision <p>', 'model precision (int8: compact models; no PyTorch comparison)').choices(['fp32', 'fp16', 'int8']).default('fp32'))
    .option('--no-int8', 'skip the int8 rows (each compact model\'s int8 file against its float32 one)')
    .option('--runs <n>', 'measured runs per case (pairs, with the reference)', wholeNumber('--runs', 1, 1000), 5)
    .option('--warmup <n>', 'unmeasured runs before them', wholeNumber('--warmup', 0, 1000), 1)
    .option('--min-time <s>', 'fast cases get more runs (up to 3x --runs) until their measured runs take this long', wholeNumber('--min-time', 0, 3600), 8)
    .option('--threads <n>', 'inference threads for both runtimes (default: all cores)', wholeNumber('--threads', 1, 256))
    .option('--lanes <n>', 'esrvid sessions side by side, threads/lanes threads each (default: the pipeline\'s, one per core up to 4)', wholeNumber('--lanes', 1, 64))
    .addOption(new Option('--reference <name>', 'reference implementation to compare with').choices(['pytorch', 'none']).default('pytorch'))
    .option('--python <path>', 'Python with torch for the reference (default: ESRVID_BENCH_PYTHON, else the first of /usr/bin/python3 and the python3 on PATH that has torch)')
    .option('--pause <ms>', 'idle time between alternating runs', wholeNumber('--pause', 0, 10_000), 300)
    .option('--levers', 'also measure each lever on and off (default: only for the full default suite)')
    .option('--no-levers', 'skip the lever measurements')
    .option('--e2e', 'also time the whole CLI on a clip (default: only for the full default suite)')
    .option('--no-e2e', 'skip the end-to-end measurement')
    .option('--e2e-runs <n>', 'end-to-end runs', wholeNumber('--e2e-runs', 1, 100), 5)
    .option('--e2e-model <name>', 'model for the end-to-end runs', 'realesr-general-x4v3')
    .option('--clip <file>', 'video for the end-to-end runs (default: samples/chelsea.mp4)')
    .option('--clip-loops <n>', 'play the clip this many times in a row (stream copy) for the end-to-end runs, so start-up weighs as in a real job', wholeNumber('--clip-loops', 1, 100), 5)
    .option('--sweep', 'also measure the pipeline\'s efficiency for every model and size (default: only for the full default suite)')
    .option('--no-sweep', 'skip the efficiency sweep')
    .option('--sweep-runs <n>', 'pairs per model and size in the sweep', wholeNumber('--sweep-runs', 1, 100), 3)
    .option('--sweep-seconds <s>', 'each sweep job is long enough for about this many seconds of inference (24 to 240 frames)', wholeNumber('--sweep-seconds', 1, 3600), 15)
    .option('--peak-gflops <n>', 'the machine\'s FP32 FMA peak in GFLOP/s (default: measured, with the system C compiler)', Number)
    .option('--json', 'print the full result as JSON on stdout (progress stays on stderr)')
    .option('--write [file]', 'write the Markdown report (default file: BENCHMARKS.md)')
    .option('-q, --quiet', 'no progress lines on stderr')
    .action(async (o: BenchCliOptions) => {
      await run(o, !!o.quiet || !!program.opts().quiet);
    });
}


export async function runBench(o: BenchCliOptions, quiet: boolean): Promise<void> {
  if (o.device !== 'cpu') throw new UsageError(`--device ${o.device} is not benchmarked yet`, 'use --device cpu');
  const { parseSize, splitList } = await import('../bench/plan.js');
  let sizes: [number, number][] | undefined;
  try {
    sizes = o.size ? splitList(o.size).map(parseSize) : undefined;
  } catch (err) {
    throw new UsageError(`--size: ${(err as Error).message}`);
  }
  const batches = o.batch ? splitList(o.batch).map(wholeNumber('--batch', 1, 64)) : undefined;
  if (o.peakGflops !== undefined && !(o.peakGflops > 0)) throw new UsageError('--peak-gflops must be a positive number');
  const models = o.model ? splitList(o.model) : undefined;
  const fullSuite = !models && !sizes && !batches;
  const { defaultPython } = await import('../bench/torch-reference.js');
  const { SAMPLE_CLIP } = await import('../bench/end-to-end.js');
  const { runSuite } = await import('../bench/suite.js');
  const { renderMarkdown, renderSummary } = await import('../bench/report.js');
  const result = await runSuite({
    models, sizes, batches,
    device: 'cpu',
    precision: o.precision,
    int8: o.int8,
    runs: o.runs,
    warmup: o.warmup,
    minCaseMs: o.minTime * 1000,
    threads: o.threads ?? availableParallelism(),
    lanes: o.lanes,
    reference: o.reference,
    python: o.python ?? defaultPython(),
    pauseMs: o.pause,
    levers: o.levers ?? fullSuite,
    endToEnd: o.e2e ?? fullSuite,
    endToEndRuns: o.e2eRuns,
    endToEndModel: o.e2eModel,
    clip: o.clip ?? SAMPLE_CLIP,
    clipLoops: o.clipLoops,
    efficiencySweep: o.sweep ?? fullSuite,
    sweepRuns: o.sweepRuns,
    sweepSeconds: o.sweepSeconds,
    peakGflops: o.peakGflops,
    log: quiet ? () => undefined : (line) => process.stderr.write(`${line}\n`),
  });
  if (o.write) {
    const { readFile, writeFile } = await import('node:fs/promises');
    const file = typeof o.write === 'string' ? o.write : 'BENCHMARKS.md';
    // The attempts log is kept by hand beside the measurements (docs/performance-log.md).
    const log = await readFile(new URL('../../docs/performance-log.md', import.meta.url), 'utf8').catch(() => undefined);
    await writeFile(file, renderMarkdown(result, log));
    if (!quiet) process.stderr.write(`wrote ${file}\n`);
  }
  if (o.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else process.stdout.write(renderSummary(result));
}
