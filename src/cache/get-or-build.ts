// The cache's build protocol, in two steps the job's lookup and store stages call apart
// (jobs/stage-cache.ts) and getOrBuild() calls together: claim a key (a hit, or the key's
// lock after a second look), then write the entry under that lock and release it. Two
// processes with the same key build once.
import type { CacheKey } from './key.js';
import type { AcquireLockOptions, HeldLock, LockOwner } from './lock.js';
import type { CacheCorruption, CacheEntryRecord } from './entry.js';
import type { CacheStore } from './store.js';

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

/** A claimed key: a hit, or a miss holding the key's lock (the caller builds, then stores). */
export type KeyClaim =
  | ({ readonly kind: 'hit' } & GetOrBuildResult)
  | {
      readonly kind: 'miss';
      readonly held: HeldLock;
      readonly missReason: 'absent' | 'corrupt';
      readonly corruption: CacheCorruption | null;
    };

/**
 * Lookup, and on a miss: take the key's lock and look again (another process may have built it
 * while we waited). A miss returns the held lock; release it with storeClaimed() or release().
 */
export async function claimKey(
  store: CacheStore,
  key: CacheKey,
  options: GetOrBuildOptions = {},
): Promise<KeyClaim> {
  const first = await store.lookup(key);
  if (first.hit) {
    return {
      kind: 'hit',
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
  let second: Awaited<ReturnType<CacheStore['lookup']>>;
  try {
    second = await store.lookup(key);
  } catch (error) {
    await held.release();
    throw error;
  }
  if (!second.hit) return { kind: 'miss', held, missReason: first.reason, corruption };
  await held.release();
  return {
    kind: 'hit',
    cacheHit: true,
    waitedForLock: held.waited,
    missReason: first.reason,
    corruption,
    dir: second.dir,
    entry: second.entry,
    files: second.files,
  };
}

/** Writes the entry of a claimed miss atomically (the key's lock still held). */
export async function storeClaimed(
  store: CacheStore,
  key: CacheKey,
  claim: Extract<KeyClaim, { kind: 'miss' }>,
  output: BuildOutput,
): Promise<GetOrBuildResult> {
  const entry = await store.put(key, output.files, output.meta ?? {});
  return {
    cacheHit: false,
    waitedForLock: claim.held.waited,
    missReason: claim.missReason,
    corruption: claim.corruption,
    dir: store.entryDir(key.value),
    entry,
    files: new Map(Object.entries(output.files)),
  };
}

/** claimKey, build on a miss, storeClaimed, release: the whole protocol in one call. */
export async function getOrBuild(
  store: CacheStore,
  key: CacheKey,
  build: () => Promise<BuildOutput>,
  options: GetOrBuildOptions = {},
): Promise<GetOrBuildResult> {
  const claim = await claimKey(store, key, options);
  if (claim.kind === 'hit') {
    const { kind: _kind, ...result } = claim;
    return result;
  }
  try {
    return await storeClaimed(store, key, claim, await build());
  } finally {
    await claim.held.release();
  }
}
