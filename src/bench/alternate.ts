/**
 * Two things timed side by side: a and b run in turn, ABBA (every other pair b goes first, so a
 * machine that speeds up or slows down during a case favours neither), after `warmup` pairs
 * that are not kept. `runs` pairs are kept, and more, up to 3 x `runs`, while the kept time is
 * under `minCaseMs`, so a few noisy pairs cannot decide a fast case's median. Without b, a runs
 * alone under the same rules.
 */
export interface Alternation {
  warmup: number;
  runs: number;
  minCaseMs?: number;
  /** Called once, just before the first kept pair (e.g. to start counting other load). */
  onMeasuring?: () => void;
}

export async function alternate(a: () => Promise<number>, b: (() => Promise<number>) | undefined, o: Alternation): Promise<{ a: number[]; b: number[] }> {
  const kept = { a: [] as number[], b: [] as number[] };
  let keptMs = 0;
  for (let i = 0; ; i++) {
    const pairs = i - o.warmup;
    if (pairs >= o.runs && (keptMs >= (o.minCaseMs ?? 0) || pairs >= 3 * o.runs)) break;
    if (pairs === 0) o.onMeasuring?.();
    let x: number;
    let y: number | undefined;
    if (!b) x = await a();
    else if (i % 2 === 0) {
      x = await a();
      y = await b();
    } else {
      y = await b();
      x = await a();
    }
    if (pairs >= 0) {
      kept.a.push(x);
      if (y !== undefined) kept.b.push(y);
      keptMs += x + (y ?? 0);
    }
  }
  return kept;
}
