// Terminal progress on stderr: phases with elapsed time, build progress lines, notes. On a
// TTY, build progress lines overwrite each other (one status line); elsewhere only phases
// and notes are printed, one per line.
import type { Writable } from 'node:stream';
import type { JobEvent } from './job-types.js';

export interface ProgressOptions {
  readonly stream: Writable & { isTTY?: boolean; columns?: number };
  /** The clock, passed in for tests. @default performance.now */
  readonly now?: () => number;
}

export function createProgress(options: ProgressOptions): (event: JobEvent) => void {
  const now = options.now ?? (() => performance.now());
  const started = now();
  const tty = options.stream.isTTY === true;
  let statusShown = false;
  const elapsed = (): string => `${((now() - started) / 1000).toFixed(1).padStart(6)}s`;
  const clearStatus = (): void => {
    if (statusShown) options.stream.write('\r\u001b[2K');
    statusShown = false;
  };
  return (event) => {
    if (event.type === 'progress') {
      if (!tty) return;
      const width = Math.max(20, (options.stream.columns ?? 100) - 12);
      clearStatus();
      options.stream.write(`[${elapsed()}]   ${event.line.slice(0, width)}`);
      statusShown = true;
      return;
    }
    clearStatus();
    const text = event.type === 'phase' ? `${event.phase}: ${event.message}` : `note: ${event.message}`;
    options.stream.write(`[${elapsed()}] ${text}\n`);
  };
}
