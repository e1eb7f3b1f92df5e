import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sweepFrames } from '../../src/bench/suite.js';
import { nativeKernel } from '../../src/infer/native-cpu.js';
import { runCli, tempDir } from '../helpers/media.js';

/**
 * `esrvid bench` runs with ONNX Runtime alone: no PyTorch, no C compiler needed (peak given), no
 * end-to-end run. Only the result's shape is checked; speed is never asserted in a test.
 */
describe('esrvid bench', () => {
  const tmp = tempDir('esrvid-bench-test-');
  afterAll(() => tmp.cleanup());

  it('measures the asked cases and writes JSON and BENCHMARKS-style Markdown', async () => {
    const md = join(tmp.dir, 'B.md');
    const r = await runCli(['bench', '-m', 'realesr-animevideov3-x4', '--size', '24x16', '-b', '1,2', '--runs', '2', '--warmup', '0', '--min-time', '0',
      '--reference', 'none', '--no-e2e', '--levers', '--peak-gflops', '100', '--json', '-q', '--write', md]);
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result.cases.map((c: { batch: number; esrvidMs: number[] }) => [c.batch, c.esrvidMs.length])).toEqual([[1, 2], [2, 2]]);
    expect(result.cases[0].torchFps).toBeUndefined();
    expect(result.models[0].flops.convFlopsPerInputPixel).toBe(2 * 9 * (64 * 3 + 16 * 64 * 64 + 48 * 64));
    expect(result.peak.gflops).toBe(100);
    expect(result.endToEnd).toBeUndefined();
    // Each lever on and off, alternating, for the one model at its first size.
    expect(result.levers.map((l: { lever: string; runs: number; width: number; batch: number }) => [l.lever, l.runs, l.width, l.batch]))
      .toEqual([['lanes', 2, 24, 1], ['CPU graph arrangement', 2, 24, 1], ['no thread spinning', 2, 24, 1], ['frame per call', 2, 24, 4], ['fused kernel', 2, 24, 1]]);
    // The compact model ran on the fused kernel where it is built (the report names the engine).
    expect(result.models[0].engine).toBe(nativeKernel() ? 'native' : 'onnxruntime');
    // The stage as the pipeline runs it: the threads shared out over the lanes.
    expect(result.stage.lanes * result.stage.threadsPerLane).toBeLessThanOrEqual(result.options.threads);
    expect(result.stage.lanes).toBeGreaterThanOrEqual(1);
    for (const l of result.levers) expect(l.onFps).toBeGreaterThan(0);
    // The compact model's int8 rows: its int8 file against its float32 one, at each size, batch 1.
    expect(result.int8.map((c: { model: string; width: number; height: number; runs: number; offered: boolean }) => [c.model, `${c.width}x${c.height}`, c.runs, c.offered]))
      .toEqual([['realesr-animevideov3-x4', '24x16', 2, true]]);
    expect(result.int8[0].minPsnrDb).toBeGreaterThanOrEqual(40);
    expect(result.int8[0].int8Fps).toBeGreaterThan(0);
    const text = readFileSync(md, 'utf8');
    expect(text).toContain('## int8 against float32 (esrvid only)');
    expect(text).toContain('| realesr-animevideov3-x4 | 24x16 | 2 |');
    expect(text).toContain('| PyTorch (reference) | not run |');
  });

  it('measures the FMA peak with the system C compiler, and the machine\'s FMA speed right around each case', async () => {
    const md = join(tmp.dir, 'P.md');
    const r = await runCli(['bench', '-m', 'realesr-animevideov3-x4', '--size', '24x16', '-b', '1', '--runs', '1', '--warmup', '0', '--min-time', '0',
      '--reference', 'none', '--no-e2e', '--no-levers', '--no-int8', '--json', '-q', '--write', md]);
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout);
    const peak = result.peak.gflops as number;
    expect(peak).toBeGreaterThan(1);
    // The probes around the case run the same kernel for ~a tenth of the time: near the peak, never far above it.
    const around = result.cases[0].caseFmaGflops as number;
    expect(around).toBeGreaterThan(0.2 * peak);
    expect(around).toBeLessThan(1.3 * peak);
    const row = readFileSync(md, 'utf8').split('\n').find((l) => l.startsWith('| realesr-animevideov3-x4 | 24x16 | 1 |'))!;
    const cells = row.split('|').map((x) => x.trim());
    // Columns 12 and 13 of the table: the speed around the case and esrvid's GFLOP/s as a share of it.
    expect(cells[12]).toBe(around.toFixed(0));
    expect(cells[13]).toBe(`${((100 * result.cases[0].esrvidGflops) / around).toFixed(0)}%`);
  });

  it('pairs whole CLI jobs with inference alone, alternating which goes first', async () => {
    const md = join(tmp.dir, 'E.md');
    const r = await runCli(['bench', '-m', 'realesr-animevideov3-x4', '--size', '160x90,24x16', '-b', '1', '--runs', '1', '--warmup', '0', '--min-time', '0',
      '--reference', 'none', '--no-levers', '--no-int8', '--e2e', '--e2e-model', 'realesr-animevideov3-x4', '--e2e-runs', '2', '--clip-loops', '1',
      '--sweep', '--sweep-runs', '1', '--sweep-seconds', '1', '--peak-gflops', '100', '--json', '--write', md], { timeoutMs: 240_000 });
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout);
    const e = result.endToEnd;
    // samples/chelsea.mp4: 48 frames of 160x90, upscaled x4 by the real model, in both jobs.
    expect(e.runs.map((x: { frames: number; inputSize: number[]; outputSize: number[] }) => [x.frames, x.inputSize, x.outputSize]))
      .toEqual([[48, [160, 90], [640, 360]], [48, [160, 90], [640, 360]]]);
    // At least 16 blocks of inference alone per pair (about half the job's frames otherwise).
    expect(e.inferOnlyMs.map((b: number[]) => b.length)).toEqual([16, 16]);
    expect(e.efficiency).toBeGreaterThan(0.2);
    expect(e.efficiency).toBeLessThan(2);
    // Where the jobs' core time went: the shares cover cores x elapsed; inference is most of it,
    // FFmpeg (probe, decoder, encoder, mux) took some, and no share is below rounding.
    const c = e.coreTime as { inference: number; esrvidOther: number; ffmpeg: number; idle: number };
    expect(c.inference + c.esrvidOther + c.ffmpeg + c.idle).toBeGreaterThan(0.9);
    expect(c.inference + c.esrvidOther + c.ffmpeg + c.idle).toBeLessThan(1.1);
    expect(c.inference).toBeGreaterThan(c.ffmpeg);
    expect(c.ffmpeg).toBeGreaterThan(0);
    expect(c.idle).toBeGreaterThan(-0.02);
    expect(e.aloneBusyShare).toBeGreaterThan(0.3);
    expect(e.aloneBusyShare).toBeLessThanOrEqual(1.02);
    // The first pair times the job first, the second times inference alone first.
    const lines = r.stderr.split('\n').filter((l) => l.includes('end to end 48 frames'));
    expect(lines).toHaveLength(2);
    expect(lines[0]).not.toContain('(timed first)');
    expect(lines[1]).toContain('inference alone');
    expect(lines[1]).toContain('(timed first)');
    const report = readFileSync(md, 'utf8');
    expect(report).toMatch(/\| pipeline efficiency \(median of per-pair ratios[^|]*\| \d+\.\d% \|/);
    expect(report).toMatch(/\| pipeline efficiency of each pair, in run order \| \d+\.\d%, \d+\.\d% \|/);
    expect(report).toMatch(/\| where the job's core time went [^|]*\| inference \d+\.\d%, esrvid's other work -?\d+\.\d%, FFmpeg \d+\.\d%, idle -?\d+\.\d% \|/);
    // The sweep: one row per model and size. 160x90 is the headline's own clip (not run again);
    // 24x16 is the sample scaled down, as long as one second of inference at the case's speed.
    const sweep = result.efficiencySweep as { width: number; height: number; reusesEndToEnd: boolean; runs: { frames: number; inputSize: number[]; outputSize: number[] }[]; inferOnlyMs: number[][]; efficiency: number }[];
    expect(sweep.map((w) => [w.width, w.height, w.reusesEndToEnd, w.runs.length])).toEqual([[160, 90, true, 2], [24, 16, false, 1]]);
    const small = sweep[1]!;
    const fps = result.cases.find((c: { width: number }) => c.width === 24).esrvidFps;
    expect(small.runs[0]!.frames).toBe(sweepFrames(fps, 1));
    expect([small.runs[0]!.inputSize, small.runs[0]!.outputSize]).toEqual([[24, 16], [96, 64]]);
    expect(small.inferOnlyMs[0]!.length).toBeGreaterThanOrEqual(3);
    expect(small.efficiency).toBeGreaterThan(0);
    expect(report).toContain('### Pipeline efficiency for every model and size');
    expect(report).toMatch(/\| realesr-animevideov3-x4 \| 160x90 -> 640x360 \| 48 \| [\d.]+ \| [\d.]+ \| \d+\.\d% \(above\) \|/);
    expect(report).toMatch(new RegExp(`\\| realesr-animevideov3-x4 \\| 24x16 -> 96x64 \\| ${sweepFrames(fps, 1)} \\| [\\d.]+ \\| [\\d.]+ \\| \\d+\\.\\d% \\|`));
  }, 260_000);

  it('refuses devices it cannot measure yet and bad sizes, with usage errors', async () => {
    const cuda = await runCli(['bench', '--device', 'cuda']);
    expect(cuda.code).toBe(2);
    expect(cuda.stderr).toContain('--device cuda is not benchmarked yet');
    const size = await runCli(['bench', '--size', '320']);
    expect(size.code).toBe(2);
    expect(size.stderr).toContain('"320" is not a frame size');
  });
});
