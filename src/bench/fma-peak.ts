/**
 * The machine's FP32 FMA peak, measured rather than looked up: a tiny C program (built here with
 * the system's C compiler, -march=native) keeps 16 independent FMA chains per thread busy at a
 * vector width of 512 and of 256 bits. Achieved GFLOP/s of the networks are reported against it.
 * Measured in the same run because a shared machine's clock and share of cores change by the
 * minute.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** GCC/Clang vector extensions: portable C, compiled to vfmadd on x86 with -march=native. */
export const FMA_KERNEL_C = String.raw`
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
typedef float v16 __attribute__((vector_size(64)));
typedef float v8 __attribute__((vector_size(32)));
static long iters;
static float sink[256];
#define BODY(T, LANES) { \
  T m, c, a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15; \
  for (int i = 0; i < LANES; i++) { \
    /* Distinct starting values, so the compiler cannot merge chains that look alike. */ \
    m[i] = 0.9999999f; c[i] = 1e-7f; \
    a0[i] = 0.01f * i; a1[i] = 0.02f * i; a2[i] = 0.03f * i; a3[i] = 0.04f * i; \
    a4[i] = 0.05f * i; a5[i] = 0.06f * i; a6[i] = 0.07f * i; a7[i] = 0.08f * i; \
    a8[i] = 0.09f * i; a9[i] = 0.10f * i; a10[i] = 0.11f * i; a11[i] = 0.12f * i; \
    a12[i] = 0.13f * i; a13[i] = 0.14f * i; a14[i] = 0.15f * i; a15[i] = 0.16f * i + id; \
  } \
  for (long n = 0; n < iters; n++) { \
    a0 = a0 * m + c; a1 = a1 * m + c; a2 = a2 * m + c; a3 = a3 * m + c; \
    a4 = a4 * m + c; a5 = a5 * m + c; a6 = a6 * m + c; a7 = a7 * m + c; \
    a8 = a8 * m + c; a9 = a9 * m + c; a10 = a10 * m + c; a11 = a11 * m + c; \
    a12 = a12 * m + c; a13 = a13 * m + c; a14 = a14 * m + c; a15 = a15 * m + c; \
  } \
  T s = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11 + a12 + a13 + a14 + a15; \
  float t = 0; for (int i = 0; i < LANES; i++) t += s[i]; \
  sink[id] = t; }
static void *w512(void *arg) { long id = (long)arg; BODY(v16, 16) return 0; }
static void *w256(void *arg) { long id = (long)arg; BODY(v8, 8) return 0; }
int main(int argc, char **argv) {
  int bits = atoi(argv[1]), threads = atoi(argv[2]);
  iters = atol(argv[3]);
  if (threads < 1 || threads > 256) return 2;
  pthread_t t[256];
  struct timespec s, e;
  clock_gettime(CLOCK_MONOTONIC, &s);
  for (long i = 0; i < threads; i++) pthread_create(&t[i], 0, bits == 512 ? w512 : w256, (void *)i);
  for (int i = 0; i < threads; i++) pthread_join(t[i], 0);
  clock_gettime(CLOCK_MONOTONIC, &e);
  double sec = (e.tv_sec - s.tv_sec) + (e.tv_nsec - s.tv_nsec) / 1e9;
  double flops = 2.0 * (bits / 32) * 16 * (double)iters * threads;
  printf("%.6f %.3f %g\n", sec, flops / sec / 1e9, (double)sink[0]);
  return 0;
}
`;

export interface FmaPeak {
  /** GFLOP/s with all `threads` threads at 512-bit and 256-bit vectors; the best of a few tries. */
  gflops512: number;
  gflops256: number;
  gflopsOneThread: number;
  threads: number;
  compiler: string;
}

/**
 * The FMA kernel, built once: the suite measures the peak with it at the start and end, and
 * probes the machine's speed right before and after every case, so a case measured while the
 * shared machine was slowed is reported against the speed it had then.
 */
export class FmaProbe {
  private constructor(private readonly dir: string, private readonly exe: string, readonly compiler: string) {}

  /** Builds the kernel, or explains why it cannot (no C compiler). */
  static async build(cc = process.env.CC ?? 'cc'): Promise<FmaProbe> {
    const dir = await mkdtemp(join(tmpdir(), 'esrvid-fma-'));
    try {
      const src = join(dir, 'fma.c');
      const exe = join(dir, 'fma');
      await writeFile(src, FMA_KERNEL_C);
      try {
        await run(cc, ['-O2', '-march=native', '-pthread', src, '-o', exe]);
      } catch (err) {
        throw new Error(`cannot build the FMA peak kernel with ${cc}: ${((err as { stderr?: string }).stderr || (err as Error).message).trim().split('\n')[0]}`);
      }
      const { stdout: version } = await run(cc, ['--version']).catch(() => ({ stdout: cc }));
      return new FmaProbe(dir, exe, version.split('\n')[0]!.trim());
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
  }

  /** GFLOP/s of one run on `threads` threads, `flopPerThread` each (1e11: ~0.4 s at 270 GFLOP/s a thread). */
  async gflops(threads: number, bits = 512, flopPerThread = 1e11): Promise<number> {
    const iters = Math.round(flopPerThread / (2 * (bits / 32) * 16));
    const { stdout } = await run(this.exe, [String(bits), String(threads), String(iters)]);
    return Number(stdout.trim().split(/\s+/)[1]);
  }

  close(): Promise<void> {
    return rm(this.dir, { recursive: true, force: true });
  }
}

/** Measures the peak (the best of `tries` runs of each kind), or explains why it cannot (no C compiler). */
export async function measureFmaPeak(threads: number, opts: { cc?: string; tries?: number; probe?: FmaProbe } = {}): Promise<FmaPeak> {
  const probe = opts.probe ?? await FmaProbe.build(opts.cc);
  try {
    const tries = opts.tries ?? 3;
    const best = async (bits: number, t: number) => {
      let top = 0;
      for (let i = 0; i < tries; i++) top = Math.max(top, await probe.gflops(t, bits));
      return top;
    };
    return {
      gflops512: await best(512, threads),
      gflops256: await best(256, threads),
      gflopsOneThread: await best(512, 1),
      threads,
      compiler: probe.compiler,
    };
  } finally {
    if (!opts.probe) await probe.close();
  }
}
