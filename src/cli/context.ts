// What a command gets from the process (argv, streams, env, cwd, an AbortSignal), passed in so
// tests give their own, and the few helpers every command writes its output with.
import type { Writable } from 'node:stream';

/** Everything a command needs from the outside world, passed in (never read from globals) so tests can give their own. */
export interface CommandContext {
  readonly argv: readonly string[];
  readonly stdout: Writable & { isTTY?: boolean };
  readonly stderr: Writable & { isTTY?: boolean };
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
  readonly signal: AbortSignal;
  /**
   * Present only while the command runs on the process's main thread (run.ts), where a signal
   * is answered only between synchronous steps. A command calls it, before writing anything,
   * ahead of synchronous work that its AbortSignal checks do not bound (an input over
   * MAIN_THREAD_MAX_INPUT_BYTES, a vendor package). It throws; run.ts then starts the command
   * again in a worker thread, which a signal can end at any instant.
   */
  readonly moveToWorker?: (why: string) => never;
}

/**
 * The abort reason of a command that run.ts moves from the main thread to a worker: its
 * AbortSignal reports it at the next check once the main thread has been busy too long to
 * answer a signal in time, or moveToWorker gives it. main() then reports nothing and returns
 * MOVED_TO_WORKER.
 */
export class MoveToWorker extends Error {
  override readonly name = 'MoveToWorker';
}

/** main()'s return value for a command that moved to a worker: never an exit status. */
export const MOVED_TO_WORKER = -1;

/**
 * Largest input a command parses on the main thread. Some passes over the input run without
 * an abort check (a digest, signature scans); over this size they could keep a signal waiting
 * past its second on a loaded machine, so such an input goes to a worker at once.
 */
export const MAIN_THREAD_MAX_INPUT_BYTES = 32 * 1024 * 1024;

export interface Command {
  readonly name: string;
  readonly summary: string;
  readonly usage: string;
  run(ctx: CommandContext): Promise<number>;
}

export function writeLine(stream: Writable, text = ''): void {
  stream.write(`${text}\n`);
}

export function writeJson(stream: Writable, value: unknown): void {
  stream.write(`${JSON.stringify(value, null, 2)}\n`);
}
