// IGD assignment in embedded mode (issue 9, item 5): our DEBUG OVMF from a real build (EDK2 in a
// container; warm after build.int) is booted in QEMU 7.2 under TCG with a display device at
// 00:02.0 that the firmware is told to treat as an Intel iGPU (opt/ovmf-build/igd-device-id),
// an OpRegion built around a real corpus VBT that differs from the one built into the firmware,
// and a stolen size, both as fw_cfg files exactly as QEMU's vfio-pci IGD support hands them over.
// QEMU is the oracle: its pci_cfg_write trace (ASLS and BDSM writes, offset and width), the
// registers read back over the monitor, and `pmemsave` of the guest memory at ASLS.
// The job's verify stage (a real warm build through the main command) boots this firmware once
// for the boot check and embedded mode together: its facts say so and carry the exact drivers.
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runMain } from '../src/cli/commands/ovmf.js';
import type { ContainerEngine } from '../src/container/index.js';
import type { BuildOvmfResult } from '../src/edk2/build.js';
import type { VerifiedFirmware } from '../src/jobs/job-types.js';
import { createVerifyStage, earlyRomPlan, REAL_CHECKS, type VerifyChecks } from '../src/jobs/stage-verify.js';
import { buildOptionRom } from '../src/formats/option-rom-builder.js';
import { buildOpRegion, parseOpRegion } from '../src/formats/opregion.js';
import { lookupDevice, type IgdPlatform } from '../src/igd/device-table.js';
import { loadIgdDeviceTable } from '../src/igd/load.js';
import { exitCodeFor } from '../src/cli/exit-codes.js';
import { verifyBootAndIgdModes } from '../src/verify/boot-igd.js';
import { VerificationError } from '../src/verify/errors.js';
import { checkIgdAssignment, type IgdCheckResult } from '../src/verify/igd-check.js';
import type { IgdModeSummary } from '../src/verify/igd-modes.js';
import type { StructureReport } from '../src/verify/structural.js';
import { captureContext } from './cli-harness.js';
import { corpusPath, readCorpus } from './corpus.js';
import { isolatedCliEnv, testLogger } from './harness.js';
import { EXPECTED_DXE_DISPATCH_ORDER } from './igd-dxe-dispatch-order.js';
import {
  buildIgdTestFirmware,
  checkIgdCase,
  expectIgdCasePassed,
  IGD_CASES,
  IGD_EMBEDDED_VBT,
  IGD_GOP_FILE,
} from './igd-oracle.js';

const logger = testLogger();
const MiB = 1_048_576;

const CASES = IGD_CASES;

