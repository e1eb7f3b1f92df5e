/**
 * The final step of every job: the finished segments joined by stream copy, with the source's
 * audio, subtitles, attachments, chapters and metadata, into a temporary output file. Used by
 * the single-process pipeline and by the scale-out joiner, so both write the same file.
 */
import { join } from 'node:path';
import type { RangePlan } from '../decode/range.js';
import { ExternalProcessError, InputError } from '../errors.js';
import type { Binary } from '../ffmpeg/binaries.js';
import { firstPacketTimes, frameDurationUs, type MediaInfo } from '../ffmpeg/probe.js';
import { carriedStreams, type Container } from './containers.js';
import { muxArgs, rangeCutArgs } from './encoder-args.js';
import { fixMp4LastFrame } from './mp4-duration-fix.js';
import { runMux } from './mux.js';
import { orientation } from './output-size.js';
import { writeConcatList, type SegmentRecord } from './work-dir.js';

export interface JoinInput {
  ffmpeg: Binary;
  /** Finds where the source's streams really start (Matroska and WebM outputs). */
  ffprobe: Binary;
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
  // Matroska and WebM hold no negative timestamps, and FFmpeg 4.1 moves a stream that has some
  // (MP4's AAC priming packet at -21 ms) later on its own, out of sync with the video: instead,
  // everything moves later by as much as the earliest carried stream needs.
  let leadUs = 0;
  if ((container === 'matroska' || container === 'webm') && !cutFile && streams.length > 0) {
    const first = await firstPacketTimes(j.ffprobe, j.input).catch(() => new Map<number, number>());
    for (const st of streams) leadUs = Math.max(leadUs, range.shiftUs - (first.get(st.index) ?? range.shiftUs));
  }
  await copyStreams(muxArgs({
    source: j.input, output: j.output, container, streams, sourceVideoIndex: v.index, timeBase: v.timeBase,
    shiftUs: range.shiftUs, cutFile,
    concatList: await writeConcatList(j.workDir, segments, frameUs), firstPtsUs, leadUs,
    // Written so the output's display matrix reports what the source's did.
    rotationTag: keepRotationTag ? (360 - v.rotation) % 360 : 0,
  }));
  if (keepRotationTag) await fixMp4LastFrame(j.output, lastPtsUs - firstPtsUs + frameUs, frameUs);
}
