// The build cache's entries: one directory per key under <user cache dir>/cache/<key>/
// holding the output files and entry.json (details, file digests, created time). An entry
// becomes visible only through the directory store (core/dir-store.ts: fsynced temp dir, one
// rename), and every file is re-hashed before an entry is served; a corrupt entry is removed
// and reported as a miss, never served. Miss explanations live in why.ts, clean-up in gc.ts.
import { mkdir, readdir, stat, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { sha256 } from '../core/digest.js';
import { discardDir, treeSize, writeDirAtomic } from '../core/dir-store.js';
import { OvmfBuildError } from '../core/errors.js';
import { readInputFile } from '../fetch/read-input.js';
import {
  ENTRY_FILE,
  ENTRY_FORMAT_VERSION,
  parseEntry,
  readRecord,
  type CacheCorruption,
  type CacheEntryFile,
  type CacheEntryRecord,
  type CacheListing,
  type CacheLookup,
} from './entry.js';
import { collectGarbage, type GcOptions, type GcReport } from './gc.js';
import { digestOf, type CacheKey, type CacheKeyDetails } from './key.js';
import { acquireLock, lockPathFor, type AcquireLockOptions, type HeldLock } from './lock.js';
import { explainMiss, recordRequest, requestedDetails, type MissExplanation } from './why.js';

const KEY_PATTERN = /^[0-9a-f]{64}$/;
const FILE_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export class CacheError extends OvmfBuildError {}

function assertKeyValue(value: string): void {
  if (!KEY_PATTERN.test(value)) {
    throw new TypeError(`Expected a cache key of 64 lower-case hex digits, got \`${value}\``);
  }
}

export interface CacheStoreOptions {
  /** The cache root, e.g. buildCacheDir(env). */
  readonly root: string;
}

export class CacheStore {
  readonly root: string;

  constructor(options: CacheStoreOptions) {
    this.root = options.root;
  }

  entryDir(keyValue: string): string {
    assertKeyValue(keyValue);
    return path.join(this.root, keyValue);
  }

  /** Looks a key up and re-hashes every file; a corrupt entry is removed and reported as a miss. */
  async lookup(key: CacheKey | string): Promise<CacheLookup> {
    const value = typeof key === 'string' ? key : key.value;
    const dir = this.entryDir(value);
    let text: string;
    try {
      text = await readRecord(path.join(dir, ENTRY_FILE));
    } catch (error) {
      if (error instanceof OvmfBuildError && error.code === 'E_INPUT_NOT_FOUND') {
        const exists = await stat(dir).then(
          () => true,
          () => false,
        );
        if (!exists) return { hit: false, reason: 'absent' };
        return this.#corrupt(dir, { file: ENTRY_FILE, problem: 'entry.json is missing' });
      }
      if (error instanceof OvmfBuildError && error.code.startsWith('E_INPUT_')) {
        return this.#corrupt(dir, { file: ENTRY_FILE, problem: `entry.json is unusable: ${error.message}` });
      }
      throw error;
    }
    let entry: CacheEntryRecord;
    try {
      entry = parseEntry(text, value);
    } catch (error) {
      return this.#corrupt(dir, {
        file: ENTRY_FILE,
        problem: `entry.json is unusable: ${(error as Error).message}`,
      });
    }
    const files = new Map<string, Uint8Array>();
    for (const [name, expected] of Object.entries(entry.files)) {
      if (!FILE_NAME_PATTERN.test(name) || name === ENTRY_FILE) {
        return this.#corrupt(dir, { file: name, problem: 'entry.json names a file outside the entry' });
      }
      let bytes: Uint8Array;
      try {
        bytes = await readInputFile(path.join(dir, name), { what: 'cache file' });
      } catch {
        return this.#corrupt(dir, { file: name, problem: 'file is missing' });
      }
      const actual = sha256(bytes);
      if (actual !== expected.sha256 || bytes.length !== expected.sizeInBytes) {
        return this.#corrupt(dir, {
          file: name,
          problem: `sha256 is ${actual} (${bytes.length} bytes), entry.json says ${expected.sha256} (${expected.sizeInBytes} bytes)`,
          expected: expected.sha256,
          actual,
        });
      }
      files.set(name, bytes);
    }
    const now = new Date();
    await utimes(dir, now, now).catch(() => undefined);
    return { hit: true, dir, entry, files };
  }

  async #corrupt(dir: string, corruption: CacheCorruption): Promise<CacheLookup> {
    await discardDir(dir);
    return { hit: false, reason: 'corrupt', corruption };
  }

  /**
   * Writes an entry atomically through the directory store (files and entry.json fsynced in a
   * temp dir, one rename to `<key>/`). If another process published the same key first, its
   * entry wins and ours is dropped.
   */
  async put(
    key: CacheKey,
    files: Readonly<Record<string, Uint8Array>>,
    meta: Readonly<Record<string, unknown>> = {},
  ): Promise<CacheEntryRecord> {
    const dir = this.entryDir(key.value);
    if (digestOf(key.details) !== key.value) {
      throw new TypeError('Expected `key.value` to be the digest of `key.details`');
    }
    const names = Object.keys(files);
    if (names.length === 0) throw new TypeError('Expected `files` to name at least one file, got none');
    for (const name of names) {
      if (!FILE_NAME_PATTERN.test(name) || name === ENTRY_FILE) {
        throw new TypeError(`Expected a plain file name, got \`${name}\``);
      }
    }
    try {
      const written = await writeDirAtomic({
        target: dir,
        fill: async (tmp) => {
          const record: Record<string, CacheEntryFile> = {};
          for (const name of names.sort()) {
            const bytes = files[name] as Uint8Array;
            await writeFile(path.join(tmp, name), bytes, { flag: 'wx' });
            record[name] = { sha256: sha256(bytes), sizeInBytes: bytes.length };
          }
          const entry: CacheEntryRecord = {
            formatVersion: ENTRY_FORMAT_VERSION,
            key: key.value,
            details: key.details,
            files: record,
            createdAt: new Date().toISOString(),
            meta,
          };
          await writeFile(path.join(tmp, ENTRY_FILE), `${JSON.stringify(entry, null, 2)}\n`, { flag: 'wx' });
          return entry;
        },
        existing: async () => {
          const existing = await this.lookup(key.value);
          return existing.hit ? existing.entry : null;
        },
      });
      return written.value;
    } catch (error) {
      if (error instanceof OvmfBuildError || error instanceof TypeError) throw error;
      throw new CacheError(
        'E_CACHE_WRITE_FAILED',
        `cannot write cache entry ${key.value}: ${(error as Error).message}`,
        {
          key: key.value,
          root: this.root,
        },
      );
    }
  }

  /** Every entry directory with its parsed entry.json (files are not re-hashed here). */
  async list(): Promise<CacheListing[]> {
    const names = await readdir(this.root).catch(() => [] as string[]);
    const listings: CacheListing[] = [];
    for (const name of names.filter((n) => KEY_PATTERN.test(n)).sort()) {
      const dir = path.join(this.root, name);
      let entry: CacheEntryRecord | null = null;
      let problem: string | null = null;
      try {
        entry = parseEntry(await readRecord(path.join(dir, ENTRY_FILE)), name);
      } catch (error) {
        problem = (error as Error).message;
      }
      const info = await stat(dir).catch(() => null);
      if (info === null) continue;
      listings.push({
        key: name,
        dir,
        entry,
        problem,
        sizeInBytes: await treeSize(dir),
        lastUsedAt: info.mtime.toISOString(),
      });
    }
    return listings;
  }

  /** The unique entry whose key starts with `prefix` (E_CACHE_KEY_AMBIGUOUS / null when none). */
  async findByPrefix(prefix: string): Promise<CacheListing | null> {
    const normalized = prefix.toLowerCase();
    if (!/^[0-9a-f]{4,64}$/.test(normalized)) {
      throw new CacheError(
        'E_CACHE_BAD_KEY',
        `\`${prefix}\` is not a key or key prefix (4 to 64 hex digits)`,
        {
          prefix,
        },
      );
    }
    const matches = (await this.list()).filter((listing) => listing.key.startsWith(normalized));
    if (matches.length > 1) {
      throw new CacheError(
        'E_CACHE_KEY_AMBIGUOUS',
        `key prefix ${normalized} matches ${matches.length} entries; give more digits`,
        { prefix: normalized, matches: matches.map((m) => m.key) },
      );
    }
    return matches[0] ?? null;
  }

  /** Records the details of a requested key so `cache why <key>` can explain it later, built or not. */
  recordRequest(key: CacheKey): Promise<void> {
    return recordRequest(this.root, key);
  }

  /** The details of a key that was requested (built or not), found by full key or prefix. */
  requestedDetails(prefix: string): Promise<{ key: string; details: CacheKeyDetails } | null> {
    return requestedDetails(this.root, prefix);
  }

  /** Names the inputs that differ between `details` and the nearest cached entry. */
  async explainMiss(
    details: CacheKeyDetails,
    options: { readonly excludeKey?: string } = {},
  ): Promise<MissExplanation> {
    return explainMiss(await this.list(), details, options);
  }

  /** Takes the per-key build lock. */
  async lock(key: CacheKey | string, options: AcquireLockOptions = {}): Promise<HeldLock> {
    const value = typeof key === 'string' ? key : key.value;
    assertKeyValue(value);
    await mkdir(path.join(this.root, 'locks'), { recursive: true });
    return acquireLock(lockPathFor(this.root, value), options);
  }

  /** Removes old entries, abandoned temp dirs, stale locks and discarded debris (gc.ts). */
  gc(options: GcOptions = {}): Promise<GcReport> {
    return collectGarbage(this.root, () => this.list(), options);
  }
}
