// The job's lookup and store stages: a verified cache hit, or a miss (explained against the
// nearest entry) that holds the key's lock until the store stage has written the entry of a
// build that passed verification. Only verified firmware is ever stored.
import { buildCacheDir } from '../cache/paths.js';
import { CacheStore, type CacheKey } from '../cache/index.js';
import { claimKey, storeClaimed, type GetOrBuildResult, type KeyClaim } from '../cache/get-or-build.js';
import type { BuildEnvironment, JobRequest, MissReport, VerifiedFirmware } from './job-types.js';
import type { StageContext } from './stage.js';

export const CODE_ENTRY_FILE = 'OVMF_CODE.fd';
export const VARS_ENTRY_FILE = 'OVMF_VARS.fd';
export const ROM_ENTRY_FILE = 'vbios.rom';

export type CacheHit = Omit<Extract<KeyClaim, { kind: 'hit' }>, 'kind'>;

export type LookupOutcome =
  | { readonly kind: 'hit'; readonly hit: CacheHit; readonly miss: MissReport | null }
  | {
      readonly kind: 'miss';
      /** The key's lock, held until the store stage; null when the run does not use the cache. */
      readonly claim: Extract<KeyClaim, { kind: 'miss' }> | null;
      readonly miss: MissReport | null;
    };

export interface LookupInput {
  readonly request: Pick<JobRequest, 'env'>;
  readonly key: CacheKey;
  /** False for a run that stops at verify (`ovmf-build build`): no lookup, no lock. */
  readonly useCache: boolean;
}

function storeFor(env: NodeJS.ProcessEnv): CacheStore {
  return new CacheStore({ root: buildCacheDir(env) });
}

/** Stage `lookup`. */
export async function lookup(input: LookupInput, context: StageContext): Promise<LookupOutcome> {
  if (!input.useCache) return { kind: 'miss', claim: null, miss: null };
  const { key } = input;
  const { logger, emit } = context;
  const store = storeFor(input.request.env);
  await store.recordRequest(key);
  let miss: MissReport | null = null;
  const claim = await claimKey(store, key, {
    signal: context.signal,
    onMiss: async (reason, corruption) => {
      const explanation = await store.explainMiss(key.details, { excludeKey: key.value });
      miss = {
        reason,
        corruption,
        nearestKey: explanation.nearest?.key ?? null,
        differences: explanation.differences,
        lines: explanation.lines,
      };
      logger.info({ miss }, 'cache miss');
      const why =
        reason === 'corrupt' ? 'the cached entry was corrupt and was discarded' : 'not in the cache';
      emit({ type: 'phase', phase: 'miss', message: `cache miss (${why}): ${explanation.lines.join('; ')}` });
    },
    onWait: (owner) => {
      const by = owner === null ? 'another process' : `process ${owner.pid} on ${owner.host}`;
      emit({ type: 'note', message: `${by} is building the same key; waiting for it` });
      logger.info({ owner }, 'waiting for the key lock');
    },
    onLockBroken: (owner, reason) => logger.warn({ owner, reason }, 'broke a stale cache lock'),
  });
  if (claim.kind === 'hit') {
    const { kind: _kind, ...hit } = claim;
    return { kind: 'hit', hit, miss };
  }
  return { kind: 'miss', claim, miss };
}

export interface StoreInput {
  readonly request: Pick<JobRequest, 'env' | 'jobId'>;
  readonly key: CacheKey;
  readonly claim: Extract<KeyClaim, { kind: 'miss' }>;
  readonly verified: VerifiedFirmware;
  readonly environment: BuildEnvironment;
  readonly miss: MissReport | null;
}

/** Stage `store`: the verified firmware and ROM as the key's entry, written atomically. */
export async function store(input: StoreInput, context: StageContext): Promise<GetOrBuildResult> {
  const { verified, environment } = input;
  context.emit({ type: 'phase', phase: 'store', message: 'writing the cache entry' });
  return storeClaimed(storeFor(input.request.env), input.key, input.claim, {
    files: {
      [CODE_ENTRY_FILE]: verified.built.code,
      [VARS_ENTRY_FILE]: verified.built.vars,
      [ROM_ENTRY_FILE]: verified.rom,
    },
    meta: {
      jobId: input.request.jobId,
      buildDurationMs: verified.built.durationMs,
      facts: verified.facts,
      miss: input.miss,
      builderImageRef: environment.builderImageRef,
      edk2SourceDescription: environment.edk2SourceDescription,
    },
  });
}
