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
export { CacheError, CacheStore } from './store.js';
export { ENTRY_FILE } from './entry.js';
export type {
  CacheCorruption,
  CacheEntryFile,
  CacheEntryRecord,
  CacheListing,
  CacheLookup,
} from './entry.js';
export type { GcOptions, GcRemoval, GcReport } from './gc.js';
export type { MissExplanation } from './why.js';
export { buildCacheDir, userCacheDir, userConfigDir, userStateDir } from './paths.js';
export { getOrBuild } from './get-or-build.js';
export type { BuildOutput, GetOrBuildOptions, GetOrBuildResult } from './get-or-build.js';
