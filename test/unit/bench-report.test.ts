import { describe, expect, it } from 'vitest';
import { bestBatches, caseRows, int8Rows, markdownTable, renderMarkdown, renderSummary, sweepRows } from '../../src/bench/report.js';
import { sweepFrames } from '../../src/bench/suite.js';
import type { CaseResult, SuiteResult } from '../../src/bench/suite.js';

function caseResult(batch: number, esrvidFps: number, torchFps?: number, caseFmaGflops?: number): CaseResult {
  return {
    ...(caseFmaGflops === undefined ? {} : { caseFmaGflops }),
    model: 'realesr-general-x4v3', width: 160, height: 90, batch,
    esrvidMs: [1000 / esrvidFps], esrvidFps, esrvidBestFps: esrvidFps * 1.1, esrvidGflops: esrvidFps * 34.82, esrvidSpread: 0.05, otherLoad: 0.04,
    ...(torchFps === undefined ? {} : { torchMs: [1000 / torchFps], torchFps, torchBestFps: torchFps, torchGflops: torchFps * 34.82, ratio: esrvidFps / torchFps }),
  };
}

const suite: SuiteResult = {
  startedAt: '2026-01-02T03:04:05.000Z',
  loadAverages: [2.1, 2.5, 3.9],
  durationMs: 321_000,
  machine: { cpu: 'AMD EPYC', cpuId: 'AuthenticAMD family 26 model 2 (Zen 5)', logicalCpus: 2, memoryBytes: 24 * 2 ** 30, avx512: true, kernel: '6.1' },
  versions: { esrvid: '0.1.0', node: 'v20.20.2', onnxruntime: '1.29.0', torch: { torch: '1.13.0', threads: 2, mkldnn: true } },
  options: {
    device: 'cpu', precision: 'fp32', int8: true, runs: 5, warmup: 1, minCaseMs: 8000, threads: 2, reference: 'pytorch', pauseMs: 300,
    levers: true, endToEnd: true, endToEndRuns: 3, endToEndModel: 'realesr-general-x4v3', clip: 'samples/chelsea.mp4', clipLoops: 5,
    efficiencySweep: false, sweepRuns: 3, sweepSeconds: 15,
  },
  peak: { gflops: 540, measured: [{ gflops512: 540, gflops256: 270, gflopsOneThread: 272, threads: 2, compiler: 'cc 12' }] },
  models: [{
    name: 'realesr-general-x4v3', path: 'models/realesr-general-x4v3.onnx', architecture: 'SRVGGNetCompact',
    torchArchitecture: { type: 'SRVGGNetCompact', num_in_ch: 3, num_out_ch: 3, num_feat: 64, num_conv: 32, upscale: 4 },
    flops: { convFlopsPerInputPixel: 2_418_048, convCount: 34, parameterCount: 1_213_296 }, loadMs: 50, engine: 'native',
    parity: { maxAbs: 1.1e-6, meanAbs: 1e-7, sameByte: 0.99995, width: 32, height: 24, ok: true },
  }],
  cases: [caseResult(1, 5, 4), caseResult(2, 6, 4.8)],
  levers: [{ lever: 'CPU graph arrangement', model: 'realesr-general-x4v3', width: 160, height: 90, batch: 1, onFps: 13.2, offFps: 11.0, speedup: 1.19, runs: 5, otherLoad: 0.05 }],
  int8: [
    { model: 'realesr-animevideov3-x4', width: 160, height: 90, fp32Fps: 17, int8Fps: 30.6, fp32BestFps: 18, int8BestFps: 32, ratio: 1.8, runs: 15, minPsnrDb: 41.86, medianPsnrDb: 42.72, offered: true, otherLoad: 0.1 },
    { model: 'realesr-general-x4v3', width: 160, height: 90, fp32Fps: 9, int8Fps: 16.2, fp32BestFps: 9.5, int8BestFps: 17, ratio: 1.8, runs: 15, minPsnrDb: 37.9, medianPsnrDb: 39.6, offered: false },
  ],
  endToEnd: {
    clip: 'samples/chelsea.mp4', clipLoops: 5, model: 'realesr-general-x4v3',
    runs: [{ frames: 240, elapsedMs: 8000, wallMs: 8400, peakRssBytes: 400 * 2 ** 20, stageMs: { decode: 20, infer: 7000, encode: 400 }, inputSize: [160, 90], outputSize: [640, 360], firstFrameMs: 450 }],
    inferOnlyMs: [[40, 40]], endToEndFps: 30, inferOnlyFps: 25, pairOtherLoad: [0.1], efficiency: 1.2, efficiencyPairs: 'quiet', inPipelineInferFps: 6.86, inferBusyShare: 0.875, peakRssBytes: 400 * 2 ** 20,
    coreTime: { inference: 0.9012, esrvidOther: 0.012, ffmpeg: 0.031, idle: 0.0558 }, aloneBusyShare: 0.993,
  },
  notes: ['an example note'],
};

