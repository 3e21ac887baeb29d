// The CLI as a real process from the sources (node --import tsx test/cli-entry.ts, as
// bin/ovmf-build.js runs it from dist), for tests of what only a process has: signals, the
// worker thread a command may move to, its own stdout and stderr.
import { spawn, type StdioOptions } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { constants } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { procStatFields } from '../src/core/process-alive.js';
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

/**
 * The most CPU seconds a CLI busy in a parse may use after a signal: src/cli/run.ts lets a parse
 * hold the main thread for 400 ms (MAIN_THREAD_BUSY_MS) before it moves to a worker, a signal
 * meanwhile is answered at the move, and exiting costs some more (measured 0.13 to 0.21 s from
 * the sources under tsx, 2026-12-02). A test that uses it leaves more parse than this ahead of
 * the signal, so a run that parsed on to its end fails it.
 */
export const SIGNAL_CPU_BOUND = 0.6;

/**
 * The CPU a signalled run may use after the signal, when `ahead` CPU seconds of parse were still
 * ahead of it (measured in the same run): SIGNAL_CPU_BOUND, or `share` of what was ahead when
 * that is more. The unwinding after a signal costs more CPU on a loaded machine, as the parse
 * does (0.13-0.23 s idle, 0.6 s once under CI's load beside two builds); a run that parsed on to
 * its end uses all of `ahead` and more, so it still fails the bound.
 */
export function signalCpuBound(ahead: number, share: number): number {
  return Math.max(SIGNAL_CPU_BOUND, ahead * share);
}

/**
 * Sends `signal` to a running CLI and waits for it to end, sampling its CPU every 10 ms: returns
 * how it ended, the CPU seconds it used after the signal (up to a sample short) and the wall
 * time. A test that the signal ends a busy parse "at once" bounds the CPU: that is the work the
 * process did after the signal, where wall time on a loaded CI machine under nice is mostly the
 * scheduler's (a niced process beside two clean builds gets about a tenth of a core).
 */
export async function signalAndWait(
  run: ReturnType<typeof startCli>,
  signal: NodeJS.Signals,
): Promise<{ result: Exited; cpuAfterSignal: number; wallMs: number }> {
  const pid = run.child.pid as number;
  const atSignal = cpuSeconds(pid);
  const sentAt = performance.now();
  run.child.kill(signal);
  let last = atSignal;
  while (run.child.exitCode === null && run.child.signalCode === null) {
    try {
      last = Math.max(last, cpuSeconds(pid));
    } catch {
      break; // reaped between the check and the read
    }
    await sleep(10);
  }
  const result = await run.exited;
  return { result, cpuAfterSignal: last - atSignal, wallMs: performance.now() - sentAt };
}

/** CPU seconds a process has used (user + system), from /proc/<pid>/stat. */
export function cpuSeconds(pid: number): number {
  const fields = procStatFields(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  return (Number(fields[11]) + Number(fields[12])) / USER_HZ;
}
