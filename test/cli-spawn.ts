// The CLI as a real process from the sources (node --import tsx test/cli-entry.ts, as
// bin/ovmf-build.js runs it from dist), for tests of what only a process has: signals, the
// worker thread a command may move to, its own stdout and stderr.
import { spawn, type StdioOptions } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { constants } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { REPO_ROOT } from './corpus.js';

const ENTRY = path.join(REPO_ROOT, 'test', 'cli-entry.ts');
/** The clock ticks per second of /proc/<pid>/stat (USER_HZ, 100 on Linux). */
const USER_HZ = 100;

export interface Exited {
  /** The exit code, or 128 + the signal's number for a process killed by one (as a shell shows it). */
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Starts `ovmf-build ARGS`; `exited` resolves once its streams are closed. */
export function startCli(args: readonly string[], stdio: StdioOptions = ['ignore', 'pipe', 'pipe']) {
  const child = spawn(process.execPath, ['--import', 'tsx', ENTRY, ...args], { cwd: REPO_ROOT, stdio });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<Exited>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) =>
      resolve({ status: code ?? 128 + (signal === null ? 0 : constants.signals[signal]), stdout, stderr }),
    );
  });
  return { child, exited };
}

/**
 * Runs `ovmf-build ARGS` to its end and returns its exit status and the most CPU seconds seen
 * (sampled every 20 ms, so up to a sample short): what a test needs to send a signal at a
 * chosen point of a run's own work instead of at a fixed number that a faster parser outruns.
 */
export async function cpuOfWholeRun(args: readonly string[]): Promise<{ status: number; cpu: number }> {
  const run = startCli(args);
  let cpu = 0;
  while (run.child.exitCode === null) {
    cpu = Math.max(cpu, cpuSeconds(run.child.pid as number));
    await sleep(20);
  }
  return { status: (await run.exited).status, cpu };
}

/** CPU seconds a process has used (user + system), from /proc/<pid>/stat. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / USER_HZ;
}
