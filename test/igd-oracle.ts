// The QEMU oracle of issue 9, shared by the embedded-mode and ROM-mode tests: the firmware
// both build from, the three devices (Gen9, Gen12, Meteor Lake) and what the trace, the
// registers read back over QMP and pmemsave must show after the firmware did IGD assignment.
import type { Logger } from 'pino';
import { expect } from 'vitest';
import type { ContainerEngine } from '../src/container/index.js';
import type { BuildOvmfResult } from '../src/edk2/build.js';
import { checkBuild } from '../src/jobs/stage-verify.js';
import type { StructureReport } from '../src/verify/structural.js';
import { buildOpRegion } from '../src/formats/opregion.js';
import { lookupDevice, type IgdPlatform } from '../src/igd/device-table.js';
import { loadIgdDeviceTable } from '../src/igd/load.js';
import { checkIgdAssignment, type IgdCheckResult } from '../src/verify/igd-check.js';
import { readCorpus } from './corpus.js';
import { buildFromWorkspace, edk2Source, testEngine, warmWorkspace } from './harness.js';

const MiB = 1_048_576;
const FOUR_GIB = 0x1_0000_0000;

export const IGD_GOP_FILE = 'gop/cometlake-mrchromebox-cml.efi';
/** Built into the firmware: the fallback, which the checks must NOT see served. */
export const IGD_EMBEDDED_VBT = 'vbt/cometlake-intel-nuc10i5fnh.vbt';

export interface IgdCase {
  readonly name: string;
  readonly deviceId: string;
  readonly platformKey: string;
  /** The host VBT the OpRegion carries (a different one from IGD_EMBEDDED_VBT). */
  readonly vbtFile: string;
  readonly bdsmSizeInBytes: number;
  readonly expectedBdsm: { readonly offset: number; readonly width: 32 | 64 } | null;
  readonly expectedVbtSource: 'opregion-mailbox4' | 'opregion-rvda';
}

export const IGD_CASES: readonly IgdCase[] = [
  {
    // Coffee Lake GT2: 4517-byte VBT in mailbox 4 of an OpRegion 2.1, BDSM dword at 0x5C.
    name: 'Gen9 (cfl 3e9b)',
    deviceId: '3e9b',
    platformKey: 'cfl',
    vbtFile: 'vbt/coffeelake-lenovo-m720q.vbt',
    bdsmSizeInBytes: 64 * MiB,
    expectedBdsm: { offset: 0x5c, width: 32 },
    expectedVbtSource: 'opregion-mailbox4',
  },
  {
    // Alder Lake-N: an 8737-byte VBT, too large for mailbox 4, after the 8 KiB at RVDA;
    // BDSM qword at 0xC0/0xC4.
    name: 'Gen12 (adln 46d4)',
    deviceId: '46d4',
    platformKey: 'adln',
    vbtFile: 'vbt/alderlake-n-tianbei-n1pro.vbt',
    bdsmSizeInBytes: 32 * MiB,
    expectedBdsm: { offset: 0xc0, width: 64 },
    expectedVbtSource: 'opregion-rvda',
  },
  {
    // Meteor Lake: OpRegion yes, BDSM never.
    name: 'Meteor Lake (mtl 7d55)',
    deviceId: '7d55',
    platformKey: 'mtl',
    vbtFile: 'vbt/alderlake-starlabs-starbook.vbt',
    bdsmSizeInBytes: 64 * MiB,
    expectedBdsm: null,
    expectedVbtSource: 'opregion-rvda',
  },
];

/**
 * Our DEBUG OVMF with IGD_GOP_FILE and IGD_EMBEDDED_VBT. Both IGD files build the same inputs
 * and flags, so the warm workspace serves both. The build's own checks (structure, plain boot)
 * are build.int's subject; these files check IGD.
 */
export async function buildIgdTestFirmware(
  jobId: string,
  logger: Logger,
): Promise<{ engine: ContainerEngine; build: BuildOvmfResult; structure: StructureReport }> {
  await warmWorkspace(logger);
  const engine = await testEngine(logger);
  const build = await buildFromWorkspace({
    gop: readCorpus(IGD_GOP_FILE),
    vbt: readCorpus(IGD_EMBEDDED_VBT),
    source: edk2Source(),
    engine,
    logger,
    jobId,
    flags: { target: 'DEBUG' },
  });
  // The structural check the build once ran itself (the verify stage's, without the boot).
  const { structure } = await checkBuild(build, {
    gop: readCorpus(IGD_GOP_FILE),
    vbt: readCorpus(IGD_EMBEDDED_VBT),
    logger,
    boot: false,
  });
  return { engine, build, structure };
}

