// The labels every container we create carries (job, purpose, owner), and the
// test that tells a crashed owner's leftover from a live run's container.
import os from 'node:os';
import { isProcessAlive, processStartTicks } from '../core/process-alive.js';

export const LABEL_JOB = 'ovmf-build.job';
export const LABEL_PURPOSE = 'ovmf-build.purpose';
export const LABEL_OWNER_PID = 'ovmf-build.owner-pid';
export const LABEL_OWNER_START = 'ovmf-build.owner-start';
export const LABEL_OWNER_HOST = 'ovmf-build.owner-host';
export const LABEL_CREATED = 'ovmf-build.created';

/** Labels of a container this process creates for `jobId`. */
export function containerLabels(jobId: string, purpose: string): Record<string, string> {
  return {
    [LABEL_JOB]: jobId,
    [LABEL_PURPOSE]: purpose,
    [LABEL_OWNER_PID]: String(process.pid),
    [LABEL_OWNER_START]: String(processStartTicks(process.pid) ?? ''),
    [LABEL_OWNER_HOST]: os.hostname(),
    [LABEL_CREATED]: new Date().toISOString(),
  };
}

/**
 * Whether the labelled owner was a process on this host that is gone (a reused pid
 * with another start time counts as gone). Another host's containers are never orphans.
 */
export function ownerIsGone(labels: Readonly<Record<string, string>>, host = os.hostname()): boolean {
  const startLabel = labels[LABEL_OWNER_START];
  const ownerStart = startLabel === undefined || startLabel === '' ? null : Number(startLabel);
  return labels[LABEL_OWNER_HOST] === host && !isProcessAlive(Number(labels[LABEL_OWNER_PID]), ownerStart);
}
