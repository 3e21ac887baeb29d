// The job's key stage: the cache key of a request, from its validated inputs and its build
// environment (nx/Bazel style: the digest of every input that decides the bytes).
import { computeCacheKey, digestOf, type CacheKey } from '../cache/index.js';
import type { BuildEnvironment, JobRequest, ResolvedInputs } from './job-types.js';
import type { StageContext } from './stage.js';

/**
 * Bumped whenever the way inputs become the cached outputs changes in this layer (what is
 * stored, how the ROM is chosen...). Part of every cache key.
 */
export const BUILD_LOGIC_VERSION = '1';

export interface KeyInput {
  readonly request: Pick<JobRequest, 'flags' | 'machine'>;
  readonly inputs: Pick<ResolvedInputs, 'gop' | 'vbt' | 'rom'>;
  readonly environment: BuildEnvironment;
}

/** The key of a request, from validated inputs and the build environment. */
export function keyFor({ request, inputs, environment }: KeyInput): CacheKey {
  return computeCacheKey({
    edk2Source: environment.edk2SourceDigest,
    overlay: environment.overlayDigest,
    builderImage: environment.builderImageId,
    flags: digestOf(request.flags),
    target: request.flags.target,
    gop: inputs.gop.sha256,
    vbt: inputs.vbt.sha256,
    machine: request.machine,
    rom: inputs.rom.keyInput,
    buildLogicVersion: BUILD_LOGIC_VERSION,
  });
}

/** Stage `key`. */
export function key(input: KeyInput, context: StageContext): Promise<CacheKey> {
  const value = keyFor(input);
  context.logger.info(
    { key: value.value, details: value.details, environmentFromMemo: input.environment.fromMemo },
    'cache key',
  );
  return Promise.resolve(value);
}
