/** The benchmark's output: a terminal table, and BENCHMARKS.md (machine, date, versions, method). */
import { formatBytes, renderTable } from '../commands/format.js';
import { framesPerSecond, median } from './stats.js';
import { describeLever, LEVERS } from './levers.js';
import { PARITY_TOLERANCE, QUIET_LOAD, type CaseResult, type EndToEndResult, type SuiteResult } from './suite.js';
import { describeCoreTime, type CoreTime } from './end-to-end.js';

const f2 = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? '-' : x >= 100 ? x.toFixed(0) : x.toFixed(2));
const f0 = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(0));
const pct = (x: number | undefined, peak: number | undefined) => (x === undefined || !peak ? '-' : `${((100 * x) / peak).toFixed(0)}%`);
const ratio = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? '-' : `${x.toFixed(2)}x`);

export const TABLE_HEADER = ['model', 'size', 'batch', 'esrvid fps', 'PyTorch fps', 'esrvid/PyTorch', 'esrvid GFLOP/s', '% peak', 'PyTorch GFLOP/s', '% peak', 'other load',
  'FMA GFLOP/s around it', 'esrvid % of that'];

export function caseRows(cases: readonly CaseResult[], peak: number | undefined): string[][] {
  return cases.map((c) => [
    c.model, `${c.width}x${c.height}`, String(c.batch), f2(c.esrvidFps), f2(c.torchFps), ratio(c.ratio),
    f0(c.esrvidGflops), pct(c.esrvidGflops, peak), f0(c.torchGflops), pct(c.torchGflops, peak),
    c.otherLoad === undefined ? '-' : c.otherLoad.toFixed(1),
    f0(c.caseFmaGflops), pct(c.esrvidGflops, c.caseFmaGflops),
  ]);
}

export const INT8_HEADER = ['model', 'size', 'fp32 fps', 'int8 fps', 'int8/fp32', 'fp32 best', 'int8 best', 'PSNR vs fp32 (min / median)', 'offered', 'other load'];

export function int8Rows(cases: SuiteResult['int8'] | undefined): string[][] {
  return (cases ?? []).map((c) => [
    c.model, `${c.width}x${c.height}`, f2(c.fp32Fps), f2(c.int8Fps), ratio(c.ratio), f2(c.fp32BestFps), f2(c.int8BestFps),
    `${c.minPsnrDb.toFixed(1)} / ${c.medianPsnrDb.toFixed(1)} dB`, c.offered ? 'yes' : 'no (< 40 dB)',
    c.otherLoad === undefined ? '-' : c.otherLoad.toFixed(1),
  ]);
}

/** Per model and size, the batch at which esrvid is fastest. */
export function bestBatches(cases: readonly CaseResult[]): CaseResult[] {
  const best = new Map<string, CaseResult>();
  for (const c of cases) {
    const key = `${c.model} ${c.width}x${c.height}`;
    const b = best.get(key);
    if (!b || c.esrvidFps > b.esrvidFps) best.set(key, c);
  }
  return [...best.values()];
}

/** End-to-end efficiency as a percentage with one decimal: the target is 95%, and a rounded 95% hid 94.96% once. */
const percent1 = (x: number) => `${(100 * x).toFixed(1)}%`;

/** Each pair's end-to-end frames/s over its inference-alone frames/s, in run order. */
function pairEfficiencies(e: EndToEndResult): number[] {
  return e.runs.map((run, i) => {
    const block = e.inferOnlyMs[i] ?? [];
    return framesPerSecond(run.frames, run.elapsedMs) / framesPerSecond(block.length, block.reduce((a, b) => a + b, 0));
  });
}

/** The pairs' efficiencies as percentages with one decimal, "95.2, 94.8, ...". */
const pairPercents = (e: EndToEndResult) => pairEfficiencies(e).map((x) => (100 * x).toFixed(1)).join(', ');

/** The same as one table cell: "90.1 / 1.2 / 3.1 / 5.6". */
const coreTimeCell = (c: CoreTime | undefined) => (c ? [c.inference, c.esrvidOther, c.ffmpeg, c.idle].map((x) => (100 * x).toFixed(1)).join(' / ') : '-');

