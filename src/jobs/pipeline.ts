// The job as plain stages, run in order by one small runner:
//   resolveInputs → resolveEnvironment → key → lookup → build → verify → store → publish
// Each stage is an async function `(input, { signal, logger, emit, session })` that returns a
// value (stage.ts); no stage throws for control flow. A caller runs a prefix (`until`): the
// main command runs all of them, `ovmf-build build` stops after verify and `cache why` after
// key; the nightly runner runs them per recipe. Any stage can be replaced by a stand-in
// (tests stand in for EDK2 and QEMU that way).
import type { Logger } from 'pino';
import type { CacheKey } from '../cache/index.js';
import type { GetOrBuildResult } from '../cache/get-or-build.js';
import { OvmfBuildError, throwIfAborted } from '../core/errors.js';
import type { PublishedArtifact } from '../publish/index.js';
import type { AcceleratorChoice } from '../verify/accel.js';
import { compiledInputsKey, type EarlyRomTicket } from './early-rom.js';
import { resolveEnvironment, sameEnvironment, type EnvironmentInput } from './environment.js';
import type {
  BuildEnvironment,
  BuiltFirmware,
  JobEvent,
  JobRequest,
  KeyRunResult,
  MissReport,
  OvmfJobResult,
  ResolvedInputs,
  VerifiedFirmware,
  VerifyRunResult,
} from './job-types.js';
import { JobSession } from './session.js';
import { build, type BuildInput } from './stage-build.js';
import { lookup, store, type LookupInput, type LookupOutcome, type StoreInput } from './stage-cache.js';
import { resolveInputs } from './stage-inputs.js';
import { key, type KeyInput } from './stage-key.js';
import { igdOf, publish, type PublishInput } from './stage-publish.js';
import { earlyRomPlan, verify, type VerifyInput } from './stage-verify.js';
import type { Stage, StageContext } from './stage.js';

export interface PipelineStages {
  readonly resolveInputs: Stage<JobRequest, ResolvedInputs>;
  readonly resolveEnvironment: Stage<EnvironmentInput, BuildEnvironment>;
  readonly key: Stage<KeyInput, CacheKey>;
  readonly lookup: Stage<LookupInput, LookupOutcome>;
  readonly build: Stage<BuildInput, BuiltFirmware>;
  readonly verify: Stage<VerifyInput, VerifiedFirmware>;
  readonly store: Stage<StoreInput, GetOrBuildResult>;
  readonly publish: Stage<PublishInput, PublishedArtifact>;
}

/** The real stages. */
export const STAGES: PipelineStages = {
  resolveInputs,
  resolveEnvironment,
  key,
  lookup,
  build,
  verify,
  store,
  publish,
};

/**
 * How often the key is computed again when the verified environment differs from the memoized
 * one (an `apt-get update` or a rebuilt builder image between two resolutions). Two suffice
 * unless the environment keeps changing under the job.
 */
export const MAX_ENVIRONMENT_RESOLUTIONS = 3;

export type PipelineEnd = 'key' | 'verify' | 'publish';

export interface PipelineOptions {
  /** The last stage to run. @default 'publish' */
  readonly until?: PipelineEnd;
  readonly signal: AbortSignal;
  readonly logger: Logger;
  readonly onEvent?: (event: JobEvent) => void;
  /** Stand-ins for some stages; the others are STAGES. */
  readonly stages?: Partial<PipelineStages>;
  /** Shared engine connection and source tree; a run without one opens and disposes its own. */
  readonly session?: JobSession;
}

/** `facts.boot.accel` of a cache entry's build, when its boot check ran. */
function bootAccelOf(meta: Readonly<Record<string, unknown>>): AcceleratorChoice | null {
  const facts = meta['facts'] as { boot?: { accel?: AcceleratorChoice } } | undefined;
  const accel = facts?.boot?.accel;
  return accel === undefined ? null : { accelerator: accel.accelerator, reason: accel.reason };
}

/** What one turn of the key loop ends with. */
type Turn =
  | { readonly kind: 'stale'; readonly environment: BuildEnvironment }
  | { readonly kind: 'verified'; readonly key: CacheKey; readonly verified: VerifiedFirmware }
  | {
      readonly kind: 'cached';
      readonly key: CacheKey;
      readonly cached: GetOrBuildResult;
      readonly miss: MissReport | null;
    };

/**
 * Runs the stages up to `until` (default: all) for one request. `until: 'key'` returns the key
 * and what it was computed from, `until: 'verify'` the verified firmware (nothing is looked up,
 * stored or published), and a full run the published artifact.
 */
