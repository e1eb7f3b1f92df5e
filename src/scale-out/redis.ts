/**
 * The Redis connection BullMQ runs on (ioredis). Reachability is checked once up front with a
 * short timeout, so an unreachable server is one clear line instead of endless reconnects; after
 * that, connections reconnect on their own (a restarted Redis is waited for, not an error).
 */
import { RedisError, UsageError } from '../errors.js';

export const DEFAULT_REDIS = 'redis://127.0.0.1:6379';

/** Options for BullMQ's connections: workers need maxRetriesPerRequest null (block, do not fail). */
export function connectionOptions(url: string): { url: string; maxRetriesPerRequest: null; retryStrategy: (times: number) => number } {
  return { url, maxRetriesPerRequest: null, retryStrategy: (times) => Math.min(200 * times, 2000) };
}

/** Fails with exit 9 and one line when the server does not answer PING within `timeoutMs`. */
export async function checkRedis(url: string, timeoutMs = 4000): Promise<void> {
  let parsed: URL;
  try {
    parsed = new URL(url);
    if (!/^rediss?:$/.test(parsed.protocol)) throw new Error('not a redis URL');
  } catch {
    throw new UsageError(`--redis ${url} is not a Redis URL`, 'give it as redis://host:6379 (or rediss:// for TLS)');
  }
  const { Redis } = await import('ioredis');
  const conn = new Redis(url, { lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
  // The socket's own error (ECONNREFUSED, ENOTFOUND, ETIMEDOUT) says more than connect()'s.
  let first: Error | undefined;
  conn.on('error', (err: Error) => (first ??= err));
  try {
    await conn.connect();
    await conn.ping();
  } catch (err) {
    const reason = (first ?? (err as Error)).message.replace(/^connect /, '') || 'no answer';
    throw new RedisError(`cannot reach Redis at ${url}: ${reason}`, 'start redis-server or pass --redis', err);
  } finally {
    conn.disconnect();
  }
}
