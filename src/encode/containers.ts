/**
 * What each output container can hold, and how source streams are carried into it: copied
 * bit-exact where the container accepts them, converted only where it must (subtitles to
 * mov_text in MP4), and left out with a warning where nothing sensible exists (bitmap
 * subtitles in MP4). The rules live here so the argument builder stays declarative.
 */
import { extname } from 'node:path';
import { UsageError } from '../errors.js';
import type { MediaInfo, StreamInfo } from '../ffmpeg/probe.js';

export type Container = 'mp4' | 'mov' | 'matroska' | 'webm';

export function containerFor(path: string): Container {
  const ext = extname(path).toLowerCase();
  switch (ext) {
    case '.mp4':
    case '.m4v':
      return 'mp4';
    case '.mov':
      return 'mov';
    case '.mkv':
      return 'matroska';
    case '.webm':
      return 'webm';
    default:
      throw new UsageError(`cannot tell the output format from "${ext || path}"`, 'name the output .mp4, .mkv, .webm or .mov');
  }
}

export function defaultCodec(c: Container): string {
  return c === 'webm' ? 'libvpx-vp9' : 'libx264';
}

const TEXT_SUBS = new Set(['subrip', 'srt', 'ass', 'ssa', 'webvtt', 'mov_text', 'text']);
const MP4_AUDIO = new Set(['aac', 'mp3', 'ac3', 'eac3', 'alac', 'mp2']);
const WEBM_AUDIO = new Set(['opus', 'vorbis']);

export interface StreamPlan {
  /** Source stream index. */
  index: number;
  type: 'audio' | 'subtitle' | 'attachment';
  /** ffmpeg codec for this output stream: 'copy' keeps packets byte-identical. */
  codec: string;
}

export interface StreamCarry {
  streams: StreamPlan[];
  warnings: string[];
}

/** Decides, stream by stream, what goes into the output and how. */
export function planStreams(c: Container, streams: StreamInfo[]): StreamCarry {
  const out: StreamPlan[] = [];
  const warnings: string[] = [];
  for (const s of streams) {
    if (s.type === 'audio') {
      if (c === 'matroska') out.push({ index: s.index, type: 'audio', codec: 'copy' });
      else if (c === 'webm') {
        if (WEBM_AUDIO.has(s.codec)) out.push({ index: s.index, type: 'audio', codec: 'copy' });
        else {
          out.push({ index: s.index, type: 'audio', codec: 'libopus' });
          warnings.push(`audio stream ${s.index} (${s.codec}) cannot go into WebM as is: re-encoded to Opus; use .mkv to keep it bit-exact`);
        }
      } else if (MP4_AUDIO.has(s.codec)) out.push({ index: s.index, type: 'audio', codec: 'copy' });
      else {
        out.push({ index: s.index, type: 'audio', codec: 'aac' });
        warnings.push(`audio stream ${s.index} (${s.codec}) cannot go into ${c.toUpperCase()} as is: re-encoded to AAC; use .mkv to keep it bit-exact`);
      }
    } else if (s.type === 'subtitle') {
      const text = TEXT_SUBS.has(s.codec);
      if (c === 'matroska' && s.codec === 'mov_text') {
        // MP4's text subtitles have no Matroska codec id: FFmpeg cannot write them into MKV as they are.
        out.push({ index: s.index, type: 'subtitle', codec: 'srt' });
        warnings.push(`subtitle stream ${s.index} (mov_text, MP4's text format) converted to SubRip, the text format Matroska holds`);
      } else if (c === 'matroska') out.push({ index: s.index, type: 'subtitle', codec: 'copy' });
      else if (!text) warnings.push(`subtitle stream ${s.index} (${s.codec}) is a bitmap format that ${c.toUpperCase()} cannot hold: left out; use .mkv to keep it`);
      else if (c === 'webm') out.push({ index: s.index, type: 'subtitle', codec: s.codec === 'webvtt' ? 'copy' : 'webvtt' });
      else {
        out.push({ index: s.index, type: 'subtitle', codec: s.codec === 'mov_text' ? 'copy' : 'mov_text' });
        if (s.codec !== 'mov_text') warnings.push(`subtitle stream ${s.index} (${s.codec}) converted to mov_text, the text format MP4 players read`);
      }
    } else if (s.type === 'attachment' && c === 'matroska') {
      out.push({ index: s.index, type: 'attachment', codec: 'copy' });
    }
  }
  return { streams: out, warnings };
}

/** The source's streams besides the upscaled video (and cover pictures), as `c` can carry them. */
export function carriedStreams(c: Container, info: MediaInfo): StreamCarry {
  return planStreams(c, info.streams.filter((s) => s.index !== info.video.index && !s.attachedPic));
}
