// Reproducibility and the variant path, with one clean build of its own. The run's first clean
// build is the default warm workspace's (test/build.int.test.ts, or the harness when this file
// runs alone: DEBUG, 4 MB, network, inputs A = the workspace's default GOP and VBT), whose bytes
// the workspace image holds (harness workspaceOutputs). This file then:
//   variant B from that workspace (the IGD volume only) -> warm B (`build` again in the workspace) ->
//   clean 2 of inputs B, from the tools image, with another job count and not committed,
// and checks that clean 2 equals variant B byte for byte and compiles the same helper drivers
// and VARS as clean 1 (BUILD-NOTES: GenFw zeroes PE timestamps and every build runs at the fixed
// /edk2 path, with LC_ALL=C and TZ=UTC). So two independent clean builds agree, a variant equals
// a clean build of the same inputs, and the warm path gives the same bytes, slower. Both clean
// builds start from the tools image (compiled BaseTools), so the bytes also prove it changes
// nothing.
// Until 2026-12-02 this file made two clean RELEASE builds of its own (the suite's third clean
// build, about 7 min of both cores alone and 15 min beside the rest); DEBUG builds embed more
// (ASSERT strings with file names, DEBUG format strings), so they are the stricter test of
// reproducibility. Replacing a committed workspace and removing the replaced image is tested on
// small images in src/container/cleanup.int.test.ts; clean 2 is not committed, so the workspace
// the other files build from is never replaced under them.
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContainerEngine } from '../src/container/index.js';
import { sha256 } from '../src/core/digest.js';
import { buildOvmf, type BuildOvmfOptions, type BuildOvmfResult } from '../src/edk2/build.js';
import { checkBuild } from '../src/jobs/stage-verify.js';
import type { Edk2Source } from '../src/edk2/source.js';
import { VariantTemplates } from '../src/edk2/variant-templates.js';
import { CORPUS_DIR } from './corpus.js';
import {
  countCleanBuild,
  edk2Source,
  testEngine,
  testLogger,
  warmWorkspace,
  WORKSPACE_GOP_FILE,
  WORKSPACE_VBT_FILE,
  workspaceLock,
  workspaceOutputs,
  type BuildOutputs,
} from './harness.js';

const logger = testLogger();
const jobId = (name: string): string => `test-repro-${name}-${randomBytes(4).toString('hex')}`;

/** Byte ranges where two images differ, for a failure message that says where. */
function differences(a: Uint8Array, b: Uint8Array): string[] {
  const ranges: string[] = [];
  if (a.length !== b.length) ranges.push(`length ${a.length} != ${b.length}`);
  let start = -1;
  for (let i = 0; i <= Math.min(a.length, b.length); i += 1) {
    const differs = i < a.length && i < b.length && a[i] !== b[i];
    if (differs && start === -1) start = i;
    if (!differs && start !== -1) {
      ranges.push(`0x${start.toString(16)}..0x${(i - 1).toString(16)}`);
      start = -1;
      if (ranges.length > 20) break;
    }
  }
  return ranges;
}

let engine: ContainerEngine;
let source: Edk2Source;
/** The default workspace: its key and image reference. */
let workspace: { readonly key: string; readonly ref: string };
/** Clean build 1, inputs A: the bytes the default workspace was committed with. */
let first: BuildOutputs;
/** From clean 1's workspace: inputs B by the variant path, and by the warm path. */
let variantB: BuildOvmfResult;
let warmB: BuildOvmfResult;
/** Inputs A made over variant B's images in this process (the template variant path). */
let templateA: BuildOvmfResult;
const templates = new VariantTemplates();
/** Inputs B beside a forged template (clean 1's images claiming GOP B): the container path. */
let refusedB: BuildOvmfResult;
const forged = new VariantTemplates();
/** Clean build 2, inputs B, another job count, from the tools image; not committed. */
let second: BuildOvmfResult;
interface Inputs {
  gop: Uint8Array;
  vbt: Uint8Array;
}
const inputs: { a: Inputs; b: Inputs } = {
  a: { gop: new Uint8Array(), vbt: new Uint8Array() },
  b: { gop: new Uint8Array(), vbt: new Uint8Array() },
};

function build(
  which: 'a' | 'b',
  name: string,
  extra: Partial<BuildOvmfOptions> = {},
): Promise<BuildOvmfResult> {
  return buildOvmf({
    ...inputs[which],
    source,
    engine,
    logger,
    jobId: jobId(name),
    // The product's lock of the workspace, as the CLI takes it (harness buildFromWorkspace).
    workspaceLock: (key) => workspaceLock(key),
    ...extra,
  });
}

/** A build's outputs by name, as the harness reads them from a workspace image. */
const outputsOf = (result: BuildOvmfResult): BuildOutputs => ({
  code: result.code,
  vars: result.vars,
  combined: result.combined,
  igdAssignment: result.helperDrivers.igdAssignment,
  gopPolicy: result.helperDrivers.gopPolicy,
});

/** Every output a build returns, byte for byte (firmware images and the exported helper drivers). */
function expectSameBytes(actual: BuildOvmfResult, expected: BuildOutputs): void {
  expect(differences(actual.code, expected.code)).toEqual([]);
  const digests = (outputs: BuildOutputs): Record<string, string> =>
    Object.fromEntries(Object.entries(outputs).map(([name, bytes]) => [name, sha256(bytes as Uint8Array)]));
  expect(digests(outputsOf(actual))).toEqual(digests(expected));
}

