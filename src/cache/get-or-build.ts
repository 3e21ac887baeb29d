import type { CacheKey } from './key.js';
import type { AcquireLockOptions, LockOwner } from './lock.js';
import type { CacheCorruption, CacheEntryRecord, CacheStore } from './store.js';

export interface BuildOutput {
  readonly files: Readonly<Record<string, Uint8Array>>;
  readonly meta?: Readonly<Record<string, unknown>>;
}

export interface GetOrBuildOptions {
  readonly signal?: AbortSignal;
  /** Passed to the lock. */
  readonly lock?: Omit<AcquireLockOptions, 'signal' | 'onWait' | 'onBroken'>;
  /** Called when another process holds the key's lock and we wait for it. */
  readonly onWait?: (owner: LockOwner | null) => void;
  readonly onLockBroken?: (owner: LockOwner | null, reason: string) => void;
  /** Called once on a miss, before the lock is taken. */
  readonly onMiss?: (
    reason: 'absent' | 'corrupt',
    corruption: CacheCorruption | null,
  ) => void | Promise<void>;
}

export interface GetOrBuildResult {
  /** True when the entry came from the cache (also after waiting for another builder). */
  readonly cacheHit: boolean;
  /** True when another process was building the same key and we waited for it. */
  readonly waitedForLock: boolean;
  /** Why the first lookup missed; null on a hit. */
  readonly missReason: 'absent' | 'corrupt' | null;
  readonly corruption: CacheCorruption | null;
  readonly dir: string;
  readonly entry: CacheEntryRecord;
  readonly files: ReadonlyMap<string, Uint8Array>;
}

/**
 * Lookup, and on a miss: take the key's lock, look again (another process may have built
 * it while we waited), build, write the entry atomically, release. Two processes with the
 * same key build once.
 */
export async function getOrBuild(
  store: CacheStore,
  key: CacheKey,
  build: () => Promise<BuildOutput>,
  options: GetOrBuildOptions = {},
): Promise<GetOrBuildResult> {
  const first = await store.lookup(key);
  if (first.hit) {
    return {
      cacheHit: true,
      waitedForLock: false,
      missReason: null,
      corruption: null,
      dir: first.dir,
      entry: first.entry,
      files: first.files,
    };
  }
  const corruption = first.reason === 'corrupt' ? first.corruption : null;
  await options.onMiss?.(first.reason, corruption);
  const held = await store.lock(key, {
    ...options.lock,
    ...(options.signal === undefined ? {} : { signal: options.signal }),
    ...(options.onWait === undefined ? {} : { onWait: options.onWait }),
    ...(options.onLockBroken === undefined ? {} : { onBroken: options.onLockBroken }),
  });
  try {
    const second = await store.lookup(key);
    if (second.hit) {
      return {
        cacheHit: true,
        waitedForLock: held.waited,
        missReason: first.reason,
        corruption,
        dir: second.dir,
        entry: second.entry,
        files: second.files,
      };
    }
    const output = await build();
    const entry = await store.put(key, output.files, output.meta ?? {});
    const files = new Map(Object.entries(output.files));
    return {
      cacheHit: false,
      waitedForLock: held.waited,
      missReason: first.reason,
      corruption,
      dir: store.entryDir(key.value),
      entry,
      files,
    };
  } finally {
    await held.release();
  }
}
