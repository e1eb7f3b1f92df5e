/**
 * `esrvid bench`'s int8 rows: for each compact model, its int8 file against its float32 file,
 * both in esrvid's own inference stage, alternating run by run (ABBA) on the same frames, with
 * the PSNR the int8 file keeps against float32 (from the model's manifest, measured when the file
 * was made). Models under the quality gate are measured too, and marked as not offered.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { framesPerSecond, median, pairedRatio } from './stats.js';
import { otherLoad, snapshot } from './contention.js';
import { realFrames } from './frames.js';
import { alternate } from './alternate.js';
import { OrtStage } from './ort-stage.js';

export interface Int8CaseResult {
  model: string;
  width: number;
  height: number;
  fp32Fps: number;
  int8Fps: number;
  fp32BestFps: number;
  int8BestFps: number;
  /** Median over pairs of int8 fps / fp32 fps. */
  ratio: number;
  runs: number;
  minPsnrDb: number;
  medianPsnrDb: number;
  offered: boolean;
  otherLoad?: number;
}

export interface Int8Model {
  name: string;
  scale: number;
  fp32Path: string;
  int8Path: string;
  minPsnrDb: number;
  medianPsnrDb: number;
  offered: boolean;
}


export async function measureInt8(
  m: Int8Model,
  sizes: readonly [number, number][],
  o: { runs: number; warmup: number; minCaseMs: number; threads: number; lanes?: number; pauseMs: number; log: (line: string) => void },
): Promise<Int8CaseResult[]> {
  const fp32 = await OrtStage.open(m.fp32Path, m.scale, o.threads, { lanes: o.lanes });
  let int8: OrtStage | undefined;
  const results: Int8CaseResult[] = [];
  try {
    int8 = await OrtStage.open(m.int8Path, m.scale, o.threads, { precision: 'int8', lanes: o.lanes });
    const q = int8;
    for (const [width, height] of sizes) {
      const frames = realFrames(1, width, height);
      const timed = async (s: OrtStage) => {
        const ms = await s.time(1, width, height, frames);
        await sleep(o.pauseMs);
        return ms;
      };
      let before: ReturnType<typeof snapshot>;
      const { a, b } = await alternate(() => timed(fp32), () => timed(q), {
        warmup: o.warmup, runs: o.runs, minCaseMs: o.minCaseMs, onMeasuring: () => (before = snapshot()),
      });
      const load = otherLoad(before, snapshot());
      const fa = a.map((t) => framesPerSecond(1, t));
      const fb = b.map((t) => framesPerSecond(1, t));
      const r: Int8CaseResult = {
        model: m.name, width, height,
        fp32Fps: median(fa), int8Fps: median(fb), fp32BestFps: Math.max(...fa), int8BestFps: Math.max(...fb),
        ratio: pairedRatio(fb, fa), runs: a.length,
        minPsnrDb: m.minPsnrDb, medianPsnrDb: m.medianPsnrDb, offered: m.offered,
        ...(load === undefined ? {} : { otherLoad: load }),
      };
      results.push(r);
      o.log(`  ${m.name} ${width}x${height} int8: ${r.int8Fps.toFixed(2)} fps vs fp32 ${r.fp32Fps.toFixed(2)} fps, ${r.ratio.toFixed(2)}x; ${r.minPsnrDb.toFixed(1)} dB PSNR vs fp32${m.offered ? '' : ' (not offered)'}`);
    }
  } finally {
    await fp32.close();
    await int8?.close();
  }
  return results;
}
