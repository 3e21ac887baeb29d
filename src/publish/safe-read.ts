// Reading files of an artifact directory or a key file without following links and without
// blocking: open(2) with O_NOFOLLOW (a symlink fails with ELOOP) and O_NONBLOCK (a FIFO does
// not wait for a writer), then fstat on the open handle, so what is read is the regular file
// that was checked, even if the name is swapped meanwhile.
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { fileKind } from '../core/file-kind.js';

export type SafeOpenFailure =
  | { readonly kind: 'missing' }
  | { readonly kind: 'not-regular'; readonly what: string }
  | { readonly kind: 'too-large'; readonly sizeInBytes: number }
  | { readonly kind: 'error'; readonly message: string };

export class SafeOpenError extends Error {
  readonly failure: SafeOpenFailure;
  constructor(file: string, failure: SafeOpenFailure) {
    super(`${file}: ${describeFailure(failure)}`);
    this.failure = failure;
  }
}

export function describeFailure(failure: SafeOpenFailure): string {
  switch (failure.kind) {
    case 'missing':
      return 'no such file';
    case 'not-regular':
      return `is ${failure.what}, not a regular file`;
    case 'too-large':
      return `is ${failure.sizeInBytes} bytes, more than allowed`;
    case 'error':
      return failure.message;
  }
}

async function openRegular(
  file: string,
  maxSizeInBytes: number,
  followLinks: boolean,
): Promise<{ handle: FileHandle; sizeInBytes: number }> {
  let handle: FileHandle;
  const flags = constants.O_RDONLY | constants.O_NONBLOCK | (followLinks ? 0 : constants.O_NOFOLLOW);
  try {
    handle = await open(file, flags);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new SafeOpenError(file, { kind: 'missing' });
    if (code === 'ELOOP') throw new SafeOpenError(file, { kind: 'not-regular', what: 'a symbolic link' });
    throw new SafeOpenError(file, { kind: 'error', message: (error as Error).message });
  }
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) throw new SafeOpenError(file, { kind: 'not-regular', what: fileKind(stats) });
    if (stats.size > maxSizeInBytes) {
      throw new SafeOpenError(file, { kind: 'too-large', sizeInBytes: stats.size });
    }
    return { handle, sizeInBytes: stats.size };
  } catch (error) {
    await handle.close();
    throw error;
  }
}

/**
 * The bytes of a regular file of at most `maxSizeInBytes`. Throws SafeOpenError otherwise.
 * @param followLinks follow a symlink at the last path component (a path the user typed)
 */
export async function readRegularFile(
  file: string,
  maxSizeInBytes: number,
  followLinks = false,
): Promise<Buffer> {
  const { handle, sizeInBytes } = await openRegular(file, maxSizeInBytes, followLinks);
  try {
    const bytes = Buffer.alloc(sizeInBytes);
    let filled = 0;
    while (filled < sizeInBytes) {
      const { bytesRead } = await handle.read(bytes, filled, sizeInBytes - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    // A file that grew after fstat is read only up to the checked size; one that shrank is short.
    return bytes.subarray(0, filled);
  } catch (error) {
    throw new SafeOpenError(file, { kind: 'error', message: (error as Error).message });
  } finally {
    await handle.close();
  }
}

const HASH_CHUNK_BYTES = 1 << 20;

/** sha256 (hex) of a regular file, streamed in 1 MiB reads; never follows a symlink. */
export async function sha256OfRegularFile(file: string): Promise<string> {
  const { handle } = await openRegular(file, Number.MAX_SAFE_INTEGER, false);
  try {
    const hash = createHash('sha256');
    const chunk = Buffer.alloc(HASH_CHUNK_BYTES);
    for (;;) {
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, null);
      if (bytesRead === 0) break;
      hash.update(chunk.subarray(0, bytesRead));
    }
    return hash.digest('hex');
  } catch (error) {
    if (error instanceof SafeOpenError) throw error;
    throw new SafeOpenError(file, { kind: 'error', message: (error as Error).message });
  } finally {
    await handle.close();
  }
}
