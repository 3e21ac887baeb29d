// The stage runner with stand-in stages for EDK2 and QEMU and the real input, key, cache and
// publish stages: which stages a prefix runs, a stand-in stage, the stale-environment loop
// ending in a value, and the bounded number of resolutions before a coded error.
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { pino } from 'pino';
import { beforeEach, describe, expect, it } from 'vitest';
import { buildCacheDir } from '../cache/paths.js';
import { exitCodeFor } from '../cli/exit-codes.js';
import { OvmfBuildError } from '../core/errors.js';
import { DEFAULT_BUILD_FLAGS } from '../edk2/flags.js';
import { CORPUS_DIR } from '../../test/corpus.js';
import { isolatedEnv, STAND_IN_ENVIRONMENT, StandInBuild } from '../../test/cache-stand-in.js';
import type { BuildEnvironment, JobRequest } from './job-types.js';
import { MAX_ENVIRONMENT_RESOLUTIONS, runPipeline, STAGES, type PipelineStages } from './pipeline.js';
import { keyFor } from './stage-key.js';
import type { Stage } from './stage.js';
import { tempDirPerTest } from '../../test/temp-dir.js';

const logger = pino({ level: 'silent' });

const dir = tempDirPerTest('ovmf-pipeline-');
let request: JobRequest;
beforeEach(() => {
  request = {
    inputs: {
      gop: { path: path.join(CORPUS_DIR, 'gop/cometlake-mrchromebox-cml.efi') },
      vbt: { path: path.join(CORPUS_DIR, 'vbt/cometlake-intel-nuc10i5fnh.vbt') },
    },
    machine: 'q35',
    storeDir: path.join(dir(), 'artifacts'),
    flags: DEFAULT_BUILD_FLAGS,
    source: { kind: 'debian' },
    offline: true,
    verifyBoot: true,
    env: isolatedEnv(dir()),
    cwd: dir(),
    jobId: 'pipeline-test',
    toolVersion: '0.0.0-test',
  };
});

/** Every stage (stand-ins over the real ones) wrapped to record its name and its logger's label. */
function recorded(stages: Partial<PipelineStages>): { stages: PipelineStages; calls: string[] } {
  const calls: string[] = [];
  const all: PipelineStages = { ...STAGES, ...stages };
  const wrap = <I, O>(name: string, stage: Stage<I, O>): Stage<I, O> => {
    return (input, context) => {
      const label = (context.logger.bindings() as { stage?: string }).stage;
      calls.push(label === name ? name : `${name} (logger says ${String(label)})`);
      return stage(input, context);
    };
  };
  const entries = Object.entries(all).map(([name, stage]) => [
    name,
    wrap(name, stage as Stage<unknown, unknown>),
  ]);
  return { stages: Object.fromEntries(entries) as unknown as PipelineStages, calls };
}

async function cacheEntries(): Promise<string[]> {
  const root = buildCacheDir(request.env);
  const names = await readdir(root).catch(() => [] as string[]);
  return names.filter((name) => /^[0-9a-f]{64}$/u.test(name));
}

const options = { signal: new AbortController().signal, logger };
/** The stages of a run that builds, in order, up to verify. */
const UP_TO_VERIFY = [
  'resolveInputs',
  'resolveEnvironment',
  'key',
  'lookup',
  'resolveEnvironment',
  'build',
  'verify',
];

