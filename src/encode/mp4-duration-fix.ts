/**
 * Makes an MP4/MOV show its last video frame. ffmpeg 4.1's mov muxer (the bundled build) gives the
 * last sample a duration of 0 when the encoder sets no packet durations, and with B-frames it
 * sizes the edit list from decode times, which is short by the reorder delay. Players and
 * ffprobe honour the edit list, so the last frame (or more, with variable frame rates) silently
 * disappears: exactly the "frames in != frames out" desync users complain about.
 *
 * Fix, in place and without changing any box size: give the last stts entry (always its own
 * entry, since its delta of 0 differs from the rest) the nominal frame duration, and stretch the
 * edit list, track, media and movie durations to cover the frames' real presentation span.
 * Newer muxers already write these correctly; then nothing is changed.
 */
import { open } from 'node:fs/promises';

interface Box {
  type: string;
  start: number; // offset of the box header within the buffer
  header: number;
  size: number;
}

function* boxes(buf: Buffer, from: number, to: number): Generator<Box> {
  let p = from;
  while (p + 8 <= to) {
    let size = buf.readUInt32BE(p);
    const type = buf.toString('latin1', p + 4, p + 8);
    let header = 8;
    if (size === 1) {
      size = Number(buf.readBigUInt64BE(p + 8));
      header = 16;
    } else if (size === 0) size = to - p;
    if (size < header || p + size > to) return;
    yield { type, start: p, header, size };
    p += size;
  }
}

const child = (buf: Buffer, parent: Box, type: string) => {
  for (const b of boxes(buf, parent.start + parent.header, parent.start + parent.size)) if (b.type === type) return b;
  return undefined;
};

/** Version-dependent (32/64-bit) duration field of mvhd/tkhd/mdhd. */
function durationField(buf: Buffer, box: Box, kind: 'mvhd' | 'tkhd' | 'mdhd') {
  const base = box.start + box.header;
  const v1 = buf[base] === 1;
  // after version+flags: creation, modification times, then (mvhd/mdhd) timescale or (tkhd) track id + reserved
  const offset = kind === 'tkhd' ? (v1 ? base + 4 + 16 + 8 : base + 4 + 8 + 8) : (v1 ? base + 4 + 16 + 4 : base + 4 + 8 + 4);
  const timescaleAt = kind === 'tkhd' ? -1 : v1 ? base + 4 + 16 : base + 4 + 8;
  return {
    timescale: timescaleAt >= 0 ? buf.readUInt32BE(timescaleAt) : 0,
    get: () => (v1 ? Number(buf.readBigUInt64BE(offset)) : buf.readUInt32BE(offset)),
    set: (n: number) => (v1 ? buf.writeBigUInt64BE(BigInt(n), offset) : buf.writeUInt32BE(Math.min(n, 0xffffffff), offset)),
  };
}

export interface LastFrameFix {
  changed: boolean;
}

/**
 * @param spanUs presentation span of the video frames: last pts - first pts + frame duration.
 * @param frameDurationUs nominal duration given to the last frame.
 */
export async function fixMp4LastFrame(path: string, spanUs: number, frameDurationUs: number): Promise<LastFrameFix> {
  const fh = await open(path, 'r+');
  try {
    const { size: fileSize } = await fh.stat();
    // Find moov by walking top-level box headers (it is at the front with faststart, else at the end).
    let pos = 0;
    let moovAt = -1;
    let moovSize = 0;
    const head = Buffer.alloc(16);
    while (pos + 8 <= fileSize) {
      await fh.read(head, 0, 16, pos);
      let size = head.readUInt32BE(0);
      const type = head.toString('latin1', 4, 8);
      if (size === 1) size = Number(head.readBigUInt64BE(8));
      else if (size === 0) size = fileSize - pos;
      if (size < 8) break;
      if (type === 'moov') {
        moovAt = pos;
        moovSize = size;
        break;
      }
      pos += size;
    }
    if (moovAt < 0) return { changed: false };
    const buf = Buffer.alloc(moovSize);
    await fh.read(buf, 0, moovSize, moovAt);
    const moov: Box = { type: 'moov', start: 0, header: buf.readUInt32BE(0) === 1 ? 16 : 8, size: moovSize };
    const mvhdBox = child(buf, moov, 'mvhd');
    if (!mvhdBox) return { changed: false };
    const mvhd = durationField(buf, mvhdBox, 'mvhd');
    let changed = false;

    for (const trak of boxes(buf, moov.start + moov.header, moov.size)) {
      if (trak.type !== 'trak') continue;
      const mdia = child(buf, trak, 'mdia');
      const hdlr = mdia && child(buf, mdia, 'hdlr');
      if (!mdia || !hdlr || buf.toString('latin1', hdlr.start + hdlr.header + 8, hdlr.start + hdlr.header + 12) !== 'vide') continue;
      const mdhdBox = child(buf, mdia, 'mdhd');
      const stbl = child(buf, child(buf, mdia, 'minf') ?? mdia, 'stbl');
      const stts = stbl && child(buf, stbl, 'stts');
      const tkhdBox = child(buf, trak, 'tkhd');
      if (!mdhdBox || !stts || !tkhdBox) continue;
      const mdhd = durationField(buf, mdhdBox, 'mdhd');
      const entries = buf.readUInt32BE(stts.start + stts.header + 4);
      if (entries > 0) {
        const last = stts.start + stts.header + 8 + (entries - 1) * 8;
        if (buf.readUInt32BE(last) === 1 && buf.readUInt32BE(last + 4) === 0) {
          const delta = Math.max(1, Math.round((frameDurationUs * mdhd.timescale) / 1e6));
          buf.writeUInt32BE(delta, last + 4);
          mdhd.set(mdhd.get() + delta);
          changed = true;
        }
      }
      const need = Math.round((spanUs * mvhd.timescale) / 1e6);
      const edts = child(buf, trak, 'edts');
      const elst = edts && child(buf, edts, 'elst');
      if (elst) {
        const b = elst.start + elst.header;
        const v1 = buf[b] === 1;
        const n = buf.readUInt32BE(b + 4);
        // The presentation segment is the entry with a media time (>= 0); empty edits (-1) only delay.
        for (let i = 0; i < n; i++) {
          const e = b + 8 + i * (v1 ? 20 : 12);
          const mediaTime = v1 ? Number(buf.readBigInt64BE(e + 8)) : buf.readInt32BE(e + 4);
          if (mediaTime < 0) continue;
          const dur = v1 ? Number(buf.readBigUInt64BE(e)) : buf.readUInt32BE(e);
          if (dur < need) {
            if (v1) buf.writeBigUInt64BE(BigInt(need), e);
            else buf.writeUInt32BE(need, e);
            changed = true;
          }
        }
      }
      const tkhd = durationField(buf, tkhdBox, 'tkhd');
      let total = 0;
      if (elst) {
        const b = elst.start + elst.header;
        const v1 = buf[b] === 1;
        for (let i = 0; i < buf.readUInt32BE(b + 4); i++) {
          const e = b + 8 + i * (v1 ? 20 : 12);
          total += v1 ? Number(buf.readBigUInt64BE(e)) : buf.readUInt32BE(e);
        }
      } else total = need;
      if (tkhd.get() < total) {
        tkhd.set(total);
        changed = true;
      }
      if (mvhd.get() < total) {
        mvhd.set(total);
        changed = true;
      }
    }
    if (changed) await fh.write(buf, 0, moovSize, moovAt);
    return { changed };
  } finally {
    await fh.close();
  }
}
