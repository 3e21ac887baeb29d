// Builds from the default warm workspace (test/harness.ts), compared with the clean build that
// made it: a compile error and a missing module are E_BUILD_FAILED naming the module, a changed
// compiled header takes the warm path and recompiles only its driver, and `ovmf-build build` of
// the workspace's own inputs gives that clean build's bytes. The reference bytes are read from
// the workspace image (harness workspaceOutputs; test/build.int.test.ts proves they are what its
// clean build returned).
// Why apart from test/build.int.test.ts: these builds need the workspace, not the clean build's
// process. In scripts/run-tests.mjs they run in the lower-priority part beside
// test/reproducible.int.test.ts's clean build instead of before them at equal priority (about
// 290 s of warm builds and boots, measured in CI, that held the critical path's CPU).
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContainerEngine } from '../src/container/index.js';
import { sha256 } from '../src/core/digest.js';
import { buildOvmf } from '../src/edk2/build.js';
import { prepareBuildInputs } from '../src/edk2/build-inputs.js';
import { IGD_DEVICE_TABLE_HEADER, POLICY_INF } from '../src/edk2/layout.js';
import { buildJobId, failedBuild, type BuildBase } from './build-jobs.js';
import { runCli } from './cli-harness.js';
import { CORPUS_DIR, readCorpus } from './corpus.js';
import {
  edk2Source,
  testEngine,
  testLogger,
  warmWorkspace,
  WORKSPACE_GOP_FILE,
  WORKSPACE_VBT_FILE,
  workspaceOutputs,
  type BuildOutputs,
} from './harness.js';

const logger = testLogger();

let engine: ContainerEngine;
/** The workspace's inputs (the corpus GOP and VBT the harness builds it with). */
let base: BuildBase;
/** What the clean build that made the workspace produced. */
let clean: BuildOutputs;
let tmp: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'ovmf-build-build-warm-'));
  const workspace = await warmWorkspace(logger);
  engine = await testEngine(logger);
  clean = await workspaceOutputs(engine, workspace.ref);
  base = {
    gop: readCorpus(WORKSPACE_GOP_FILE),
    vbt: readCorpus(WORKSPACE_VBT_FILE),
    source: edk2Source(),
    engine,
    logger,
  };
});

afterAll(async () => {
  await engine?.[Symbol.asyncDispose]();
  await rm(tmp, { recursive: true, force: true });
});

describe('failures (on the warm workspace)', () => {
  it('a C syntax error in the policy driver is E_BUILD_FAILED naming its INF, with the last lines', async () => {
    const original = new TextDecoder().decode(
      await readFile(
        path.resolve(import.meta.dirname, '../containers/edk2-overlay', POLICY_INF.replace('.inf', '.c')),
      ),
    );
    const { error, containers } = await failedBuild(base, 'syntax', {
      // A stand-in preparation: the real inputs with the policy driver's source broken.
      prepare: (options) =>
        prepareBuildInputs({
          ...options,
          replaceOverlayFiles: { [POLICY_INF.replace('.inf', '.c')]: `${original}\nthis is not C\n` },
        }),
    });
    expect(error.code).toBe('E_BUILD_FAILED');
    // A compiled input differs from the workspace's: `build` runs (the warm path), not the IGD volume alone.
    expect(error.details).toMatchObject({
      failingModule: POLICY_INF,
      stage: 'build',
      mode: 'warm',
      buildPath: 'warm',
    });
    expect((error.details?.['lastLines'] as string[]).length).toBe(30);
    expect(
      (error.details?.['errorLines'] as string[]).some((line) => line.includes('PlatformGopPolicyDxe.c')),
    ).toBe(true);
    expect(containers).toEqual([]);
  });

  it('a module missing from the workspace is E_BUILD_FAILED naming that INF', async () => {
    const { error, containers } = await failedBuild(base, 'missing', {
      prepare: (options) =>
        prepareBuildInputs({ ...options, patch: { extraDscComponents: ['OvmfGopPkg/Missing/Missing.inf'] } }),
    });
    expect(error.code).toBe('E_BUILD_FAILED');
    expect(error.details).toMatchObject({
      failingModule: 'OvmfGopPkg/Missing/Missing.inf',
      stage: 'build',
      buildPath: 'warm',
    });
    expect(containers).toEqual([]);
  });
});

describe('the warm path', () => {
  it('a changed IGD device header (compiled into IgdAssignmentDxe) takes the warm path and recompiles it', async () => {
    const header = IGD_DEVICE_TABLE_HEADER;
    const built = await buildOvmf({
      ...base,
      jobId: buildJobId('header'),
      // A stand-in preparation: the generated header with one device id changed.
      prepare: async (options) => {
        const real = await prepareBuildInputs(options);
        const text = new TextDecoder().decode(
          real.files.find((file) => file.path.endsWith(`/${header}`))?.data ?? new Uint8Array(),
        );
        const changed = text.replace(/0x[0-9A-Fa-f]{4}(?=[,}\s])/, '0xFFF0');
        expect(changed).not.toBe(text);
        return prepareBuildInputs({ ...options, replaceOverlayFiles: { [header]: changed } });
      },
    });
    expect(built.mode).toBe('warm');
    expect(built.buildPath).toBe('warm');
    expect(sha256(built.helperDrivers.igdAssignment)).not.toBe(sha256(clean.igdAssignment));
    expect(sha256(built.helperDrivers.gopPolicy)).toBe(sha256(clean.gopPolicy));
  });
});

describe('ovmf-build build', () => {
  it('writes verified OVMF_CODE.fd/OVMF_VARS.fd; a warm rebuild of the same inputs equals the clean build', async () => {
    const out = path.join(tmp, 'cli-out');
    const result = await runCli([
      'build',
      '--gop',
      path.join(CORPUS_DIR, WORKSPACE_GOP_FILE),
      '--vbt',
      path.join(CORPUS_DIR, WORKSPACE_VBT_FILE),
      '--out',
      out,
      '--json',
    ]);
    expect(result.code, result.stderr).toBe(0);
    const summary = JSON.parse(result.stdout) as Record<string, unknown>;
    expect(summary).toMatchObject({
      code: { path: path.join(out, 'OVMF_CODE.fd'), sizeInBytes: 0x37_c000, sha256: sha256(clean.code) },
      vars: { path: path.join(out, 'OVMF_VARS.fd'), sizeInBytes: 0x8_4000, sha256: sha256(clean.vars) },
      mode: 'warm',
      buildPath: 'variant',
      verification: { boot: { passed: true } },
    });
    expect(sha256(await readFile(path.join(out, 'OVMF_CODE.fd')))).toBe(sha256(clean.code));
    expect(sha256(await readFile(path.join(out, 'OVMF_VARS.fd')))).toBe(sha256(clean.vars));
    // The helper drivers a ROM-mode chain is made of, byte for byte those of the clean build.
    expect(summary['helperDrivers']).toEqual({
      igdAssignment: {
        path: path.join(out, 'IgdAssignmentDxe.efi'),
        sizeInBytes: clean.igdAssignment.length,
        sha256: sha256(clean.igdAssignment),
      },
      gopPolicy: {
        path: path.join(out, 'PlatformGopPolicyDxe.efi'),
        sizeInBytes: clean.gopPolicy.length,
        sha256: sha256(clean.gopPolicy),
      },
    });
    expect(sha256(await readFile(path.join(out, 'IgdAssignmentDxe.efi')))).toBe(sha256(clean.igdAssignment));
  });
});
