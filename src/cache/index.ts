export {
  CACHE_KEY_INPUTS,
  abbreviate,
  canonicalJson,
  computeCacheKey,
  describeDifference,
  diffDetails,
  digestOf,
} from './key.js';
export type { CacheKey, CacheKeyDetails, CacheKeyInput, KeyDifference } from './key.js';
export { acquireLock, lockPathFor, readLockOwner } from './lock.js';
export type { AcquireLockOptions, HeldLock, LockOwner } from './lock.js';
export { CacheError, CacheStore, ENTRY_FILE } from './store.js';
export type {
  CacheCorruption,
  CacheEntryFile,
  CacheEntryRecord,
  CacheListing,
  CacheLookup,
  GcOptions,
  GcRemoval,
  GcReport,
  MissExplanation,
} from './store.js';
export { buildCacheDir, userCacheDir, userConfigDir, userStateDir } from './paths.js';
export { getOrBuild } from './get-or-build.js';
export type { BuildOutput, GetOrBuildOptions, GetOrBuildResult } from './get-or-build.js';
