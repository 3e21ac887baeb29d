// Durable file-system steps shared by the fetch, cache, publish and job layers: a file or
// directory becomes visible under its final name only after its bytes are on disk.
import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import path from 'node:path';

/**
 * fsync a file, or a directory so a rename inside it survives a crash (POSIX: rename(2) is
 * durable once the parent is synced).
 */
export async function fsyncPath(target: string): Promise<void> {
  const handle = await open(target, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Writes a new file (failing if it exists) and fsyncs it. */
export async function writeFileSynced(file: string, data: Uint8Array | string, mode = 0o644): Promise<void> {
  const handle = await open(file, 'wx', mode);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Replaces `file` atomically: temp file in the same directory, fsync, rename, fsync the directory. */
export async function writeFileAtomic(file: string, data: Uint8Array | string, mode = 0o644): Promise<void> {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await writeFileSynced(tmp, data, mode);
    await rename(tmp, file);
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
  await fsyncPath(dir);
}

/** A short random suffix for temp names. */
export function randomSuffix(bytes = 6): string {
  return randomBytes(bytes).toString('hex');
}
