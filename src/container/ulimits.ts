// Ulimit probing: the hard limits this process runs under, read from
// /proc/self/limits (proc(5)), so a container is never asked for more.
import { readFileSync } from 'node:fs';

/** One `HostConfig.Ulimits` entry of the Docker API. */
export interface Ulimit {
  readonly Name: string;
  readonly Soft: number;
  readonly Hard: number;
}

/** Rows of /proc/self/limits by the ulimit name the engine API uses. */
const LIMIT_ROWS: Readonly<Record<string, string>> = {
  nofile: 'Max open files',
  nproc: 'Max processes',
};

/**
 * The hard limit of each known ulimit in a /proc/<pid>/limits text (columns:
 * name, soft, hard, units); `Infinity` for "unlimited", absent when unreadable.
 */
export function parseHardLimits(limitsText: string): Map<string, number> {
  const hard = new Map<string, number>();
  const lines = limitsText.split('\n');
  for (const [name, label] of Object.entries(LIMIT_ROWS)) {
    const line = lines.find((l) => l.startsWith(label));
    const value = line?.slice(label.length).trim().split(/\s+/)[1];
    const parsed = value === 'unlimited' ? Infinity : Number(value);
    if (value !== undefined && !Number.isNaN(parsed)) {
      hard.set(name, parsed);
    }
  }
  return hard;
}

let hostLimits: Map<string, number> | undefined;

/** This process's hard limits (read once); empty off Linux. */
export function hostHardLimits(): Map<string, number> {
  if (hostLimits === undefined) {
    let text = '';
    try {
      text = readFileSync('/proc/self/limits', 'utf8');
    } catch {
      // Not Linux: no limits known, so no ulimits are asked for.
    }
    hostLimits = parseHardLimits(text);
  }
  return hostLimits;
}
