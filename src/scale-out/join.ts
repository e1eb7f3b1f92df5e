/**
 * The scale-out joiner: once every segment is done, the segments on shared storage are checked
 * against the plan (each one's frame count and first/last timestamps: no gap, no overlap) and
 * joined with the source's audio, subtitles, chapters and metadata by the same join the
 * single-process pipeline uses. The output is written under a temporary name beside it and
 * renamed when complete; then the job's folder is removed.
 */
import { rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { planRange } from '../decode/range.js';
import { containerFor } from '../encode/containers.js';
import { joinSegments } from '../encode/join.js';
import type { SegmentRecord } from '../encode/work-dir.js';
import { findFfmpeg } from '../ffmpeg/binaries.js';
import { probe } from '../ffmpeg/probe.js';
import { describeSegment, type JobSpec, type JoinResult } from './job.js';
import { SharedDirectory } from './storage.js';

export interface JoinPaths {
  input: string;
  output: string;
  folder: string;
}

export async function joinJob(spec: JobSpec, paths: JoinPaths, joinedBy: string, bins: { ffmpeg?: string; ffprobe?: string } = {}): Promise<JoinResult> {
  const started = performance.now();
  const storage = new SharedDirectory(paths.folder);
  const tools = await findFfmpeg(bins);
  const info = await probe(tools.ffprobe, paths.input);
  // The whole file, on the output clock a single-process run of it has (no scan for a whole file).
  const range = await planRange({}, info, tools.ffprobe);
  const { shiftUs } = range;
  const records: SegmentRecord[] = [];
  for (const seg of spec.segments) {
    const r = await storage.finishedSegment(seg.index);
    if (!r) throw new Error(`${describeSegment(seg)} is not finished on shared storage (${paths.folder})`);
    const expected = { frames: seg.end - seg.start, firstPtsUs: seg.firstPtsUs - shiftUs, lastPtsUs: seg.lastPtsUs - shiftUs };
    if (r.frames !== expected.frames || r.firstPtsUs !== expected.firstPtsUs || r.lastPtsUs !== expected.lastPtsUs) {
      throw new Error(`${describeSegment(seg)} does not match the plan: ${r.frames} frames at ${r.firstPtsUs}-${r.lastPtsUs} µs, planned ${expected.frames} at ${expected.firstPtsUs}-${expected.lastPtsUs} µs`);
    }
    const prev = records.at(-1);
    if (prev && r.firstPtsUs <= prev.lastPtsUs) throw new Error(`${describeSegment(seg)} overlaps the segment before it`);
    records.push(r);
  }
  const frames = records.reduce((n, r) => n + r.frames, 0);
  if (frames !== spec.frames) throw new Error(`the segments hold ${frames} frames, the source has ${spec.frames}`);

  const tmp = join(dirname(paths.output), `.${basename(paths.output)}.esrvid-scale-${spec.id}.partial`);
  try {
    await joinSegments({
      ffmpeg: tools.ffmpeg, ffprobe: tools.ffprobe, input: paths.input, info, container: containerFor(paths.output), range, workDir: storage.localFolder(), segments: records, output: tmp,
    });
    await rename(tmp, paths.output);
  } finally {
    await rm(tmp, { force: true });
  }
  await storage.removeAll();
  return { output: paths.output, frames, bytes: (await stat(paths.output)).size, joinMs: performance.now() - started, joinedBy };
}
