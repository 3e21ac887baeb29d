// Liveness against real processes: this one, a child that has exited, and a pid no kernel hands out.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { isProcessAlive, processStartTicks } from './process-alive.js';

/** A pid far above any pid_max, so never alive. */
const DEAD_PID = 2 ** 30;

describe('isProcessAlive', () => {
  it('knows this process, a finished child and impossible pids', () => {
    expect(isProcessAlive(process.pid)).toBe(true);
    const child = spawnSync(process.execPath, ['-e', '0']);
    expect(child.status).toBe(0);
    expect(isProcessAlive(child.pid)).toBe(false);
    expect([DEAD_PID, 0, -1, 1.5, Number.NaN].map((pid) => isProcessAlive(pid))).toEqual([
      false,
      false,
      false,
      false,
      false,
    ]);
  });

  it.runIf(process.platform === 'linux')('treats a live pid with another start time as a reused pid', () => {
    const ticks = processStartTicks(process.pid);
    expect(Number.isInteger(ticks)).toBe(true);
    expect(isProcessAlive(process.pid, ticks)).toBe(true);
    expect(isProcessAlive(process.pid, (ticks as number) + 1)).toBe(false);
    expect(processStartTicks(DEAD_PID)).toBeNull();
  });
});
