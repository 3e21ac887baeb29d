// The integration harness: what test/global-setup.ts prepared once per run (the EDK2 source, the
// engine's endpoint, the builder image), handed to each file through vitest's inject(), and the
// warm workspace on demand. So every integration file run alone on a cold machine gets what it
// needs, no file depends on another having run first, and files can run side by side.
import { existsSync } from 'node:fs';
import { appendFile, mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import pino from 'pino';
import { inject } from 'vitest';
import { acquireLock, lockPathFor, type HeldLock, type LockOwner } from '../src/cache/lock.js';
import { buildCacheDir, userCacheDir } from '../src/cache/paths.js';
import { connectEngine, type ContainerEngine } from '../src/container/index.js';
import { prepareBuildInputs } from '../src/edk2/build-inputs.js';
import {
  buildOvmf,
  WORKSPACE_REPOSITORY,
  workspaceKey,
  type BuildOvmfOptions,
  type BuildOvmfResult,
} from '../src/edk2/build.js';
import { fvDir, helperDriverPaths, OUTPUT_FILES, WORKSPACE } from '../src/edk2/build-script.js';
import { resolveBuildFlags, type BuildFlags } from '../src/edk2/flags.js';
import type { Edk2Source } from '../src/edk2/source.js';
import { readCorpus } from './corpus.js';

/** What the global setup provides: plain data, since it crosses from the main process to workers. */
export interface HarnessContext {
  readonly source: {
    readonly dir: string;
    readonly digest: string;
    readonly description: string;
    readonly details: Readonly<Record<string, string>>;
  };
  readonly builderImage: { readonly id: string; readonly ref: string };
  /** DOCKER_HOST of the engine the setup reached (or started), so files do not start their own. */
  readonly engineEnv: Readonly<Record<string, string>>;
  /** A directory of this run (removed at its end): markers between files. */
  readonly runDir: string;
  /**
   * The file that builds the default warm workspace clean in this run, when it is part of the
   * run (test/build.int.test.ts: that clean build is its subject). Others wait for its marker.
   */
  readonly workspaceProducer: string | null;
}

declare module 'vitest' {
  export interface ProvidedContext {
    harness: HarnessContext;
  }
}

/** The runner (scripts/run-tests.mjs) names a file; each clean EDK2 build of the run adds one line. */
export const CLEAN_BUILD_LOG_ENV = 'OVMF_BUILD_TEST_CLEAN_BUILDS';

/** The default inputs of a warm workspace: any GOP and VBT serve (the key leaves them out). */
export const WORKSPACE_GOP_FILE = 'gop/cometlake-mrchromebox-cml.efi';
export const WORKSPACE_VBT_FILE = 'vbt/cometlake-intel-nuc10i5fnh.vbt';

export function testLogger(): Logger {
  return pino({ level: process.env['OVMF_BUILD_TEST_LOG'] ?? 'silent' });
}

export function harness(): HarnessContext {
  const context = inject('harness');
  if (context === undefined) throw new Error('the integration harness was not set up (test/global-setup.ts)');
  return context;
}

/** process.env plus the engine endpoint of the run: for connectEngine and for CLI child processes. */
export function testEnv(): NodeJS.ProcessEnv {
  return { ...process.env, ...harness().engineEnv };
}

/** The EDK2 source the setup unpacked (Debian's, as the product's default). */
export function edk2Source(): Edk2Source {
  return harness().source;
}

/** An engine on the endpoint of the run; dispose it in afterAll. */
export function testEngine(logger: Logger = testLogger()): Promise<ContainerEngine> {
  return connectEngine({ env: testEnv(), logger });
}

/** The product's lock between processes (real-backend: `workspace-<key>` under the build cache). */
export async function workspaceLock(
  key: string,
  onWait?: (owner: LockOwner | null) => void,
  signal?: AbortSignal,
): Promise<HeldLock> {
  const file = lockPathFor(buildCacheDir(process.env), `workspace-${key}`);
  await mkdir(path.dirname(file), { recursive: true });
  return acquireLock(file, {
    ...(onWait === undefined ? {} : { onWait }),
    ...(signal === undefined ? {} : { signal }),
  });
}

/** The warm workspace's key and image reference for these flags, as buildOvmf computes them. */
export async function workspaceFor(
  flags: Partial<BuildFlags> = {},
): Promise<{ readonly key: string; readonly ref: string }> {
  const { source, builderImage } = harness();
  const resolved = resolveBuildFlags(flags);
  const base = await prepareBuildInputs({
    gop: readCorpus(WORKSPACE_GOP_FILE),
    vbt: readCorpus(WORKSPACE_VBT_FILE),
    sourceDir: source.dir,
    flags: resolved,
    mode: 'clean',
  });
  const key = workspaceKey({
    sourceDigest: source.digest,
    overlayDigest: base.packageOverlayDigest,
    platformDigest: base.platformDigest,
    builderImageId: builderImage.id,
    flags: resolved,
  }).value;
  return { key, ref: `${WORKSPACE_REPOSITORY}:${key}` };
}

/** The bytes a build returns, by name: firmware images and the exported helper drivers. */
export interface BuildOutputs {
  readonly code: Uint8Array;
  readonly vars: Uint8Array;
  readonly combined: Uint8Array;
  readonly igdAssignment: Uint8Array;
  readonly gopPolicy: Uint8Array;
}

/**
 * What the clean build that made a warm workspace produced, read from the workspace image itself
 * (its `Build/OvmfX64/<target>_GCC5/FV` images and the helper drivers in the modules' OUTPUT
 * directories are committed with it, and warm or variant builds never change the image). So a
 * file that compares a warm build with "the clean build" gets that build's bytes whether the
 * clean build ran in this run, in another process (build.int) or on an earlier day, without
 * a copy kept anywhere else. test/build.int.test.ts checks they equal what its clean build returned.
 */
export async function workspaceOutputs(
  engine: ContainerEngine,
  ref: string,
  flags: Partial<BuildFlags> = {},
): Promise<BuildOutputs> {
  const resolved = resolveBuildFlags(flags);
  const helpers = helperDriverPaths(resolved);
  const paths = {
    code: `${fvDir(resolved)}/${OUTPUT_FILES[0]}`,
    vars: `${fvDir(resolved)}/${OUTPUT_FILES[1]}`,
    combined: `${fvDir(resolved)}/${OUTPUT_FILES[2]}`,
    igdAssignment: helpers.igdAssignment,
    gopPolicy: helpers.gopPolicy,
  };
  const run = await engine.run({
    image: ref,
    cmd: ['true'],
    network: 'none',
    jobId: `test-harness-workspace-outputs-${process.pid}`,
    purpose: 'test-read-workspace',
    outputs: Object.values(paths).map((file) => `${WORKSPACE}/${file}`),
    logger: testLogger(),
  });
  const read = (file: string): Uint8Array => {
    const name = path.posix.basename(file);
    const found = [...run.outputs].find(([key]) => key === name || key.endsWith(`/${name}`));
    if (run.exitCode !== 0 || found === undefined) {
      throw new Error(
        `workspace ${ref} has no ${file} (exit ${run.exitCode}, got ${[...run.outputs.keys()].join(', ')})`,
      );
    }
    return found[1];
  };
  return {
    code: read(paths.code),
    vars: read(paths.vars),
    combined: read(paths.combined),
    igdAssignment: read(paths.igdAssignment),
    gopPolicy: read(paths.gopPolicy),
  };
}

/** Adds one line to the run's clean-build log when `result` was a clean build. */
export async function countCleanBuild(result: Pick<BuildOvmfResult, 'mode'>, what: string): Promise<void> {
  const file = process.env[CLEAN_BUILD_LOG_ENV];
  if (result.mode !== 'clean' || file === undefined || file === '') return;
  await appendFile(file, `${new Date().toISOString()} ${process.pid} ${what}\n`);
}

/** The marker the producer of the default workspace leaves in the run directory. */
function producerMarker(outcome: 'done' | 'failed'): string {
  return path.join(harness().runDir, `default-workspace.${outcome}`);
}

/** Called by the producer (test/build.int.test.ts) once its clean build committed the workspace, or failed. */
export async function markDefaultWorkspace(outcome: 'done' | 'failed'): Promise<void> {
  await writeFile(producerMarker(outcome), `${process.pid}\n`);
}

/**
 * Waits until the run's producer (build.int) finished the default workspace, when it is part of
 * the run. Files with clean builds of their own call it so two clean builds never share the two
 * cores (measured: together they took 16 min, one after the other about 7 min each).
 */
export async function waitForProducer(logger: Logger = testLogger()): Promise<void> {
  const { workspaceProducer } = harness();
  if (workspaceProducer === null) return;
  logger.info(
    { producer: workspaceProducer },
    'harness: waiting for the clean build of the default workspace',
  );
  while (!existsSync(producerMarker('done')) && !existsSync(producerMarker('failed'))) await sleep(2_000);
}

/**
 * The default warm workspace (DEBUG, 4 MB, network), for files that build from it. When the
 * run's producer file is part of the run, waits for its clean build; otherwise returns at once
 * when the workspace exists, or builds it clean exactly once across workers and processes
 * (under the product's workspace lock: a second caller waits, then finds it committed).
 */
export async function warmWorkspace(
  logger: Logger = testLogger(),
): Promise<{ readonly key: string; readonly ref: string }> {
  await waitForProducer(logger);
  const workspace = await workspaceFor();
  await using engine = await testEngine(logger);
  if ((await engine.imageId(workspace.ref)) !== null) return workspace;
  const held = await workspaceLock(workspace.key);
  try {
    if ((await engine.imageId(workspace.ref)) !== null) return workspace;
    const result = await buildOvmf({
      gop: readCorpus(WORKSPACE_GOP_FILE),
      vbt: readCorpus(WORKSPACE_VBT_FILE),
      source: edk2Source(),
      engine,
      logger,
      jobId: `test-harness-workspace-${process.pid}`,
      workspace: { reuse: true, commit: true },
      // The lock is held here already; buildOvmf releases it when the build is over.
      workspaceLock: () => Promise.resolve(held),
    });
    await countCleanBuild(result, `harness: default workspace ${workspace.key}`);
    if (result.workspace?.ref !== workspace.ref) {
      throw new Error(
        `the harness expected workspace ${workspace.ref}, the build used ${result.workspace?.ref}`,
      );
    }
    return workspace;
  } finally {
    await held.release();
  }
}

/**
 * buildOvmf from the default warm workspace (call warmWorkspace() first), with the product's
 * workspace lock, so a workspace that went missing meanwhile is built once, not once per file.
 */
export async function buildFromWorkspace(
  options: Omit<BuildOvmfOptions, 'workspace' | 'workspaceLock'>,
): Promise<BuildOvmfResult> {
  const result = await buildOvmf({
    ...options,
    workspace: { reuse: true, commit: true },
    workspaceLock: (key) => workspaceLock(key),
  });
  await countCleanBuild(result, `${options.jobId}: default workspace`);
  return result;
}

/**
 * The environment of a CLI run with its own user directories under `dir` (build cache, config
 * with the signing key, state with the logs: nothing of the user's is read or changed), on the
 * run's engine, sharing only the user's unpacked EDK2 sources (read-only input keyed by digest),
 * so no test spends minutes on `apt-get source` again.
 */
export async function isolatedCliEnv(dir: string): Promise<NodeJS.ProcessEnv> {
  const sharedSources = path.join(userCacheDir(process.env), 'edk2');
  await mkdir(path.join(dir, 'cache', 'ovmf-build'), { recursive: true });
  await mkdir(sharedSources, { recursive: true });
  await symlink(sharedSources, path.join(dir, 'cache', 'ovmf-build', 'edk2'));
  return {
    ...testEnv(),
    XDG_CACHE_HOME: path.join(dir, 'cache'),
    XDG_CONFIG_HOME: path.join(dir, 'config'),
    XDG_STATE_HOME: path.join(dir, 'state'),
  };
}
