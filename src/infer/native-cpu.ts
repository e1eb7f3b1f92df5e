/**
 * esrvid's own CPU kernel for SRVGGNetCompact (src/native/srvgg.c): each 3x3 convolution with its
 * per-channel PReLU fused, with AVX-512, or AVX2 where the CPU has no AVX-512, on a lane's
 * threads. ONNX Runtime cannot fuse a per-channel PReLU (its fused activations take one slope), so
 * there every PReLU costs passes over the feature map of its own; the kernel applies the slope
 * before storing. One call upscales whole frames, uint8 in and out (RGB, or the encoder's I420:
 * src/native/yuv.h), with the graph's own float32 steps at both ends.
 *
 * Used only where it computes exactly the model's graph (src/infer/native-plan.ts recognises it);
 * everything else runs on ONNX Runtime as before. The addon is optional: built by `npm run build` when
 * a C compiler is there (scripts/build-native.mjs), used when the CPU has AVX-512 or AVX2 with FMA
 * (ESRVID_NATIVE_ISA=avx2 runs the AVX2 kernels on an AVX-512 CPU, for tests and benchmarks).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export interface NativeLayer {
  /** M x C x 3 x 3, as in the graph. */
  weight: Float32Array;
  bias: Float32Array;
  /** Per output channel; absent on the last convolution. */
  slope?: Float32Array;
  cin: number;
  cout: number;
}

export interface NativePlan {
  layers: NativeLayer[];
  scale: number;
}

/** The addon's functions (src/native/srvgg.c). */
export interface NativeKernel {
  /** `threads` (default 1): the net's frames split into bands of rows, one thread each (started on the first frame). */
  createNet(layers: NativeLayer[], scale: number, outChannels: number, threads?: number): object;
  /**
   * Upscales `frames` frames: RGB out, or with `i420` ([kr, kb, full], src/ffmpeg/colour.ts
   * i420Matrix) the encoder's Y'CbCr 4:2:0 planes, converted as FFmpeg's swscale does (src/native/yuv.h).
   */
  run(net: object, input: Uint8Array, frames: number, height: number, width: number, output: Uint8Array, i420?: Float32Array): void;
  /**
   * One RGB frame (even width and height) to I420 as run() writes it: for frames stitched from
   * tiles. `scratch`: width x height floats, the caller's, reused from frame to frame.
   */
  toI420(rgb: Uint8Array, height: number, width: number, i420: Float32Array, output: Uint8Array, scratch: Float32Array): void;
  supported(): boolean;
  /** What createNet's nets run: 'avx512', 'avx2', or '' (none: supported() is false). */
  isa(): 'avx512' | 'avx2' | '';
}

/** Built into dist/ (from src/infer/ and dist/infer/ alike: tests run the sources). */
export const NATIVE_ADDON = fileURLToPath(new URL('../../dist/native/srvgg.node', import.meta.url));

/** The addon as this thread found it, once: the kernel, or why there is none. */
let loaded: { kernel: NativeKernel } | { kernel: null; reason: string } | undefined;

function load(): NonNullable<typeof loaded> {
  if (process.env.ESRVID_NATIVE === '0') return { kernel: null, reason: 'turned off (ESRVID_NATIVE=0)' };
  if (!existsSync(NATIVE_ADDON)) return { kernel: null, reason: 'not built (no C compiler at npm ci / npm run build, or not an x86-64 Linux/macOS machine); run npm run build with cc installed' };
  try {
    const k = createRequire(import.meta.url)(NATIVE_ADDON) as NativeKernel;
    return k.supported() ? { kernel: k } : { kernel: null, reason: 'this CPU has neither AVX-512 nor AVX2 with FMA' };
  } catch {
    return { kernel: null, reason: 'the built file does not load here (built for another Node.js or platform)' };
  }
}

/** The addon when it was built and this CPU can run it; null otherwise (ESRVID_NATIVE=0 too). Loaded once per thread. */
export function nativeKernel(): NativeKernel | null {
  loaded ??= load();
  return loaded.kernel;
}

/** Whether the fused kernel runs here, and if not, why (for esrvid doctor). */
export function nativeKernelStatus(): { usable: boolean; isa?: 'avx512' | 'avx2'; reason?: string } {
  loaded ??= load();
  return loaded.kernel ? { usable: true, isa: loaded.kernel.isa() || undefined } : { usable: false, reason: loaded.reason };
}
