// Process entry. A signal handler cannot run while its thread is busy in synchronous code
// (parsing a 100 MB image, a long decompression), so with such a command on the main thread
// Ctrl-C would wait for the parse to end. Commands that parse images run in a worker thread;
// the main thread only waits and answers signals: it asks the worker to stop (AbortSignal, so
// containers and QEMU are cleaned up), and ends it anyway when it has not stopped in time.
import { writeSync } from 'node:fs';
import module from 'node:module';
import { isatty } from 'node:tty';
import { Writable } from 'node:stream';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { AbortError } from '../core/errors.js';

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

const INTERRUPTED_PREFIX = 'ovmf-build: interrupted by ';

const EXIT_ON_SIGNAL: Readonly<Record<string, number>> = { SIGINT: 130, SIGTERM: 143 };

interface WorkerInput {
  readonly ovmfBuildCommand: true;
  /** One Int32: 0 until the interruption line is written, by the worker or by the main thread. */
  readonly interruptionReported: SharedArrayBuffer;
  readonly argv: readonly string[];
  readonly stdoutIsTTY: boolean;
  readonly stderrIsTTY: boolean;
  /** The terminal's width for progress lines (src/jobs/progress.ts), when stderr is one. */
  readonly stderrColumns: number | undefined;
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
  isTTY: boolean,
  interruptionReported?: Int32Array,
  columns?: number,
): Writable & { isTTY: boolean; columns?: number } {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
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
  return Object.assign(stream, { isTTY }, columns === undefined ? {} : { columns });
}

/** Writes a line to stderr from the main thread, ignoring a closed or full stderr. */
function say(text: string): void {
  try {
    writeSync(2, `${text}\n`);
  } catch {
    // nowhere left to report to
  }
}

async function runCommandInWorker(input: WorkerInput): Promise<void> {
  const port = parentPort;
  if (port === null) throw new Error('runCommandInWorker needs a parent port');
  const controller = new AbortController();
  port.on('message', (message: MainMessage) => {
    port.postMessage({ stopping: true } satisfies WorkerMessage);
    controller.abort(new AbortError(`interrupted by ${message.abort}`, { signal: message.abort }));
  });
  // Only the abort message arrives here: the port must not keep a finished worker alive.
  port.unref();
  try {
    // The V8 compile cache is per thread: bin/ovmf-build.js enabled it for the main thread only.
    (module as { enableCompileCache?: () => unknown }).enableCompileCache?.();
  } catch {
    // no cache: slower start, same behaviour
  }
  const { main } = await import('./main.js');
  const exitCode = await main({
    argv: input.argv,
    stdout: fdStream(1, input.stdoutIsTTY),
    stderr: fdStream(2, input.stderrIsTTY, new Int32Array(input.interruptionReported), input.stderrColumns),
    env: process.env,
    cwd: process.cwd(),
    signal: controller.signal,
  });
  port.postMessage({ exitCode } satisfies WorkerMessage);
}

/**
 * Every command runs in a worker except help and version. Even a command that never parses
 * an image blocks its thread while it loads its modules (dockerode and the container stack:
 * over 2 s under load, measured with `cleanup`), and a signal must end it within a second.
 * The price is the worker's start-up: about 130 ms of CPU measured on this 2-core machine under
 * load (a process that starts an empty worker: 230 ms; `node -e 0`: 95 ms).
 */
function needsWorker(argv: readonly string[]): boolean {
  const [first] = argv;
  return !(first === undefined || ['--help', '-h', 'help', '--version', '-V'].includes(first));
}

/**
 * A command on the main thread: its event loop is free, so a signal aborts it at once; one
 * that has not ended GRACEFUL_STOP_MS later (a container slow to stop) is ended anyway.
 */
async function runOnMainThread(input: WorkerInput): Promise<void> {
  const controller = new AbortController();
  const reported = new Int32Array(input.interruptionReported);
  let stopping: NodeJS.Signals | null = null;
  const finish = (signal: NodeJS.Signals): void => {
    if (Atomics.compareExchange(reported, 0, 0, 1) === 0) say(`${INTERRUPTED_PREFIX}${signal}`);
    process.exit(EXIT_ON_SIGNAL[signal] ?? 130);
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping !== null) {
      finish(stopping);
      return;
    }
    stopping = signal;
    controller.abort(new AbortError(`interrupted by ${signal}`, { signal }));
    setTimeout(() => finish(signal), ACK_WAIT_MS + GRACEFUL_STOP_MS).unref();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const { main } = await import('./main.js');
  process.exitCode = await main({
    argv: input.argv,
    stdout: fdStream(1, input.stdoutIsTTY),
    stderr: fdStream(2, input.stderrIsTTY, reported, input.stderrColumns),
    env: process.env,
    cwd: process.cwd(),
    signal: controller.signal,
  });
}

/** Runs the command line (in a worker when it may block), exits with its code, and turns SIGINT/SIGTERM into 130/143 within a second. */
export function run(): Promise<void> {
  const interruptionReported = new SharedArrayBuffer(4);
  const input: WorkerInput = {
    ovmfBuildCommand: true,
    interruptionReported,
    argv: process.argv.slice(2),
    stdoutIsTTY: isatty(1),
    stderrIsTTY: isatty(2),
    stderrColumns: isatty(2) ? process.stderr.columns : undefined,
  };
  if (!needsWorker(input.argv)) return runOnMainThread(input);
  const worker = new Worker(new URL(import.meta.url), { workerData: input });
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
    if (Atomics.compareExchange(new Int32Array(interruptionReported), 0, 0, 1) === 0) {
      say(`${INTERRUPTED_PREFIX}${signal}`);
    }
    if (ended) process.exit(code);
    // The worker is inside a native call that terminate() must wait for, and process.exit
    // would wait for it too. Die by the signal itself instead: the shell sees 128 + signal
    // number (130, 143), the same status as the exit code above.
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
  };

  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping !== null) {
      void force(stopping);
      return;
    }
    stopping = signal;
    worker.postMessage({ abort: signal } satisfies MainMessage);
    ackTimer = setTimeout(() => void force(signal), ACK_WAIT_MS).unref();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

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

if (!isMainThread && (workerData as Partial<WorkerInput> | null)?.ovmfBuildCommand === true) {
  await runCommandInWorker(workerData as WorkerInput);
}
