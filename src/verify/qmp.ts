// A small QMP (QEMU Machine Protocol) client over a unix socket: the greeting, capability
// negotiation, then one command at a time, each answered by a `return` or an `error` object
// (QEMU docs/interop/qmp-spec.rst). Asynchronous events arriving in between are kept apart.
// The IGD check uses it to stop the guest, read PCI config through the HMP `i`/`o` commands
// and `pmemsave` guest memory.
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { throwIfAborted } from '../core/errors.js';
import type { ErrorCode } from '../core/error-codes.js';
import { VerificationError } from './errors.js';

/** Longest single QMP message accepted; a `pmemsave` answer is tiny, an HMP answer a few lines. */
export const MAX_QMP_MESSAGE_BYTES = 1_048_576;

export interface QmpEvent {
  readonly event: string;
  readonly data?: unknown;
}

interface Pending {
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: Error) => void;
  readonly command: string;
}

function qmpError(
  code: ErrorCode,
  message: string,
  details: Record<string, unknown> = {},
  cause?: unknown,
): VerificationError {
  return new VerificationError(code, message, details, cause === undefined ? undefined : { cause });
}

export interface QmpConnectOptions {
  /** Unix socket QEMU listens on (`-qmp unix:<path>,server=on,wait=off`). */
  readonly socketPath: string;
  /**
   * How long to keep retrying while QEMU has not created the socket yet.
   * @default 10_000
   */
  readonly connectTimeoutMs?: number;
  /**
   * Limit for each command's answer.
   * @default 30_000
   */
  readonly commandTimeoutMs?: number;
  /** Stops waiting for the socket early (QEMU exited). */
  readonly giveUp?: () => string | undefined;
  readonly signal?: AbortSignal;
}

