// Vitest globalSetup of the integration project: prepares once per run what most integration
// files need (the EDK2 source, a container engine, the builder image) and provides it as plain
// data (test/harness.ts reads it). The engine found or started here lives until the run ends,
// so the files talk to one Podman service instead of starting one each (one per vitest process:
// scripts/run-tests.mjs runs two, and a private service inherits its process's niceness, so the
// lower-priority part's containers run niced too). The warm workspace is
// not built here: files that need one ask test/harness.ts (warmWorkspace), so a run of files
// that never build costs no EDK2 build.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pino, { type Logger } from 'pino';
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

/** Left in the shared run directory by the producer's process once its setup is over (or failed). */
const SETUP_MARKER = 'setup.done';
/** How long a sibling process waits for the producer's setup before doing its own. */
const SETUP_WAIT_MS = 15 * 60_000;

/**
 * In the sibling process of the producer's (scripts/run-tests.mjs runs the rest at lower priority
 * beside the builds part), waits until the producer's process has the EDK2 source and the builder
 * image. On a cold machine they are made once under locks, and a low-priority process holding
 * those locks would hold back the clean builds (priority inversion); on a warm one this costs the
 * few seconds of the producer's setup.
 */
async function waitForProducerSetup(runDir: string, logger: Logger): Promise<void> {
  const marker = path.join(runDir, SETUP_MARKER);
  const deadline = Date.now() + SETUP_WAIT_MS;
  logger.info({ marker }, 'global setup: waiting for the producer process to set up');
  while (!existsSync(marker)) {
    if (Date.now() > deadline) {
      logger.warn({ marker }, 'global setup: the producer process never set up; going on alone');
      return;
    }
    await sleep(1_000);
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const logger = pino({ level: process.env['OVMF_BUILD_TEST_LOG'] ?? 'silent' });
  const env = process.env;
  const sharedRunDir = env[SHARED_RUN_DIR_ENV];
  const ownRunDir = sharedRunDir === undefined || sharedRunDir === '';
  const runDir = ownRunDir ? await mkdtemp(path.join(os.tmpdir(), 'ovmf-build-int-run-')) : sharedRunDir;
  const removeRunDir = (): Promise<void> =>
    ownRunDir ? rm(runDir, { recursive: true, force: true }) : Promise.resolve();
  const producerHere = await producerInRun(project);
  const siblingOfProducer = !ownRunDir && !producerHere && env[PRODUCER_ENV] === WORKSPACE_PRODUCER;
  if (siblingOfProducer) await waitForProducerSetup(runDir, logger);
  // In the producer's process: the marker goes down whatever happens, so the sibling never waits in vain.
  const setupOver = (): Promise<void> =>
    !ownRunDir && producerHere
      ? writeFile(path.join(runDir, SETUP_MARKER), `${process.pid}\n`)
      : Promise.resolve();
  let source: Awaited<ReturnType<typeof acquireEdk2Source>>;
  let engine: Awaited<ReturnType<typeof connectEngine>>;
  try {
    source = await acquireEdk2Source({ kind: 'debian' }, { env, logger });
    engine = await connectEngine({ env, logger });
  } catch (error) {
    await setupOver();
    await removeRunDir();
    throw error;
  }
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
      workspaceProducer: env[PRODUCER_ENV] === WORKSPACE_PRODUCER || producerHere ? WORKSPACE_PRODUCER : null,
    };
    project.provide('harness', context);
  } catch (error) {
    await engine[Symbol.asyncDispose]();
    await removeRunDir();
    throw error;
  } finally {
    await setupOver();
  }
  return async () => {
    await engine[Symbol.asyncDispose]();
    await removeRunDir();
  };
}
