#!/usr/bin/env node
/**
 * Builds esrvid's native CPU kernel (src/native/srvgg.c, with its I420 output in yuv.c ->
 * dist/native/srvgg.node), part of `npm run build`. Optional by design: without a C compiler (or
 * on a compiler error) it says so in one line and esrvid runs every model on ONNX Runtime, as it
 * does on CPUs without AVX-512. Only the Node-API headers are needed (the node-api-headers
 * package, no download, no node-gyp); the kernels carry their own AVX-512 target attributes, so
 * the file is built for any x86-64 CPU and checks the CPU it runs on before using them.
 *
 * CC names the compiler (default: cc). ESRVID_NATIVE=0 skips the build.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'native', 'srvgg.node');
const say = (s) => process.stderr.write(`build-native: ${s}\n`);

rmSync(out, { force: true });
if (process.env.ESRVID_NATIVE === '0') {
  say('skipped (ESRVID_NATIVE=0): every model runs on ONNX Runtime');
  process.exit(0);
}
if (process.arch !== 'x64' || process.platform === 'win32') {
  say(`skipped: the kernel is written for x86-64 Linux/macOS, this is ${process.platform} ${process.arch}; every model runs on ONNX Runtime`);
  process.exit(0);
}
const headers = join(dirname(createRequire(import.meta.url).resolve('node-api-headers/package.json')), 'include');
mkdirSync(dirname(out), { recursive: true });
const cc = process.env.CC || 'cc';
// macOS resolves Node-API symbols from the node binary at load time only when told to.
const link = process.platform === 'darwin' ? ['-undefined', 'dynamic_lookup'] : [];
const args = ['-O3', '-fPIC', '-shared', '-pthread', '-std=c11', '-Wall', '-Wextra', '-Werror', '-fvisibility=hidden', '-I', headers, '-o', out, join(root, 'src', 'native', 'srvgg.c'), join(root, 'src', 'native', 'yuv.c'), '-lm', ...link];
const r = spawnSync(cc, args, { encoding: 'utf8' });
if (r.error || r.status !== 0) {
  const why = r.error ? `${cc} not found` : (r.stderr || '').trim().split('\n').slice(0, 3).join(' | ');
  say(`not built (${why}): compact models run on ONNX Runtime instead of the fused kernel`);
  rmSync(out, { force: true });
  process.exit(0);
}
say(`built ${out}`);