/** One case booted: its platform from the device table, an OpRegion around its VBT, the verdict. */
export async function checkIgdCase(
  testCase: IgdCase,
  firmware: { readonly codePath: string; readonly varsPath: string; readonly romPath?: string },
  options: { readonly tmpDir: string; readonly logger: Logger },
): Promise<{ result: IgdCheckResult; opRegion: Uint8Array; platform: IgdPlatform }> {
  const platform = lookupDevice(await loadIgdDeviceTable(), testCase.deviceId);
  if (platform === undefined) throw new Error(`${testCase.deviceId} is not in the device table`);
  const opRegion = buildOpRegion({ vbt: readCorpus(testCase.vbtFile) });
  const result = await checkIgdAssignment({
    ...firmware,
    deviceId: testCase.deviceId,
    opRegion,
    bdsmSizeInBytes: testCase.bdsmSizeInBytes,
    platform,
    ...options,
  });
  return { result, opRegion, platform };
}

export interface ExpectedIgdAssignment {
  /** BDSM register and width for the device's platform; null when nothing may be written (MTL on). */
  readonly expectedBdsm: { readonly offset: number; readonly width: 32 | 64 } | null;
  readonly bdsmSizeInBytes: number;
}

/**
 * ASLS written, page aligned, below 4 GiB, with the OpRegion's bytes behind it; BDSM at the
 * platform's register and width, 1 MiB aligned and below 4 GiB, or not written at all.
 */
export function expectIgdAssignment(
  result: IgdCheckResult,
  expected: ExpectedIgdAssignment,
  opRegionSizeInBytes: number,
): void {
  expect(result.asls).not.toBeNull();
  const asls = result.asls as number;
  expect(asls % 4096).toBe(0);
  expect(asls).toBeGreaterThan(0);
  expect(asls + opRegionSizeInBytes).toBeLessThanOrEqual(FOUR_GIB);
  expect(result.opRegionMatches).toBe(true);
  expect(result.registers?.asls).toBe(asls);
  expect(result.traceLines).toContain(`pci_cfg_write VGA 00:02.0 @0xfc <- 0x${asls.toString(16)}`);

  if (expected.expectedBdsm === null) {
    expect(result.bdsm).toBeNull();
    expect(result.traceLines.filter((line) => /@0x(5c|c0|c4) /u.test(line))).toEqual([]);
    expect(result.registers?.bdsm32).toBe(0);
    expect(result.registers?.bdsm64).toBe(0);
    return;
  }
  expect(result.bdsm).toMatchObject(expected.expectedBdsm);
  const base = result.bdsm?.value as number;
  expect(base % MiB).toBe(0);
  expect(base + expected.bdsmSizeInBytes).toBeLessThanOrEqual(FOUR_GIB);
  const register = `@0x${expected.expectedBdsm.offset.toString(16)} <- 0x${base.toString(16)}`;
  expect(result.traceLines).toContain(`pci_cfg_write VGA 00:02.0 ${register}`);
  if (expected.expectedBdsm.width === 64) {
    expect(result.traceLines).toContain('pci_cfg_write VGA 00:02.0 @0xc4 <- 0x0');
    expect(result.traceLines.filter((line) => line.includes('@0x5c '))).toEqual([]);
  } else {
    expect(result.traceLines.filter((line) => /@0xc[04] /u.test(line))).toEqual([]);
  }
}

/**
 * One device case's result: passed without failures in the given mode, for the case's platform,
 * and the IGD assignment as expectIgdAssignment checks it. Returns the ASLS the firmware wrote.
 */
export function expectIgdCasePassed(
  result: IgdCheckResult,
  testCase: IgdCase,
  actual: {
    readonly mode: IgdCheckResult['mode'];
    readonly platformKey: string;
    readonly opRegionSizeInBytes: number;
  },
): number {
  expect(result.failures).toEqual([]);
  expect(result.passed).toBe(true);
  expect(result.mode).toBe(actual.mode);
  expect(actual.platformKey).toBe(testCase.platformKey);
  expectIgdAssignment(result, testCase, actual.opRegionSizeInBytes);
  return result.asls as number;
}