/** One QMP session. Dispose (or `close()`) to end it; QEMU keeps running. */
export class QmpClient implements AsyncDisposable {
  readonly #socket: net.Socket;
  readonly #commandTimeoutMs: number;
  readonly #events: QmpEvent[] = [];
  #buffer = '';
  #greeting: ((value: unknown) => void) | undefined;
  #pending: Pending | undefined;
  #closed: Error | undefined;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(socket: net.Socket, commandTimeoutMs: number) {
    this.#socket = socket;
    this.#commandTimeoutMs = commandTimeoutMs;
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.#onData(chunk));
    const onEnd = (error?: Error): void => {
      this.#closed ??= error ?? new Error('QMP connection closed');
      this.#pending?.reject(
        qmpError('E_VERIFY_IGD_QMP_FAILED', `QMP connection closed during ${this.#pending.command}`, {
          command: this.#pending.command,
        }),
      );
      this.#pending = undefined;
    };
    socket.on('error', onEnd);
    socket.on('close', () => onEnd());
  }

  /** Connects (retrying until QEMU has created the socket), reads the greeting and negotiates capabilities. */
  static async connect(options: QmpConnectOptions): Promise<QmpClient> {
    const connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    const started = performance.now();
    let lastError: unknown;
    for (;;) {
      throwIfAborted(options.signal);
      const why = options.giveUp?.();
      if (why !== undefined) {
        throw qmpError('E_VERIFY_IGD_QMP_FAILED', `cannot connect to QMP: ${why}`, {
          socketPath: options.socketPath,
        });
      }
      try {
        const socket = await new Promise<net.Socket>((resolve, reject) => {
          const attempt = net.createConnection(options.socketPath);
          attempt.once('connect', () => {
            attempt.removeListener('error', reject);
            resolve(attempt);
          });
          attempt.once('error', reject);
        });
        const client = new QmpClient(socket, options.commandTimeoutMs ?? 30_000);
        try {
          await client.#handshake();
        } catch (error) {
          client.close();
          throw error;
        }
        return client;
      } catch (error) {
        if (error instanceof VerificationError) throw error;
        lastError = error;
      }
      if (performance.now() - started >= connectTimeoutMs) {
        throw qmpError(
          'E_VERIFY_IGD_QMP_FAILED',
          `cannot connect to QMP at ${options.socketPath} within ${connectTimeoutMs} ms: ${String(lastError)}`,
          { socketPath: options.socketPath },
          lastError,
        );
      }
      await sleep(25, undefined, options.signal === undefined ? {} : { signal: options.signal }).catch(
        () => undefined,
      );
    }
  }

  /** Events QEMU sent so far (STOP, RESUME, SHUTDOWN...). */
  get events(): readonly QmpEvent[] {
    return this.#events;
  }

  async #handshake(): Promise<void> {
    const greeting = await this.#withTimeout(
      new Promise((resolve) => {
        this.#greeting = resolve;
        this.#onData('');
      }),
      'greeting',
    );
    if (typeof greeting !== 'object' || greeting === null || !('QMP' in greeting)) {
      throw qmpError('E_VERIFY_IGD_QMP_FAILED', `QMP greeting expected, got ${JSON.stringify(greeting)}`);
    }
    await this.execute('qmp_capabilities');
  }

  #onData(chunk: string): void {
    this.#buffer += chunk;
    if (this.#buffer.length > MAX_QMP_MESSAGE_BYTES) {
      this.#closed = new Error('QMP message too large');
      this.#pending?.reject(
        qmpError(
          'E_VERIFY_IGD_QMP_FAILED',
          `QMP sent more than ${MAX_QMP_MESSAGE_BYTES} bytes without a line end`,
        ),
      );
      this.#pending = undefined;
      this.#socket.destroy();
      return;
    }
    for (;;) {
      const end = this.#buffer.indexOf('\n');
      if (end < 0) return;
      const line = this.#buffer.slice(0, end).trim();
      this.#buffer = this.#buffer.slice(end + 1);
      if (line.length === 0) continue;
      let message: unknown;
      try {
        message = JSON.parse(line);
      } catch {
        this.#pending?.reject(
          qmpError('E_VERIFY_IGD_QMP_FAILED', `QMP sent a line that is not JSON: ${line.slice(0, 200)}`),
        );
        this.#pending = undefined;
        continue;
      }
      if (typeof message !== 'object' || message === null) continue;
      if ('event' in message) {
        this.#events.push(message as QmpEvent);
      } else if ('QMP' in message) {
        this.#greeting?.(message);
        this.#greeting = undefined;
      } else if (this.#pending !== undefined) {
        const pending = this.#pending;
        this.#pending = undefined;
        if ('error' in message) {
          const error = (message as { error: { class?: string; desc?: string } }).error;
          pending.reject(
            qmpError(
              'E_VERIFY_IGD_QMP_FAILED',
              `QMP ${pending.command} failed: ${error.class ?? 'error'}: ${error.desc ?? ''}`,
              { command: pending.command, qmpClass: error.class },
            ),
          );
        } else {
          pending.resolve((message as { return?: unknown }).return);
        }
      }
    }
  }

  async #withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        promise,
        new Promise<never>((_resolve, reject) => {
          timer = setTimeout(
            () =>
              reject(
                qmpError(
                  'E_VERIFY_IGD_QMP_FAILED',
                  `QMP ${what} not answered within ${this.#commandTimeoutMs} ms`,
                  {
                    command: what,
                  },
                ),
              ),
            this.#commandTimeoutMs,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Runs one command and returns its `return` value; a QMP `error` is E_VERIFY_IGD_QMP_FAILED. */
  execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    const run = async (): Promise<unknown> => {
      if (this.#closed !== undefined) {
        throw qmpError('E_VERIFY_IGD_QMP_FAILED', `QMP connection is closed (${this.#closed.message})`, {
          command,
        });
      }
      const answer = new Promise<unknown>((resolve, reject) => {
        this.#pending = { resolve, reject, command };
      });
      this.#socket.write(
        `${JSON.stringify(args === undefined ? { execute: command } : { execute: command, arguments: args })}\n`,
      );
      try {
        return await this.#withTimeout(answer, command);
      } finally {
        this.#pending = undefined;
      }
    };
    // One command in flight at a time: QMP answers in order, and the pending slot is single.
    const result = this.#queue.then(run, run);
    this.#queue = result.catch(() => undefined);
    return result;
  }

  /** An HMP command through `human-monitor-command`; returns its text output. */
  async hmp(commandLine: string): Promise<string> {
    const output = await this.execute('human-monitor-command', { 'command-line': commandLine });
    return typeof output === 'string' ? output : '';
  }

  close(): void {
    this.#socket.destroy();
  }

  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }
}

/**
 * Reads a PCI config dword of bus 0 through the HMP `o`/`i` port commands (configuration
 * mechanism #1, PCI Local Bus 3.0 section 3.2.2.3.2: address to 0xCF8, data from 0xCFC). Only
 * with the guest stopped; the guest's own 0xCF8 value is put back.
 */
export async function readPciConfigDword(
  qmp: QmpClient,
  device: { readonly bus: number; readonly slot: number; readonly func: number },
  offset: number,
): Promise<number> {
  if ((offset & 3) !== 0 || offset < 0 || offset > 0xfc) {
    throw new TypeError(`Expected \`offset\` to be a dword offset 0..0xfc, got \`${offset}\``);
  }
  const parse = (text: string): number => {
    // HMP prints "port<l> 0xcfc = 0x11111234" (monitor/hmp-cmds.c hmp_ioport_read).
    const match = /=\s*(?:0x)?([0-9a-f]+)\s*$/iu.exec(text.trim());
    if (match?.[1] === undefined) {
      throw qmpError('E_VERIFY_IGD_QMP_FAILED', `unexpected HMP port read output: ${JSON.stringify(text)}`);
    }
    return Number.parseInt(match[1], 16) >>> 0;
  };
  const saved = parse(await qmp.hmp('i /w 0xcf8'));
  const address =
    (0x8000_0000 | (device.bus << 16) | (device.slot << 11) | (device.func << 8) | offset) >>> 0;
  await qmp.hmp(`o /w 0xcf8 0x${address.toString(16)}`);
  const value = parse(await qmp.hmp('i /w 0xcfc'));
  await qmp.hmp(`o /w 0xcf8 0x${saved.toString(16)}`);
  return value;
}
