// Terminal progress of a nightly run (issue 11): on a TTY, one line per recipe (phase and
// elapsed time) and a bar for the whole matrix, redrawn in place; elsewhere (a log file, a
// systemd journal) one plain line per change, never a control character.
import type { Writable } from 'node:stream';
import type { NightlyEvent } from './types.js';

export interface NightlyProgressOptions {
  readonly stream: Writable & { isTTY?: boolean; columns?: number };
  /** The clock, passed in for tests. @default performance.now */
  readonly now?: () => number;
  /** How often a TTY view redraws the elapsed times. @default 1000 */
  readonly tickMs?: number;
}

export interface NightlyProgress {
  readonly onEvent: (event: NightlyEvent) => void;
  /** Stops the redraw timer (call once the run ended or failed). */
  stop(): void;
}

interface Row {
  phase: string;
  startedAt: number | null;
  endedAt: number | null;
}

const BAR_WIDTH = 30;

const secs = (ms: number): string => `${(ms / 1000).toFixed(1)}s`;

export function createNightlyProgress(options: NightlyProgressOptions): NightlyProgress {
  const now = options.now ?? (() => performance.now());
  const { stream } = options;
  const tty = stream.isTTY === true;
  const started = now();
  const rows = new Map<string, Row>();
  let drawn = 0;
  let done = 0;
  let failed = 0;
  let timer: NodeJS.Timeout | undefined;

  const rowText = (name: string, row: Row, width: number): string => {
    const elapsed = row.startedAt === null ? '' : secs((row.endedAt ?? now()) - row.startedAt);
    return `  ${name.padEnd(width)}  ${row.phase.padEnd(28)} ${elapsed.padStart(8)}`;
  };
  const bar = (): string => {
    const total = rows.size;
    const filled = total === 0 ? 0 : Math.round((done / total) * BAR_WIDTH);
    return `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ${done}/${total} done, ${failed} failed, ${secs(now() - started)}`;
  };
  const redraw = (): void => {
    const width = Math.max(...[...rows.keys()].map((n) => n.length), 6);
    const columns = stream.columns ?? 120;
    const lines = [...rows].map(([name, row]) => rowText(name, row, width)).concat(bar());
    let text = drawn > 0 ? `\u001b[${drawn}F` : '';
    for (const line of lines) text += `\u001b[2K${line.slice(0, columns - 1)}\n`;
    stream.write(text);
    drawn = lines.length;
  };
  const plain = (text: string): void => {
    stream.write(`[${secs(now() - started).padStart(8)}] ${text}\n`);
  };

  const onEvent = (event: NightlyEvent): void => {
    switch (event.type) {
      case 'start':
        for (const name of event.recipes) rows.set(name, { phase: 'queued', startedAt: null, endedAt: null });
        if (!tty) plain(`nightly ${event.runId}: ${event.recipes.length} recipes`);
        else timer = setInterval(redraw, options.tickMs ?? 1000).unref();
        break;
      case 'phase': {
        const row = rows.get(event.recipe);
        if (row === undefined) return;
        row.phase = event.attempt > 1 ? `${event.phase} (attempt ${event.attempt})` : event.phase;
        row.startedAt ??= now();
        if (!tty) plain(`${event.recipe}: ${row.phase}`);
        break;
      }
      case 'done': {
        const { report } = event;
        const row = rows.get(report.recipe);
        if (row === undefined) return;
        done += 1;
        if (report.status === 'failed') failed += 1;
        row.endedAt = now();
        row.startedAt ??= row.endedAt;
        row.phase =
          report.status === 'failed'
            ? `failed: ${report.errorCode}`
            : `done (cache ${report.cache}${report.attempts > 1 ? `, ${report.attempts} attempts` : ''})`;
        if (!tty) plain(`${report.recipe}: ${row.phase} in ${secs(report.durationMs)}`);
        break;
      }
      case 'end':
        if (!tty) plain(`nightly ${event.summary.runId}: ${event.summary.status}`);
        break;
    }
    if (tty) redraw();
  };
  return {
    onEvent,
    stop: () => {
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
    },
  };
}
