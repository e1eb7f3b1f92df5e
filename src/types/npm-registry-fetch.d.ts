// The subset of npm-registry-fetch that esrvid uses (the package ships no types).
declare module 'npm-registry-fetch' {
  import type { Readable } from 'node:stream';
  interface FetchResponse {
    status: number;
    headers: { get(name: string): string | null };
    body: Readable & AsyncIterable<Buffer>;
  }
  interface FetchFn {
    (url: string, opts?: Record<string, unknown>): Promise<FetchResponse>;
    json(url: string, opts?: Record<string, unknown>): Promise<Record<string, any>>;
  }
  const fetch: FetchFn;
  export default fetch;
}
