/**
 * Reads every entry of a zip archive held in memory (PyTorch's .pth since 1.6 is a zip of stored
 * entries). yauzl checks the archive's structure (central directory, local headers, entry sizes);
 * each entry's CRC-32 is checked here, so a damaged storage cannot load as silently wrong weights.
 */
import { crc32 } from 'node:zlib';
import yauzl from 'yauzl';
import { ModelError } from '../../errors.js';

export async function readZipEntries(bytes: Uint8Array, source: string): Promise<Map<string, Buffer>> {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const damaged = (err: unknown): ModelError =>
    new ModelError(`${source}: damaged or truncated zip archive (${(err as Error).message.replace(/\s+/g, ' ').trim()})`,
      'the file is incomplete or not a PyTorch checkpoint; download it again', err);
  let zip: yauzl.ZipFile;
  try {
    zip = await yauzl.fromBufferPromise(buf, { lazyEntries: true, validateEntrySizes: true, strictFileNames: false, decodeStrings: true });
  } catch (err) {
    throw damaged(err);
  }
  const entries = new Map<string, Buffer>();
  try {
    for await (const entry of zip.eachEntry()) {
      if (entry.fileName.endsWith('/')) continue;
      if (entries.has(entry.fileName)) throw new ModelError(`${source}: the zip holds ${entry.fileName} twice`);
      const stream = await zip.openReadStreamPromise(entry);
      const chunks: Buffer[] = [];
      for await (const chunk of stream) chunks.push(chunk as Buffer);
      const data = Buffer.concat(chunks);
      if (crc32(data) >>> 0 !== entry.crc32 >>> 0) {
        throw new ModelError(`${source}: ${entry.fileName} fails its CRC-32 check; the file is damaged`, 'download it again');
      }
      entries.set(entry.fileName, data);
    }
  } catch (err) {
    if (err instanceof ModelError) throw err;
    throw damaged(err);
  } finally {
    zip.close();
  }
  return entries;
}
