// `cache gc`: removes entries by age and size (least recently used first), the temp dirs of
// dead writers, stale locks, discarded debris and old request records. Kept apart from the
// entries (store.ts) because it judges the whole cache directory, not one key.
import { lstat, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { DISCARD_PREFIX, findStaleTemps, treeSize } from '../core/dir-store.js';
import { lockStaleReason, readLockOwner } from './lock.js';
import type { CacheListing } from './entry.js';
import { REQUESTS_DIR } from './why.js';

const DAY_MS = 86_400_000;

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

/** `list` gives the root's entries (CacheStore.list): gc judges them without re-hashing files. */
export async function collectGarbage(
  root: string,
  list: () => Promise<CacheListing[]>,
  options: GcOptions = {},
): Promise<GcReport> {
  const now = options.now ?? Date.now();
  const dryRun = options.dryRun === true;
  const removed: GcRemoval[] = [];
  const remove = async (removal: GcRemoval): Promise<void> => {
    removed.push(removal);
    if (!dryRun) await rm(removal.path, { recursive: true, force: true });
  };
  for (const name of (await readdir(root).catch(() => [] as string[])).sort()) {
    if (!name.startsWith(DISCARD_PREFIX)) continue;
    const full = path.join(root, name);
    await remove({
      kind: 'debris',
      path: full,
      reason: 'discarded entry',
      sizeInBytes: await treeSize(full),
    });
  }
  // gc is asked for by the user: a dead writer's temp dir goes at once, without the grace
  // period that an automatic sweep by another writer waits.
  for (const temp of await findStaleTemps(root, { now, deadOwnerAfterMs: 0 })) {
    await remove({
      kind: 'temp',
      path: temp.path,
      reason: temp.reason,
      sizeInBytes: await treeSize(temp.path),
    });
  }
  const lockDir = path.join(root, 'locks');
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
  const kept: CacheListing[] = [];
  for (const listing of await list()) {
    if (listing.entry === null) {
      await remove({
        kind: 'entry',
        path: listing.dir,
        reason: `unusable entry: ${listing.problem ?? 'unknown'}`,
        sizeInBytes: listing.sizeInBytes,
      });
    } else if (
      options.maxAgeDays !== undefined &&
      now - Date.parse(listing.lastUsedAt) > options.maxAgeDays * DAY_MS
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
  if (options.maxAgeDays !== undefined) {
    const keptKeys = new Set(kept.map((listing) => listing.key));
    const requestDir = path.join(root, REQUESTS_DIR);
    for (const name of await readdir(requestDir).catch(() => [] as string[])) {
      const full = path.join(requestDir, name);
      const info = await lstat(full).catch(() => null);
      if (info === null || keptKeys.has(name.replace(/\.json$/, ''))) continue;
      if (now - info.mtimeMs > options.maxAgeDays * DAY_MS) {
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