export function runPipeline(
  request: JobRequest,
  options: PipelineOptions & { readonly until: 'key' },
): Promise<KeyRunResult>;
export function runPipeline(
  request: JobRequest,
  options: PipelineOptions & { readonly until: 'verify' },
): Promise<VerifyRunResult>;
export function runPipeline(
  request: JobRequest,
  options: PipelineOptions & { readonly until?: 'publish' },
): Promise<OvmfJobResult>;
export async function runPipeline(
  request: JobRequest,
  options: PipelineOptions,
): Promise<KeyRunResult | VerifyRunResult | OvmfJobResult> {
  const started = performance.now();
  const until = options.until ?? 'publish';
  const session = options.session ?? new JobSession(request.env);
  const stages: PipelineStages = { ...STAGES, ...options.stages };
  const emit = (event: JobEvent): void => options.onEvent?.(event);
  const run = <N extends keyof PipelineStages>(
    name: N,
    input: Parameters<PipelineStages[N]>[0],
  ): ReturnType<PipelineStages[N]> => {
    throwIfAborted(options.signal);
    const context: StageContext = {
      signal: options.signal,
      logger: options.logger.child({ stage: name }),
      emit,
      session,
    };
    return (stages[name] as Stage<typeof input, Awaited<ReturnType<PipelineStages[N]>>>)(
      input,
      context,
    ) as ReturnType<PipelineStages[N]>;
  };
  try {
    const inputs = await run('resolveInputs', request);
    emit({ type: 'phase', phase: 'key', message: 'computing the cache key' });
    let environment = await run('resolveEnvironment', { request, verify: false });
    let turn: Turn | null = null;
    for (let attempt = 1; attempt <= MAX_ENVIRONMENT_RESOLUTIONS; attempt += 1) {
      const currentKey = await run('key', { request, inputs, environment });
      if (until === 'key') return { inputs, environment, key: currentKey };
      turn = await keyTurn(currentKey, inputs, environment);
      if (turn.kind !== 'stale') break;
      options.logger.info(
        { memo: environment, verified: turn.environment, attempt },
        'memoized build environment was stale; recomputing the key',
      );
      environment = turn.environment;
    }
    if (turn === null || turn.kind === 'stale') {
      throw new OvmfBuildError(
        'E_CACHE_KEY_UNSTABLE',
        `the build environment kept changing while computing the key (${MAX_ENVIRONMENT_RESOLUTIONS} resolutions)`,
        { attempts: MAX_ENVIRONMENT_RESOLUTIONS },
      );
    }
    if (turn.kind === 'verified') {
      return {
        inputs,
        environment,
        key: turn.key,
        verified: turn.verified,
        durationMs: Math.round(performance.now() - started),
      };
    }
    const { cached, miss } = turn;
    const published = await run('publish', {
      request,
      inputs,
      key: turn.key,
      environment,
      builtAt: cached.entry.createdAt,
      files: cached.files,
      meta: cached.entry.meta,
    });
    const durationMs = Math.round(performance.now() - started);
    options.logger.info(
      { artifactDir: published.artifactDir, cacheHit: cached.cacheHit, durationMs },
      'job done',
    );
    return {
      cacheHit: cached.cacheHit,
      key: turn.key.value,
      details: turn.key.details,
      name: inputs.name,
      version: published.version,
      artifactDir: published.artifactDir,
      files: published.files,
      reusedArtifact: published.reused,
      waitedForLock: cached.waitedForLock,
      miss: cached.cacheHit && !cached.waitedForLock ? null : miss,
      durationMs,
      igd: igdOf(cached.entry.meta),
      bootAccel: bootAccelOf(cached.entry.meta),
    };
  } finally {
    if (options.session === undefined) await session[Symbol.asyncDispose]();
  }

  /**
   * Leaves the job's ROM-mode check with the session for the build stage (early-rom.ts): the
   * first build of the same compiled inputs to get its outputs out starts it. Only with the real
   * build and verify stages, whose request the plan mirrors; null: nothing runs ahead.
   */
  async function planEarlyRom(
    inputs: ResolvedInputs,
    keyed: BuildEnvironment,
  ): Promise<EarlyRomTicket | null> {
    if (stages.verify !== verify || stages.build !== build) return null;
    const plan = await earlyRomPlan({ request, inputs }, { logger: options.logger });
    return plan === null
      ? null
      : session.earlyRom.wait(compiledInputsKey(keyed, request.flags), plan, request.jobId);
  }

  /**
   * One key: a cache hit, or (under the key's lock) the verified environment, then build,
   * verify and store; or the news that the verified environment differs from the key's.
   */
  async function keyTurn(
    currentKey: CacheKey,
    inputs: ResolvedInputs,
    keyed: BuildEnvironment,
  ): Promise<Turn> {
    const found = await run('lookup', { request, key: currentKey, useCache: until === 'publish' });
    if (found.kind === 'hit') return { kind: 'cached', key: currentKey, cached: found.hit, miss: found.miss };
    let early: EarlyRomTicket | null = null;
    try {
      // Verified before a build, except when this session already built these very compiled
      // inputs (source, overlay, builder image, flags, as verified then): its template makes
      // the variant in this process from them, with no engine call (Podman answers none while it
      // commits a workspace).
      const fromTemplate =
        request.cleanBuild !== true &&
        stages.build === build &&
        session.variantTemplates.hasCompiled(compiledInputsKey(keyed, request.flags));
      if (!fromTemplate) {
        const verifiedEnvironment = await run('resolveEnvironment', { request, verify: true });
        if (!sameEnvironment(verifiedEnvironment, keyed)) {
          return { kind: 'stale', environment: verifiedEnvironment };
        }
      }
      early = await planEarlyRom(inputs, keyed);
      let built: BuiltFirmware;
      try {
        built = await run('build', { request, inputs: inputs, environment: keyed });
      } finally {
        early?.withdraw();
      }
      if (
        built.builderImageId !== keyed.builderImageId ||
        built.edk2SourceDigest !== keyed.edk2SourceDigest
      ) {
        throw new OvmfBuildError(
          'E_CACHE_KEY_STALE',
          'the build used another builder image or EDK2 source than the cache key names',
          {
            key: { builderImage: keyed.builderImageId, edk2Source: keyed.edk2SourceDigest },
            build: { builderImage: built.builderImageId, edk2Source: built.edk2SourceDigest },
          },
        );
      }
      const verified = await run('verify', { request, inputs: inputs, built });
      if (found.claim === null) return { kind: 'verified', key: currentKey, verified };
      const cached = await run('store', {
        request,
        key: currentKey,
        claim: found.claim,
        verified,
        environment: keyed,
        miss: found.miss,
      });
      return { kind: 'cached', key: currentKey, cached, miss: found.miss };
    } finally {
      // A check run ahead that the verify stage did not take (a failed build) stops here.
      early?.release();
      await found.claim?.held.release();
    }
  }
}
