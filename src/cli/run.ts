// Process entry. A signal handler cannot run while its thread is busy in synchronous code
// (parsing a 100 MB image, a long decompression), and a signal must end any command within a
// second. So commands run in a worker thread; the main thread only waits and answers signals:
// it asks the worker to stop (AbortSignal, so containers and QEMU are cleaned up), and ends it
// anyway when it has not stopped in time.
// A worker costs its start-up (a second V8 isolate, every module loaded again): on a small
// image that is most of what `extract` costs. The commands that only parse (extract, inspect)
// therefore start on the main thread under a busy bound: once the thread has not been free to
// answer a signal for MAIN_THREAD_BUSY_MS, the command's AbortSignal reports the move at the
// parser's next check (every 4,096 nodes, every decompression and EFI block, every 4 MiB of
// LZMA), the command unwinds before writing anything, and it starts again in a worker.
import module from 'node:module';
import path from 'node:path';
import { Writable } from 'node:stream';
import type * as WorkerThreads from 'node:worker_threads';
import { AbortError } from '../core/errors.js';
import { MOVED_TO_WORKER, MoveToWorker, type CommandContext } from './context.js';

/**
 * How long a worker has to acknowledge a stop request. A worker busy in synchronous code
 * cannot, and is terminated at once: it would not look at its AbortSignal anyway.
 */
const ACK_WAIT_MS = 100;
/** How long a worker that acknowledged may take to clean up (containers, QEMU) before it is terminated. */
const GRACEFUL_STOP_MS = 550;
/** How long terminate() may take (it waits for a native call, e.g. a decompression, to return). */
const TERMINATE_WAIT_MS = 400;
/** How long a worker that has reported its exit code may keep running (a leaked handle). */
const LINGER_MS = 2_000;
/**
 * How long a command on the main thread may keep it from answering a signal before it moves to
 * a worker. A signal that came meanwhile ends the run at the move (the worker is not started),
 * so it waits at most this plus the time to the parser's next check (a native LZMA call of at
 * most 16 MiB: tens of ms): well under a second. Images that parse faster (every corpus image:
 * the 8 MiB Kaby Lake flash parses in about 330 ms at load 3) never pay for a worker.
 */
const MAIN_THREAD_BUSY_MS = 400;
/** How often the main thread notes that it is free (a timer callback runs only when it is). */
const FREE_CLOCK_MS = 20;
/** Milliseconds on a monotonic clock (process.hrtime: the global `performance` would load perf_hooks). */
function nowMs(): number {
  const [seconds, nanoseconds] = process.hrtime();
  return seconds * 1e3 + nanoseconds / 1e6;
}

/** Commands that start on the main thread (they parse bytes; see MAIN_THREAD_BUSY_MS). */
const MAIN_THREAD_FIRST: ReadonlySet<string> = new Set(['extract', 'inspect']);

const INTERRUPTED_PREFIX = 'ovmf-build: interrupted by ';

// Built-in modules this file needs only sometimes are taken with process.getBuiltinModule: an
// ESM import of node:fs builds its export list through getters that load the fs streams, and
// node:tty loads node:net; together a few ms of a cold `extract` that uses neither.
const { writeSync } = process.getBuiltinModule('node:fs');
const isatty = (fd: number): boolean => process.getBuiltinModule('node:tty').isatty(fd);
const threads = (): typeof WorkerThreads => process.getBuiltinModule('node:worker_threads');
/** The last argument of a worker this file starts (Worker `argv`): only then is worker_threads asked whether this is that worker. */
const WORKER_ARGV_MARK = '--ovmf-build-command-worker';

/** node:module's compile cache API (Node >= 22.8), absent from the Node 20 types this project compiles against. */
const compileCache = module as {
  enableCompileCache?: (directory?: string) => unknown;
  getCompileCacheDir?: () => string | undefined;
};

const EXIT_ON_SIGNAL: Readonly<Record<string, number>> = { SIGINT: 130, SIGTERM: 143 };

/** What a run starts from, in either thread. */
interface RunInput {
  /** One Int32: 0 until the interruption line is written, by the worker or by the main thread. */
  readonly interruptionReported: SharedArrayBuffer;
  readonly argv: readonly string[];
  /** The V8 compile cache directory bin/ovmf-build.js enabled (the cache is per thread). */
  readonly compileCacheDir: string | undefined;
}

/** A run handed to a worker: the main thread's terminal facts travel with it. */
interface WorkerInput extends RunInput {
  readonly ovmfBuildCommand: true;
  readonly stdout: Terminal;
  readonly stderr: Terminal;
}

/** Whether an output is a terminal, and its width (for progress lines, src/jobs/progress.ts). */
interface Terminal {
  readonly isTTY: boolean;
  readonly columns: number | undefined;
}

