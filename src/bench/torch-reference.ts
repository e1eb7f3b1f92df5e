/**
 * The PyTorch reference as a child process (scripts/bench-pytorch.py) answering one JSON line per
 * request, so its runs can alternate with esrvid's in the same minute of machine time.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { OnnxGraph } from './onnx-graph.js';
import { exportTorchWeights, type Architecture } from './torch-weights.js';

export const PYTORCH_SCRIPT = fileURLToPath(new URL('../../scripts/bench-pytorch.py', import.meta.url));

/**
 * The interpreter for the reference: ESRVID_BENCH_PYTHON, else the first of the system python3
 * (Debian's python3-torch lives there, which a pyenv or venv python3 may hide) and the python3 on
 * PATH (a GPU image's venv with PyTorch) that has torch installed.
 */
export function defaultPython(): string {
  if (process.env.ESRVID_BENCH_PYTHON) return process.env.ESRVID_BENCH_PYTHON;
  const candidates = [...(existsSync('/usr/bin/python3') ? ['/usr/bin/python3'] : []), 'python3'];
  return candidates.find(hasTorch) ?? candidates[0]!;
}

/** Whether `python` can import torch (looked up without importing it: milliseconds). */
function hasTorch(python: string): boolean {
  const r = spawnSync(python, ['-c', 'import importlib.util, sys; sys.exit(0 if importlib.util.find_spec("torch") else 1)'], { stdio: 'ignore', timeout: 10_000 });
  return r.status === 0;
}

export interface TorchInfo {
  torch: string;
  threads: number;
  mkldnn: boolean;
  device: string;
  dtype: string;
  /** The GPU's name, when it runs on one. */
  gpu: string | null;
  cuda: string | null;
  cudnn: number | null;
}

export interface TorchPlacement {
  /** 'cpu' (default), 'cuda' or 'cuda:N'. */
  device?: string;
  /** float16 weights and activations (the Real-ESRGAN scripts' default on GPUs). */
  half?: boolean;
}

type Reply = { ok: boolean; error?: string } & Record<string, unknown>;

export class TorchReference {
  private readonly waiting: ((r: Reply) => void)[] = [];
  private exited: string | undefined;

  private constructor(private readonly child: ChildProcessWithoutNullStreams, readonly info: TorchInfo) {}

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Starts the reference; rejects with the reason when Python, torch or the script is missing. */
  static start(python: string, threads: number, place: TorchPlacement = {}): Promise<TorchReference> {
    if (!existsSync(PYTORCH_SCRIPT)) return Promise.reject(new Error(`${PYTORCH_SCRIPT} is missing (it ships with the source, not the npm package)`));
    const env = { ...process.env, OMP_NUM_THREADS: String(threads), MKL_NUM_THREADS: String(threads), PYTHONUNBUFFERED: '1' };
    const args = [PYTORCH_SCRIPT, '--threads', String(threads), '--device', place.device ?? 'cpu', ...(place.half ? ['--half'] : [])];
    const child = spawn(python, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    return new Promise((resolve, reject) => {
      let ref: TorchReference | undefined;
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => {
        stderr = (stderr + d.toString()).slice(-4000);
      });
      child.on('error', (e) => reject(new Error(`cannot run ${python}: ${e.message}`)));
      child.on('exit', (code, signal) => {
        const why = `the PyTorch reference exited (${signal ?? code}): ${lastLine(stderr)}`;
        if (!ref) reject(new Error(why));
        else {
          ref.exited = why;
          for (const w of ref.waiting.splice(0)) w({ ok: false, error: why });
        }
      });
      const lines = createInterface({ input: child.stdout });
      lines.on('line', (line) => {
        let msg: Reply;
        try {
          msg = JSON.parse(line) as Reply;
        } catch {
          return; // a stray print from a library; replies are always JSON
        }
        if (!ref) {
          ref = new TorchReference(child, msg as unknown as TorchInfo);
          resolve(ref);
        } else ref.waiting.shift()?.(msg);
      });
    });
  }

  private request(req: Record<string, unknown>): Promise<Reply> {
    if (this.exited) return Promise.reject(new Error(this.exited));
    return new Promise((resolve, reject) => {
      this.waiting.push((r) => (r.ok ? resolve(r) : reject(new Error(`PyTorch reference: ${r.error}`))));
      this.child.stdin.write(`${JSON.stringify(req)}\n`);
    });
  }

  async load(key: string, header: string, data: string): Promise<number> {
    return (await this.request({ cmd: 'load', key, header, data })).params as number;
  }

  /**
   * Builds the network of an fp32 frame model (its weights exported by torch-weights.ts through
   * files in `dir`, the raw weights removed once loaded) under `key`; returns its architecture.
   */
  async loadGraph(key: string, graph: OnnxGraph, dir: string): Promise<Architecture> {
    const { header, data } = exportTorchWeights(graph);
    const hp = join(dir, `${key}.json`);
    const dp = join(dir, `${key}.bin`);
    await writeFile(hp, JSON.stringify(header));
    await writeFile(dp, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    await this.load(key, hp, dp);
    await rm(dp);
    return header.architecture;
  }

  async infer(key: string, input: string, output: string, batch: number, width: number, height: number): Promise<void> {
    await this.request({ cmd: 'infer', key, input, output, batch, width, height });
  }

  /** One timed frame-to-frame run on the frames in `input` (uint8 NHWC); milliseconds. */
  async time(key: string, input: string, batch: number, width: number, height: number): Promise<number> {
    return (await this.timed(key, input, batch, width, height)).ms;
  }

  /** As time(), with the GPU memory PyTorch's allocator has held at most since the model loaded. */
  async timed(key: string, input: string, batch: number, width: number, height: number): Promise<{ ms: number; peakBytes: number | null }> {
    const r = await this.request({ cmd: 'time', key, input, batch, width, height });
    return { ms: r.ms as number, peakBytes: (r.peakBytes as number | null) ?? null };
  }

  /** `runs` runs under PyTorch's profiler: GPU kernels and operators by time per run (scripts/bench-pytorch.py). */
  async profile(key: string, input: string, batch: number, width: number, height: number, runs: number): Promise<TorchProfile> {
    const { ok: _, ...r } = await this.request({ cmd: 'profile', key, input, batch, width, height, runs });
    return r as unknown as TorchProfile;
  }

  async release(key: string): Promise<void> {
    await this.request({ cmd: 'release', key });
  }

  async close(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.stdin.end(`${JSON.stringify({ cmd: 'quit' })}\n`);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await gone;
    clearTimeout(timer);
  }
}

export interface TorchProfile {
  wallMs: number[];
  kernelMsPerRun: number;
  kernels: { name: string; msPerRun: number; perRun: number }[];
  operators: { name: string; deviceMsPerRun: number; perRun: number }[];
}

function lastLine(text: string): string {
  return text.trim().split('\n').pop() ?? '';
}
