/**
 * A first-in first-out hand-over between two concurrent loops. It does not bound itself: the
 * producer's own resource (the frame pool) does, which is what keeps memory flat.
 */
export class AsyncQueue<T> {
  private items: T[] = [];
  private waiters: ((r: IteratorResult<T>) => void)[] = [];
  private closed = false;
  private error: unknown;

  push(item: T): void {
    const w = this.waiters.shift();
    if (w) w({ value: item, done: false });
    else this.items.push(item);
  }

  /** No more items; pending and future reads end (or throw `error` if given). */
  close(error?: unknown): void {
    this.closed = true;
    this.error = error;
    for (const w of this.waiters.splice(0)) w({ value: undefined, done: true });
  }

  get length(): number {
    return this.items.length;
  }

  async next(): Promise<IteratorResult<T>> {
    if (this.items.length) return { value: this.items.shift()!, done: false };
    if (this.closed) {
      if (this.error) throw this.error;
      return { value: undefined, done: true };
    }
    const r = await new Promise<IteratorResult<T>>((resolve) => this.waiters.push(resolve));
    if (r.done && this.error) throw this.error;
    return r;
  }
}