/** What the main thread knows of fd 1 or 2; asked only when a command looks (node:tty costs a load). */
function terminalOf(fd: 1 | 2): Terminal {
  if (!isatty(fd)) return { isTTY: false, columns: undefined };
  return { isTTY: true, columns: fd === 2 ? process.stderr.columns : undefined };
}

type WorkerMessage = { readonly exitCode: number } | { readonly stopping: true };
type MainMessage = { readonly abort: NodeJS.Signals };

/**
 * A Writable over a file descriptor with synchronous writes, as process.stdout is for files
 * and pipes on Linux. Writes happen in the worker itself, so output is never lost when the
 * worker is ended, and a failed write (EPIPE, ENOSPC) reaches the command's own error
 * handling in main(). EAGAIN (a non-blocking pipe that is full) is retried.
 */
function fdStream(
  fd: number,
  /** Asked once, when the command first reads isTTY or columns. */
  terminal: () => Terminal,
  options: {
    /** Shared flag: the interruption line is written once, by whichever thread comes first. */
    readonly interruptionReported?: Int32Array;
    /** Called before each write (the main thread's busy bound ends at the first output). */
    readonly onWrite?: () => void;
  } = {},
): Writable & { isTTY: boolean; columns?: number } {
  const { interruptionReported, onWrite } = options;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      onWrite?.();
      // The interruption is reported once: by main() in the worker, or by the main thread
      // when it had to end the worker; whichever comes first.
      if (
        interruptionReported !== undefined &&
        chunk.subarray(0, INTERRUPTED_PREFIX.length).toString() === INTERRUPTED_PREFIX &&
        Atomics.compareExchange(interruptionReported, 0, 0, 1) !== 0
      ) {
        callback();
        return;
      }
      try {
        let offset = 0;
        while (offset < chunk.length) {
          try {
            offset += writeSync(fd, chunk, offset, chunk.length - offset);
          } catch (error) {
            if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
            Atomics.wait(pause, 0, 0, 5);
          }
        }
        callback();
      } catch (error) {
        callback(error as Error);
      }
    },
  });
  let known: Terminal | undefined;
  const look = (): Terminal => (known ??= terminal());
  Object.defineProperties(stream, {
    isTTY: { get: () => look().isTTY, enumerable: true },
    columns: { get: () => look().columns, enumerable: true },
  });
  return stream as Writable & { isTTY: boolean; columns?: number };
}

/** Writes a line to stderr from the main thread, ignoring a closed or full stderr. */
function say(text: string): void {
  try {
    writeSync(2, `${text}\n`);
  } catch {
    // nowhere left to report to
  }
}

/** The context main() gets in either thread: fd-backed streams, this process's env and cwd. */
function commandContext(
  input: RunInput,
  terminals: { readonly stdout: () => Terminal; readonly stderr: () => Terminal },
  signal: AbortSignal,
  onWrite?: () => void,
): Omit<CommandContext, 'moveToWorker'> {
  return {
    argv: input.argv,
    stdout: fdStream(1, terminals.stdout, { ...(onWrite === undefined ? {} : { onWrite }) }),
    stderr: fdStream(2, terminals.stderr, {
      interruptionReported: new Int32Array(input.interruptionReported),
      ...(onWrite === undefined ? {} : { onWrite }),
    }),
    env: process.env,
    cwd: process.cwd(),
    signal,
  };
}

async function runCommandInWorker(input: WorkerInput): Promise<void> {
  const port = threads().parentPort;
  if (port === null) throw new Error('runCommandInWorker needs a parent port');
  const controller = new AbortController();
  port.on('message', (message: MainMessage) => {
    port.postMessage({ stopping: true } satisfies WorkerMessage);
    controller.abort(new AbortError(`interrupted by ${message.abort}`, { signal: message.abort }));
  });
  // Only the abort message arrives here: the port must not keep a finished worker alive.
  port.unref();
  if (input.compileCacheDir !== undefined) {
    try {
      compileCache.enableCompileCache?.(input.compileCacheDir);
    } catch {
      // no cache: slower start, same behaviour
    }
  }
  const { main } = await import('./main.js');
  const exitCode = await main(
    commandContext(input, { stdout: () => input.stdout, stderr: () => input.stderr }, controller.signal),
  );
  port.postMessage({ exitCode } satisfies WorkerMessage);
}

/**
 * Every command runs in a worker except help and version, and extract and inspect start on the
 * main thread (MAIN_THREAD_FIRST). Even a command that never parses an image blocks its thread
 * while it loads its modules (dockerode and the container stack: over 2 s under load, measured
 * with `cleanup`), and a signal must end it within a second. The price is the worker's
 * start-up: about 130 ms of CPU measured on this 2-core machine under load (a process that
 * starts an empty worker: 230 ms; `node -e 0`: 95 ms).
 */
