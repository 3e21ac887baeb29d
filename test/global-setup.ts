// Vitest globalSetup of the integration project: prepares once per run what most integration
// files need (the EDK2 source, a container engine, the builder image) and provides it as plain
// data (test/harness.ts reads it). The engine found or started here lives until the run ends,
// so the files talk to one Podman service instead of starting one each. The warm workspace is
// not built here: files that need one ask test/harness.ts (warmWorkspace), so a run of files
// that never build costs no EDK2 build.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import type { TestProject } from 'vitest/node';
import { acquireLock, lockPathFor } from '../src/cache/lock.js';
import { buildCacheDir } from '../src/cache/paths.js';
import { connectEngine } from '../src/container/index.js';
import { DEFAULT_BUILDER_CONTEXT, DEFAULT_BUILDER_REPOSITORY } from '../src/edk2/builder-context.js';
import { acquireEdk2Source } from '../src/edk2/source.js';
import type { HarnessContext } from './harness.js';

/** Builds the default warm workspace clean in any case (its subject); see HarnessContext.workspaceProducer. */
const WORKSPACE_PRODUCER = 'test/build.int.test.ts';

/**
 * scripts/run-tests.mjs runs the build-heavy files and the others as two vitest processes side by
 * side; it names one run directory for both and says which file produces the default workspace,
 * since that file is then in the sibling process, not in this one's file list.
 */
export const SHARED_RUN_DIR_ENV = 'OVMF_BUILD_TEST_RUN_DIR';
export const PRODUCER_ENV = 'OVMF_BUILD_TEST_WORKSPACE_PRODUCER';

/** True when the producer file is among the files of this run (CLI filters applied). */
async function producerInRun(project: TestProject): Promise<boolean> {
  // filenamePattern holds the CLI's file filters (undefined: every file of the project).
  const filters = (project.vitest as unknown as { filenamePattern?: string[] }).filenamePattern;
  const specifications = await project.vitest.getRelevantTestSpecifications(filters);
  return specifications.some(
    (spec) =>
      spec.project.name === project.name &&
      path.relative(project.config.root, spec.moduleId) === WORKSPACE_PRODUCER,
  );
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const logger = pino({ level: process.env['OVMF_BUILD_TEST_LOG'] ?? 'silent' });
  const env = process.env;
  const source = await acquireEdk2Source({ kind: 'debian' }, { env, logger });
  const engine = await connectEngine({ env, logger });
  const sharedRunDir = env[SHARED_RUN_DIR_ENV];
  const ownRunDir = sharedRunDir === undefined || sharedRunDir === '';
  const runDir = ownRunDir ? await mkdtemp(path.join(os.tmpdir(), 'ovmf-build-int-run-')) : sharedRunDir;
  const removeRunDir = (): Promise<void> =>
    ownRunDir ? rm(runDir, { recursive: true, force: true }) : Promise.resolve();
  try {
    // The product's lock (real-backend): a concurrent ovmf-build on a cold machine builds the image once.
    const locks = path.dirname(lockPathFor(buildCacheDir(env), 'builder-image'));
    await mkdir(locks, { recursive: true });
    const builder = await (async () => {
      await using _lock = await acquireLock(lockPathFor(buildCacheDir(env), 'builder-image'));
      return engine.ensureBuilderImage({
        contextDir: DEFAULT_BUILDER_CONTEXT,
        repository: DEFAULT_BUILDER_REPOSITORY,
        logger,
      });
    })();
    const context: HarnessContext = {
      source: {
        dir: source.dir,
        digest: source.digest,
        description: source.description,
        details: { ...source.details },
      },
      builderImage: { id: builder.id, ref: builder.ref },
      engineEnv:
        engine.info.socketPath.startsWith('/') && env['DOCKER_HOST'] === undefined
          ? { DOCKER_HOST: `unix://${engine.info.socketPath}` }
          : {},
      runDir,
      workspaceProducer:
        env[PRODUCER_ENV] === WORKSPACE_PRODUCER || (await producerInRun(project))
          ? WORKSPACE_PRODUCER
          : null,
    };
    project.provide('harness', context);
  } catch (error) {
    await engine[Symbol.asyncDispose]();
    await removeRunDir();
    throw error;
  }
  return async () => {
    await engine[Symbol.asyncDispose]();
    await removeRunDir();
  };
}
