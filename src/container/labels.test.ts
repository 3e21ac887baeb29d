// Container labels and the orphan test, against real processes: this one,
// a child that has exited, and this pid with another recorded start time.
import { spawn } from 'node:child_process';
import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { processStartTicks } from '../core/process-alive.js';
import { containerLabels, ownerIsGone } from './labels.js';

describe('containerLabels', () => {
  it('names the job, the purpose and this process as owner', () => {
    const before = Date.now();
    const labels = containerLabels('job-1', 'build');
    const { 'ovmf-build.created': created, ...rest } = labels;
    expect(rest).toEqual({
      'ovmf-build.job': 'job-1',
      'ovmf-build.purpose': 'build',
      'ovmf-build.owner-pid': String(process.pid),
      'ovmf-build.owner-start': String(processStartTicks(process.pid)),
      'ovmf-build.owner-host': os.hostname(),
    });
    expect(Date.parse(created ?? '')).toBeGreaterThanOrEqual(before - 1_000);
  });
});

describe('ownerIsGone', () => {
  it('is false for a live owner, true for an exited one or a reused pid, false on another host', async () => {
    const mine = containerLabels('job', 'test');
    expect(ownerIsGone(mine)).toBe(false);
    const child = spawn(process.execPath, ['-e', '0']);
    await new Promise((resolve) => child.once('exit', resolve));
    expect(ownerIsGone({ ...mine, 'ovmf-build.owner-pid': String(child.pid) })).toBe(true);
    const start = Number(mine['ovmf-build.owner-start']);
    expect(ownerIsGone({ ...mine, 'ovmf-build.owner-start': String(start + 1) })).toBe(true);
    // A container created before owner-start existed: the pid alone decides.
    expect(ownerIsGone({ ...mine, 'ovmf-build.owner-start': '' })).toBe(false);
    expect(ownerIsGone({ ...mine, 'ovmf-build.owner-pid': String(child.pid) }, 'another-host')).toBe(false);
    expect(ownerIsGone({ ...mine, 'ovmf-build.owner-pid': 'x' })).toBe(true);
  });
});
