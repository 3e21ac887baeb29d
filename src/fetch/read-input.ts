// The one way a command reads a file it was given (an image, a GOP, a VBT, a ROM, a recipe,
// a key, a cache entry): a regular file within a size limit, or a coded error. Reading a FIFO
// blocks forever and /dev/zero never ends, so neither may reach readFile.
import type * as Fs from 'node:fs';
import type { Stats } from 'node:fs';
// From fs/promises and getBuiltinModule, not an import of node:fs: an ESM import of node:fs loads
// the fs streams (export getters), a cost in every cold `extract` that reads through here.
import { constants, open } from 'node:fs/promises';
import { InputError, OvmfBuildError, throwIfAborted } from '../core/errors.js';
import { fileKind } from '../core/file-kind.js';
import { formatSize } from '../core/size.js';

/** Largest input read by default: bigger than any SPI flash or capsule (64 MiB). */
export const DEFAULT_MAX_INPUT_BYTES = 256 * 1024 * 1024;

/** Largest small text input (a recipe, a key, a JSON record). */
export const MAX_TEXT_INPUT_BYTES = 1024 * 1024;

export interface ReadInputOptions {
  /**
   * Largest accepted file, in bytes; a larger one is E_INPUT_TOO_LARGE.
   * @default 268_435_456 (256 MiB)
   */
  readonly maxBytes?: number;
  /** What the file is, for messages ("the GOP driver", "recipe"). @default "input" */
  readonly what?: string;
  readonly signal?: AbortSignal;
}

const CHUNK_BYTES = 1024 * 1024;

function notAFile(file: string, what: string, info: Stats): InputError {
  const kind = fileKind(info);
  return new InputError('E_INPUT_NOT_A_FILE', `${what} ${file} is ${kind}, not a regular file`, {
    path: file,
    kind,
  });
}

function tooLarge(file: string, what: string, sizeInBytes: number, maxBytes: number): InputError {
  return new InputError(
    'E_INPUT_TOO_LARGE',
    `${what} ${file} has ${formatSize(sizeInBytes)}, more than the limit of ${formatSize(maxBytes)}`,
    { path: file, sizeInBytes, maxBytes },
  );
}

function cannotRead(file: string, what: string, error: unknown): InputError {
  const code = (error as NodeJS.ErrnoException).code;
  const missing = code === 'ENOENT' || code === 'ENOTDIR';
  return new InputError(
    missing ? 'E_INPUT_NOT_FOUND' : 'E_INPUT_UNREADABLE',
    missing
      ? `${what} ${file} does not exist`
      : `cannot read ${what} ${file}: ${error instanceof Error ? error.message : String(error)}`,
    { path: file, errno: code ?? null },
    { cause: error },
  );
}

/**
 * Files up to this size are read with synchronous calls on the main thread: a cold `extract` of
 * a small image otherwise pays for starting libuv's thread pool and six round trips through it,
 * more than the read itself. A bigger file is read through the pool in chunks, so the event loop
 * (a signal, a worker's lock renewal) keeps running meanwhile.
 */
export const SYNC_READ_MAX_BYTES = 16 * 1024 * 1024;

const OPEN_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY;

/** A read the loop below asks for: fill `buffer` from `offset` to its end. */
interface ReadRequest {
  readonly buffer: Buffer;
  readonly offset: number;
}

/**
 * The read loop of both readers, without their I/O: it yields each read it needs and is given
 * back the count read, so the synchronous reader and the pool reader take the same steps with
 * their own calls. The first buffer is the handle's size plus a byte, so a file that grew is
 * noticed without a second pass; a full buffer grows by a chunk, up to one byte past the limit
 * (a longer file is E_INPUT_TOO_LARGE). `signal` is checked before each read.
 */
