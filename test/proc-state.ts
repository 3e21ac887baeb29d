// Whether a process runs, from /proc (Linux): for tests that check a killed process left no child
// behind. A zombie (Z) or dead (X) process no longer runs, though it still has a /proc entry
// until its parent (init, for an orphan) reaps it.
import { readdirSync, readFileSync } from 'node:fs';
import { procStatFields } from '../src/core/process-alive.js';

export function isRunning(pid: number): boolean {
  try {
    const state = procStatFields(readFileSync(`/proc/${pid}/stat`, 'utf8'))[0] ?? '';
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** The pids of a process's children (all its threads'), from /proc; none when it is gone. */
export function childrenOf(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((tid) =>
      readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8')
        .split(' ')
        .filter((s) => s !== '')
        .map(Number),
    );
  } catch {
    return [];
  }
}

/** A process's command line as its arguments, from /proc; empty when it is gone. */
export function commandLineOf(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, -1);
  } catch {
    return [];
  }
}

/**
 * The pid of each running process whose command line is `<name> <arg>` (name by its basename),
 * by that argument, for the arguments given: e.g. pidsOf('sleep', ['301', '302']).
 */
export function pidsOf(name: string, args: readonly string[]): Map<string, number> {
  const found = new Map<string, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const argv = commandLineOf(Number(entry));
    const [command, arg] = argv;
    if (argv.length === 2 && command !== undefined && arg !== undefined && args.includes(arg)) {
      if (command.split('/').pop() === name && isRunning(Number(entry))) found.set(arg, Number(entry));
    }
  }
  return found;
}
