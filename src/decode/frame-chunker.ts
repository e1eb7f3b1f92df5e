/**
 * Re-chunks a byte stream (ffmpeg's rawvideo on a pipe arrives in arbitrary pieces) into whole
 * frames written straight into pooled buffers: one copy from the pipe, none afterwards.
 */
import type { FramePool } from './frame-pool.js';

export class FrameChunker {
  private current: Buffer | undefined;
  private filled = 0;

  constructor(private readonly pool: FramePool) {}

  /**
   * Consumes as much of `chunk` as the pool allows. Returns the completed frames and the number of
   * bytes consumed; fewer than chunk.length means the pool ran dry and the caller must wait.
   */
  push(chunk: Uint8Array): { frames: Buffer[]; consumed: number } {
    const frames: Buffer[] = [];
    let offset = 0;
    const size = this.pool.frameBytes;
    while (offset < chunk.length) {
      if (!this.current) {
        this.current = this.pool.tryAcquire();
        if (!this.current) break;
        this.filled = 0;
      }
      const n = Math.min(size - this.filled, chunk.length - offset);
      this.current.set(chunk.subarray(offset, offset + n), this.filled);
      this.filled += n;
      offset += n;
      if (this.filled === size) {
        frames.push(this.current);
        this.current = undefined;
      }
    }
    return { frames, consumed: offset };
  }

  /** Bytes of an incomplete frame held back (non-zero at the end of a stream means a cut frame). */
  get pending(): number {
    return this.current ? this.filled : 0;
  }

  /** Returns the partial buffer to the pool (on cancel or end). */
  discard(): void {
    if (this.current) this.pool.release(this.current);
    this.current = undefined;
    this.filled = 0;
  }
}
