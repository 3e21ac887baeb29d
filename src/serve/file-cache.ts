// Small files (the index, the page, latest.json, snippets) are most of the requests, and serving
// one through a read stream costs open, read and close on the thread pool besides send's stat.
// Their bytes are kept in memory under the file's identity (device, inode, size, mtime, ctime),
// read once together with their sha256; large files only get their digest (DigestCache) and are
// streamed. A file replaced by rename (how the mirror writes) or rewritten has another identity.
import type { Stats } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { sha256 } from '../core/digest.js';
import { DigestCache } from './digest-cache.js';

/** Files up to this size are served from memory. */
export const SMALL_FILE_MAX_BYTES = 256 * 1024;
/** Bytes of small files kept at most; the oldest entries go first. */
const MAX_CACHED_BYTES = 64 * 1024 * 1024;

export interface CachedFile {
  readonly sha256: string;
  /** The whole file for a small file, null for a large one (stream it). */
  readonly bytes: Buffer | null;
}

export class FileCache {
  readonly #digests = new DigestCache();
  readonly #small = new Map<string, { readonly file: Promise<CachedFile>; readonly size: number }>();
  #cachedBytes = 0;

  /** The sha256 of the file `stat` describes, and its bytes when it is small. */
  get(absolutePath: string, relativePath: string, stat: Stats): Promise<CachedFile> {
    if (stat.size > SMALL_FILE_MAX_BYTES) {
      return this.#digests
        .digestOf(absolutePath, relativePath, stat)
        .then((hex) => ({ sha256: hex, bytes: null }));
    }
    const key = `${stat.dev}:${stat.ino}:${stat.size}:${stat.mtimeMs}:${stat.ctimeMs}:${absolutePath}`;
    const known = this.#small.get(key);
    if (known !== undefined) return known.file;
    const file = readFile(absolutePath).then(
      (bytes) => {
        // Changed between stat and read: serve what was read, this once, and keep nothing.
        if (bytes.length !== stat.size) this.#drop(key);
        return { sha256: sha256(bytes), bytes };
      },
      (error: unknown) => {
        this.#drop(key);
        throw error;
      },
    );
    this.#small.set(key, { file, size: stat.size });
    this.#cachedBytes += stat.size;
    while (this.#cachedBytes > MAX_CACHED_BYTES && this.#small.size > 1) {
      const oldest = this.#small.keys().next().value;
      if (oldest === undefined) break;
      this.#drop(oldest);
    }
    return file;
  }

  #drop(key: string): void {
    const entry = this.#small.get(key);
    if (entry === undefined) return;
    this.#small.delete(key);
    this.#cachedBytes -= entry.size;
  }
}
