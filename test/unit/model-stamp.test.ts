/**
 * A model file's hash, remembered beside it (src/models/store.ts stampedSha256): trusted while the
 * file is unchanged, hashed again after any change, even one that puts the modification time back.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stampedSha256, stampPath } from '../../src/models/store.js';

const dir = mkdtempSync(join(tmpdir(), 'esrvid-stamp-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const sha = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');

describe('stampedSha256', () => {
  it('hashes a file once and stamps it beside the file', async () => {
    const f = join(dir, 'a.onnx');
    writeFileSync(f, 'first version');
    expect(existsSync(stampPath(f))).toBe(false);
    expect(await stampedSha256(f)).toBe(sha('first version'));
    expect(stampPath(f)).toBe(join(dir, '.a.onnx.sha256'));
    const stamp = JSON.parse(readFileSync(stampPath(f), 'utf8'));
    expect(stamp).toMatchObject({ sha256: sha('first version'), size: 13, ino: statSync(f).ino });
  });

  it('trusts the stamp while the file is unchanged (the file is not read again)', async () => {
    const f = join(dir, 'b.onnx');
    writeFileSync(f, 'model bytes');
    await stampedSha256(f);
    // A stamp naming another hash for the same unchanged file is believed: proof it was not re-hashed.
    const stamp = JSON.parse(readFileSync(stampPath(f), 'utf8'));
    writeFileSync(stampPath(f), JSON.stringify({ ...stamp, sha256: 'f'.repeat(64) }));
    expect(await stampedSha256(f)).toBe('f'.repeat(64));
  });

  it('hashes again after the file changes, even at the same size with its modification time put back', async () => {
    const f = join(dir, 'c.onnx');
    // Whole seconds, which the file system keeps exactly.
    const t = 1_700_000_000;
    writeFileSync(f, 'AAAA');
    utimesSync(f, t, t);
    expect(await stampedSha256(f)).toBe(sha('AAAA'));
    await new Promise((r) => setTimeout(r, 20));
    writeFileSync(f, 'BBBB');
    utimesSync(f, t, t);
    expect(statSync(f).mtimeMs).toBe(t * 1000);
    expect(await stampedSha256(f)).toBe(sha('BBBB'));
  });

  it('ignores a stamp it cannot read and hashes', async () => {
    const f = join(dir, 'd.onnx');
    writeFileSync(f, 'dd');
    writeFileSync(stampPath(f), 'not json');
    expect(await stampedSha256(f)).toBe(sha('dd'));
    expect(JSON.parse(readFileSync(stampPath(f), 'utf8')).sha256).toBe(sha('dd'));
  });
});
