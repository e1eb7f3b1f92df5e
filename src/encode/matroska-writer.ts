/**
 * A minimal streaming Matroska writer for uncompressed frames: RGB24, or I420 (planar Y'CbCr 4:2:0)
 * where the native kernel writes the encoder's format itself.
 *
 * Raw frames piped to ffmpeg as `-f rawvideo` carry no timestamps, so variable-frame-rate input
 * would be re-timed to a constant rate on encode. Wrapping each frame in Matroska lets the encoder
 * see the source's exact presentation times. ffmpeg's Matroska demuxer reads V_UNCOMPRESSED
 * (although its muxer will not write it), so this writer only needs to produce what that demuxer
 * understands: no Cues, no SeekHead, no Duration, sizes known up front or declared unknown, so the
 * stream can go straight down a pipe without seeking back.
 */

/** The frames' layout: packed RGB, or I420's three planes (Y, then U and V at half width and height). */
export type RawFormat = 'rgb24' | 'yuv420p';

export interface RawVideoTrack {
  width: number;
  height: number;
  /** Default rgb24. */
  format?: RawFormat;
  /** optional nominal frame duration for players, µs */
  defaultDurationUs?: number;
}

// Element IDs keep their length-marker bits, which is how they appear on the wire.
const ID = {
  EBML: 0x1a45dfa3,
  EBMLVersion: 0x4286,
  EBMLReadVersion: 0x42f7,
  EBMLMaxIDLength: 0x42f2,
  EBMLMaxSizeLength: 0x42f3,
  DocType: 0x4282,
  DocTypeVersion: 0x4287,
  DocTypeReadVersion: 0x4285,
  Segment: 0x18538067,
  Info: 0x1549a966,
  TimestampScale: 0x2ad7b1,
  MuxingApp: 0x4d80,
  WritingApp: 0x5741,
  Tracks: 0x1654ae6b,
  TrackEntry: 0xae,
  TrackNumber: 0xd7,
  TrackUID: 0x73c5,
  TrackType: 0x83,
  FlagLacing: 0x9c,
  CodecID: 0x86,
  DefaultDuration: 0x23e383,
  Video: 0xe0,
  PixelWidth: 0xb0,
  PixelHeight: 0xba,
  ColourSpace: 0x2eb524,
  Cluster: 0x1f43b675,
  Timestamp: 0xe7,
  SimpleBlock: 0xa3,
} as const;

/** 1 µs per tick: integer microsecond pts map 1:1 onto block times, with no rounding. */
const TIMESTAMP_SCALE_NS = 1000;
const APP_NAME = 'esrvid';
/**
 * ffmpeg's demuxer takes a 4-byte ColourSpace as a little-endian codec tag, and its rawvideo
 * decoder looks that tag up in libavcodec/raw.c, where RGB24 is MKTAG('R','G','B',24).
 * Without it the decoder would guess a pixel format from bits per sample and may pick BGR.
 */
const FOURCC: Record<RawFormat, Uint8Array> = {
  rgb24: Uint8Array.of(0x52, 0x47, 0x42, 24),
  // MKTAG('I','4','2','0'): yuv420p in the same table.
  yuv420p: Uint8Array.of(0x49, 0x34, 0x32, 0x30),
};
/** Largest size an 8-byte EBML vint can hold; 0x01FF.. (all ones) is reserved for "unknown". */
const MAX_SIZE_8 = 2 ** 56 - 2;

function idBytes(id: number): number[] {
  const out: number[] = [];
  for (let v = id; v > 0; v = Math.floor(v / 256)) out.unshift(v % 256);
  return out;
}

/** Fixed 8-byte size field: lets callers compute sizes without a second pass over children. */
function size8(n: number): number[] {
  if (!Number.isSafeInteger(n) || n < 0 || n > MAX_SIZE_8) throw new Error(`EBML size out of range: ${n}`);
  const out = [0x01];
  for (let shift = 6; shift >= 0; shift--) out.push(Math.floor(n / 2 ** (shift * 8)) % 256);
  return out;
}

/** Shortest big-endian encoding (at least one byte), as EBML unsigned integers allow. */
function uintBytes(n: number): number[] {
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`EBML unsigned integer out of range: ${n}`);
  const out: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) out.unshift(v % 256);
  return out.length ? out : [0];
}

function element(id: number, payload: ArrayLike<number>): number[] {
  return [...idBytes(id), ...size8(payload.length), ...Array.from(payload)];
}
const uint = (id: number, n: number) => element(id, uintBytes(n));
const str = (id: number, s: string) => element(id, Buffer.from(s, 'utf8'));
const master = (id: number, ...children: number[][]) => element(id, children.flat());

