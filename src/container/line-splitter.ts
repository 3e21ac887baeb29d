/**
 * Splits a byte stream into lines without buffering the whole stream: only the
 * current, unfinished line is held, and a line longer than `maxLineBytes` is
 * emitted in pieces so a log without newlines cannot grow memory without bound.
 */
export class LineSplitter {
  readonly #onLine: (line: string) => void;
  readonly #maxLineBytes: number;
  readonly #decoder = new TextDecoder('utf-8');
  #pending = '';

  /**
   * @param onLine called once per line, without the trailing `\n` (and `\r`)
   * @param maxLineBytes longest line kept whole. @default 65_536
   */
  constructor(onLine: (line: string) => void, maxLineBytes = 65_536) {
    if (!Number.isInteger(maxLineBytes) || maxLineBytes < 1) {
      throw new TypeError(
        `Expected \`maxLineBytes\` to be a positive integer, got \`${String(maxLineBytes)}\``,
      );
    }
    this.#onLine = onLine;
    this.#maxLineBytes = maxLineBytes;
  }

  write(chunk: Uint8Array): void {
    this.#pending += this.#decoder.decode(chunk, { stream: true });
    let start = 0;
    for (;;) {
      const newline = this.#pending.indexOf('\n', start);
      if (newline === -1) {
        break;
      }
      this.#emit(this.#pending.slice(start, newline));
      start = newline + 1;
    }
    this.#pending = this.#pending.slice(start);
    // Characters, not bytes, but within a factor of 4 and cheap to check.
    while (this.#pending.length > this.#maxLineBytes) {
      this.#onLine(this.#pending.slice(0, this.#maxLineBytes));
      this.#pending = this.#pending.slice(this.#maxLineBytes);
    }
  }

  /** Emits the last line if the stream did not end with a newline. */
  end(): void {
    this.#pending += this.#decoder.decode();
    if (this.#pending.length > 0) {
      this.#emit(this.#pending);
      this.#pending = '';
    }
  }

  #emit(line: string): void {
    this.#onLine(line.endsWith('\r') ? line.slice(0, -1) : line);
  }
}

/** Keeps the last `capacity` lines (the tail of a log for error reports). */
export class TailBuffer {
  readonly #capacity: number;
  readonly #lines: string[] = [];

  /** @param capacity lines kept. @default 200 */
  constructor(capacity = 200) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new TypeError(`Expected \`capacity\` to be a positive integer, got \`${String(capacity)}\``);
    }
    this.#capacity = capacity;
  }

  push(line: string): void {
    this.#lines.push(line);
    if (this.#lines.length > this.#capacity) {
      this.#lines.shift();
    }
  }

  lines(): string[] {
    return [...this.#lines];
  }
}
