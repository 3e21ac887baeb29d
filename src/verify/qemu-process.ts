// One running QEMU: started with the tails of its stdout (`-version`) and stderr (KVM failures
// and option errors are printed there) kept, its exit recorded when it closes, watched by
// polling its logs until the caller decides, and stopped on every path. The boot check, the
// IGD check and the KVM probe all supervise QEMU this way, so the loop, the kill and the
// start-failure error exist once.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { diesWithParent, isExecutable } from '../core/exec-path.js';
import { procStatFields } from '../core/process-alive.js';
import { VerificationError } from './errors.js';

/** How much of QEMU's stdout and stderr is kept (the tail: the last error is what explains a failure). */
const OUTPUT_LIMIT_BYTES = 16 * 1024;

/** Starts a process with stdin ignored and stdout/stderr piped; a parameter so tests can count starts. */
export type SpawnProcess = (file: string, args: readonly string[]) => ChildProcess;

/**
 * Starts QEMU so that it dies with the thread that started it (core/exec-path.ts diesWithParent),
 * also when ovmf-build is killed with SIGKILL and cannot stop it. Without that, a killed nightly
 * or worker left its QEMU running for good: a ROM-mode boot of the stock OVMF waits at its shell
 * (measured: one such QEMU of a `kill -9`ed night still ran 44 min later). A binary that is
 * missing or not executable is spawned directly, so its error stays Node's own (ENOENT, EACCES).
 */
export const defaultSpawn: SpawnProcess = (file, args) => {
  const run = isExecutable(file) ? diesWithParent(file, args, process.env) : { command: file, args };
  return spawn(run.command, run.args, { stdio: ['ignore', 'pipe', 'pipe'] });
};

export interface QemuExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface PollUntilOptions<O> {
  /** The logs QEMU appends to; each is read before every decision. */
  readonly logs: readonly GrowingFile[];
  readonly pollIntervalMs: number;
  /** An abort ends the watch with `aborted` (checked before `decide`). */
  readonly signal?: AbortSignal | undefined;
  /** Looks at the logs and QEMU's state after each poll; a value ends the watch. */
  readonly decide: (elapsedMs: number) => O | undefined;
}

export class QemuProcess {
  readonly child: ChildProcess;
  /** `performance.now()` when QEMU was spawned. */
  readonly startedAt: number;
  /** Resolves once QEMU has closed (never rejects; a spawn failure closes it too). */
  readonly exited: Promise<void>;
  #stdout = '';
  #stderr = '';
  #exit: QemuExit | undefined;
  #endedAt: number | undefined;
  #spawnError: Error | undefined;
  /** Per thread id: its CPU time and count of runs when runQueueDelayMs last saw them change. */
  readonly #threads = new Map<string, { runNs: number; runs: number; changedAt: number }>();

  readonly binary: string;

  constructor(binary: string, args: readonly string[], spawnProcess: SpawnProcess = defaultSpawn) {
    this.binary = binary;
    this.startedAt = performance.now();
    this.child = spawnProcess(binary, args);
    this.child.stdout?.setEncoding('utf8');
    this.child.stdout?.on('data', (chunk: string) => {
      this.#stdout = (this.#stdout + chunk).slice(-OUTPUT_LIMIT_BYTES);
    });
    this.child.stderr?.setEncoding('utf8');
    this.child.stderr?.on('data', (chunk: string) => {
      this.#stderr = (this.#stderr + chunk).slice(-OUTPUT_LIMIT_BYTES);
    });
    this.exited = new Promise<void>((resolve) => {
      this.child.once('close', (code: number | null, signal: NodeJS.Signals | null) => {
        this.#exit = { code, signal };
        this.#endedAt = performance.now();
        resolve();
      });
    });
    this.child.once('error', (error) => {
      this.#spawnError = error;
    });
  }

  /** The last 16 KiB of stdout so far. */
  stdout(): string {
    return this.#stdout;
  }

  /** The last 16 KiB of stderr so far. */
  stderr(): string {
    return this.#stderr;
  }

  /** Set once QEMU has closed. */
  exit(): QemuExit | undefined {
    return this.#exit;
  }

  /** Set when the binary could not be started at all. */
  spawnError(): Error | undefined {
    return this.#spawnError;
  }

