// The zero-setup default: when no engine socket answers but podman is
// installed, run `podman system service` on a private socket (in a 0700 temp
// dir) for the life of the engine object.
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { AbortError, OvmfBuildError } from '../core/errors.js';
import { procStatFields } from '../core/process-alive.js';
import { probeEngine } from './discovery.js';
import type { EngineEndpoint, EngineVersion } from './discovery.js';
import { LineSplitter, TailBuffer } from './line-splitter.js';
import { diesWithParent } from '../core/exec-path.js';
import { isProcessAlive, processStartTicks } from '../core/process-alive.js';

/** Temp-dir prefix of private service sockets; removeLeftovers looks for it. */
export const SERVICE_DIR_PREFIX = 'ovmf-build-podman-';
const OWNER_FILE = 'owner.json';

let clockTicksPerSecond: number | undefined;
function clockTicks(): number {
  if (clockTicksPerSecond === undefined) {
    try {
      clockTicksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicksPerSecond = 100;
    }
  }
  return clockTicksPerSecond;
}

/** utime + stime of a process in seconds (Linux /proc), or null. */
export function processCpuSeconds(pid: number): number | null {
  try {
    // proc(5): utime=14, stime=15.
    const fields = procStatFields(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return (utime + stime) / clockTicks();
  } catch {
    return null;
  }
}

export interface PrivateServiceOptions {
  readonly podmanPath: string;
  readonly env: NodeJS.ProcessEnv;
  readonly logger: Logger;
  readonly signal?: AbortSignal;
  /** @default 20_000 */
  readonly startTimeoutMs?: number;
  /** @default os.tmpdir() */
  readonly tmpDir?: string;
}

export class PrivatePodmanService implements AsyncDisposable {
  readonly endpoint: EngineEndpoint;
  readonly version: EngineVersion;
  readonly #child: ChildProcess;
  readonly #dir: string;
  readonly #exitHook: () => void;
  #disposed = false;

  private constructor(child: ChildProcess, dir: string, endpoint: EngineEndpoint, version: EngineVersion) {
    this.#child = child;
    this.#dir = dir;
    this.endpoint = endpoint;
    this.version = version;
    // If the process exits without disposing (uncaught error, process.exit), do not leave a service running.
    this.#exitHook = () => {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    };
    process.once('exit', this.#exitHook);
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  cpuSeconds(): number | null {
    return this.#child.pid === undefined || this.#child.exitCode !== null
      ? null
      : processCpuSeconds(this.#child.pid);
  }

  static async start(options: PrivateServiceOptions): Promise<PrivatePodmanService> {
    const startTimeoutMs = options.startTimeoutMs ?? 20_000;
    const dir = await mkdtemp(path.join(options.tmpDir ?? os.tmpdir(), SERVICE_DIR_PREFIX));
    const socketPath = path.join(dir, 'podman.sock');
    // The service dies with us even on SIGKILL (an exit hook cannot run then); without setpriv,
    // `cleanup` kills orphaned services.
    const { command, args } = diesWithParent(
      options.podmanPath,
      ['system', 'service', '--time=0', `unix://${socketPath}`],
      options.env,
    );
    const child = spawn(command, args, {
      env: options.env,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const tail = new TailBuffer(20);
    const splitter = new LineSplitter((line) => {
      tail.push(line);
      options.logger.debug({ podman: line }, 'podman service');
    });
    child.stderr?.on('data', (chunk: Buffer) => splitter.write(chunk));
    let exited: string | undefined;
    let spawnError: Error | undefined;
    child.once('exit', (code, signal) => {
      exited = signal === null ? `exit code ${String(code)}` : `signal ${signal}`;
    });
    child.once('error', (error) => {
      spawnError = error;
    });
    await writeFile(
      path.join(dir, OWNER_FILE),
      JSON.stringify({
        ownerPid: process.pid,
        ownerStart: processStartTicks(process.pid),
        servicePid: child.pid,
      }),
    );
    const endpoint: EngineEndpoint = {
      source: 'podman-private-service',
      socketPath,
      address: `unix://${socketPath}`,
    };
    const deadline = Date.now() + startTimeoutMs;
    const kill = async (): Promise<void> => {
      await stopChild(child);
      await rm(dir, { recursive: true, force: true });
    };
    for (;;) {
      if (options.signal?.aborted) {
        await kill();
        throw new AbortError('aborted while starting the podman service');
      }
      if (spawnError !== undefined || exited !== undefined) {
        await kill();
        throw new OvmfBuildError(
          'E_ENGINE_SERVICE_FAILED',
          `\`podman system service\` ${spawnError === undefined ? `stopped (${String(exited)})` : `could not start: ${spawnError.message}`}: ${tail.lines().join(' | ')}`,
          { podmanPath: options.podmanPath, stderr: tail.lines() },
        );
      }
      const outcome = await probeEngine(endpoint, 1_000);
      if (outcome.status === 'ok' || outcome.status === 'too-old') {
        if (outcome.status === 'too-old') {
          await kill();
          throw new OvmfBuildError(
            'E_ENGINE_TOO_OLD',
            `podman ${outcome.version.version} speaks Docker API ${outcome.version.apiVersion}; ovmf-build needs 1.40 or later (podman >= 2)`,
            { version: outcome.version.version, apiVersion: outcome.version.apiVersion },
          );
        }
        options.logger.debug({ socketPath, pid: child.pid }, 'private podman service started');
        return new PrivatePodmanService(child, dir, endpoint, outcome.version);
      }
      if (Date.now() > deadline) {
        await kill();
        throw new OvmfBuildError(
          'E_ENGINE_SERVICE_FAILED',
          `\`podman system service\` did not answer on ${socketPath} within ${startTimeoutMs} ms`,
          { socketPath, stderr: tail.lines() },
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#disposed) {
      return;
    }
    this.#disposed = true;
    process.removeListener('exit', this.#exitHook);
    await stopChild(this.#child);
    await rm(this.#dir, { recursive: true, force: true });
  }
}

/** SIGTERM, then SIGKILL after `graceMs`. */
async function stopChild(child: ChildProcess, graceMs = 5_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) {
    return;
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const timedOut = await Promise.race([
    exited.then(() => false),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), graceMs);
    }),
  ]);
  clearTimeout(timer);
  if (timedOut) {
    child.kill('SIGKILL');
    await exited;
  }
}

/**
 * Removes private-service dirs whose owner process is gone, killing the
 * orphaned service first. Returns the removed dirs.
 */
export function removeDanglingServices(tmpDir: string = os.tmpdir()): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(tmpDir).filter((name) => name.startsWith(SERVICE_DIR_PREFIX));
  } catch {
    return removed;
  }
  for (const name of names) {
    const dir = path.join(tmpDir, name);
    let owner: { ownerPid?: unknown; ownerStart?: unknown; servicePid?: unknown } = {};
    try {
      owner = JSON.parse(readFileSync(path.join(dir, OWNER_FILE), 'utf8')) as typeof owner;
    } catch {
      // No owner file: either a live process between mkdtemp and writeFile (keep a young dir),
      // or a crash in that window long ago (nothing runs there).
      try {
        if (Date.now() - statSync(dir).mtimeMs < 60_000) {
          continue;
        }
      } catch {
        continue;
      }
    }
    const ownerPid = typeof owner.ownerPid === 'number' ? owner.ownerPid : undefined;
    const ownerStart = typeof owner.ownerStart === 'number' ? owner.ownerStart : null;
    if (ownerPid !== undefined && isProcessAlive(ownerPid, ownerStart)) {
      continue;
    }
    const servicePid = typeof owner.servicePid === 'number' ? owner.servicePid : undefined;
    if (servicePid !== undefined) {
      try {
        const cmdline = readFileSync(`/proc/${servicePid}/cmdline`, 'utf8');
        // Only kill what is provably our service: podman serving this very socket.
        if (cmdline.includes('podman') && cmdline.includes(dir)) {
          process.kill(servicePid, 'SIGKILL');
        }
      } catch {
        // already gone
      }
    }
    rmSync(dir, { recursive: true, force: true });
    removed.push(dir);
  }
  return removed;
}