beforeAll(async () => {
  const corpus = async (file: string): Promise<Uint8Array> =>
    new Uint8Array(await readFile(path.join(CORPUS_DIR, file)));
  inputs.a = { gop: await corpus(WORKSPACE_GOP_FILE), vbt: await corpus(WORKSPACE_VBT_FILE) };
  inputs.b = {
    gop: await corpus('gop/tigerlake-mrchromebox-tgl.efi'),
    vbt: await corpus('vbt/tigerlake-starlabs-starbook.vbt'),
  };
  // After the run's clean build of the default workspace, not beside it (both need both cores).
  workspace = await warmWorkspace(logger);
  source = edk2Source();
  engine = await testEngine(logger);
  first = await workspaceOutputs(engine, workspace.ref);
  // Leaves its images as this session's template of the workspace key (VariantTemplates).
  variantB = await build('b', 'variant-b', { variantTemplates: templates });
  // Inputs A over variant B's images, in this process: no container.
  templateA = await build('a', 'template-a', { variantTemplates: templates });
  // A template that claims other inputs than its volume holds is refused: the workspace path runs.
  forged.offer(workspace.key, {
    ...first,
    gop: inputs.b.gop,
    vbt: inputs.a.vbt,
    helperDrivers: { igdAssignment: first.igdAssignment, gopPolicy: first.gopPolicy },
    jobId: 'forged',
    builder: { id: 'unused', ref: 'unused' },
  });
  refusedB = await build('b', 'refused-b', { variantTemplates: forged });
  warmB = await build('b', 'warm-b', { workspace: { variant: false } });
  second = await build('b', 'clean-2', { workspace: { reuse: false, commit: false }, jobs: 3 });
  await countCleanBuild(second, 'reproducible.int clean build');
  // One clean build and two from the workspace: under a loaded machine one clean build took
  // 30 min (measured 2026-12-02, load average 15-24 on 2 cores), the project's hook timeout.
}, 3_600_000);

afterAll(async () => {
  await engine?.[Symbol.asyncDispose]();
});

describe('reproducibility', () => {
  it('a second clean build (other inputs, another job count) compiles the same helper drivers and VARS', async () => {
    expect([second.mode, second.buildPath]).toEqual(['clean', 'clean']);
    expect(second.flags).toEqual({ fdSize: '4MB', target: 'DEBUG', network: true, secureBoot: false });
    // Every module compiled (about 277 for OvmfPkgX64), BaseTools not: the tools image.
    expect(second.modulesBuilt).toBeGreaterThan(250);
    expect(second.toolsImage).toMatchObject({ built: false, durationMs: 0 });
    expect(second.toolsImage?.ref).toMatch(/^localhost\/ovmf-build\/edk2-tools:[0-9a-f]{24}$/);
    // Not committed: the default workspace is the one clean build 1 made.
    expect(second.workspace).toBeNull();
    expect(await engine.imageId(workspace.ref)).not.toBeNull();
    expect(sha256(second.vars)).toBe(sha256(first.vars));
    // The helper drivers that option ROMs carry too.
    expect(sha256(second.helperDrivers.igdAssignment)).toBe(sha256(first.igdAssignment));
    expect(sha256(second.helperDrivers.gopPolicy)).toBe(sha256(first.gopPolicy));
  });

  it('a variant B from clean build 1 equals clean build 2 of B byte for byte', () => {
    expect(variantB.mode).toBe('warm');
    expect(variantB.buildPath).toBe('variant');
    expect(variantB.workspace).toEqual({ ...workspace, committed: false });
    expectSameBytes(variantB, outputsOf(second));
  });

  it("inputs A made in this process over variant B's images equal clean build 1 of A byte for byte", () => {
    expect(variantB.variantFrom).toBe('workspace');
    expect([templateA.buildPath, templateA.variantFrom, templateA.containerDurationMs]).toEqual([
      'variant',
      'template',
      0,
    ]);
    // Made over the images variant B left: the first build of the key in this session.
    expect(templateA.variantOf).toMatch(/^test-repro-variant-b-[0-9a-f]{8}$/);
    expect(templates.get(workspace.key)?.jobId).toBe(templateA.variantOf);
    expectSameBytes(templateA, first);
  });

  it('a template that does not hold the inputs it claims is refused, and the workspace path gives the bytes', () => {
    expect([refusedB.buildPath, refusedB.variantFrom]).toEqual(['variant', 'workspace']);
    expectSameBytes(refusedB, outputsOf(second));
  });

  it('a warm rebuild with another GOP and VBT carries exactly those', async () => {
    expect(variantB.mode).toBe('warm');
    expect((await checkBuild(variantB, { ...inputs.b, logger, boot: false })).structure).toMatchObject({
      gop: { sha256: sha256(inputs.b.gop) },
      vbt: { sha256: sha256(inputs.b.vbt) },
    });
    expect(sha256(variantB.code)).not.toBe(sha256(first.code));
    // Only FVs are regenerated; no module is compiled again.
    expect(variantB.modulesBuilt).toBe(0);
    expect(variantB.containerDurationMs).toBeLessThan(second.containerDurationMs / 3);
  });

  it('the warm path (`build` again in the workspace) gives the same bytes as the variant path, slower', () => {
    expect(warmB.mode).toBe('warm');
    expect(warmB.buildPath).toBe('warm');
    expect(warmB.toolsImage).toBeNull();
    expectSameBytes(warmB, outputsOf(variantB));
    // The IGD volume alone (GenSec, GenFfs, GenFv: well under a second) against AutoGen of every
    // module plus GenFds (12-40 s).
    expect(variantB.containerDurationMs).toBeLessThan(warmB.containerDurationMs);
  });
});