  /** QEMU start to QEMU gone (or to now while it runs). */
  durationMs(): number {
    return Math.round((this.#endedAt ?? performance.now()) - this.startedAt);
  }

  /**
   * How long QEMU was held back by the machine's load so far: the time its threads spent
   * runnable but waiting for a CPU, summed over the threads, since under TCG they mostly take
   * turns (the main thread starts the machine, then the vCPU thread runs the guest). A
   * wall-clock limit minus this is the time the guest could have run.
   *
   * The kernel's figure (`/proc/PID/task/TID/schedstat`, second field) grows only when a waiting
   * thread next gets the CPU, which for a thread picked rarely (niced far below the machine's
   * other work) can be seconds late. So each call also adds, for a thread that is runnable now
   * (state R) and has not run since an earlier call (same CPU time and same count of runs), the
   * time since that call saw it last change: call it at every poll for the wait to be seen
   * within one poll. 0 where Linux's procfs cannot be read (another OS, QEMU gone).
   */
  runQueueDelayMs(): number {
    const pid = this.child.pid;
    if (pid === undefined || this.#exit !== undefined) return 0;
    const now = performance.now();
    let totalNs = 0;
    let pendingMs = 0;
    let tids: string[];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      return 0; // no procfs, or QEMU just ended
    }
    for (const tid of tids) {
      try {
        const sample = parseSchedstat(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'latin1'));
        if (sample === null) continue;
        totalNs += sample.waitNs;
        const last = this.#threads.get(tid);
        if (last === undefined || last.runNs !== sample.runNs || last.runs !== sample.runs) {
          this.#threads.set(tid, { runNs: sample.runNs, runs: sample.runs, changedAt: now });
        } else if (threadState(readFileSync(`/proc/${pid}/task/${tid}/stat`, 'latin1')) === 'R') {
          pendingMs += now - last.changedAt;
        }
      } catch {
        // A thread that ended between the listing and the read: the others still count.
      }
    }
    return Math.round(totalNs / 1e6 + pendingMs);
  }

  /**
   * Reads the logs every `pollIntervalMs` (at once when QEMU exits or the signal fires) until
   * `decide` returns a value or the signal is aborted. Undefined when QEMU could not be started.
   */
  async pollUntil<O>(options: PollUntilOptions<O>): Promise<O | 'aborted' | undefined> {
    const wake = new AbortController();
    const onAbort = (): void => wake.abort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    void this.exited.then(onAbort);
    try {
      for (;;) {
        if (!wake.signal.aborted) {
          await sleep(options.pollIntervalMs, undefined, { signal: wake.signal }).catch(() => undefined);
        }
        if (this.#spawnError !== undefined) return undefined;
        await Promise.all(options.logs.map((log) => log.poll()));
        if (options.signal?.aborted === true) return 'aborted';
        const outcome = options.decide(performance.now() - this.startedAt);
        if (outcome !== undefined) return outcome;
      }
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
    }
  }

  /**
   * True once QEMU has closed (or could not start), waiting up to `ms` for it. A QEMU that exits
   * within milliseconds of its start closes its monitor socket before Node has seen the exit,
   * so a caller that finds the monitor gone asks this before calling it a monitor failure.
   */
  async endsWithin(ms: number): Promise<boolean> {
    if (this.#exit !== undefined || this.#spawnError !== undefined) return true;
    const ended = await Promise.race([this.exited.then(() => true), sleep(ms, false, { ref: false })]);
    return ended || this.#spawnError !== undefined;
  }

  /** Waits up to `graceMs` for QEMU to quit by itself, then kills it; resolves once it is gone. */
  async stop(graceMs = 0): Promise<void> {
    if (this.#exit !== undefined || this.#spawnError !== undefined) return;
    const killed = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(killed);
  }

  /**
   * E_BOOT_QEMU_MISSING when the binary is gone, else `code` (E_BOOT_QEMU_FAILED for the boot
   * check, E_VERIFY_IGD_QEMU_FAILED for the IGD check), when QEMU could not be started.
   */
  throwIfStartFailed(code: 'E_BOOT_QEMU_FAILED' | 'E_VERIFY_IGD_QEMU_FAILED'): void {
    const error = this.#spawnError;
    if (error === undefined) return;
    const errno = (error as NodeJS.ErrnoException).code;
    throw new VerificationError(
      errno === 'ENOENT' ? 'E_BOOT_QEMU_MISSING' : code,
      `cannot start ${this.binary}: ${error.message}`,
      { binary: this.binary, errno },
      { cause: error },
    );
  }
}

/**
 * One schedstat line (`<on-cpu ns> <waiting ns> <runs>`), or null for anything else.
 */
export function parseSchedstat(text: string): { runNs: number; waitNs: number; runs: number } | null {
  const match = /^(\d+) (\d+) (\d+)\s*$/.exec(text);
  return match === null
    ? null
    : { runNs: Number(match[1]), waitNs: Number(match[2]), runs: Number(match[3]) };
}

/** The state letter of a /proc stat line (proc(5) field 3), or ''. */
export function threadState(stat: string): string {
  return procStatFields(stat)[0] ?? '';
}

/** Reads what is left in each log after QEMU is gone and closes them all. */
export async function drainLogs(logs: readonly GrowingFile[]): Promise<void> {
  await Promise.all(logs.map((log) => log.poll())).catch(() => undefined);
  await Promise.all(logs.map((log) => log.close()));
}

/**
 * Reads a file QEMU is appending to (debug console, serial console, trace), from where the
 * last read stopped. Past `maxSizeInBytes` it stops reading, so a runaway log cannot grow
 * memory without bound; the caller decides whether that is a failure.
 */
export class GrowingFile {
  readonly #path: string;
  #handle: FileHandle | undefined;
  #chunks: string[] = [];
  #text: string | undefined = '';
  #sizeInBytes = 0;
  readonly #buffer = Buffer.allocUnsafe(256 * 1024);
  readonly #maxSizeInBytes: number;

  constructor(file: string, options: { readonly maxSizeInBytes?: number } = {}) {
    this.#path = file;
    this.#maxSizeInBytes = options.maxSizeInBytes ?? Number.POSITIVE_INFINITY;
  }

  get sizeInBytes(): number {
    return this.#sizeInBytes;
  }

  get text(): string {
    this.#text ??= this.#chunks.join('');
    return this.#text;
  }

  /** Reads what was appended since the last call; the file may not exist yet. */
  async poll(): Promise<void> {
    if (this.#handle === undefined) {
      try {
        this.#handle = await open(this.#path, 'r');
      } catch {
        return;
      }
    }
    for (;;) {
      const { bytesRead } = await this.#handle.read(this.#buffer, 0, this.#buffer.length, this.#sizeInBytes);
      if (bytesRead === 0 || this.#sizeInBytes > this.#maxSizeInBytes) return;
      // The debug console carries ASCII; latin1 never splits a character across reads.
      this.#chunks.push(this.#buffer.toString('latin1', 0, bytesRead));
      this.#text = undefined;
      this.#sizeInBytes += bytesRead;
    }
  }

  async close(): Promise<void> {
    await this.#handle?.close();
    this.#handle = undefined;
  }
}
