/**
 * End-to-end speed: `esrvid <clip> <out> --json` run as its own process (decode, inference and
 * encode all at once, as a user runs it), read back from its `done` event. The benchmark never
 * imports the pipeline, so pure inference benchmarks need neither FFmpeg nor the UI.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../cli.js', import.meta.url));
export const SAMPLE_CLIP = fileURLToPath(new URL('../../samples/chelsea.mp4', import.meta.url));

export interface EndToEndRun {
  frames: number;
  /** The pipeline's own clock: from the job's start (probe, model load) to the finished file. */
  elapsedMs: number;
  /** The whole command, Node start-up included. */
  wallMs: number;
  peakRssBytes: number;
  stageMs: { decode: number; infer: number; encode: number };
  inputSize: [number, number];
  outputSize: [number, number];
  /** Pipeline clock when the first frame was out (probe, model load, first inference). */
  firstFrameMs?: number;
  /** Frames written from the identical frame before them, not upscaled (the `done` event's reusedFrames). */
  reusedFrames?: number;
  /** CPU time of the job (the `done` event's cpuMs): esrvid's process, and the FFmpeg processes it ran. */
  cpuMs?: { process: number; children?: number };
}

/**
 * Where a job's machine time went, as shares of cores x elapsed: the inference its frames needed
 * (at what inference alone spent per frame on the same frames), esrvid's other work (hand-over,
 * decoding and encoding I/O, start-up, and any inference slower than alone), FFmpeg (decoder,
 * encoder, probe, mux) and idle cores. With every stage overlapping, efficiency is the
 * inference share over the share inference alone keeps busy.
 */
export interface CoreTime {
  inference: number;
  esrvidOther: number;
  ffmpeg: number;
  idle: number;
}

/** "inference 90.1%, esrvid's other work 1.2%, FFmpeg 3.1%, idle 5.6%". */
export function describeCoreTime(c: CoreTime): string {
  const pc = (x: number) => `${(100 * x).toFixed(1)}%`;
  return `inference ${pc(c.inference)}, esrvid's other work ${pc(c.esrvidOther)}, FFmpeg ${pc(c.ffmpeg)}, idle ${pc(c.idle)}`;
}

export function coreTimeShares(run: Pick<EndToEndRun, 'frames' | 'elapsedMs' | 'reusedFrames' | 'cpuMs'>, aloneCpuMsPerFrame: number, cores: number): CoreTime | undefined {
  const cpu = run.cpuMs;
  if (cpu?.children === undefined || !(aloneCpuMsPerFrame > 0) || !(run.elapsedMs > 0) || !(cores > 0)) return undefined;
  const capacity = cores * run.elapsedMs;
  const inference = aloneCpuMsPerFrame * (run.frames - (run.reusedFrames ?? 0));
  return {
    inference: inference / capacity,
    esrvidOther: (cpu.process - inference) / capacity,
    ffmpeg: cpu.children / capacity,
    idle: (capacity - cpu.process - cpu.children) / capacity,
  };
}

/** The fields of interest from a `--json` event stream (one JSON object per line). */
export function readDoneEvent(lines: readonly string[]): Omit<EndToEndRun, 'wallMs'> {
  let start: { inputSize?: [number, number]; outputSize?: [number, number] } | undefined;
  let firstFrameMs: number | undefined;
  for (const line of lines) {
    let e: Record<string, unknown>;
    try {
      e = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue;
    }
    if (e.type === 'start') start = e as typeof start;
    if (e.type === 'progress' && Number(e.frames) > 0 && Number.isFinite(Number(e.elapsedMs))) firstFrameMs ??= Number(e.elapsedMs);
    if (e.type === 'error') throw new Error(`esrvid failed: ${String(e.message)}`);
    if (e.type === 'done') {
      const stage = (e.stageMs ?? {}) as Partial<EndToEndRun['stageMs']>;
      const cpu = e.cpuMs as { process?: unknown; children?: unknown } | undefined;
      return {
        frames: Number(e.frames),
        elapsedMs: Number(e.elapsedMs),
        peakRssBytes: Number(e.peakRssBytes),
        stageMs: { decode: stage.decode ?? Number.NaN, infer: stage.infer ?? Number.NaN, encode: stage.encode ?? Number.NaN },
        inputSize: start?.inputSize ?? [0, 0],
        outputSize: start?.outputSize ?? [0, 0],
        ...(firstFrameMs !== undefined ? { firstFrameMs } : {}),
        ...(e.reusedFrames !== undefined ? { reusedFrames: Number(e.reusedFrames) } : {}),
        ...(cpu && Number.isFinite(Number(cpu.process)) ? { cpuMs: { process: Number(cpu.process), ...(cpu.children !== undefined ? { children: Number(cpu.children) } : {}) } } : {}),
      };
    }
  }
  throw new Error('esrvid --json ended without a done event');
}

