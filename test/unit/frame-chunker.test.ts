import { describe, expect, it } from 'vitest';
import { FrameChunker } from '../../src/decode/frame-chunker.js';
import { FramePool } from '../../src/decode/frame-pool.js';

describe('FrameChunker + FramePool', () => {
  it('re-chunks arbitrary pieces (8 + 10 + 14 bytes) into whole 2x2 RGB frames', () => {
    const pool = new FramePool(12, 4);
    const chunker = new FrameChunker(pool);
    const bytes = Uint8Array.from({ length: 32 }, (_, i) => i);
    const got: Buffer[] = [];
    for (const [a, b] of [[0, 8], [8, 18], [18, 32]] as const) {
      const { frames, consumed } = chunker.push(bytes.subarray(a, b));
      expect(consumed).toBe(b - a);
      got.push(...frames);
    }
    expect(got.map((f) => Array.from(f))).toEqual([Array.from(bytes.subarray(0, 12)), Array.from(bytes.subarray(12, 24))]);
    expect(chunker.pending).toBe(8); // 32 bytes = 2 frames + 8 bytes of a third
    expect(pool.available).toBe(1);
  });

  it('stops consuming when the pool is empty (backpressure) and resumes after a release', () => {
    const pool = new FramePool(4, 2);
    const chunker = new FrameChunker(pool);
    const first = chunker.push(new Uint8Array(12).fill(7));
    expect(first.frames).toHaveLength(2);
    expect(first.consumed).toBe(8);
    expect(chunker.push(new Uint8Array(4)).consumed).toBe(0);
    pool.release(first.frames[0]!);
    const again = chunker.push(new Uint8Array([1, 2, 3, 4]));
    expect(again.consumed).toBe(4);
    // The released buffer was reused, not a new allocation.
    expect(again.frames[0]).toBe(first.frames[0]);
    expect(Array.from(again.frames[0]!)).toEqual([1, 2, 3, 4]);
  });

  it('hands a released buffer straight to a waiting acquirer', async () => {
    const pool = new FramePool(4, 1);
    const b = (await pool.acquire())!;
    const waiting = pool.acquire();
    pool.release(b);
    expect(await waiting).toBe(b);
    expect(() => pool.release(Buffer.alloc(5))).toThrow(/foreign buffer/);
  });

  it('a waiting acquire gives up when the job is cancelled', async () => {
    const pool = new FramePool(4, 1);
    const held = (await pool.acquire())!;
    const controller = new AbortController();
    const waiting = pool.acquire(controller.signal);
    controller.abort();
    expect(await waiting).toBeUndefined();
    pool.release(held);
    expect(pool.available).toBe(1); // the abandoned waiter did not swallow the buffer
  });
});
