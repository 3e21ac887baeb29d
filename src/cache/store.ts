// The build cache: one directory per key under <user cache dir>/cache/<key>/ holding the
// output files and entry.json (details, file digests, created time). An entry becomes
// visible only by renaming a complete, fsynced temp directory (STYLE.md, Bazel/Nix), and
// every file is re-hashed before an entry is served; a corrupt entry is removed and
// reported as a miss, never served.
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, readdir, rename, rm, stat, utimes } from 'node:fs/promises';
import path from 'node:path';
import { OvmfBuildError } from '../core/errors.js';
import { sha256 } from '../core/digest.js';
import { isProcessAlive } from '../core/process-alive.js';
import { fsyncDir, writeFileAtomic, writeFileSynced } from '../core/durable-fs.js';
import { readInputFile, readInputText } from '../fetch/read-input.js';
import {
  CACHE_KEY_INPUTS,
  describeDifference,
  diffDetails,
  digestOf,
  type CacheKey,
  type CacheKeyDetails,
  type KeyDifference,
} from './key.js';
import {
  acquireLock,
  lockPathFor,
  lockStaleReason,
  readLockOwner,
  type AcquireLockOptions,
  type HeldLock,
} from './lock.js';

export const ENTRY_FILE = 'entry.json';
export const ENTRY_FORMAT_VERSION = 1;
const KEY_PATTERN = /^[0-9a-f]{64}$/;
const FILE_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const TEMP_PREFIX = '.tmp-';
const ASIDE_PREFIX = '.discard-';
/** A temp dir whose owner pid cannot be judged is abandoned after this long. */
const TEMP_ABANDONED_AFTER_MS = 24 * 3_600_000;

export interface CacheEntryFile {
  readonly sha256: string;
  readonly sizeInBytes: number;
}

export interface CacheEntryRecord {
  readonly formatVersion: number;
  readonly key: string;
  readonly details: CacheKeyDetails;
  readonly files: Readonly<Record<string, CacheEntryFile>>;
  readonly createdAt: string;
  /** Free-form facts about the build (duration, miss explanation, builder image ref...). */
  readonly meta: Readonly<Record<string, unknown>>;
}

export interface CacheCorruption {
  /** The file that failed, or entry.json. */
  readonly file: string;
  readonly problem: string;
  readonly expected?: string;
  readonly actual?: string;
}

export type CacheLookup =
  | {
      readonly hit: true;
      readonly dir: string;
      readonly entry: CacheEntryRecord;
      /** Every file's bytes, re-hashed against entry.json. */
      readonly files: ReadonlyMap<string, Uint8Array>;
    }
  | { readonly hit: false; readonly reason: 'absent' }
  | { readonly hit: false; readonly reason: 'corrupt'; readonly corruption: CacheCorruption };

export interface CacheListing {
  readonly key: string;
  readonly dir: string;
  readonly entry: CacheEntryRecord | null;
  /** Why entry.json cannot be used (null when it parses). Files are not re-hashed by list(). */
  readonly problem: string | null;
  readonly sizeInBytes: number;
  readonly lastUsedAt: string;
}

export interface MissExplanation {
  /** The nearest cached entry (fewest differing inputs, newest on a tie); null when none. */
  readonly nearest: { readonly key: string; readonly createdAt: string } | null;
  readonly differences: readonly KeyDifference[];
  /** Human lines: "vbt changed: 3f1c2a9b.. -> 9a0e1b2c..". */
  readonly lines: readonly string[];
}

export interface GcOptions {
  /** Remove entries not used for more than this many days. @default no age limit */
  readonly maxAgeDays?: number;
  /** Then remove least recently used entries until the total is at most this. @default no size limit */
  readonly maxSizeBytes?: number;
  /** Report what would go without removing anything. @default false */
  readonly dryRun?: boolean;
  /** The clock (ms since the epoch), passed in for tests. @default Date.now() */
  readonly now?: number;
}

export interface GcRemoval {
  readonly kind: 'entry' | 'temp' | 'lock' | 'debris' | 'request';
  readonly path: string;
  readonly reason: string;
  readonly sizeInBytes: number;
}

export interface GcReport {
  readonly dryRun: boolean;
  readonly removed: readonly GcRemoval[];
  readonly freedBytes: number;
  readonly keptEntries: number;
  readonly keptBytes: number;
}

export class CacheError extends OvmfBuildError {}

function assertKeyValue(value: string): void {
  if (!KEY_PATTERN.test(value)) {
    throw new TypeError(`Expected a cache key of 64 lower-case hex digits, got \`${value}\``);
  }
}

/**
 * Bytes under `target`, links not followed: a symlink counts as itself, so a link to a
 * parent directory (a loop) or to a huge tree elsewhere cannot hang or inflate `cache ls`.
 */
