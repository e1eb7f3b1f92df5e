/**
 * Where a scale-out job's files live: storage every worker can reach. The job's folder holds its
 * plan (job.json), the finished segment files with their records, and each attempt's private
 * folder. A segment is written in its attempt folder, then moved into place and only then
 * recorded, so a worker killed mid-segment never leaves a file that looks finished; a retried
 * segment writes a new attempt folder and ignores the old one. The interface is small so that
 * an object store can stand beside the shared-directory implementation.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { readSegmentRecord, recordSegment, type SegmentRecord } from '../encode/work-dir.js';
import { writeFileAtomic } from '../models/store.js';

export interface SharedStorage {
  writeTextAtomic(name: string, text: string): Promise<void>;
  /** A new, empty local folder for one attempt at a segment (written to by the pipeline). */
  newAttempt(index: number, worker: string): Promise<string>;
  /** Moves an attempt's finished segment into place, then records it; removes the attempt. */
  commitSegment(attemptDir: string, record: SegmentRecord): Promise<SegmentRecord>;
  /** Removes an attempt folder (a failed or given-back attempt). */
  dropAttempt(attemptDir: string): Promise<void>;
  /** The finished segment with this index: recorded, and its file of the recorded size. */
  finishedSegment(index: number): Promise<SegmentRecord | undefined>;
  /** A local path the joiner's FFmpeg reads the folder's files from. */
  localFolder(): string;
  /** Removes everything of the job. */
  removeAll(): Promise<void>;
}

/** A folder on a shared file system (NFS, SMB, a local disk for one host). */
export class SharedDirectory implements SharedStorage {
  constructor(readonly dir: string) {}

  async writeTextAtomic(name: string, text: string): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    await writeFileAtomic(join(this.dir, name), text);
  }

  async newAttempt(index: number, worker: string): Promise<string> {
    const dir = join(this.dir, 'attempts', `${String(index).padStart(5, '0')}-${worker.replace(/[^\w.-]+/g, '_')}-${randomBytes(3).toString('hex')}`);
    await mkdir(dir, { recursive: true });
    return dir;
  }

  async commitSegment(attemptDir: string, record: SegmentRecord): Promise<SegmentRecord> {
    // rename() within one file system is atomic: the segment appears whole or not at all, and
    // the record (written last, itself atomically) is what makes it count.
    await rename(join(attemptDir, record.file), join(this.dir, record.file));
    await recordSegment(this.dir, record);
    await this.dropAttempt(attemptDir);
    return record;
  }

  async dropAttempt(attemptDir: string): Promise<void> {
    await rm(attemptDir, { recursive: true, force: true });
  }

  finishedSegment(index: number): Promise<SegmentRecord | undefined> {
    return readSegmentRecord(this.dir, index);
  }

  localFolder(): string {
    return this.dir;
  }

  async removeAll(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** The job's folder: beside the output, named for the job. */
export function jobFolderFor(outputAbs: string, jobId: string): string {
  return join(dirname(outputAbs), `.${basename(outputAbs)}.esrvid-scale-${jobId}`);
}

/**
 * `--map-path FROM=TO`: the same shared storage mounted elsewhere on this host (the submitter's
 * /mnt/a is this worker's /data/a). Paths under FROM are read under TO.
 */
export type PathMap = Array<[string, string]>;

export function parsePathMap(raw: string, previous: PathMap = []): PathMap {
  const at = raw.indexOf('=');
  if (at <= 0 || at === raw.length - 1) throw new Error(`--map-path wants FROM=TO, got "${raw}"`);
  return [...previous, [resolve(raw.slice(0, at)), resolve(raw.slice(at + 1))]];
}

export function mapPath(path: string, map: PathMap): string {
  for (const [from, to] of map) {
    if (path === from) return to;
    if (path.startsWith(from.endsWith('/') ? from : `${from}/`)) return join(to, path.slice(from.length));
  }
  return path;
}