function needsWorker(argv: readonly string[]): boolean {
  const [first] = argv;
  return !(first === undefined || ['--help', '-h', 'help', '--version', '-V'].includes(first));
}

export interface BusyBound {
  readonly signal: AbortSignal;
  /** Aborts the signal with MoveToWorker now (unless it is aborted already). */
  readonly move: (why: string) => void;
  /** No move from now on: the command has begun its output, which a second run would repeat. */
  readonly disarm: () => void;
  /** Disarms and stops the clock. */
  readonly stop: () => void;
}

/**
 * An AbortSignal that follows `outer` (SIGINT, SIGTERM) and also aborts with MoveToWorker when
 * it is checked (`aborted`, which every parser reads between steps) after the thread has been
 * busy for more than `busyMs`: a timer notes each moment the event loop is free, so the time
 * since then is how long a signal would have waited. Disarmed at the command's first output.
 * `now` is the clock the bound reads (milliseconds, monotonic); tests give their own, since a
 * real busy loop on a loaded machine runs as long as the scheduler keeps it off the CPU.
 */
export function busyBoundSignal(outer: AbortSignal, busyMs: number, now: () => number = nowMs): BusyBound {
  const controller = new AbortController();
  const inner = controller.signal;
  const abortedOf = Object.getOwnPropertyDescriptor(AbortSignal.prototype, 'aborted')?.get;
  if (abortedOf === undefined) throw new Error('AbortSignal.prototype.aborted has no getter');
  let armed = true;
  let freeAt = now();
  const clock = setInterval(() => {
    freeAt = now();
  }, FREE_CLOCK_MS).unref();
  outer.addEventListener('abort', () => controller.abort(outer.reason), { once: true });
  const move = (why: string): void => {
    armed = false;
    if (!abortedOf.call(inner)) controller.abort(new MoveToWorker(why));
  };
  // An own getter in front of the prototype's: the parsers only read `aborted` and `reason`.
  Object.defineProperty(inner, 'aborted', {
    configurable: true,
    enumerable: true,
    get: (): boolean => {
      if (armed && now() - freeAt > busyMs) {
        move(`the main thread was busy for over ${busyMs} ms`);
      }
      return abortedOf.call(inner) as boolean;
    },
  });
  return {
    signal: inner,
    move,
    disarm: (): void => {
      armed = false;
    },
    stop: (): void => {
      armed = false;
      clearInterval(clock);
    },
  };
}

/** Routes SIGINT and SIGTERM to the handler of the current phase (listeners stay installed, so a pending signal is never dropped between phases). */
function routeSignals(): { handler: (signal: NodeJS.Signals) => void } {
  const route = { handler: (_signal: NodeJS.Signals): void => undefined };
  const forward = (signal: NodeJS.Signals): void => route.handler(signal);
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  return route;
}

/**
 * A command on the main thread: its event loop is free between steps, so a signal aborts it
 * there; one that has not ended GRACEFUL_STOP_MS later (a container slow to stop) is ended
 * anyway. With `busyMs`, the command may be moved to a worker (see busyBoundSignal): returns
 * true when it was, with nothing written.
 */
async function runOnMainThread(
  input: RunInput,
  route: { handler: (signal: NodeJS.Signals) => void },
  busyMs: number | null,
): Promise<boolean> {
  const controller = new AbortController();
  const reported = new Int32Array(input.interruptionReported);
  let stopping: NodeJS.Signals | null = null;
  const finish = (signal: NodeJS.Signals): void => {
    if (Atomics.compareExchange(reported, 0, 0, 1) === 0) say(`${INTERRUPTED_PREFIX}${signal}`);
    process.exit(EXIT_ON_SIGNAL[signal] ?? 130);
  };
  route.handler = (signal) => {
    if (stopping !== null) {
      finish(stopping);
      return;
    }
    stopping = signal;
    controller.abort(new AbortError(`interrupted by ${signal}`, { signal }));
    setTimeout(() => finish(signal), ACK_WAIT_MS + GRACEFUL_STOP_MS).unref();
  };
  const bound = busyMs === null ? null : busyBoundSignal(controller.signal, busyMs);
  try {
    const { main } = await import('./main.js');
    const ctx = commandContext(
      input,
      { stdout: () => terminalOf(1), stderr: () => terminalOf(2) },
      bound?.signal ?? controller.signal,
      bound?.disarm,
    );
    const code = await main(
      bound === null
        ? ctx
        : {
            ...ctx,
            moveToWorker: (why: string): never => {
              bound.move(why);
              throw bound.signal.reason;
            },
          },
    );
    if (code !== MOVED_TO_WORKER) {
      process.exitCode = code;
      return false;
    }
  } finally {
    bound?.stop();
  }
  // A signal that came while the thread was busy is delivered at the next turn of the loop:
  // it ends the run here rather than in a worker that would only be started to be stopped.
  await new Promise((resolve) => setImmediate(resolve));
  if (stopping !== null) finish(stopping);
  return true;
}

