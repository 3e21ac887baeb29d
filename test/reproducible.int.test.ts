// Reproducibility: two clean builds of the same inputs give the same bytes (BUILD-NOTES: GenFw
// zeroes PE timestamps and every build runs at the fixed /edk2 path, with LC_ALL=C and TZ=UTC).
// Then the warm workspace: a rebuild from the committed workspace with other inputs carries
// those inputs, and a warm rebuild back to the first inputs equals the clean build byte for byte.
// RELEASE builds: a workspace key of this file's own, so replacing its workspace image can never
// meet a warm build of another file (they use the default DEBUG one), and the only clean
// RELEASE builds of the suite.
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContainerEngine } from '../src/container/index.js';
import { buildOvmf, type BuildOvmfOptions, type BuildOvmfResult } from '../src/edk2/build.js';
import { checkBuild } from '../src/jobs/stage-verify.js';
import type { BuildFlags } from '../src/edk2/flags.js';
import type { Edk2Source } from '../src/edk2/source.js';
import { CORPUS_DIR } from './corpus.js';
import { countCleanBuild, edk2Source, testEngine, testLogger, waitForProducer } from './harness.js';

const logger = testLogger();
const FLAGS: Partial<BuildFlags> = { target: 'RELEASE' };
const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');
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
let first: BuildOvmfResult;
let second: BuildOvmfResult;
let firstWorkspaceId: string | null = null;
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
    flags: FLAGS,
    ...extra,
  });
}

beforeAll(async () => {
  const corpus = async (file: string): Promise<Uint8Array> =>
    new Uint8Array(await readFile(path.join(CORPUS_DIR, file)));
  inputs.a = {
    gop: await corpus('gop/cometlake-mrchromebox-cml.efi'),
    vbt: await corpus('vbt/cometlake-intel-nuc10i5fnh.vbt'),
  };
  inputs.b = {
    gop: await corpus('gop/tigerlake-mrchromebox-tgl.efi'),
    vbt: await corpus('vbt/tigerlake-starlabs-starbook.vbt'),
  };
  // After the run's clean build of the default workspace, not beside it (both need both cores).
  await waitForProducer(logger);
  source = edk2Source();
  engine = await testEngine(logger);
  first = await build('a', 'clean-1', { workspace: { reuse: false, commit: true } });
  await countCleanBuild(first, 'reproducible.int clean build 1');
  firstWorkspaceId = first.workspace === null ? null : await engine.imageId(first.workspace.ref);
  second = await build('a', 'clean-2', { workspace: { reuse: false, commit: true } });
  await countCleanBuild(second, 'reproducible.int clean build 2');
});

afterAll(async () => {
  await engine?.[Symbol.asyncDispose]();
});

describe('reproducibility', () => {
  it('two clean builds of the same inputs are byte-identical (OVMF_CODE, OVMF_VARS, OVMF)', () => {
    expect([first.mode, second.mode]).toEqual(['clean', 'clean']);
    expect(first.flags).toEqual({ fdSize: '4MB', target: 'RELEASE', network: true, secureBoot: false });
    expect(differences(first.code, second.code)).toEqual([]);
    expect(sha256(second.code)).toBe(sha256(first.code));
    expect(sha256(second.vars)).toBe(sha256(first.vars));
    expect(sha256(second.combined)).toBe(sha256(first.combined));
    // The helper drivers that option ROMs carry too.
    expect(sha256(second.helperDrivers.igdAssignment)).toBe(sha256(first.helperDrivers.igdAssignment));
    expect(sha256(second.helperDrivers.gopPolicy)).toBe(sha256(first.helperDrivers.gopPolicy));
  });

  it("the second clean build replaced the first build's warm workspace and removed its image", async () => {
    expect(first.workspace?.committed).toBe(true);
    expect(second.workspace?.ref).toBe(first.workspace?.ref);
    expect(firstWorkspaceId).toMatch(/^(sha256:)?[0-9a-f]{64}$/);
    const current = await engine.imageId(second.workspace?.ref ?? '');
    expect(current).not.toBeNull();
    expect(current).not.toBe(firstWorkspaceId);
    // Not left dangling (about 1 GB each): no container used it, so it is gone.
    expect(await engine.imageId(firstWorkspaceId ?? '')).toBeNull();
  });

  it('a warm rebuild with another GOP and VBT carries exactly those', async () => {
    const warm = await build('b', 'warm-b');
    expect(warm.mode).toBe('warm');
    expect((await checkBuild(warm, { ...inputs.b, logger, boot: false })).structure).toMatchObject({
      gop: { sha256: sha256(inputs.b.gop) },
      vbt: { sha256: sha256(inputs.b.vbt) },
    });
    expect(sha256(warm.code)).not.toBe(sha256(first.code));
    // Only FVs are regenerated; no module is compiled again except our overlay's (fresh mtimes).
    expect(warm.containerDurationMs).toBeLessThan(first.containerDurationMs / 3);
  });

  it('a warm rebuild back to the first inputs equals the clean build byte for byte', async () => {
    const warm = await build('a', 'warm-a');
    expect(warm.mode).toBe('warm');
    expect(differences(warm.code, first.code)).toEqual([]);
    expect(sha256(warm.code)).toBe(sha256(first.code));
    expect(sha256(warm.vars)).toBe(sha256(first.vars));
  });
});