let engine: ContainerEngine;
let work: string;
let build: BuildOvmfResult;
let structure: StructureReport;
let codePath: string;
let varsPath: string;
/** EDK2's PrintLib prints %x in upper case; QEMU's trace in lower case. */
const upperHex = (value: number): string => value.toString(16).toUpperCase();
const results = new Map<string, { result: IgdCheckResult; opRegion: Uint8Array; platform: IgdPlatform }>();

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'ovmf-build-igd-embedded-'));
  ({ engine, build, structure } = await buildIgdTestFirmware(`igd-embedded-int-${process.pid}`, logger));
  codePath = path.join(work, 'OVMF_CODE.fd');
  varsPath = path.join(work, 'OVMF_VARS.fd');
  await writeFile(codePath, build.code);
  await writeFile(varsPath, build.vars);
  const table = await loadIgdDeviceTable();
  // One QEMU at a time: 2 cores, and TCG boots are CPU bound.
  for (const testCase of CASES) {
    const checked = await checkIgdCase(testCase, { codePath, varsPath }, { tmpDir: work, logger });
    const { result } = checked;
    results.set(testCase.name, checked);
    // The closing note of issue 9 asks for the trace lines and boot times of one run per mode.
    console.log(
      `igd embedded ${testCase.name}: ASLS after ${String(result.timeToAslsMs)} ms, boot manager after ` +
        `${String(result.timeToBootManagerMs)} ms, QEMU ${result.durationMs} ms\n  ${result.traceLines.join('\n  ')}`,
    );
  }
  // The driver's refusals: a stolen size that is not a multiple of 1 MiB, and no size at all
  // (no etc/igd-bdsm-size, and the test device's GMCH reads 0).
  for (const [name, bdsmSizeInBytes] of [
    ['odd stolen size', 1_572_864],
    ['no stolen size', 0],
  ] as const) {
    const platform = lookupDevice(table, '3e9b') as IgdPlatform;
    const opRegion = buildOpRegion({ vbt: readCorpus('vbt/coffeelake-lenovo-m720q.vbt') });
    const result = await checkIgdAssignment({
      codePath,
      varsPath,
      deviceId: '3e9b',
      opRegion,
      bdsmSizeInBytes,
      platform,
      tmpDir: work,
      logger,
    });
    results.set(name, { result, opRegion, platform });
  }
  // Our OVMF and an option ROM with the same helper drivers (a user may combine both): the ROM's
  // copy of IgdAssignmentDxe finds ASLS and BDSM set and leaves them, so each is written once.
  const romPath = path.join(work, 'helpers.rom');
  const image = (pe: Uint8Array) => ({ pe, vendorId: 0x8086, deviceId: 0xffff, classCode: 0x03_0000 });
  await writeFile(
    romPath,
    buildOptionRom({
      images: [image(build.helperDrivers.igdAssignment), image(build.helperDrivers.gopPolicy)],
    }),
  );
  const platform = lookupDevice(table, '46d4') as IgdPlatform;
  const opRegion = buildOpRegion({ vbt: readCorpus('vbt/alderlake-n-tianbei-n1pro.vbt') });
  const both = await checkIgdAssignment({
    codePath,
    varsPath,
    romPath,
    deviceId: '46d4',
    opRegion,
    bdsmSizeInBytes: 32 * MiB,
    platform,
    tmpDir: work,
    logger,
  });
  results.set('OVMF and ROM', { result: both, opRegion, platform });
}, 1_800_000); // may wait for the run's clean build of the default workspace (test/harness.ts)

/**
 * The main command's job with the real verify stage, counting which QEMU checks it calls. Its ROM
 * mode is started ahead from the build's helper drivers as the pipeline does (jobs/early-rom.ts),
 * by the job's own plan (`ahead`: that run's verdict; null: the plan runs no ROM mode ahead).
 */
async function jobWithRealChecks(): Promise<{
  calls: string[];
  verified: VerifiedFirmware;
  json: { artifactDir: string; igd: unknown };
  stageMs: number;
  ahead: IgdModeSummary | null;
}> {
  const jobDir = path.join(work, 'job');
  const env = await isolatedCliEnv(jobDir);
  const calls: string[] = [];
  const checks: VerifyChecks = {
    ...REAL_CHECKS,
    boot: (request, context) => {
      calls.push('boot');
      return REAL_CHECKS.boot(request, context);
    },
    igd: (request) => {
      calls.push('igd');
      return (REAL_CHECKS.igd as NonNullable<VerifyChecks['igd']>)(request);
    },
    bootAndIgd: (boot, igd, context) => {
      calls.push('bootAndIgd');
      return (REAL_CHECKS.bootAndIgd as NonNullable<VerifyChecks['bootAndIgd']>)(boot, igd, context);
    },
  };
  const stage = createVerifyStage(checks);
  let verified: VerifiedFirmware | undefined;
  let ahead: Promise<IgdModeSummary> | undefined;
  let stageMs = 0;
  const captured = captureContext(
    ['--gop', corpusPath(IGD_GOP_FILE), '--vbt', corpusPath(IGD_EMBEDDED_VBT), '--json'],
    env,
    jobDir,
  );
  const exitCode = await runMain(captured.ctx, {
    verify: async (input, context) => {
      const plan = await earlyRomPlan(input, context);
      const helpers = input.built.helperDrivers;
      if (plan !== null && helpers !== undefined) {
        context.session.earlyRom.wait(
          'compiled',
          async (helpers) => {
            const start = await plan(helpers);
            return start === null
              ? null
              : { digest: start.digest, run: (signal) => (ahead = start.run(signal)) };
          },
          'igd-embedded-job',
        );
        context.session.earlyRom.offer('compiled', helpers, context.logger);
        while (ahead === undefined) await new Promise((resolve) => setImmediate(resolve));
      }
      const started = performance.now();
      verified = await stage(input, context);
      stageMs = Math.round(performance.now() - started);
      return verified;
    },
  });
  expect({ exitCode, stderr: captured.stderr() }).toEqual({ exitCode: 0, stderr: '' });
  if (verified === undefined) throw new Error('the verify stage did not run');
  return {
    calls,
    verified,
    json: JSON.parse(captured.stdout()) as { artifactDir: string; igd: unknown },
    stageMs,
    ahead: ahead === undefined ? null : await ahead,
  };
}