export class MatroskaRawWriter {
  readonly width: number;
  readonly height: number;
  readonly format: RawFormat;
  readonly frameBytes: number;
  private readonly defaultDurationNs: number | undefined;
  private lastPtsUs = -1;

  constructor(track: RawVideoTrack) {
    const { width, height, defaultDurationUs } = track;
    for (const [name, v] of [['width', width], ['height', height]] as const) {
      if (!Number.isSafeInteger(v) || v <= 0) throw new Error(`Matroska video ${name} must be a positive integer, got ${v}`);
    }
    this.format = track.format ?? 'rgb24';
    if (this.format === 'yuv420p' && (width % 2 || height % 2)) throw new Error(`Matroska I420 frames need an even width and height, got ${width}x${height}`);
    this.width = width;
    this.height = height;
    this.frameBytes = this.format === 'yuv420p' ? width * height * 3 / 2 : width * height * 3;
    if (this.frameBytes + 4 > MAX_SIZE_8) throw new Error(`Matroska frame of ${width}x${height} is too large`);
    if (defaultDurationUs !== undefined) {
      if (!Number.isFinite(defaultDurationUs) || defaultDurationUs <= 0) {
        throw new Error(`Matroska defaultDurationUs must be a positive number, got ${defaultDurationUs}`);
      }
      // DefaultDuration is always in ns regardless of TimestampScale, so fractional µs survive.
      this.defaultDurationNs = Math.max(1, Math.round(defaultDurationUs * 1000));
    }
  }

  header(): Buffer {
    const ebml = master(
      ID.EBML,
      uint(ID.EBMLVersion, 1),
      uint(ID.EBMLReadVersion, 1),
      uint(ID.EBMLMaxIDLength, 4),
      uint(ID.EBMLMaxSizeLength, 8),
      str(ID.DocType, 'matroska'),
      uint(ID.DocTypeVersion, 4),
      uint(ID.DocTypeReadVersion, 2),
    );
    const info = master(
      ID.Info,
      uint(ID.TimestampScale, TIMESTAMP_SCALE_NS),
      str(ID.MuxingApp, APP_NAME),
      str(ID.WritingApp, APP_NAME),
    );
    const video = master(
      ID.Video,
      uint(ID.PixelWidth, this.width),
      uint(ID.PixelHeight, this.height),
      element(ID.ColourSpace, FOURCC[this.format]),
    );
    const trackEntry = master(
      ID.TrackEntry,
      uint(ID.TrackNumber, 1),
      uint(ID.TrackUID, 1),
      uint(ID.TrackType, 1), // video
      uint(ID.FlagLacing, 0),
      str(ID.CodecID, 'V_UNCOMPRESSED'),
      ...(this.defaultDurationNs !== undefined ? [uint(ID.DefaultDuration, this.defaultDurationNs)] : []),
      video,
    );
    const tracks = master(ID.Tracks, trackEntry);
    // The Segment's length is unknown while streaming, and nothing can be patched on a pipe.
    const segmentStart = [...idBytes(ID.Segment), 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
    return Buffer.from([...ebml, ...segmentStart, ...info, ...tracks]);
  }

  frame(data: Uint8Array, ptsUs: number): Uint8Array[] {
    if (data.byteLength !== this.frameBytes) {
      throw new Error(
        `Matroska frame is ${data.byteLength} bytes, expected ${this.frameBytes} (${this.width}x${this.height} ${this.format === 'yuv420p' ? 'I420' : 'RGB24'})`,
      );
    }
    if (!Number.isSafeInteger(ptsUs) || ptsUs < 0) {
      throw new Error(`Matroska frame pts must be a non-negative integer number of µs, got ${ptsUs}`);
    }
    if (ptsUs < this.lastPtsUs) {
      throw new Error(`Matroska frame pts ${ptsUs} µs is before the previous frame's ${this.lastPtsUs} µs`);
    }
    this.lastPtsUs = ptsUs;

    // One Cluster per frame puts the full pts in the Cluster Timestamp, so the block's signed
    // 16-bit relative timestamp (only ±32 ms at 1 µs ticks) can always be 0.
    const blockHeader = [
      0x81, // track number 1 as a 1-byte vint
      0x00, 0x00, // timestamp relative to the Cluster
      0x80, // keyframe; no lacing
    ];
    const blockSize = blockHeader.length + data.byteLength;
    const timestamp = uint(ID.Timestamp, ptsUs);
    const simpleBlockHead = [...idBytes(ID.SimpleBlock), ...size8(blockSize), ...blockHeader];
    const clusterPayload = timestamp.length + simpleBlockHead.length + data.byteLength;
    const head = Buffer.from([...idBytes(ID.Cluster), ...size8(clusterPayload), ...timestamp, ...simpleBlockHead]);
    return [head, data];
  }
}
