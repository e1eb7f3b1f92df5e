/**
 * A one-package npm registry on localhost: the version document (`/<name>/<version>`, with
 * dist.tarball and dist.integrity) and the gzip'd tarball, built from files given here. Point npm
 * (and so esrvid, which reads `npm config`) at it with npm_config_registry.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { create } from 'tar';

export interface FakeRegistry {
  url: string;
  integrity: string;
  tarballBytes: number;
  /** Request paths served so far. */
  requests: string[];
  close: () => Promise<void>;
}

/** `files`: paths inside the tarball (package/...) and their contents. */
export async function fakeRegistry(name: string, version: string, files: Record<string, Buffer | string>): Promise<FakeRegistry> {
  const dir = mkdtempSync(join(tmpdir(), 'esrvid-registry-'));
  for (const [path, data] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), data);
  }
  const tgz = join(dir, 'package.tgz');
  await create({ gzip: true, cwd: dir, file: tgz, portable: true }, Object.keys(files));
  const tarball = readFileSync(tgz);
  rmSync(dir, { recursive: true, force: true });
  const integrity = `sha512-${createHash('sha512').update(tarball).digest('base64')}`;
  const requests: string[] = [];
  let url = '';
  const server: Server = createServer((req, res) => {
    requests.push(req.url ?? '');
    if (req.url === `/${name}/${version}`) {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ name, version, dist: { tarball: `${url}${name}/-/${name}-${version}.tgz`, integrity } }));
    } else if (req.url === `/${name}/-/${name}-${version}.tgz`) {
      res.setHeader('content-type', 'application/octet-stream');
      res.end(tarball);
    } else {
      res.statusCode = 404;
      res.end('{"error":"not found"}');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  return { url, integrity, tarballBytes: tarball.length, requests, close: () => new Promise((r) => server.close(() => r())) };
}