let job: Awaited<ReturnType<typeof jobWithRealChecks>>;
beforeAll(async () => {
  job = await jobWithRealChecks();
  console.log(`job verify stage (one boot for the boot check and embedded mode): ${job.stageMs} ms`);
}, 1_800_000);

afterAll(async () => {
  await engine?.[Symbol.asyncDispose]();
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

describe('IGD assignment, embedded mode (our DEBUG OVMF, QEMU TCG)', () => {
  it('the build carries IgdAssignmentDxe and exports the helper drivers it verified', () => {
    expect(structure.igdAssignment.fileGuid).toBe('283B2335-ABD8-4B75-A8AA-004177A20A4B');
    expect(structure.igdAssignment.subsystem).toBe('EFI_BOOT_SERVICE_DRIVER');
    expect(structure.igdAssignment.sizeInBytes).toBe(build.helperDrivers.igdAssignment.length);
    expect(structure.policy.sizeInBytes).toBe(build.helperDrivers.gopPolicy.length);
  });

  it('refuses a stolen size that is not a multiple of 1 MiB: BDSM left alone, the OpRegion still set up', () => {
    const { result } = results.get('odd stolen size') ?? {};
    expect(result?.asls).not.toBeNull();
    expect(result?.opRegionMatches).toBe(true);
    expect(result?.bdsm).toBeNull();
    expect(result?.traceLines.filter((line) => /@0x(5c|c0|c4) /u.test(line))).toEqual([]);
    expect(result?.registers?.bdsm32).toBe(0);
    expect(result?.debugLines).toContain(
      'IgdAssignmentDxe: stolen size 1572864 is not a non-zero multiple of 1 MiB up to 2155872256, BDSM left alone',
    );
    // The harness expected a BDSM write for a non-zero size, so its own verdict is a failure.
    expect(result?.passed).toBe(false);
  });

  it('without etc/igd-bdsm-size and with GMS 0 there is no stolen memory and no BDSM write', () => {
    const { result } = results.get('no stolen size') ?? {};
    expect(result?.failures).toEqual([]);
    expect(result?.bdsm).toBeNull();
    expect(result?.traceLines.filter((line) => /@0x(5c|c0|c4) /u.test(line))).toEqual([]);
    expect(result?.debugLines).toContain(
      'IgdAssignmentDxe: no stolen size (etc/igd-bdsm-size absent, GMS 0)',
    );
  });

  it('our OVMF plus a ROM with the same drivers writes ASLS and BDSM once; the second copy leaves them', () => {
    const { result } = results.get('OVMF and ROM') ?? {};
    expect(result?.failures).toEqual([]);
    expect(result?.passed).toBe(true);
    const asls = result?.asls as number;
    const bdsm = result?.bdsm?.value as number;
    expect(result?.traceLines).toEqual([
      `pci_cfg_write VGA 00:02.0 @0xfc <- 0x${asls.toString(16)}`,
      `pci_cfg_write VGA 00:02.0 @0xc0 <- 0x${bdsm.toString(16)}`,
      'pci_cfg_write VGA 00:02.0 @0xc4 <- 0x0',
    ]);
    const lines = result?.debugLines ?? [];
    expect(lines.filter((line) => line.endsWith(', ASLS written'))).toHaveLength(1);
    expect(lines).toContain(`IgdAssignmentDxe: ASLS already 0x${upperHex(asls)}, OpRegion left alone`);
    expect(lines).toContain(`IgdAssignmentDxe: BDSM already 0x${upperHex(bdsm)}, stolen memory left alone`);
  });

  it.each(CASES.map((testCase) => [testCase.name, testCase] as const))('%s', (name, testCase) => {
    const entry = results.get(name);
    if (entry === undefined) throw new Error(`no result for ${name}`);
    const { result, opRegion, platform } = entry;
    const asls = expectIgdCasePassed(result, testCase, {
      mode: 'embedded',
      platformKey: platform.key,
      opRegionSizeInBytes: opRegion.length,
    });

    // The debug log: the driver's own lines, and the policy names the OpRegion's VBT (not the
    // built-in one) with the VBT header's size and its address inside the OpRegion copy.
    const vbt = parseOpRegion(opRegion).vbt;
    expect(result.vbtSource).toBe(testCase.expectedVbtSource);
    expect(result.debugLines).toContain(
      `IgdAssignmentDxe: 00:02.0 8086:${testCase.deviceId.toUpperCase()} ${platform.key} gen ${platform.graphicsVersion}`,
    );
    expect(result.debugLines).toContain(
      `IgdAssignmentDxe: 00:02.0 is 1234:1111, treated as 8086:${testCase.deviceId.toUpperCase()} (opt/ovmf-build/igd-device-id)`,
    );
    expect(result.debugLines).toContain(
      `IgdAssignmentDxe: OpRegion ${opRegion.length} bytes at 0x${upperHex(asls)}, ASLS written`,
    );
    expect(result.debugLines).toContain(
      `OvmfGopPkg: VBT from OpRegion (${testCase.expectedVbtSource === 'opregion-rvda' ? 'RVDA' : 'mailbox 4'}), ` +
        `${String(vbt?.sizeInBytes)} bytes at 0x${upperHex(asls + (vbt?.offset ?? 0))}`,
    );
    expect(result.debugLines.some((line) => line.startsWith('OvmfGopPkg: VBT from firmware volume'))).toBe(
      false,
    );
    if (testCase.expectedBdsm === null) {
      expect(result.debugLines).toContain(`IgdAssignmentDxe: no BDSM on ${platform.key}`);
    } else {
      expect(result.debugLines).toContain(
        `IgdAssignmentDxe: stolen memory ${testCase.bdsmSizeInBytes} bytes at 0x${upperHex(result.bdsm?.value as number)}, ` +
          `BDSM 0x${upperHex(testCase.expectedBdsm.offset)} (${testCase.expectedBdsm.width}-bit)`,
      );
    }
  });
});

describe("the job's verify stage: one boot for the boot check and embedded mode", () => {
  it('calls the combined check only; the boot verdict is the embedded boot: exact drivers, BDS, facts', async () => {
    expect(job.calls).toEqual(['bootAndIgd']);
    const boot = job.verified.boot;
    expect(boot?.passed).toBe(true);
    expect(boot?.failures).toEqual([]);
    expect(boot?.reachedBds).toBe(true);
    expect(boot?.loadedDrivers).toEqual(EXPECTED_DXE_DISPATCH_ORDER);
    // The boot that gave the verdict is the IGD check's: the device at 00:02.0 and its fw_cfg files.
    const args = boot?.qemu.args ?? [];
    expect(args).toContain('VGA,bus=pcie.0,addr=02.0');
    expect(args.some((arg) => arg.startsWith('name=etc/igd-opregion,file='))).toBe(true);
    expect(boot?.summary.policyVbt).toMatchObject({
      found: true,
      sizeInBytes: readCorpus(IGD_EMBEDDED_VBT).length,
    });
    const romChecked = existsSync('/usr/share/OVMF/OVMF_CODE_4M.fd');
    const manifest = JSON.parse(await readFile(path.join(job.json.artifactDir, 'manifest.json'), 'utf8')) as {
      build: { facts: { boot: Record<string, unknown> } };
      igdChecks: unknown;
    };
    expect(manifest.build.facts.boot).toEqual({
      checked: true,
      passed: true,
      durationMs: boot?.durationMs,
      timeToBdsMs: boot?.timeToBdsMs,
      reachedBds: true,
      loadedDrivers: EXPECTED_DXE_DISPATCH_ORDER.length,
      accel: boot?.accel,
      source: 'igd-embedded-boot',
      qemuBoots: romChecked ? 2 : 1,
    });
    expect(typeof boot?.timeToBdsMs).toBe('number');
    expect(boot?.timeToBdsMs).toBeLessThan(boot?.durationMs as number);
    // The same boot's IGD verdict: embedded mode passed on the device of the GOP's generation.
    expect(job.verified.igd?.embedded).toMatchObject({
      mode: 'embedded',
      checked: true,
      passed: true,
      deviceId: '3e9b',
      platform: 'cfl',
      accelerator: boot?.accel.accelerator,
      durationMs: boot?.durationMs,
      failures: [],
    });
    expect(job.verified.igd?.rom).toMatchObject(
      romChecked ? { checked: true, passed: true } : { checked: false },
    );
    expect(manifest.igdChecks).toEqual(job.json.igd);
  });

  it("ROM mode started ahead from the build's helper drivers gives the verdict: the stage asks for the same inputs and boots ROM mode no second time", async () => {
    // The plan runs ROM mode ahead under TCG only: when the boot check's KVM probe picks KVM, nothing runs ahead.
    const accel = job.verified.boot?.accel;
    expect(job.ahead === null).toBe(accel?.accelerator === 'kvm' || accel?.failedKvmBootMs !== undefined);
    if (job.ahead === null) return;
    expect(job.ahead).toMatchObject(
      existsSync('/usr/share/OVMF/OVMF_CODE_4M.fd')
        ? { mode: 'rom', checked: true, passed: true, deviceId: '3e9b' }
        : { mode: 'rom', checked: false },
    );
    // The very object the early run resolved with: the digests matched and no other ROM-mode boot ran.
    expect(job.verified.igd?.rom).toBe(job.ahead);
  });

  it("a driver the boot check requires and the boot did not load: the boot check's E_BOOT_CHECK_FAILED (exit 10), before any IGD verdict", async () => {
    const absent = '00000000-1111-2222-3333-444444444444';
    const vbt = readCorpus(IGD_EMBEDDED_VBT);
    const error = await verifyBootAndIgdModes({
      code: build.code,
      vars: build.vars,
      rom: null,
      vbt,
      deviceId: '3e9b',
      platform: lookupDevice(await loadIgdDeviceTable(), '3e9b') as IgdPlatform,
      deviceReason: 'test',
      secureBoot: false,
      vbtSizeInBytes: vbt.length,
      igdAssignmentFileGuid: absent,
      accel: 'tcg',
      tmpDir: work,
      logger,
    }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(VerificationError);
    expect(error).toMatchObject({
      code: 'E_BOOT_CHECK_FAILED',
      details: {
        failures: [`IGD assignment driver ${absent} was not dispatched: no "Loading driver ${absent}" line`],
        loadedDrivers: EXPECTED_DXE_DISPATCH_ORDER,
        reachedBds: true,
      },
    });
    expect(exitCodeFor(error as VerificationError)).toBe(10);
  });
});
