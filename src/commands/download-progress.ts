/**
 * A download's progress on stderr: a headline once, then a bar on a terminal, or a plain line
 * at every quarter otherwise (logs stay short). Used by `models pull` and `gpu install`.
 */
import cliProgress from 'cli-progress';
import { formatBytes } from './format.js';

export interface DownloadProgress {
  update(received: number, total: number): void;
  stop(): void;
}

export function downloadProgress(stream: NodeJS.WriteStream, headline: (total: number) => string): DownloadProgress {
  let bar: cliProgress.SingleBar | undefined;
  let started = false;
  let lastLine = 0;
  return {
    update(received, total) {
      if (!started) {
        started = true;
        stream.write(`${headline(total)}\n`);
        if (stream.isTTY) {
          bar = new cliProgress.SingleBar({ stream, format: '  {bar} {percentage}% | {done} of {size}', hideCursor: true, clearOnComplete: true }, cliProgress.Presets.shades_classic);
          bar.start(total, 0, { done: formatBytes(0), size: formatBytes(total) });
        }
      }
      if (bar) bar.update(Math.min(received, total), { done: formatBytes(received) });
      else if (received - lastLine >= total / 4 || received >= total) {
        lastLine = received;
        stream.write(`esrvid: ${formatBytes(received)} of ${formatBytes(total)}\n`);
      }
    },
    stop() {
      bar?.stop();
      bar = undefined;
    },
  };
}