export const SWEEP_HEADER = ['model', 'frames in -> out', 'frames', 'end-to-end fps', 'inference alone fps', 'pipeline efficiency', 'per pair', 'inference busy',
  'core time %: inference / esrvid other / FFmpeg / idle', 'start-up ms', 'peak RSS', 'other load'];

/** One row per model and size of the efficiency sweep. */
export function sweepRows(rows: SuiteResult['efficiencySweep']): string[][] {
  return (rows ?? []).map((e) => {
    const run = e.runs[0];
    const loads = e.pairOtherLoad.filter((l): l is number => l !== undefined);
    return [
      e.model, run ? `${run.inputSize.join('x')} -> ${run.outputSize.join('x')}` : `${e.width}x${e.height}`, String(run?.frames ?? '-'),
      f2(e.endToEndFps), f2(e.inferOnlyFps), `${percent1(e.efficiency)}${e.reusesEndToEnd ? ' (above)' : ''}`,
      pairPercents(e), `${(100 * e.inferBusyShare).toFixed(0)}%`, coreTimeCell(e.coreTime),
      f0(medianOf(e.runs.map((x) => x.firstFrameMs))), formatBytes(e.peakRssBytes), loads.length > 0 ? Math.max(...loads).toFixed(1) : '-',
    ];
  });
}

/** The table and summary lines printed at the end of a run. */
export function renderSummary(r: SuiteResult): string {
  const peak = r.peak?.gflops;
  let out = renderTable(TABLE_HEADER, caseRows(r.cases, peak));
  const best = bestBatches(r.cases).filter((c) => r.cases.some((k) => k.model === c.model && k.width === c.width && k.height === c.height && k.batch !== c.batch));
  if (best.length > 0) {
    out += `\nbest batch: ${best.map((c) => `${c.model} ${c.width}x${c.height}: ${c.batch}`).join('; ')}\n`;
  }
  if (r.int8?.length) out += `\nint8 against float32 (esrvid, batch 1):\n${renderTable(INT8_HEADER, int8Rows(r.int8))}`;
  if (peak) out += `FMA peak: ${peak.toFixed(0)} GFLOP/s (${r.options.threads} threads, FP32)\n`;
  for (const l of r.levers) out += `${describeLever(l)}\n`;
  const e = r.endToEnd;
  if (e) {
    out += `end to end (${e.model}, ${e.runs[0]?.frames ?? '?'} frames of ${e.runs[0]?.inputSize.join('x') ?? '?'}): ${f2(e.endToEndFps)} fps vs inference alone ${f2(e.inferOnlyFps)} fps: `
      + `pipeline efficiency ${percent1(e.efficiency)} (per pair ${pairPercents(e)}), inference busy ${(100 * e.inferBusyShare).toFixed(0)}% of the time, peak RSS ${formatBytes(e.peakRssBytes)}\n`;
    if (e.coreTime) out += `  the job's core time: ${describeCoreTime(e.coreTime)}${e.aloneBusyShare !== undefined ? `; inference alone kept ${percent1(e.aloneBusyShare)} of the cores busy` : ''}\n`;
  }
  if (r.efficiencySweep?.length) out += `\npipeline efficiency for every model and size (batch 1):\n${renderTable(SWEEP_HEADER, sweepRows(r.efficiencySweep))}`;
  for (const n of r.notes) out += `note: ${n}\n`;
  if (r.loadAverages.length > 0) out += `load average during the suite: median ${median(r.loadAverages).toFixed(1)}, max ${Math.max(...r.loadAverages).toFixed(1)} (the suite itself adds about ${r.options.threads})\n`;
  out += `suite took ${(r.durationMs / 1000).toFixed(0)} s\n`;
  return out;
}

