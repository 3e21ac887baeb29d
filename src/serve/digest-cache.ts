// Strong ETags need each file's sha256, and hashing on every request would cost a full read of
// a 4 MiB file per request. A by-hash path names its digest; for every other file the digest is
// computed once (streamed, off the event loop's critical path) and kept under the file's
// identity (device, inode, size, mtime, ctime), so a file replaced by rename or rewritten in
// place is hashed again, and an unchanged one never is.
import { createHash } from 'node:crypto';
import { createReadStream, type Stats } from 'node:fs';

/** `by-hash/sha256/<64 hex>`: the name is the digest. */
const BY_HASH_PATH = /^by-hash\/sha256\/([0-9a-f]{64})$/;

/** Entries kept before the oldest are dropped; a mirror holds a few thousand files. */
const DEFAULT_MAX_ENTRIES = 16_384;

export class DigestCache {
  readonly #maxEntries: number;
  readonly #digests = new Map<string, Promise<string>>();

  constructor(maxEntries = DEFAULT_MAX_ENTRIES) {
    this.#maxEntries = maxEntries;
  }

  /** The lower-case hex sha256 of the file at `absolutePath` (tree path `relativePath`) as `stat` describes it. */
  digestOf(absolutePath: string, relativePath: string, stat: Stats): Promise<string> {
    const named = BY_HASH_PATH.exec(relativePath);
    if (named !== null) return Promise.resolve(named[1] as string);
    const key = `${stat.dev}:${stat.ino}:${stat.size}:${stat.mtimeMs}:${stat.ctimeMs}:${absolutePath}`;
    const known = this.#digests.get(key);
    if (known !== undefined) return known;
    const pending = hashFile(absolutePath);
    this.#digests.set(key, pending);
    // A failed read is not remembered: the next request tries again.
    pending.catch(() => this.#digests.delete(key));
    if (this.#digests.size > this.#maxEntries) {
      const oldest = this.#digests.keys().next().value;
      if (oldest !== undefined) this.#digests.delete(oldest);
    }
    return pending;
  }
}

async function hashFile(absolutePath: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(absolutePath, { highWaterMark: 1 << 20 })) {
    hash.update(chunk as Buffer);
  }
  return hash.digest('hex');
}
