import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { registerBench, type BenchCliOptions } from '../../src/commands/bench.js';

/** A program with the upscale command's options of the same names as bench's, as src/cli.ts has. */
async function parse(argv: string[]): Promise<{ o: BenchCliOptions; quiet: boolean; parent: Record<string, unknown> }> {
  const program = new Command('esrvid').exitOverride()
    .option('-q, --quiet').option('--debug')
    .option('-m, --model <name>', 'model', 'auto')
    .option('-b, --batch <n>', 'batch', (v: string) => {
      if (!/^\d+$/.test(v)) throw new Error(`upscale's --batch parser got "${v}"`);
      return Number(v);
    })
    .option('--threads <n>', 'threads', Number).option('--json');
  let got: { o: BenchCliOptions; quiet: boolean } | undefined;
  registerBench(program, async (o, quiet) => {
    got = { o, quiet };
  });
  await program.parseAsync(['node', 'esrvid', ...argv]);
  return { ...got!, parent: program.opts() };
}

describe('esrvid bench options', () => {
  it('bench gets its own -m, -b, --threads and --json, lists included', async () => {
    const { o, parent } = await parse(['bench', '-m', 'a,b', '-m', 'c', '-b', '1,2', '--size', '160x90', '--threads', '2', '--json', '--runs', '7']);
    expect(o).toMatchObject({ model: ['a,b', 'c'], batch: ['1,2'], size: ['160x90'], threads: 2, json: true, runs: 7, warmup: 1, device: 'cpu', precision: 'fp32', reference: 'pytorch' });
    expect(parent).toMatchObject({ model: 'auto' });
    expect(parent.json).toBeUndefined();
  });

  it('global flags before "bench" still reach the program', async () => {
    expect((await parse(['-q', 'bench'])).quiet).toBe(true);
    expect((await parse(['bench', '-q'])).quiet).toBe(true);
    expect((await parse(['bench'])).quiet).toBe(false);
  });

  it('e2e is unset unless asked for or refused', async () => {
    expect((await parse(['bench'])).o.e2e).toBeUndefined();
    expect((await parse(['bench', '--e2e'])).o.e2e).toBe(true);
    expect((await parse(['bench', '--no-e2e'])).o.e2e).toBe(false);
    expect((await parse(['bench', '--write'])).o.write).toBe(true);
    expect((await parse(['bench', '--write', 'x.md'])).o.write).toBe('x.md');
  });

  it('the efficiency sweep is unset unless asked for or refused; its runs and length are whole numbers', async () => {
    expect((await parse(['bench'])).o.sweep).toBeUndefined();
    expect((await parse(['bench', '--sweep'])).o.sweep).toBe(true);
    expect((await parse(['bench', '--no-sweep'])).o.sweep).toBe(false);
    expect((await parse(['bench'])).o).toMatchObject({ sweepRuns: 3, sweepSeconds: 15 });
    expect((await parse(['bench', '--sweep-runs', '2', '--sweep-seconds', '30'])).o).toMatchObject({ sweepRuns: 2, sweepSeconds: 30 });
    await expect(parse(['bench', '--sweep-runs', '0'])).rejects.toThrow(/--sweep-runs must be a whole number from 1/);
    await expect(parse(['bench', '--sweep-seconds', '1.5'])).rejects.toThrow(/--sweep-seconds must be a whole number/);
  });

  it('int8 rows are on unless refused; --precision int8 is a choice', async () => {
    expect((await parse(['bench'])).o.int8).toBe(true);
    expect((await parse(['bench', '--no-int8'])).o.int8).toBe(false);
    expect((await parse(['bench', '--precision', 'int8'])).o.precision).toBe('int8');
  });

  it('rejects bad values with a usage error', async () => {
    await expect(parse(['bench', '--runs', '0'])).rejects.toThrow(/--runs must be a whole number from 1/);
    await expect(parse(['bench', '--precision', 'bf16'])).rejects.toThrow();
  });
});

/**
 * `esrvid bench` must run with only ONNX Runtime: nothing it loads, statically or through
 * import(), may reach FFmpeg, sharp, the terminal UI or the pipeline.
 */
describe('esrvid bench imports', () => {
  const ROOT = resolve(import.meta.dirname, '..', '..');
  const FORBIDDEN = [/^ink$/, /^react/, /^sharp$/, /^@ffmpeg-installer\//, /^@ffprobe-installer\//, /src\/(pipeline|tui\/|decode\/|encode\/|ffmpeg\/)/];

  /** Every module `entry` can load: relative imports followed, packages recorded; `import type` skipped. */
  function reach(entry: string): Set<string> {
    const seen = new Set<string>();
    const todo = [entry];
    while (todo.length > 0) {
      const file = todo.pop()!;
      if (seen.has(file)) continue;
      seen.add(file);
      if (!file.startsWith('/')) continue;
      const text = readFileSync(file, 'utf8');
      const statics = [...text.matchAll(/^\s*(import|export)\s+(type\s)?[^;]*?from\s+'([^']+)'/gm)].filter((m) => !m[2]).map((m) => m[3]!);
      const dynamics = [...text.matchAll(/import\(\s*'([^']+)'\s*\)/g)].map((m) => m[1]!);
      for (const spec of [...statics, ...dynamics]) {
        if (spec.startsWith('node:')) continue;
        if (!spec.startsWith('.')) todo.push(spec);
        else {
          const js = join(dirname(file), spec);
          todo.push([js.replace(/\.js$/, '.ts'), js.replace(/\.js$/, '.tsx')].find(existsSync) ?? js);
        }
      }
    }
    return seen;
  }

  it('loads neither FFmpeg, sharp, ink/React nor the pipeline', () => {
    const reached = [...reach(join(ROOT, 'src', 'commands', 'bench.ts'))].map((f) => f.replace(`${ROOT}/`, ''));
    expect(reached).toContain('src/bench/suite.ts');
    expect(reached).toContain('onnxruntime-node');
    expect(reached.filter((f) => FORBIDDEN.some((re) => re.test(f)))).toEqual([]);
  });
});