/** A Markdown table (GitHub style). */
export function markdownTable(header: string[], rows: string[][], align?: ('l' | 'r')[]): string {
  const rule = header.map((_, i) => ((align?.[i] ?? 'l') === 'r' ? '---:' : '---'));
  return [header, rule, ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n') + '\n';
}

/** `log`: a hand-kept Markdown section appended as it is (docs/performance-log.md: the attempts). */
export function renderMarkdown(r: SuiteResult, log?: string): string {
  const peak = r.peak?.gflops;
  const m = r.machine;
  const lines: string[] = [];
  const push = (...s: string[]) => lines.push(...s);
  push('# Benchmarks', '');
  push(`Written by \`npm run bench\` (scripts/bench.sh, which runs \`esrvid bench --write BENCHMARKS.md\`) on ${r.startedAt.slice(0, 10)}. `
    + 'Re-run it to refresh this file; numbers from another machine or day are not comparable with these.', '');
  push('## Machine and software', '');
  push(markdownTable(['', ''], [
    ['CPU', `${m.cpu}, ${m.cpuId}, ${m.logicalCpus} logical CPUs${m.avx512 ? ', AVX-512' : ''}`],
    ['memory', formatBytes(m.memoryBytes)],
    ['kernel', m.kernel],
    ['date', r.startedAt],
    ['esrvid', r.versions.esrvid],
    ['Node.js', r.versions.node],
    ['onnxruntime-node', r.versions.onnxruntime],
    ['PyTorch (reference)', r.versions.torch ? `${r.versions.torch.torch}, oneDNN ${r.versions.torch.mkldnn ? 'on' : 'off'}` : 'not run'],
    ['threads', `${r.options.threads} in all: esrvid ${r.stage ? `${r.stage.lanes} lane(s) x ${r.stage.threadsPerLane} thread(s)` : 'ONNX Runtime intra-op'}; PyTorch set_num_threads(${r.options.threads})`],
    ['precision', r.options.precision],
    ['FMA peak', peak ? `${peak.toFixed(0)} GFLOP/s FP32 (${peakHow(r)})` : 'not measured'],
  ]));
  push('## Inference: esrvid vs PyTorch', '');
  push('Frames per second at `batch` frames per inference call (uint8 RGB frames in, uint8 frames out, as the pipeline does), '
    + `median of ${r.options.runs} runs after ${r.options.warmup} warm-up (fast cases: more runs, up to ${3 * r.options.runs}, until ${r.options.minCaseMs / 1000} s of measured time); `
    + 'esrvid/PyTorch is the median of the per-pair ratios (esrvid and PyTorch runs alternate on the same frames). GFLOP/s counts the convolutions only (2 per multiply-accumulate), '
    + 'from the ONNX graph; % peak is of the FMA peak above.', '');
  push(markdownTable([...TABLE_HEADER, 'runs', 'esrvid best', 'PyTorch best', 'best/best'],
    caseRows(r.cases, peak).map((row, i) => {
      const c = r.cases[i]!;
      return [...row, String(c.esrvidMs.length), f2(c.esrvidBestFps), f2(c.torchBestFps), c.torchBestFps ? ratio(c.esrvidBestFps / c.torchBestFps) : '-'];
    }),
    ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r']));
  push('"other load" is the CPU time other processes took while the case ran, in cores (from /proc/stat, less what esrvid and PyTorch used): '
    + `with ${r.options.threads} cores, anything above ~0.2 means the two runtimes were sharing them. "best" is the fastest single run of each runtime: `
    + 'on a busy machine the medians and the paired ratio move with the load (PyTorch\'s OpenMP threads suffer more from sharing cores than ONNX Runtime\'s pool), '
    + 'while the best runs approach what each runtime does with the cores to itself. '
    + '"FMA GFLOP/s around it" is the FMA peak kernel run on every thread right before and right after the case (~0.1 s each, the mean of the two): '
    + 'a shared machine can be slowed for minutes by work outside it that /proc/stat does not show, which slows both runtimes alike '
    + 'and so leaves their ratio standing but lowers "% peak"; "esrvid % of that" is esrvid\'s speed against the machine\'s speed at the time.', '');
  const best = bestBatches(r.cases).filter((c) => r.cases.some((k) => k.model === c.model && k.width === c.width && k.height === c.height && k.batch !== c.batch));
  if (best.length > 0) push(`Best batch for esrvid (by median): ${best.map((c) => `${c.model} ${c.width}x${c.height}: ${c.batch}`).join('; ')}.`, '');
  push('### Models', '');
  push(markdownTable(['model', 'esrvid engine', 'architecture (as rebuilt in PyTorch)', 'conv FLOPs per input pixel', 'parameters', 'PyTorch vs ONNX (32x24 frame)'],
    r.models.map((mr) => [
      mr.name,
      mr.engine === 'native' ? 'fused kernel (src/native/srvgg.c)' : 'ONNX Runtime',
      mr.torchArchitecture ? describeArch(mr.torchArchitecture) : mr.architecture,
      `${(mr.flops.convFlopsPerInputPixel / 1e6).toFixed(2)} M`,
      `${(mr.flops.parameterCount / 1e6).toFixed(2)} M`,
      mr.parity ? `max \\|diff\\| ${mr.parity.maxAbs.toExponential(1)}, ${(100 * mr.parity.sameByte).toFixed(3)}% same 8-bit${mr.parity.ok ? '' : ' (FAILED)'}` : '-',
    ])));
  if (r.levers.length > 0) {
    push('## Levers, each measured on and off in this run', '');
    push('One change to esrvid\'s inference stage at a time, against the same stage without it (the same `Upscaler`, frames and threads), '
      + `alternating run by run with the same pause, ${r.levers[0]!.runs} pairs each, batch 1 unless the table says; "with/without" is the median of per-pair ratios.`, '');
    push(markdownTable(['lever', 'model', 'size', 'batch', 'fps with', 'fps without', 'with/without', 'other load'],
      r.levers.map((l) => [l.lever, l.model, `${l.width}x${l.height}`, String(l.batch), f2(l.onFps), f2(l.offFps), ratio(l.speedup), l.otherLoad === undefined ? '-' : l.otherLoad.toFixed(1)]),
      ['l', 'l', 'l', 'r', 'r', 'r', 'r', 'r']));
    push(...LEVERS.map((l) => `- **${l.name}**: ${l.description}.`), '');
  }
  if (r.int8?.length) {
    push('## int8 against float32 (esrvid only)', '');
    push('`--precision int8`: each compact model\'s int8 file (static QDQ: per-channel int8 weights, uint8 activations calibrated on real frames; '
      + 'src/models/onnx/quantize.ts) against its float32 file, both in esrvid\'s inference stage at batch 1, alternating run by run (ABBA) on the same frames; '
      + 'int8/fp32 is the median of the per-pair ratios. PSNR is the int8 output against the float32 output on esrvid\'s six calibration frames '
      + '(samples/calibration: three photographs, three frames of samples/chelsea.mp4) and six held-out validation frames that calibration never sees '
      + '(samples/validation: public-domain and CC0 photographs and textures), measured when the int8 file was made; '
      + 'a model is offered in int8 only from 40 dB on its worst frame. PyTorch is not compared here.', '');
    push(markdownTable(INT8_HEADER, int8Rows(r.int8), ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'l', 'r']));
  }
  const e = r.endToEnd;
  if (e) {
    const run = e.runs[0]!;
    push('## End to end: the whole pipeline', '');
    const looped = e.clipLoops > 1 ? ` played ${e.clipLoops} times in a row (\`ffmpeg -stream_loop ${e.clipLoops - 1} -c copy\`: a ${run.frames}-frame job, so start-up weighs as in a real one)` : '';
    push(`\`esrvid ${relative(e.clip)} out.mp4 --json --model ${e.model} --threads ${r.options.threads}\`${looped} (${run.frames} frames of ${run.inputSize.join('x')} `
      + `to ${run.outputSize.join('x')}, libx264) run ${e.runs.length === 1 ? 'once' : `${e.runs.length} times`}, each paired with inference alone on frames of the same size `
      + '(batch 1, blocks of two calls per lane as in the inference rows above, for about half the job\'s frames, at least 16 blocks; every other pair times inference first, so a drift in speed favours neither); frames/s from the `done` event (`frames / elapsedMs`, so probing, model load and finishing the file are included).', '');
    const med = (k: 'decode' | 'infer' | 'encode') => median(e.runs.map((x) => x.stageMs[k]));
    push(markdownTable(['measure', 'value'], [
      ['end-to-end frames/s (median)', f2(e.endToEndFps)],
      ['inference-only frames/s, same frame size (median)', f2(e.inferOnlyFps)],
      [`pipeline efficiency (median of per-pair ratios${e.efficiencyPairs === 'quiet' ? `, quiet pairs: other load <= ${QUIET_LOAD}` : ''})`, percent1(e.efficiency)],
      ['pipeline efficiency of each pair, in run order', pairEfficiencies(e).map(percent1).join(', ')],
      ['other load per pair (cores)', e.pairOtherLoad.map((l) => (l === undefined ? '-' : l.toFixed(1))).join(', ')],
      ['inference frames/s inside the pipeline (frames / stageMs.infer)', f2(e.inPipelineInferFps)],
      ['share of the elapsed time the inference stage was busy (stageMs.infer / elapsedMs)', `${(100 * e.inferBusyShare).toFixed(0)}%`],
      ['whole command, Node start-up included (median)', `${(median(e.runs.map((x) => x.wallMs)) / 1000).toFixed(1)} s`],
      ['pipeline elapsed (median)', `${(median(e.runs.map((x) => x.elapsedMs)) / 1000).toFixed(1)} s`],
      ['stage time: decode wait / infer / encode (median, ms)', `${f0(med('decode'))} / ${f0(med('infer'))} / ${f0(med('encode'))}`],
      ['start-up: job start to the first upscaled frame (median, ms; includes that frame\'s inference)', f0(medianOf(e.runs.map((x) => x.firstFrameMs)))],
      ['peak RSS of the esrvid process', formatBytes(e.peakRssBytes)],
      ...(e.coreTime ? [['where the job\'s core time went (cores x elapsed; each share the median over the pairs)', describeCoreTime(e.coreTime)]] : []),
      ...(e.aloneBusyShare !== undefined ? [['inference alone: its CPU time / (cores x its wall time)', percent1(e.aloneBusyShare)]] : []),
    ], ['l', 'r']));
    if (e.coreTime) {
      push('', 'The core time is the job\'s own CPU time from its `done` event (`cpuMs`: esrvid\'s process, every thread, and the FFmpeg processes it ran) against '
        + 'the cores times its elapsed time. "Inference" is what inference alone spent per frame in the paired blocks, times the job\'s frames; "esrvid\'s other work" is the rest of '
        + 'esrvid\'s process (hand-over, pipes, start-up, and any inference slower than alone); "idle" is the cores\' time nobody used (start-up, the last frames, waiting). '
        + 'With decoding and encoding overlapping inference fully, the efficiency is the inference share over the share inference alone keeps busy: '
        + 'what FFmpeg and esrvid\'s other work use is the part of the cores the network does not get.');
    }
  }
  if (r.efficiencySweep?.length) {
    const o = r.options;
    push('### Pipeline efficiency for every model and size', '');
    push(`Every model and frame size of the inference table, as \`esrvid clip.mp4 out.mp4 --json --model <model> --threads ${o.threads}\` at batch 1 (the CLI's default): `
      + `${relative(o.clip)} scaled to the size (Lanczos, x264 CRF 12, audio kept) and played until the job holds about ${o.sweepSeconds} s of inference `
      + `(at the speed the inference table measured; 24 to 240 frames), ${o.sweepRuns} pair(s) each, paired and alternated with inference alone as above `
      + '(at least 3 blocks). The headline\'s model and size is the measurement above ("(above)"). A short job carries its start-up (model load, the first frame) '
      + 'and the encoder\'s flush over fewer frames, and a larger frame makes the encoder\'s share larger or smaller with the model\'s work per pixel; '
      + 'issue #7\'s 95% target is the 10-second clip above.', '');
    push(markdownTable(SWEEP_HEADER, sweepRows(r.efficiencySweep), ['l', 'l', 'r', 'r', 'r', 'r', 'l', 'r', 'r', 'r', 'r', 'r']));
  }
  push('## Method', '');
  push('- **Side by side.** The machine is shared and its speed changes by the minute, so nothing here compares numbers taken at different times: '
    + 'for each case esrvid and PyTorch alternate run by run (ABBA: every other pair PyTorch goes first, so a drift in speed favours neither), with a '
    + `${r.options.pauseMs} ms pause between runs so that neither runtime's spinning worker threads eat into the other's run, and ratios are medians of per-pair ratios.`);
  push('- **esrvid** is its own inference stage: the `Upscaler` worker threads and ONNX Runtime sessions the pipeline uses, with the model esrvid converted '
    + '(uint8 NHWC in and out, normalisation, clamping and rounding inside the graph) and arranged for the CPU, or, for the compact models where it is built '
    + '(table "Models"), esrvid\'s fused kernel (src/native/srvgg.c) in the same lanes. On the CPU the stage runs lanes: '
    + 'sessions side by side, each upscaling its own frames (the threads shared out between them), as the pipeline keeps them all busy. '
    + 'A timed run is a block of two calls per lane sent at once (one running, one queued behind it in the lane\'s worker, as in the pipeline); its time is the wall time from the first call sent '
    + 'to the last result back, divided by the calls (the hand-over between threads included). PyTorch runs one call at a time with every thread: the reference as its users run it.');
  push('- **PyTorch** (scripts/bench-pytorch.py) rebuilds SRVGGNetCompact and RRDBNet as in BasicSR from the very weights of the ONNX file '
    + '(exported by src/bench/torch-weights.ts), in eval mode under `torch.inference_mode()`, channels_last, with the same threads; the time covers the same work '
    + '(uint8 NHWC to float, the network, back to uint8). Before timing, both runtimes upscale one frame and their float outputs are compared '
    + `(must agree within ${PARITY_TOLERANCE}), so the two measure the same network.`);
  push('- **Frames** are real: the frames esrvid ships for int8 calibration (samples/calibration: three frames of samples/chelsea.mp4, three photographs), '
    + 'mirrored into tiles up to the case\'s size, the same bytes for both runtimes. Convolutions do not care, but ONNX Runtime\'s PRelu kernel does: '
    + 'on real frames, whose activations change sign unpredictably, it is several times slower than on smooth synthetic gradients.');
  push('- **FMA peak** is measured in the same run by a small C kernel (src/bench/fma-peak.ts, built with the system C compiler and `-march=native`): '
    + '16 independent FMA chains per thread at 512- and 256-bit vectors, best of several tries, at the start and (for a suite longer than a minute) again at the end.');
  push(`- **Noise.** A large gap between median and best means other work was running${loadText(r)}. The suite took ${(r.durationMs / 60000).toFixed(1)} minutes.`);
  if (r.notes.length > 0) {
    push('', '## Notes', '');
    for (const n of r.notes) push(`- ${n}`);
  }
  if (log) push('', log.trim());
  push('');
  return lines.join('\n');
}

function medianOf(xs: (number | undefined)[]): number | undefined {
  const v = xs.filter((x): x is number => x !== undefined);
  return v.length > 0 ? median(v) : undefined;
}

function loadText(r: SuiteResult): string {
  if (r.loadAverages.length === 0) return '';
  const s = [...r.loadAverages].sort((a, b) => a - b);
  return ` (1-minute load average after each case: ${s[0]!.toFixed(1)} to ${s[s.length - 1]!.toFixed(1)}, median ${median(s).toFixed(1)}, `
    + `of which about ${r.options.threads} is the suite itself)`;
}

function peakHow(r: SuiteResult): string {
  const ms = r.peak?.measured ?? [];
  if (ms.length === 0) return 'given with --peak-gflops';
  const p = ms.reduce((a, b) => (b.gflops512 > a.gflops512 ? b : a));
  return `measured: ${p.gflops512.toFixed(0)} at 512-bit, ${p.gflops256.toFixed(0)} at 256-bit vectors on ${p.threads} threads, `
    + `${p.gflopsOneThread.toFixed(0)} on one thread; ${p.compiler}`;
}

function describeArch(a: NonNullable<SuiteResult['models'][number]['torchArchitecture']>): string {
  return a.type === 'SRVGGNetCompact'
    ? `SRVGGNetCompact, ${a.num_conv} body convs, ${a.num_feat} features, PReLU, x${a.upscale}`
    : `RRDBNet, ${a.num_block} RRDB, ${a.num_feat} features, growth ${a.num_grow_ch}, x${a.scale}`;
}

function relative(path: string): string {
  const cwd = process.cwd();
  return path.startsWith(`${cwd}/`) ? path.slice(cwd.length + 1) : path;
}
