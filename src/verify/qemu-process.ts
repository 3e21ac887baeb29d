// One running QEMU: started with its stdout ignored and the tail of its stderr kept (KVM
// failures and option errors are printed there), its exit recorded when it closes. The boot
// check and the IGD check both supervise QEMU this way; each polls the state below.
import { spawn, type ChildProcess } from 'node:child_process';
import { open, type FileHandle } from 'node:fs/promises';

/** How much of QEMU's stderr is kept (the tail: the last error is what explains a failure). */
const STDERR_LIMIT_BYTES = 16 * 1024;

export interface QemuExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface QemuProcess {
  readonly child: ChildProcess;
  /** `performance.now()` when QEMU was spawned. */
  readonly startedAt: number;
  /** Resolves once QEMU has closed (never rejects; a spawn failure closes it too). */
  readonly exited: Promise<void>;
  /** The last 16 KiB of stderr so far. */
  stderr(): string;
  /** Set once QEMU has closed. */
  exit(): QemuExit | undefined;
  /** `performance.now()` when QEMU closed. */
  endedAt(): number | undefined;
  /** Set when the binary could not be started at all. */
  spawnError(): Error | undefined;
}

export function startQemu(binary: string, args: readonly string[]): QemuProcess {
  const startedAt = performance.now();
  const child = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-STDERR_LIMIT_BYTES);
  });
  let exitInfo: QemuExit | undefined;
  let endedAt: number | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('close', (code: number | null, signal: NodeJS.Signals | null) => {
      exitInfo = { code, signal };
      endedAt = performance.now();
      resolve();
    });
  });
  let spawnError: Error | undefined;
  child.once('error', (error) => {
    spawnError = error;
  });
  return {
    child,
    startedAt,
    exited,
    stderr: () => stderr,
    exit: () => exitInfo,
    endedAt: () => endedAt,
    spawnError: () => spawnError,
  };
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