/** Runs the command in a worker thread; the main thread answers signals (see the top of the file). */
function runInWorker(run: RunInput, route: { handler: (signal: NodeJS.Signals) => void }): Promise<void> {
  const input: WorkerInput = { ...run, ovmfBuildCommand: true, stdout: terminalOf(1), stderr: terminalOf(2) };
  const worker: WorkerThreads.Worker = new (threads().Worker)(new URL(import.meta.url), {
    workerData: input,
    argv: [WORKER_ARGV_MARK],
  });
  let reported: number | null = null;
  let stopping: NodeJS.Signals | null = null;
  let forcing = false;
  let ackTimer: NodeJS.Timeout | undefined;

  const force = async (signal: NodeJS.Signals): Promise<void> => {
    if (forcing) return;
    forcing = true;
    const code = EXIT_ON_SIGNAL[signal] ?? 130;
    const ended = await Promise.race([
      worker.terminate().then(() => true),
      new Promise<false>((resolve) => setTimeout(() => resolve(false), TERMINATE_WAIT_MS).unref()),
    ]);
    if (Atomics.compareExchange(new Int32Array(input.interruptionReported), 0, 0, 1) === 0) {
      say(`${INTERRUPTED_PREFIX}${signal}`);
    }
    if (ended) process.exit(code);
    // The worker is inside a native call that terminate() must wait for, and process.exit
    // would wait for it too. Die by the signal itself instead: the shell sees 128 + signal
    // number (130, 143), the same status as the exit code above.
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
  };

  route.handler = (signal) => {
    if (stopping !== null) {
      void force(stopping);
      return;
    }
    stopping = signal;
    worker.postMessage({ abort: signal } satisfies MainMessage);
    ackTimer = setTimeout(() => void force(signal), ACK_WAIT_MS).unref();
  };

  return new Promise((resolve) => {
    worker.on('message', (message: WorkerMessage) => {
      if ('stopping' in message) {
        clearTimeout(ackTimer);
        setTimeout(() => void force(stopping ?? 'SIGINT'), GRACEFUL_STOP_MS).unref();
        return;
      }
      reported = message.exitCode;
      setTimeout(() => void worker.terminate(), LINGER_MS).unref();
    });
    worker.on('error', (error) => {
      say('ovmf-build: unexpected error; this is a bug, please report it with the stack below:');
      say(error instanceof Error ? (error.stack ?? String(error)) : String(error));
      reported ??= 70;
    });
    worker.on('exit', (workerExitCode) => {
      if (forcing) return;
      if (reported === null && stopping === null) {
        say('ovmf-build: the command ended without an exit status; this is a bug, please report it');
      }
      process.exitCode =
        reported ?? (stopping === null ? workerExitCode || 70 : (EXIT_ON_SIGNAL[stopping] ?? 130));
      resolve();
    });
  });
}

/** The directory bin/ovmf-build.js gave enableCompileCache (Node answers with its own version subdirectory of it). */
function compileCacheRoot(): string | undefined {
  const versioned = compileCache.getCompileCacheDir?.();
  return versioned === undefined ? undefined : path.dirname(versioned);
}

/** Runs the command line (in a worker when it may block), exits with its code, and turns SIGINT/SIGTERM into 130/143 within a second. */
export async function run(): Promise<void> {
  const input: RunInput = {
    interruptionReported: new SharedArrayBuffer(4),
    argv: process.argv.slice(2),
    compileCacheDir: compileCacheRoot(),
  };
  const route = routeSignals();
  if (!needsWorker(input.argv)) {
    await runOnMainThread(input, route, null);
    return;
  }
  if (MAIN_THREAD_FIRST.has(input.argv[0] ?? '')) {
    const moved = await runOnMainThread(input, route, MAIN_THREAD_BUSY_MS);
    if (!moved) return;
  }
  await runInWorker(input, route);
}

// Not a top-level await: the bundle (bin/ovmf-build.js) is a CommonJS script, which has none. A
// rejection is unhandled, so the worker ends with it as an error event, as a thrown error would.
if (process.argv.at(-1) === WORKER_ARGV_MARK) {
  const { isMainThread, workerData } = threads();
  if (!isMainThread && (workerData as Partial<WorkerInput> | null)?.ovmfBuildCommand === true) {
    void runCommandInWorker(workerData as WorkerInput);
  }
}