describe('bench report', () => {
  it('table rows: fps, paired ratio, GFLOP/s and percent of peak; dashes where there is no reference', () => {
    expect(caseRows([caseResult(1, 5, 4)], 540)).toEqual([
      ['realesr-general-x4v3', '160x90', '1', '5.00', '4.00', '1.25x', '174', '32%', '139', '26%', '0.0', '-', '-'],
    ]);
    expect(caseRows([caseResult(1, 5)], undefined)[0]!.slice(3)).toEqual(['5.00', '-', '-', '174', '-', '-', '-', '0.0', '-', '-']);
    // Measured while the machine ran its FMA kernel at 290 GFLOP/s instead of 540: 174 is 60% of that.
    expect(caseRows([caseResult(1, 5, 4, 290)], 540)[0]!.slice(6)).toEqual(['174', '32%', '139', '26%', '0.0', '290', '60%']);
  });

  it('best batch per model and size', () => {
    expect(bestBatches([caseResult(1, 5), caseResult(2, 6), caseResult(4, 5.5)]).map((c) => c.batch)).toEqual([2]);
  });

  it('terminal summary: the table, best batch, peak, end to end and notes', () => {
    const text = renderSummary(suite);
    expect(text.split('\n')[0]).toMatch(/^model\s+size\s+batch\s+esrvid fps\s+PyTorch fps\s+esrvid\/PyTorch/);
    expect(text).toContain('best batch: realesr-general-x4v3 160x90: 2');
    expect(text).toContain('FMA peak: 540 GFLOP/s (2 threads, FP32)');
    expect(text).toContain('30.00 fps vs inference alone 25.00 fps: pipeline efficiency 120.0% (per pair 120.0), inference busy 88% of the time, peak RSS 400 MB');
    expect(text).toContain('note: an example note');
    expect(text).toContain('lever "CPU graph arrangement" realesr-general-x4v3 160x90: 13.20 fps with, 11.00 without (1.19x)');
    expect(text).toContain('load average during the suite: median 2.5, max 3.9 (the suite itself adds about 2)');
    expect(text).toContain('suite took 321 s');
  });

  it('BENCHMARKS.md: machine, versions, method, results, end to end', () => {
    const md = renderMarkdown(suite);
    for (const s of [
      '# Benchmarks', '| CPU | AMD EPYC, AuthenticAMD family 26 model 2 (Zen 5), 2 logical CPUs, AVX-512 |',
      '| onnxruntime-node | 1.29.0 |', '| PyTorch (reference) | 1.13.0, oneDNN on |',
      '| FMA peak | 540 GFLOP/s FP32 (measured: 540 at 512-bit, 270 at 256-bit vectors on 2 threads, 272 on one thread; cc 12) |',
      '| realesr-general-x4v3 | 160x90 | 1 | 5.00 | 4.00 | 1.25x | 174 | 32% | 139 | 26% | 0.0 | - | - | 1 | 5.50 | 4.00 | 1.38x |',
      'Best batch for esrvid (by median): realesr-general-x4v3 160x90: 2.',
      '| realesr-general-x4v3 | fused kernel (src/native/srvgg.c) | SRVGGNetCompact, 32 body convs, 64 features, PReLU, x4 | 2.42 M | 1.21 M | max \\|diff\\| 1.1e-6, 99.995% same 8-bit |',
      '| pipeline efficiency (median of per-pair ratios, quiet pairs: other load <= 0.3) | 120.0% |', '| pipeline efficiency of each pair, in run order | 120.0% |', '| other load per pair (cores) | 0.1 |', '| peak RSS of the esrvid process | 400 MB |',
      '## Method', '- an example note',
      '| CPU graph arrangement | realesr-general-x4v3 | 160x90 | 1 | 13.20 | 11.00 | 1.19x | 0.1 |',
      'played 5 times in a row (`ffmpeg -stream_loop 4 -c copy`: a 240-frame job',
      '| start-up: job start to the first upscaled frame (median, ms; includes that frame\'s inference) | 450 |',
    ]) expect(md).toContain(s);
  });

  it('end to end: where the job\'s core time went, in the summary and in BENCHMARKS.md; nothing where it was not measured', () => {
    const line = 'inference 90.1%, esrvid\'s other work 1.2%, FFmpeg 3.1%, idle 5.6%';
    expect(renderSummary(suite)).toContain(`  the job's core time: ${line}; inference alone kept 99.3% of the cores busy\n`);
    const md = renderMarkdown(suite);
    expect(md).toContain(`| where the job's core time went (cores x elapsed; each share the median over the pairs) | ${line} |`);
    expect(md).toContain('| inference alone: its CPU time / (cores x its wall time) | 99.3% |');
    const without = { ...suite, endToEnd: { ...suite.endToEnd!, coreTime: undefined, aloneBusyShare: undefined } };
    expect(renderSummary(without)).not.toContain('core time');
    expect(renderMarkdown(without)).not.toContain('core time went');
  });

  it('BENCHMARKS.md ends with the hand-kept attempts log when given', () => {
    const md = renderMarkdown(suite, '## Attempts\n\n| # | attempt |\n');
    expect(md.trimEnd().endsWith('| # | attempt |')).toBe(true);
    expect(md.indexOf('## Attempts')).toBeGreaterThan(md.indexOf('## Method'));
    expect(renderMarkdown(suite)).not.toContain('## Attempts');
  });

  it('int8 rows: fps side by side, paired ratio, PSNR and whether the model is offered', () => {
    expect(int8Rows(suite.int8)).toEqual([
      ['realesr-animevideov3-x4', '160x90', '17.00', '30.60', '1.80x', '18.00', '32.00', '41.9 / 42.7 dB', 'yes', '0.1'],
      ['realesr-general-x4v3', '160x90', '9.00', '16.20', '1.80x', '9.50', '17.00', '37.9 / 39.6 dB', 'no (< 40 dB)', '-'],
    ]);
    expect(renderMarkdown(suite)).toContain('## int8 against float32 (esrvid only)');
    expect(renderMarkdown(suite)).toContain('| realesr-animevideov3-x4 | 160x90 | 17.00 | 30.60 | 1.80x | 18.00 | 32.00 | 41.9 / 42.7 dB | yes | 0.1 |');
    expect(renderSummary(suite)).toContain('int8 against float32 (esrvid, batch 1)');
    expect(renderMarkdown({ ...suite, int8: [] })).not.toContain('## int8');
  });

  it('efficiency sweep: a row per model and size, the headline marked, per-pair figures and the largest other load', () => {
    const headline = { ...suite.endToEnd!, width: 160, height: 90, reusesEndToEnd: true };
    const big = {
      ...suite.endToEnd!, clipLoops: 1, width: 640, height: 360, reusesEndToEnd: false, coreTime: undefined,
      runs: [1, 2].map((k) => ({ frames: 24, elapsedMs: 26_000 + 1000 * k, wallMs: 0, peakRssBytes: 900 * 2 ** 20, stageMs: { decode: 5, infer: 25_000, encode: 900 }, inputSize: [640, 360] as [number, number], outputSize: [2560, 1440] as [number, number], firstFrameMs: 1200 + k })),
      inferOnlyMs: [[1100, 1100, 1100], [1000, 1000, 1000]], endToEndFps: 0.89, inferOnlyFps: 0.95, pairOtherLoad: [0.1, undefined], efficiency: 0.93, inferBusyShare: 0.92, peakRssBytes: 900 * 2 ** 20,
    };
    expect(sweepRows([headline, big])).toEqual([
      ['realesr-general-x4v3', '160x90 -> 640x360', '240', '30.00', '25.00', '120.0% (above)', '120.0', '88%', '90.1 / 1.2 / 3.1 / 5.6', '450', '400 MB', '0.1'],
      // 24 frames in 27 s = 0.889 fps against 1/1.1 s = 0.909: 97.8%; 24/28 = 0.857 against 1: 85.7%.
      ['realesr-general-x4v3', '640x360 -> 2560x1440', '24', '0.89', '0.95', '93.0%', '97.8, 85.7', '92%', '-', '1202', '900 MB', '0.1'],
    ]);
    const withSweep = { ...suite, efficiencySweep: [headline, big] };
    const md = renderMarkdown(withSweep);
    expect(md).toContain('### Pipeline efficiency for every model and size');
    expect(md).toContain('| realesr-general-x4v3 | 640x360 -> 2560x1440 | 24 | 0.89 | 0.95 | 93.0% | 97.8, 85.7 | 92% | - | 1202 | 900 MB | 0.1 |');
    expect(md.indexOf('### Pipeline efficiency')).toBeGreaterThan(md.indexOf('## End to end'));
    expect(renderSummary(withSweep)).toContain('pipeline efficiency for every model and size (batch 1):');
    expect(renderMarkdown(suite)).not.toContain('### Pipeline efficiency');
  });

  it('sweep jobs hold about the asked seconds of inference, from 24 to 240 frames', () => {
    expect(sweepFrames(3.56, 15)).toBe(53);
    expect(sweepFrames(0.87, 15)).toBe(24);
    expect(sweepFrames(27.4, 15)).toBe(240);
    expect(sweepFrames(Number.NaN, 15)).toBe(24);
  });

  it('markdown tables align numeric columns right', () => {
    expect(markdownTable(['a', 'n'], [['x', '1']], ['l', 'r'])).toBe('| a | n |\n| --- | ---: |\n| x | 1 |\n');
  });
});
