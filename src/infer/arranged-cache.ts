/**
 * Arranged graphs kept on disk, so a job's lanes load them as files. Arranging realesrgan-x4plus
 * for the CPU read its 67 MB graph, rewrote it on the main thread (~190 ms, holding up the
 * decoder's start) and copied the result into every lane's thread; its jobs took ~0.9 s from
 * start to the first inference. The arrangement depends only on the source file and on the code
 * that arranges it, so both make the key: a changed model or a changed rewrite (these modules'
 * own bytes) never meets an older arrangement. Files live in the models folder's `.arranged/`;
 * writing one removes the older ones of the same source name and kind that no job has used for
 * 10 minutes (a hit renews a file's time): another esrvid build, or the tests (whose key is that
 * of the .ts sources), may be loading one at that moment.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, rm, stat, utimes } from 'node:fs/promises';
import { basename, join, resolve, sep } from 'node:path';
import { modelsDir, sha256File, stampedSha256, writeFileAtomic } from '../models/store.js';

export type ArrangementKind = 'cpu' | 'cuda';

/** The modules whose output the cache keeps (the rewriters and what they import). */
const ARRANGERS = ['../models/onnx/arrange-for-cpu', '../models/onnx/arrange-for-cuda', '../models/onnx/fold-output', '../models/onnx/tensor', './native-plan'];

let codeKey: Promise<string> | undefined;

/** 16 hex digits of the arranging code's own bytes (the built .js files, or the .ts sources under the tests). */
export function arrangerCodeKey(): Promise<string> {
  codeKey ??= (async () => {
    const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
    const h = createHash('sha256');
    for (const m of ARRANGERS) h.update(await readFile(new URL(`${m}${ext}`, import.meta.url)));
    return h.digest('hex').slice(0, 16);
  })();
  return codeKey;
}

/** An arranged graph, or a marker: the graph is no SRVGGNetCompact (no native plan), or the arrangement changes nothing. */
export type CacheEntry = ArrangementKind | 'not-native' | `${ArrangementKind}-unchanged`;

export interface ArrangedCache {
  /** Where an entry is or would be kept. */
  file(kind: CacheEntry): string;
  /** Keeps `bytes` (an empty marker without) as `kind`; false when the folder cannot be written. */
  keep(kind: CacheEntry, bytes?: Uint8Array): Promise<boolean>;
}

/**
 * The cache's view of one model file. Files in the models folder are hashed once per version of
 * the file (their stamp, src/models/store.ts); a file elsewhere is hashed each time (no stamp is
 * written beside a user's file), which for x4plus's 67 MB costs ~70 ms against the ~260 ms of
 * arranging and copying it.
 */
export async function arrangedCache(source: string, dir = join(modelsDir(), '.arranged'), evictAfterMs = 10 * 60_000): Promise<ArrangedCache> {
  const models = resolve(modelsDir());
  const inModels = resolve(source).startsWith(models + sep);
  const sourceSha256 = inModels ? await stampedSha256(source) : await sha256File(source);
  const code = await arrangerCodeKey();
  const name = basename(source).replace(/\.onnx$/i, '');
  const file = (kind: CacheEntry) => join(dir, `${name}.${kind}.${sourceSha256.slice(0, 16)}.${code}.${kind === 'cpu' || kind === 'cuda' ? 'onnx' : 'none'}`);
  return {
    file,
    async keep(kind, bytes) {
      const path = file(kind);
      try {
        await writeFileAtomic(path, bytes ?? '');
      } catch {
        return false;
      }
      // Older arrangements of this name and kind (another version of the model or of the code).
      const prefix = `${name}.${kind}.`;
      for (const f of await readdir(dir).catch(() => [] as string[])) {
        const old = join(dir, f);
        if (!f.startsWith(prefix) || old === path || f.includes('.tmp-')) continue;
        const st = await stat(old).catch(() => undefined);
        if (st && Date.now() - st.mtimeMs >= evictAfterMs) await rm(old, { force: true });
      }
      return true;
    },
  };
}

/**
 * The model as arranged for `kind`: the kept file when there is one; else arranged now (from
 * the source's bytes) and kept. `arrange` returns undefined when it finds nothing to change: the
 * source itself is then loaded (and that answer kept as an empty marker). Where the folder
 * cannot be written, the arranged bytes are returned to be handed to the lanes.
 */
export async function arrangedModel(cache: ArrangedCache, source: string, kind: ArrangementKind, arrange: (bytes: Uint8Array) => Uint8Array | undefined, bytes?: Uint8Array): Promise<string | Uint8Array> {
  const kept = cache.file(kind);
  if (existsSync(kept)) {
    // In use: not to be removed as stale by another build's job for the next while.
    const now = new Date();
    await utimes(kept, now, now).catch(() => undefined);
    return kept;
  }
  if (existsSync(cache.file(`${kind}-unchanged`))) return source;
  const arranged = arrange(bytes ?? new Uint8Array(await readFile(source)));
  if (!arranged) {
    await cache.keep(`${kind}-unchanged`);
    return source;
  }
  return (await cache.keep(kind, arranged)) ? kept : arranged;
}
