// Process CPU time for the tests that bound the work one input may cost ("no runaway loop").
// Wall time would also count the time the scheduler gave to other processes, which on a loaded
// 2-core CI machine under nice is most of it: a wall-clock bound of 500 ms failed there without
// a slow parser. CPU time is not stretched by waiting, so a bound on it fails only for work this
// process did. Vitest runs each test file in a process of its own (pool `forks`).
import { cpuUsage } from 'node:process';

/** CPU milliseconds (user plus system) this process has used so far; subtract two readings. */
export function cpuNow(): number {
  const used = cpuUsage();
  return (used.user + used.system) / 1000;
}