describe('runPipeline', () => {
  it("until 'key' runs resolveInputs, resolveEnvironment and key, and returns the key of those values", async () => {
    const { stages, calls } = recorded(new StandInBuild().stages);
    const result = await runPipeline(request, { ...options, until: 'key', stages });
    expect(calls).toEqual(['resolveInputs', 'resolveEnvironment', 'key']);
    expect(result.environment).toEqual(STAND_IN_ENVIRONMENT);
    expect(result.key).toEqual(keyFor({ request, inputs: result.inputs, environment: STAND_IN_ENVIRONMENT }));
    expect(result.inputs.name).toBe('gen9-gop1107');
    expect(await cacheEntries()).toEqual([]);
  });

  it("until 'verify' builds and verifies without the cache: nothing stored or published", async () => {
    const standIn = new StandInBuild();
    const { stages, calls } = recorded(standIn.stages);
    const result = await runPipeline(request, { ...options, until: 'verify', stages });
    expect(calls).toEqual(UP_TO_VERIFY);
    expect(standIn.builds).toBe(1);
    expect(result.verified.built.code.length).toBe(0x1_0000);
    // The ROM of a build without helper drivers: the GOP alone, as an option ROM (0x55AA).
    expect([result.verified.rom[0], result.verified.rom[1]]).toEqual([0x55, 0xaa]);
    expect(result.verified.facts).toEqual({
      standIn: true,
      boot: { checked: false, reason: 'no boot check for this build' },
    });
    expect(await cacheEntries()).toEqual([]);
    expect(await readdir(dir())).not.toContain('artifacts');
  });

  it('a full run stores and publishes; the same request again is a hit that builds nothing', async () => {
    const standIn = new StandInBuild();
    const first = recorded(standIn.stages);
    const built = await runPipeline(request, { ...options, stages: first.stages });
    expect(first.calls).toEqual([...UP_TO_VERIFY, 'store', 'publish']);
    expect(built.cacheHit).toBe(false);
    expect(await cacheEntries()).toEqual([built.key]);
    const second = recorded(standIn.stages);
    const hit = await runPipeline(request, { ...options, stages: second.stages });
    expect(second.calls).toEqual(['resolveInputs', 'resolveEnvironment', 'key', 'lookup', 'publish']);
    expect({ cacheHit: hit.cacheHit, key: hit.key, artifactDir: hit.artifactDir }).toEqual({
      cacheHit: true,
      key: built.key,
      artifactDir: built.artifactDir,
    });
    expect(standIn.builds).toBe(1);
  });

  it('a failing stand-in verify stage caches and publishes nothing, and releases the key lock', async () => {
    const standIn = new StandInBuild();
    const failing: PipelineStages['verify'] = () =>
      Promise.reject(new OvmfBuildError('E_BOOT_CHECK_FAILED', 'stand-in: the boot check failed'));
    const error = await runPipeline(request, {
      ...options,
      stages: { ...standIn.stages, verify: failing },
    }).catch((caught: unknown) => caught as OvmfBuildError);
    expect(error).toBeInstanceOf(OvmfBuildError);
    expect((error as OvmfBuildError).code).toBe('E_BOOT_CHECK_FAILED');
    expect(await cacheEntries()).toEqual([]);
    expect(await readdir(dir())).not.toContain('artifacts');
    // The lock is free: the next run with the real (stand-in) verify stage builds and stores.
    const result = await runPipeline(request, { ...options, stages: standIn.stages });
    expect(result.cacheHit).toBe(false);
    expect(standIn.builds).toBe(2);
  });

  it('a stale memoized environment is resolved again: the loop ends in a result keyed by the verified one', async () => {
    const verified: BuildEnvironment = {
      ...STAND_IN_ENVIRONMENT,
      builderImageId: `sha256:${'8'.repeat(64)}`,
    };
    const seen: boolean[] = [];
    const standIn = new StandInBuild(verified);
    const result = await runPipeline(request, {
      ...options,
      stages: {
        ...standIn.stages,
        // The memo still names the old builder image; a verified resolution finds the new one.
        resolveEnvironment: (input) => {
          seen.push(input.verify);
          return Promise.resolve(input.verify ? verified : STAND_IN_ENVIRONMENT);
        },
      },
    });
    expect(seen).toEqual([false, true, true]);
    expect(result.details.builderImage).toBe(verified.builderImageId);
    expect(result.cacheHit).toBe(false);
    expect(standIn.builds).toBe(1);
    expect(await cacheEntries()).toEqual([result.key]);
  });

  it(`an environment that keeps changing ends after ${MAX_ENVIRONMENT_RESOLUTIONS} resolutions with E_CACHE_KEY_UNSTABLE (exit 11)`, async () => {
    let n = 0;
    const standIn = new StandInBuild();
    const error = await runPipeline(request, {
      ...options,
      stages: {
        ...standIn.stages,
        resolveEnvironment: () => {
          n += 1;
          return Promise.resolve({
            ...STAND_IN_ENVIRONMENT,
            builderImageId: `sha256:${String(n).repeat(64)}`,
          });
        },
      },
    }).catch((caught: unknown) => caught as OvmfBuildError);
    expect(error).toBeInstanceOf(OvmfBuildError);
    expect((error as OvmfBuildError).code).toBe('E_CACHE_KEY_UNSTABLE');
    expect(exitCodeFor(error as OvmfBuildError)).toBe(11);
    // One memo resolution, then a verified one per key.
    expect(n).toBe(1 + MAX_ENVIRONMENT_RESOLUTIONS);
    expect(standIn.builds).toBe(0);
    expect(await cacheEntries()).toEqual([]);
  });
});
