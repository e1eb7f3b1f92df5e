/** esrvid's version, from its package.json (read once), for --version, doctor and the bench. */
import { readFileSync } from 'node:fs';

let version: string | undefined;

export function packageVersion(): string {
  if (version === undefined) {
    try {
      version = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string }).version ?? 'unknown';
    } catch {
      version = 'unknown';
    }
  }
  return version;
}
