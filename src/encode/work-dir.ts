/**
 * The work directory that makes long jobs resumable. It sits beside the output
 * (`.<output>.esrvid-work/`) and holds the job's identity (`job.json`: the input's fingerprint
 * and every setting that changes the pixels) and the finished video segments, each with a record
 * written only after its file is complete and flushed. A crash, kill -9, power loss or full disk
 * can therefore lose at most the segment being written; anything not recorded is redone.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { writeFileAtomic } from '../models/store.js';

export interface JobIdentity {
  input: { path: string; size: number; mtimeMs: number; headSha256: string };
  /** Everything that changes the output's frames or their split into segments. */
  settings: Record<string, unknown>;
}

export interface SegmentRecord {
  index: number;
  file: string;
  frames: number;
  /** First and last frame timestamps, µs on the output clock. */
  firstPtsUs: number;
  lastPtsUs: number;
  bytes: number;
}

export function workDirFor(outputAbs: string): string {
  return join(dirname(outputAbs), `.${basename(outputAbs)}.esrvid-work`);
}

export const segmentFile = (index: number) => `seg-${String(index).padStart(5, '0')}.nut`;
const recordFile = (index: number) => `seg-${String(index).padStart(5, '0')}.json`;

/** The input's identity without reading all of it: size, mtime and a hash of its first MiB. */
export async function fingerprint(path: string): Promise<JobIdentity['input']> {
  const st = await stat(path);
  const fh = await open(path, 'r');
  try {
    const head = Buffer.alloc(Math.min(st.size, 1 << 20));
    await fh.read(head, 0, head.length, 0);
    return { path, size: st.size, mtimeMs: Math.round(st.mtimeMs), headSha256: createHash('sha256').update(head).digest('hex') };
  } finally {
    await fh.close();
  }
}

export type WorkDirState =
  | { kind: 'none' }
  | { kind: 'same-job'; finished: SegmentRecord[] }
  | { kind: 'other-job' };

const sameJob = (a: JobIdentity, b: JobIdentity) => JSON.stringify(a) === JSON.stringify(b);

/**
 * Reads what a previous run left. Finished segments count only as a gap-free run from segment 0
 * whose files still have their recorded sizes; anything after a gap, and every partial file, is
 * deleted so it is redone.
 */
export async function inspectWorkDir(dir: string, job: JobIdentity): Promise<WorkDirState> {
  if (!existsSync(join(dir, 'job.json'))) return { kind: 'none' };
  let saved: JobIdentity;
  try {
    saved = JSON.parse(await readFile(join(dir, 'job.json'), 'utf8')) as JobIdentity;
  } catch {
    return { kind: 'other-job' };
  }
  if (!sameJob(saved, job)) return { kind: 'other-job' };
  const finished: SegmentRecord[] = [];
  for (let i = 0; ; i++) {
    const r = await readSegmentRecord(dir, i);
    if (!r) break;
    finished.push(r);
  }
  const keep = new Set(['job.json', ...finished.flatMap((r) => [r.file, recordFile(r.index)])]);
  for (const f of await readdir(dir)) if (!keep.has(f)) await rm(join(dir, f), { force: true, recursive: true });
  return { kind: 'same-job', finished };
}

/**
 * Segment `index`'s record in `dir`, when the record exists, reads, names that index and its
 * file still has the recorded size: what makes a segment count as finished.
 */
export async function readSegmentRecord(dir: string, index: number): Promise<SegmentRecord | undefined> {
  try {
    const r = JSON.parse(await readFile(join(dir, recordFile(index)), 'utf8')) as SegmentRecord;
    const st = await stat(join(dir, r.file));
    return r.index === index && st.size === r.bytes ? r : undefined;
  } catch {
    return undefined;
  }
}

export async function createWorkDir(dir: string, job: JobIdentity): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  await writeFileAtomic(join(dir, 'job.json'), JSON.stringify(job, null, 2) + '\n');
}

export async function recordSegment(dir: string, r: SegmentRecord): Promise<void> {
  await writeFileAtomic(join(dir, recordFile(r.index)), JSON.stringify(r) + '\n');
}

/**
 * An ffconcat list giving each segment its exact duration (to the next segment's first frame),
 * so the joined video keeps every frame's timestamp; the last lasts one nominal frame.
 */
export async function writeConcatList(dir: string, segments: SegmentRecord[], frameDurationUs: number): Promise<string> {
  const lines = ['ffconcat version 1.0'];
  segments.forEach((s, i) => {
    const next = segments[i + 1];
    const durUs = next ? next.firstPtsUs - s.firstPtsUs : s.lastPtsUs - s.firstPtsUs + frameDurationUs;
    lines.push(`file '${s.file}'`, `duration ${(durUs / 1e6).toFixed(6)}`);
  });
  const path = join(dir, 'segments.ffconcat');
  await writeFileAtomic(path, lines.join('\n') + '\n');
  return path;
}
