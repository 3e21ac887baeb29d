// "Is the process that wrote this still running?": asked by lock breaking, temp-dir sweeps
// and container orphan cleanup. One copy, so pid reuse and EPERM are judged the same way.
import { readFileSync } from 'node:fs';

/**
 * The fields of a /proc/PID/stat (or /proc/PID/task/TID/stat) line after the parenthesised
 * command name, which may itself hold spaces and parentheses: index 0 is proc(5) field 3
 * (the state), so field N is at index N - 3.
 */
export function procStatFields(stat: string): string[] {
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** Start time of a process in clock ticks since boot (proc(5) field 22), or null off Linux. */
export function processStartTicks(pid: number): number | null {
  try {
    const fields = procStatFields(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    const value = Number(fields[19]);
    return Number.isFinite(value) ? value : null;
  } catch {
    return null;
  }
}

/**
 * True when a process with this pid exists on this host (kill(pid, 0), POSIX; EPERM means it
 * exists but belongs to someone else). With `startTicks`, a live pid that started at another
 * time is a reused pid, so the recorded process is gone.
 */
export function isProcessAlive(pid: number, startTicks: number | null = null): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (startTicks === null) return true;
  const actual = processStartTicks(pid);
  return actual === null || actual === startTicks;
}
