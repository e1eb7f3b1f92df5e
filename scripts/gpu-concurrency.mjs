#!/usr/bin/env node
/**
 * Do several sessions on one GPU, each with its own frames in flight, finish more frames per
 * second than one? The question behind it: ONNX Runtime's profile of realesr-general-x4v3 at
 * 1920x1080 on an H100 showed ~40 ms of GPU work in a ~115 ms run; the rest is copying frames
 * between host and GPU memory (pageable, as onnxruntime-node hands them over), which one session
 * does while the GPU waits. With two or more sessions, one session's copies can overlap another's
 * kernels.
 *
 * For each count of sessions (--sessions 1,2,3), alternated over --rounds rounds: every session
 * runs --frames calls back to back, all sessions at once; frames/s = all frames / wall time. The
 * sessions are esrvid's Upscaler lanes (one worker thread and session each: onnxruntime-node runs
 * the calls of one process's sessions one at a time otherwise), each warmed up first.
 *
 *   node scripts/gpu-concurrency.mjs --model realesr-general-x4v3 --size 1920x1080 [--precision fp16]
 *        [--sessions 1,2,3] [--frames 6] [--rounds 3] [--gpu 0] [--device cuda] [--out c.json]
 */
import { writeFile } from 'node:fs/promises';
import { list, optionValues } from './script-args.mjs';

const args = optionValues();
const o = {
  model: args.model ?? 'realesr-general-x4v3',
  size: (args.size ?? '1920x1080').split('x').map(Number),
  precision: args.precision ?? 'fp16',
  sessions: list(args.sessions, '1,2,3').map(Number),
  frames: Number(args.frames ?? 6),
  rounds: Number(args.rounds ?? 3),
  gpu: Number(args.gpu ?? 0),
  device: args.device ?? 'cuda',
};
const log = (s) => process.stderr.write(`gpu-concurrency: ${s}\n`);
const dist = new URL('../dist/', import.meta.url);
const { resolveModel } = await import(new URL('models/resolve.js', dist));
const { Upscaler } = await import(new URL('infer/upscaler.js', dist));
const { syntheticFrames } = await import(new URL('bench/frames.js', dist));
const { median } = await import(new URL('bench/stats.js', dist));

const [w, h] = o.size;
const model = await resolveModel(o.model, { device: o.device, precision: o.precision });

/** An Upscaler with `count` lanes (sessions on the same GPU), warmed up, with a slot per lane. */
async function upscaler(count) {
  const up = await Upscaler.start({ modelPath: model.path, scale: model.scale, device: o.device, gpu: o.gpu, lanes: count, ...(o.device === 'cpu' ? { threads: count } : {}) });
  const slots = Array.from({ length: count }, () => {
    const slot = up.allocateSlot(1, w, h);
    new Uint8Array(slot.input).set(syntheticFrames(1, w, h));
    return slot;
  });
  // Every lane warmed up (cuDNN's algorithm search), all at once as in the timed rounds.
  for (let i = 0; i < 2; i++) await Promise.all(slots.map(async (s, k) => { slots[k] = (await up.run(s, 1, w, h)).slot; }));
  return { up, slots };
}

const ups = new Map();
const result = { options: o, rounds: [] };
for (let round = 0; round < o.rounds; round++) {
  for (const count of o.sessions) {
    if (!ups.has(count)) ups.set(count, await upscaler(count));
    const { up, slots } = ups.get(count);
    const started = performance.now();
    await Promise.all(slots.map(async (_, k) => {
      for (let i = 0; i < o.frames; i++) slots[k] = (await up.run(slots[k], 1, w, h)).slot;
    }));
    const ms = performance.now() - started;
    const fps = (count * o.frames * 1000) / ms;
    result.rounds.push({ round, sessions: count, frames: count * o.frames, ms, fps });
    log(`${o.model} ${w}x${h} ${o.precision}, ${count} session(s): ${fps.toFixed(2)} frames/s`);
  }
}
result.medianFps = Object.fromEntries(o.sessions.map((c) => [c, median(result.rounds.filter((r) => r.sessions === c).map((r) => r.fps))]));
log(`median frames/s by sessions: ${JSON.stringify(result.medianFps)}`);
for (const { up } of ups.values()) await up.close();
if (args.out) await writeFile(args.out, `${JSON.stringify(result, null, 2)}\n`);
process.stdout.write(`${JSON.stringify(result, null, 2)}\n`, () => process.exit(0));
