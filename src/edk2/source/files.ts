// Small file-system questions the source acquirers ask: does it exist, what is its digest,
// which directory did the archive unpack into.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';

export async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch {
    return false;
  }
}

/** The sha256 of a file, streamed (an EDK2 tarball is tens of MiB). */
export async function sha256File(file: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, signal === undefined ? {} : { signal })) {
    hash.update(chunk as Buffer);
  }
  return hash.digest('hex');
}

/** The archive's one top directory (GitHub and release tarballs have one), else `dir` itself. */
export async function singleTopDir(dir: string): Promise<string> {
  const entries = (await readdir(dir, { withFileTypes: true })).filter(
    (entry) => entry.name !== 'pax_global_header',
  );
  if (entries.length === 1 && entries[0]?.isDirectory() === true) return path.join(dir, entries[0].name);
  return dir;
}
