// Whether a process runs, from /proc (Linux): for tests that check a killed process left no child
// behind. A zombie (Z) or dead (X) process no longer runs, though it still has a /proc entry
// until its parent (init, for an orphan) reaps it.
import { readFileSync } from 'node:fs';
import { procStatFields } from '../src/core/process-alive.js';

export function isRunning(pid: number): boolean {
  try {
    const state = procStatFields(readFileSync(`/proc/${pid}/stat`, 'utf8'))[0] ?? '';
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}
