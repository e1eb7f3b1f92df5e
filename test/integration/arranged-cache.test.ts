/**
 * Arranged graphs kept as files (src/infer/arranged-cache.ts): made once from the real model,
 * the same bytes as arranging it in memory, found again without arranging, replaced when the
 * model changes, and never trusted across a different source.
 */
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { arrangedCache, arrangedModel, arrangerCodeKey } from '../../src/infer/arranged-cache.js';
import { Upscaler } from '../../src/infer/upscaler.js';
import { arrangeForCpu } from '../../src/models/onnx/arrange-for-cpu.js';
import { pullModel } from '../../src/models/pull.js';
import { modelsDir, onnxPath } from '../../src/models/store.js';

const tmp = mkdtempSync(join(tmpdir(), 'esrvid-arranged-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const MODEL = 'realesr-animevideov3-x4';
let source: string;

beforeAll(async () => {
  await pullModel(MODEL);
  source = join(tmp, `${MODEL}.onnx`);
  copyFileSync(onnxPath(MODEL), source);
});

const arrange = (b: Uint8Array) => arrangeForCpu(b).bytes;
const refuse = () => {
  throw new Error('arranged again');
};

describe('arranged-graph cache', () => {
  it('keeps the arrangement as a file with the bytes arranging in memory gives, and finds it again', async () => {
    const dir = join(tmp, 'cache1');
    const first = await arrangedModel(await arrangedCache(source, dir), source, 'cpu', arrange);
    expect(typeof first).toBe('string');
    const code = await arrangerCodeKey();
    expect(code).toMatch(/^[0-9a-f]{16}$/);
    expect(first).toMatch(new RegExp(`${MODEL}\\.cpu\\.[0-9a-f]{16}\\.${code}\\.onnx$`));
    expect(Buffer.compare(readFileSync(first as string), Buffer.from(arrange(readFileSync(source))!))).toBe(0);
    // The second time nothing is arranged.
    expect(await arrangedModel(await arrangedCache(source, dir), source, 'cpu', refuse)).toBe(first);
  });

  it('arranges a changed model again and drops the older arrangement of that name once unused for a while', async () => {
    const dir = join(tmp, 'cache2');
    const other = join(tmp, 'other', `${MODEL}.onnx`);
    rmSync(join(tmp, 'other'), { recursive: true, force: true });
    await import('node:fs/promises').then((f) => f.mkdir(join(tmp, 'other')));
    copyFileSync(source, other);
    const first = await arrangedModel(await arrangedCache(other, dir), other, 'cpu', arrange);
    // Same name, other bytes (a model pulled again, or edited): a new key; the refusing arranger proves it is not found.
    const bytes = readFileSync(other);
    bytes[bytes.length - 1] ^= 1;
    writeFileSync(other, bytes);
    await expect(arrangedModel(await arrangedCache(other, dir), other, 'cpu', refuse)).rejects.toThrow('arranged again');
    // Used a moment ago (another job may be loading it): kept.
    const second = await arrangedModel(await arrangedCache(other, dir), other, 'cpu', arrange);
    expect(second).not.toBe(first);
    expect(readdirSync(dir).filter((f) => f.endsWith('.onnx')).sort()).toEqual([first, second].map((p) => (p as string).split('/').pop()).sort());
    // Unused for longer than the cache's limit (0 here): dropped when the next arrangement is kept.
    bytes[bytes.length - 1] ^= 3;
    writeFileSync(other, bytes);
    const third = await arrangedModel(await arrangedCache(other, dir, 0), other, 'cpu', arrange);
    expect(readdirSync(dir).filter((f) => f.endsWith('.onnx'))).toEqual([(third as string).split('/').pop()]);
  });

  it('loads the source itself when the arrangement changes nothing, and remembers that', async () => {
    const dir = join(tmp, 'cache3');
    expect(await arrangedModel(await arrangedCache(source, dir), source, 'cuda', () => undefined)).toBe(source);
    expect(await arrangedModel(await arrangedCache(source, dir), source, 'cuda', refuse)).toBe(source);
  });

  it('hands over the arranged bytes when the cache cannot be written', async () => {
    const blocked = join(tmp, 'a-file');
    writeFileSync(blocked, 'not a folder');
    const r = await arrangedModel(await arrangedCache(source, join(blocked, 'cache')), source, 'cpu', arrange);
    expect(r).toBeInstanceOf(Uint8Array);
    expect((r as Uint8Array).length).toBe(arrange(readFileSync(source))!.length);
  });

  it('is what the Upscaler loads on ONNX Runtime: realesrgan-x4plus is arranged once and marked as no fused-kernel model', async () => {
    await pullModel('realesrgan-x4plus');
    const up = await Upscaler.start({ modelPath: onnxPath('realesrgan-x4plus'), scale: 4, threads: 1, lanes: 1 });
    try {
      expect(up.engine).toBe('onnxruntime');
      const kept = readdirSync(join(modelsDir(), '.arranged')).filter((f) => f.startsWith('realesrgan-x4plus.'));
      const code = await arrangerCodeKey();
      expect(kept.filter((f) => f.includes(`.${code}.`)).map((f) => f.split('.')[1]).sort()).toEqual(['cpu', 'not-native']);
      expect(existsSync(join(modelsDir(), '.realesrgan-x4plus.onnx.sha256'))).toBe(true);
    } finally {
      await up.close();
    }
  }, 60_000);
});