export async function runEndToEnd(clip: string, model: string, threads: number, o: { lanes?: number; precision?: string } = {}): Promise<EndToEndRun> {
  const dir = await mkdtemp(join(tmpdir(), 'esrvid-bench-'));
  try {
    // --device cpu: the inference-only side of this comparison runs on the CPU too.
    const args = [CLI, clip, join(dir, 'out.mp4'), '--json', '-y', '--no-tui', '--device', 'cpu', '--model', model, '--threads', String(threads),
      ...(o.lanes ? ['--lanes', String(o.lanes)] : []), ...(o.precision ? ['--precision', o.precision] : [])];
    const started = performance.now();
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: string[] = [];
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
    createInterface({ input: child.stdout }).on('line', (l) => lines.push(l));
    const code = await new Promise<number | null>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', resolve);
    });
    const wallMs = performance.now() - started;
    if (code !== 0) throw new Error(`esrvid exited with ${code}: ${stderr.trim().split('\n').pop() ?? ''}`);
    return { ...readDoneEvent(lines), wallMs };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The clip `loops` times in a row, every stream copied (ffmpeg -stream_loop): a longer real job.
 */
export async function loopClip(clip: string, loops: number, dir: string): Promise<string> {
  const out = join(dir, `looped${extname(clip)}`);
  await runFfmpeg(['-v', 'error', '-y', '-stream_loop', String(loops - 1), '-i', clip, '-map', '0', '-c', 'copy', out]);
  return out;
}

/**
 * A real job of another frame size and length: the clip played as often as needed, scaled
 * (Lanczos) to width x height, its first `frames` frames with the audio cut to them (-shortest),
 * re-encoded nearly losslessly (x264 CRF 12) so the decoder does the work a real source asks.
 */
export async function sizedClip(clip: string, width: number, height: number, frames: number, dir: string): Promise<string> {
  const out = join(dir, `clip-${width}x${height}-${frames}.mp4`);
  await runFfmpeg([
    '-v', 'error', '-y', '-stream_loop', '-1', '-i', clip, '-map', '0:v:0', '-map', '0:a?',
    '-vf', `scale=${width}:${height}:flags=lanczos`, '-frames:v', String(frames),
    '-c:v', 'libx264', '-crf', '12', '-preset', 'veryfast', '-pix_fmt', 'yuv420p', '-c:a', 'copy', '-shortest', out,
  ]);
  return out;
}

/**
 * FFmpeg with these arguments, found by a child Node process (as the CLI finds it), so the
 * benchmark itself never loads FFmpeg's modules: `esrvid bench` without end-to-end runs needs
 * only ONNX Runtime.
 */
async function runFfmpeg(args: string[]): Promise<void> {
  const binaries = new URL('../ffmpeg/binaries.js', import.meta.url).href;
  const script = `const { findFfmpeg } = await import(${JSON.stringify(binaries)});
const { execFileSync } = await import('node:child_process');
const t = await findFfmpeg({});
execFileSync(t.ffmpeg.path, ${JSON.stringify(args)}, { stdio: ['ignore', 'ignore', 'inherit'] });`;
  await new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(stderr.trim().split('\n').pop() || `exit ${code}`))));
  });
}