function* readSteps(
  info: Stats,
  file: string,
  what: string,
  maxBytes: number,
  signal?: AbortSignal,
): Generator<ReadRequest, Uint8Array, number> {
  if (!info.isFile()) throw notAFile(file, what, info);
  if (info.size > maxBytes) throw tooLarge(file, what, info.size, maxBytes);
  let buffer = Buffer.allocUnsafeSlow(Math.min(info.size + 1, maxBytes + 1));
  let filled = 0;
  for (;;) {
    throwIfAborted(signal);
    if (filled === buffer.length) {
      if (buffer.length > maxBytes) throw tooLarge(file, what, buffer.length, maxBytes);
      const next = Buffer.allocUnsafeSlow(Math.min(buffer.length + CHUNK_BYTES, maxBytes + 1));
      buffer.copy(next, 0, 0, buffer.length);
      buffer = next;
    }
    const bytesRead = yield { buffer, offset: filled };
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  if (filled > maxBytes) throw tooLarge(file, what, filled, maxBytes);
  return new Uint8Array(buffer.buffer, buffer.byteOffset, filled);
}

/** A failure inside a read: our own coded error as it is, anything else E_INPUT_UNREADABLE (or NOT_FOUND). */
function readFailure(file: string, what: string, error: unknown): OvmfBuildError {
  return error instanceof OvmfBuildError ? error : cannotRead(file, what, error);
}

/** readSteps with fs.*Sync calls, for a file small enough to read at once (SYNC_READ_MAX_BYTES). */
function readSmallFileSync(fs: typeof Fs, file: string, what: string, maxBytes: number): Uint8Array {
  let fd;
  try {
    fd = fs.openSync(file, OPEN_FLAGS);
  } catch (error) {
    throw cannotRead(file, what, error);
  }
  try {
    const steps = readSteps(fs.fstatSync(fd), file, what, maxBytes);
    let step = steps.next();
    while (step.done !== true) {
      const { buffer, offset } = step.value;
      step = steps.next(fs.readSync(fd, buffer, offset, buffer.length - offset, null));
    }
    return step.value;
  } catch (error) {
    throw readFailure(file, what, error);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Reads a whole regular file. The path is checked with stat before it is opened, and the
 * handle is opened with O_NONBLOCK (a FIFO swapped in between cannot block the open) and
 * checked again with fstat, so only a regular file is ever read; the read stops one byte past
 * `maxBytes` should the file grow meanwhile.
 */
export async function readInputFile(file: string, options: ReadInputOptions = {}): Promise<Uint8Array> {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_INPUT_BYTES;
  const what = options.what ?? 'input';
  throwIfAborted(options.signal);
  const fs = process.getBuiltinModule('node:fs');
  let before: Stats;
  try {
    before = fs.statSync(file);
  } catch (error) {
    throw cannotRead(file, what, error);
  }
  if (!before.isFile()) throw notAFile(file, what, before);
  if (before.size > maxBytes) throw tooLarge(file, what, before.size, maxBytes);
  if (before.size <= SYNC_READ_MAX_BYTES) return readSmallFileSync(fs, file, what, maxBytes);
  let handle;
  try {
    handle = await open(file, OPEN_FLAGS);
  } catch (error) {
    throw cannotRead(file, what, error);
  }
  try {
    const steps = readSteps(await handle.stat(), file, what, maxBytes, options.signal);
    let step = steps.next();
    while (step.done !== true) {
      const { buffer, offset } = step.value;
      const { bytesRead } = await handle.read(buffer, offset, buffer.length - offset, null);
      step = steps.next(bytesRead);
    }
    return step.value;
  } catch (error) {
    throw readFailure(file, what, error);
  } finally {
    await handle.close();
  }
}

/** readInputFile for UTF-8 text (recipes, keys, JSON records), limited to 1 MiB by default. */
export async function readInputText(file: string, options: ReadInputOptions = {}): Promise<string> {
  const bytes = await readInputFile(file, { maxBytes: MAX_TEXT_INPUT_BYTES, ...options });
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
}