async function treeSize(target: string): Promise<number> {
  let total = 0;
  let info;
  try {
    info = await lstat(target);
  } catch {
    return 0;
  }
  if (!info.isDirectory()) return info.size;
  for (const name of await readdir(target).catch(() => [] as string[])) {
    total += await treeSize(path.join(target, name));
  }
  return total;
}

/** An entry's own JSON record, read through the input guard (a FIFO planted there cannot hang us). */
function readRecord(file: string): Promise<string> {
  return readInputText(file, { what: 'cache record' });
}

function parseEntry(text: string, dirKey: string): CacheEntryRecord {
  const parsed = JSON.parse(text) as Partial<CacheEntryRecord>;
  if (parsed.formatVersion !== ENTRY_FORMAT_VERSION)
    throw new Error(`formatVersion ${String(parsed.formatVersion)}`);
  if (parsed.key !== dirKey) throw new Error(`key ${String(parsed.key)} does not match directory ${dirKey}`);
  if (typeof parsed.details !== 'object' || parsed.details === null) throw new Error('no details');
  if (digestOf(parsed.details) !== dirKey) throw new Error('details do not hash to the key');
  if (typeof parsed.files !== 'object' || parsed.files === null) throw new Error('no files');
  if (typeof parsed.createdAt !== 'string') throw new Error('no createdAt');
  return parsed as CacheEntryRecord;
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
    await this.#discard(dir);
    return { hit: false, reason: 'corrupt', corruption };
  }

  /** Renames a directory out of the way (so readers see it whole or not at all), then deletes it. */
  async #discard(dir: string): Promise<void> {
    const aside = path.join(
      this.root,
      `${ASIDE_PREFIX}${path.basename(dir)}-${randomBytes(4).toString('hex')}`,
    );
    try {
      await rename(dir, aside);
    } catch {
      return;
    }
    await rm(aside, { recursive: true, force: true });
  }

  /**
   * Writes an entry atomically: files and entry.json into `.tmp-<pid>-<random>/`, each
   * fsynced, then one rename to `<key>/`. If another process published the same key first,
   * its entry wins and ours is dropped.
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
    await mkdir(this.root, { recursive: true });
    const tmp = path.join(this.root, `${TEMP_PREFIX}${process.pid}-${randomBytes(6).toString('hex')}`);
    await mkdir(tmp);
    try {
      const record: Record<string, CacheEntryFile> = {};
      for (const name of names.sort()) {
        const bytes = files[name] as Uint8Array;
        await writeFileSynced(path.join(tmp, name), bytes);
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
      await writeFileSynced(path.join(tmp, ENTRY_FILE), `${JSON.stringify(entry, null, 2)}\n`);
      await fsyncDir(tmp);
      try {
        await rename(tmp, dir);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw error;
        const existing = await this.lookup(key.value);
        if (existing.hit) {
          await rm(tmp, { recursive: true, force: true });
          return existing.entry;
        }
        await rename(tmp, dir);
      }
      await fsyncDir(this.root);
      return entry;
    } catch (error) {
      await rm(tmp, { recursive: true, force: true });
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
  async recordRequest(key: CacheKey): Promise<void> {
    const dir = path.join(this.root, 'requests');
    await mkdir(dir, { recursive: true });
    await writeFileAtomic(
      path.join(dir, `${key.value}.json`),
      `${JSON.stringify({ key: key.value, details: key.details })}\n`,
    );
  }

  /** The details of a key that was requested (built or not), found by full key or prefix. */
  async requestedDetails(prefix: string): Promise<{ key: string; details: CacheKeyDetails } | null> {
    const dir = path.join(this.root, 'requests');
    const names = (await readdir(dir).catch(() => [] as string[])).filter(
      (n) => n.endsWith('.json') && n.startsWith(prefix.toLowerCase()),
    );
    if (names.length !== 1) return null;
    try {
      const parsed = JSON.parse(await readRecord(path.join(dir, names[0] as string))) as {
        key: string;
        details: CacheKeyDetails;
      };
      return digestOf(parsed.details) === parsed.key ? parsed : null;
    } catch {
      return null;
    }
  }

  /** Names the inputs that differ between `details` and the nearest cached entry. */
  async explainMiss(
    details: CacheKeyDetails,
    options: { readonly excludeKey?: string } = {},
  ): Promise<MissExplanation> {
    let best: { entry: CacheEntryRecord; differences: KeyDifference[] } | null = null;
    for (const listing of await this.list()) {
      if (listing.entry === null || listing.key === options.excludeKey) continue;
      const differences = diffDetails(listing.entry.details, details);
      if (
        best === null ||
        differences.length < best.differences.length ||
        (differences.length === best.differences.length && listing.entry.createdAt > best.entry.createdAt)
      ) {
        best = { entry: listing.entry, differences };
      }
    }
    if (best === null) {
      return { nearest: null, differences: [], lines: ['the cache is empty: nothing to compare with'] };
    }
    return {
      nearest: { key: best.entry.key, createdAt: best.entry.createdAt },
      differences: best.differences,
      lines:
        best.differences.length === 0
          ? ['no input differs: the entry has the same key']
          : best.differences.map((difference) => describeDifference(difference)),
    };
  }

  /** Takes the per-key build lock. */
  async lock(key: CacheKey | string, options: AcquireLockOptions = {}): Promise<HeldLock> {
    const value = typeof key === 'string' ? key : key.value;
    assertKeyValue(value);
    await mkdir(path.join(this.root, 'locks'), { recursive: true });
    return acquireLock(lockPathFor(this.root, value), options);
  }

  /** Removes old entries, abandoned temp dirs, stale locks and discarded debris. */
  async gc(options: GcOptions = {}): Promise<GcReport> {
    const now = options.now ?? Date.now();
    const dryRun = options.dryRun === true;
    const removed: GcRemoval[] = [];
    const remove = async (removal: GcRemoval): Promise<void> => {
      removed.push(removal);
      if (!dryRun) await rm(removal.path, { recursive: true, force: true });
    };
    for (const name of await readdir(this.root).catch(() => [] as string[])) {
      const full = path.join(this.root, name);
      if (name.startsWith(ASIDE_PREFIX)) {
        await remove({
          kind: 'debris',
          path: full,
          reason: 'discarded entry',
          sizeInBytes: await treeSize(full),
        });
      } else if (name.startsWith(TEMP_PREFIX)) {
        const pid = Number(name.slice(TEMP_PREFIX.length).split('-')[0]);
        const info = await lstat(full).catch(() => null);
        if (info === null) continue;
        const reason = !isProcessAlive(pid)
          ? `writer process ${pid} is gone`
          : now - info.mtimeMs > TEMP_ABANDONED_AFTER_MS
            ? 'older than 24 h'
            : null;
        if (reason !== null) {
          await remove({ kind: 'temp', path: full, reason, sizeInBytes: await treeSize(full) });
        }
      }
    }
    const lockDir = path.join(this.root, 'locks');
    for (const name of await readdir(lockDir).catch(() => [] as string[])) {
      const full = path.join(lockDir, name);
      if (name.includes('.broken-')) {
        await remove({ kind: 'lock', path: full, reason: 'leftover of a broken lock', sizeInBytes: 0 });
        continue;
      }
      const stale = await lockStaleReason(full, await readLockOwner(full), { now });
      if (stale !== null)
        await remove({ kind: 'lock', path: full, reason: `stale lock: ${stale}`, sizeInBytes: 0 });
    }
    const listings = await this.list();
    const kept: CacheListing[] = [];
    for (const listing of listings) {
      if (listing.entry === null) {
        await remove({
          kind: 'entry',
          path: listing.dir,
          reason: `unusable entry: ${listing.problem ?? 'unknown'}`,
          sizeInBytes: listing.sizeInBytes,
        });
      } else if (
        options.maxAgeDays !== undefined &&
        now - Date.parse(listing.lastUsedAt) > options.maxAgeDays * 86_400_000
      ) {
        await remove({
          kind: 'entry',
          path: listing.dir,
          reason: `not used for more than ${options.maxAgeDays} days`,
          sizeInBytes: listing.sizeInBytes,
        });
      } else {
        kept.push(listing);
      }
    }
    if (options.maxSizeBytes !== undefined) {
      kept.sort((a, b) => (a.lastUsedAt < b.lastUsedAt ? -1 : a.lastUsedAt > b.lastUsedAt ? 1 : 0));
      let total = kept.reduce((sum, listing) => sum + listing.sizeInBytes, 0);
      while (total > options.maxSizeBytes && kept.length > 0) {
        const oldest = kept.shift() as CacheListing;
        total -= oldest.sizeInBytes;
        await remove({
          kind: 'entry',
          path: oldest.dir,
          reason: `least recently used; cache above ${options.maxSizeBytes} bytes`,
          sizeInBytes: oldest.sizeInBytes,
        });
      }
    }
    const keptKeys = new Set(kept.map((listing) => listing.key));
    if (options.maxAgeDays !== undefined) {
      const requestDir = path.join(this.root, 'requests');
      for (const name of await readdir(requestDir).catch(() => [] as string[])) {
        const full = path.join(requestDir, name);
        const info = await lstat(full).catch(() => null);
        if (info === null || keptKeys.has(name.replace(/\.json$/, ''))) continue;
        if (now - info.mtimeMs > options.maxAgeDays * 86_400_000) {
          await remove({ kind: 'request', path: full, reason: 'old request record', sizeInBytes: info.size });
        }
      }
    }
    return {
      dryRun,
      removed,
      freedBytes: removed.reduce((sum, removal) => sum + removal.sizeInBytes, 0),
      keptEntries: kept.length,
      keptBytes: kept.reduce((sum, listing) => sum + listing.sizeInBytes, 0),
    };
  }
}

export { CACHE_KEY_INPUTS };
