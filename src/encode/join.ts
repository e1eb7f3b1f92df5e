/**
 * The final step of every job: the finished segments joined by stream copy, with the source's
 * audio, subtitles, attachments, chapters and metadata, into a temporary output file. Used by
 * the single-process pipeline and by the scale-out joiner, so both write the same file.
 */
import { join } from 'node:path';
import type { RangePlan } from '../decode/range.js';
import { ExternalProcessError, InputError } from '../errors.js';
import type { Binary } from '../ffmpeg/binaries.js';
import { frameDurationUs, type MediaInfo } from '../ffmpeg/probe.js';
import { carriedStreams, type Container } from './containers.js';
import { muxArgs, rangeCutArgs } from './encoder-args.js';
import { fixMp4LastFrame } from './mp4-duration-fix.js';
import { runMux } from './mux.js';
import { orientation } from './output-size.js';
import { writeConcatList, type SegmentRecord } from './work-dir.js';

export interface JoinInput {
  ffmpeg: Binary;
  input: string;
  info: MediaInfo;
  container: Container;
  range: RangePlan;
  /** Holds the segment files; the concat list (and a range's cut streams) are written here. */
  workDir: string;
  /** In order, gap-free. */
  segments: SegmentRecord[];
  /** Where the joined file is written (renamed into place by the caller). */
  output: string;
}

/**
 * The streams carried, the last frame's duration and the rotation handling are derived from the
 * source and the container here, as the segments' writer derived them (src/pipeline.ts).
 */
export async function joinSegments(j: JoinInput): Promise<void> {
  const v = j.info.video;
  const { range, segments, container } = j;
  const streams = carriedStreams(container, j.info).streams;
  const frameUs = frameDurationUs(v);
  // MP4/MOV: frames kept in stored orientation, with the rotation tag written back.
  const { keepRotationTag } = orientation(container, v.rotation);
  const firstPtsUs = segments[0]!.firstPtsUs;
  const lastPtsUs = segments.at(-1)!.lastPtsUs;
  // A join that fails is down to the source's other streams (a damaged file), not to anything
  // a resume could fix.
  const copyStreams = (args: string[]) => runMux(j.ffmpeg, args).catch((err: unknown) => {
    throw err instanceof ExternalProcessError
      ? new InputError(`the input's audio/subtitle streams could not be copied (${err.message.replace(/^joining the segments failed: /, '')})`, 'the file may be damaged; check that it plays', err)
      : err;
  });
  let cutFile: string | undefined;
  if (range.seekSeconds !== undefined && streams.length > 0) {
    cutFile = join(j.workDir, `streams.${container === 'matroska' ? 'mkv' : container}`);
    await copyStreams(rangeCutArgs({
      source: j.input, output: cutFile, container, streams, seekSeconds: range.seekSeconds, startUs: range.shiftUs, endUs: range.endUs,
    }));
  }
  await copyStreams(muxArgs({
    source: j.input, output: j.output, container, streams, sourceVideoIndex: v.index, timeBase: v.timeBase,
    shiftUs: range.shiftUs, cutFile,
    concatList: await writeConcatList(j.workDir, segments, frameUs), firstPtsUs,
    // Written so the output's display matrix reports what the source's did.
    rotationTag: keepRotationTag ? (360 - v.rotation) % 360 : 0,
  }));
  if (keepRotationTag) await fixMp4LastFrame(j.output, lastPtsUs - firstPtsUs + frameUs, frameUs);
}
