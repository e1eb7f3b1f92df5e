/**
 * A fixed set of frame-sized buffers. Decoding takes one per frame and the pipeline gives it
 * back once the frame has been upscaled, so memory stays bounded by the pool, not the video,
 * and no frame buffer is allocated after start-up. An empty pool is what pauses the decoder.
 */
export class FramePool {
  private readonly free: Buffer[] = [];
  private waiters: ((b: Buffer | undefined) => void)[] = [];
  readonly frameBytes: number;
  readonly size: number;

  constructor(frameBytes: number, size: number) {
    this.frameBytes = frameBytes;
    this.size = size;
    for (let i = 0; i < size; i++) this.free.push(Buffer.allocUnsafeSlow(frameBytes));
  }

  get available(): number {
    return this.free.length;
  }

  tryAcquire(): Buffer | undefined {
    return this.free.pop();
  }

  /** Waits for a free buffer; resolves undefined if `signal` aborts first (a cancelled job). */
  acquire(signal?: AbortSignal): Promise<Buffer | undefined> {
    const b = this.free.pop();
    if (b) return Promise.resolve(b);
    if (signal?.aborted) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const waiter = (buf: Buffer | undefined) => {
        signal?.removeEventListener('abort', onAbort);
        resolve(buf);
      };
      const onAbort = () => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve(undefined);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  release(b: Buffer): void {
    if (b.byteLength !== this.frameBytes) throw new Error('FramePool: foreign buffer released');
    const w = this.waiters.shift();
    if (w) w(b);
    else this.free.push(b);
  }
}
