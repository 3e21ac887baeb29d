// The job's verify stage: nothing is stored, published or written out before it passes.
// - structure: our parser finds the exact GOP, VBT and helper drivers in OVMF_CODE.fd;
// - boot: QEMU boots it and the debug log shows the drivers loaded and BDS reached (DEBUG
//   builds only; RELEASE builds print no debug log);
// - IGD (issue 9, item 5): our firmware with the device at 00:02.0 (embedded mode) and the
//   generated ROM on Debian's stock OVMF (ROM mode), for --device or a device of the GOP's
//   generation. When both run, the embedded-mode boot gives the boot check's verdict too
//   (verify/boot-igd.ts): the same firmware booted once, not twice (issues 10 and 11).
// It also makes the ROM from the build's own helper drivers, since ROM mode checks that ROM.
// Each check is a parameter (createVerifyStage) so tests can stand in for QEMU.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import type { BuildOvmfResult } from '../edk2/build.js';
import { IGD_ASSIGNMENT_FILE_GUID } from '../edk2/layout.js';
import { lookupDevice, type IgdPlatform } from '../igd/device-table.js';
import { gopFamily } from '../igd/generation.js';
import { loadIgdDeviceTable } from '../igd/load.js';
import type { AccelMode } from '../verify/accel.js';
import type { BootVerification } from '../verify/boot.js';
import type { IgdVerification, IgdVerifyRequest } from '../verify/igd-modes.js';
import type { StructureReport } from '../verify/structural.js';
import type { EarlyRomPlan } from './early-rom.js';
import type { BuiltFirmware, JobRequest, ResolvedInputs, VerifiedFirmware } from './job-types.js';
import type { HelperDrivers } from './rom.js';
import type { Stage, StageContext } from './stage.js';

export interface VerifyInput {
  readonly request: Pick<JobRequest, 'env' | 'flags' | 'verifyBoot' | 'bootAccel'>;
  readonly inputs: Pick<ResolvedInputs, 'gop' | 'vbt' | 'rom' | 'device'>;
  readonly built: BuiltFirmware;
}

export interface BootCheckRequest {
  readonly code: Uint8Array;
  readonly vars: Uint8Array;
  readonly secureBoot: boolean;
  /** The policy driver hands out the whole RAW section: the VBT file as given. */
  readonly vbtSizeInBytes: number;
  readonly accel: AccelMode;
  readonly env: NodeJS.ProcessEnv;
}

/** The checks of the verify stage; each throws its coded VerificationError on a failure. */
export interface VerifyChecks {
  /** Null: no structural check (a stand-in build has no real firmware volume). */
  structure(
    code: Uint8Array,
    gop: Uint8Array,
    vbt: Uint8Array,
    helpers: HelperDrivers | undefined,
  ): Promise<StructureReport | null>;
  /** Null: no boot check (a stand-in build does not boot). */
  boot(request: BootCheckRequest, context: StageContext): Promise<BootVerification | null>;
  /** Undefined: no IGD check. */
  igd?(request: IgdVerifyRequest): Promise<IgdVerification>;
  /**
   * The boot check and the IGD check with one boot: the embedded-mode boot of the IGD check
   * gives the boot check's verdict too (verify/boot-igd.ts). Used when both would run;
   * undefined: they boot separately.
   */
  bootAndIgd?(
    boot: BootCheckRequest,
    igd: IgdCheckRequest,
    context: StageContext,
  ): Promise<{ readonly boot: BootVerification; readonly igd: IgdVerification }>;
}

/** The IGD check's request before the accelerator is known (the boot check chooses it). */
export type IgdCheckRequest = Omit<IgdVerifyRequest, 'accelerator' | 'smm'>;

async function realStructure(
  code: Uint8Array,
  gop: Uint8Array,
  vbt: Uint8Array,
  helpers: HelperDrivers | undefined,
): Promise<StructureReport> {
  const { verifyStructure } = await import('../verify/structural.js');
  return verifyStructure({ code, gop, vbt, ...(helpers === undefined ? {} : { helperDrivers: helpers }) });
}

async function realBoot(
  request: BootCheckRequest,
  context: Pick<StageContext, 'logger' | 'signal'>,
): Promise<BootVerification> {
  const { assertBootPassed, verifyBoot } = await import('../verify/boot.js');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ovmf-build-boot-'));
  try {
    const codePath = path.join(dir, 'OVMF_CODE.fd');
    const varsPath = path.join(dir, 'OVMF_VARS.fd');
    await writeFile(codePath, request.code);
    await writeFile(varsPath, request.vars);
    const result = await verifyBoot({
      codePath,
      varsPath,
      igdAssignmentFileGuid: IGD_ASSIGNMENT_FILE_GUID,
      secureBoot: request.secureBoot,
      vbtSizeInBytes: request.vbtSizeInBytes,
      logger: context.logger,
      accel: request.accel,
      env: request.env,
      signal: context.signal,
    });
    assertBootPassed(result);
    return result;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function realIgd(request: IgdVerifyRequest): Promise<IgdVerification> {
  const { verifyIgdModes } = await import('../verify/igd-modes.js');
  return verifyIgdModes(request);
}

async function realBootAndIgd(
  boot: BootCheckRequest,
  igd: IgdCheckRequest,
): Promise<{ readonly boot: BootVerification; readonly igd: IgdVerification }> {
  const { verifyBootAndIgdModes } = await import('../verify/boot-igd.js');
  return verifyBootAndIgdModes({
    ...igd,
    secureBoot: boot.secureBoot,
    vbtSizeInBytes: boot.vbtSizeInBytes,
    igdAssignmentFileGuid: IGD_ASSIGNMENT_FILE_GUID,
    accel: boot.accel,
    env: boot.env,
  });
}

/** The checks in QEMU and our parser, for real. */
export const REAL_CHECKS: VerifyChecks = {
  structure: realStructure,
  boot: realBoot,
  igd: realIgd,
  bootAndIgd: realBootAndIgd,
};

/**
 * The verify stage's structural and boot checks on a raw EDK2 build (edk2/build.ts), for
 * callers that build without the job (the EDK2 int tests, benchmarks). `boot` runs the QEMU
 * boot check (DEBUG builds only); each check throws its coded error on a failure.
 */
export async function checkBuild(
  built: Pick<BuildOvmfResult, 'code' | 'vars' | 'helperDrivers' | 'flags'>,
  options: {
    readonly gop: Uint8Array;
    readonly vbt: Uint8Array;
    readonly logger: Logger;
    readonly boot: boolean;
    readonly signal?: AbortSignal;
    readonly env?: NodeJS.ProcessEnv;
    readonly accel?: AccelMode;
  },
): Promise<{ readonly structure: StructureReport; readonly boot: BootVerification | null }> {
  const structure = await realStructure(built.code, options.gop, options.vbt, built.helperDrivers);
  const boot =
    options.boot && built.flags.target === 'DEBUG'
      ? await realBoot(
          {
            code: built.code,
            vars: built.vars,
            secureBoot: built.flags.secureBoot,
            vbtSizeInBytes: options.vbt.length,
            accel: options.accel ?? 'auto',
            env: options.env ?? process.env,
          },
          { logger: options.logger, signal: options.signal ?? new AbortController().signal },
        )
      : null;
  return { structure, boot };
}

/** The device the IGD check assumes: --device when the table knows it, else one of the GOP's generation. */
async function igdDevice(
  inputs: VerifyInput['inputs'],
): Promise<{ deviceId: string; reason: string } | null> {
  if (inputs.device.platform !== undefined && inputs.device.deviceId !== null) {
    return { deviceId: inputs.device.deviceId, reason: '--device' };
  }
  const { REPRESENTATIVE_DEVICE, FALLBACK_DEVICE } = await import('../verify/igd-modes.js');
  const family = gopFamily(inputs.gop.info);
  if (family === null) {
    return {
      deviceId: FALLBACK_DEVICE,
      reason: 'no --device and no generation known from the GOP: a Gen9 device',
    };
  }
  return {
    deviceId: REPRESENTATIVE_DEVICE[family.key] ?? FALLBACK_DEVICE,
    reason: `no --device: a device of the GOP's generation (${family.description})`,
  };
}

/** The device the IGD check poses as and its platform; null when the device table lacks it. */
async function igdTarget(
  inputs: VerifyInput['inputs'],
): Promise<{ device: { deviceId: string; reason: string }; platform: IgdPlatform } | null> {
  const device = await igdDevice(inputs);
  if (device === null) return null;
  const platform = lookupDevice(await loadIgdDeviceTable(), device.deviceId);
  return platform === undefined ? null : { device, platform };
}

/**
 * The job's ROM-mode check as the verify stage will ask for it, for early-rom.ts to start as soon
 * as a build's helper drivers are out. Null when the stage will not run ROM mode (no boot check,
 * a user ROM, no device the table knows) or when it will run it under KVM (a KVM boot takes
 * about a second anyway).
 */
export async function earlyRomPlan(
  input: Pick<VerifyInput, 'request' | 'inputs'>,
  context: Pick<StageContext, 'logger'>,
): Promise<EarlyRomPlan | null> {
  const { request, inputs } = input;
  if (!request.verifyBoot || inputs.rom.source.kind !== 'generated') return null;
  const target = await igdTarget(inputs);
  if (target === null) return null;
  const { device, platform } = target;
  // As the stage chooses: the boot check's accelerator for a DEBUG build (the same choice: its
  // KVM probe's verdict is kept in the state directory, so the boot check finds this one), else TCG.
  const mode = request.bootAccel ?? 'auto';
  if (request.flags.target === 'DEBUG' && mode !== 'tcg') {
    if (mode === 'kvm') return null;
    const [{ chooseAccelerator }, { findQemu }, { userStateDir }] = await Promise.all([
      import('../verify/accel.js'),
      import('../verify/qemu.js'),
      import('../cache/paths.js'),
    ]);
    const choice = await chooseAccelerator({
      mode,
      qemuBinary: await findQemu({ env: request.env }),
      stateDir: userStateDir(request.env),
      logger: context.logger,
    }).catch(() => null);
    if (choice?.accelerator !== 'tcg') return null;
  }
  const accelerator = 'tcg' as const;
  const { checkRomMode, romModeDigest } = await import('../verify/igd-modes.js');
  return async (helpers) => {
    const romRequest = {
      rom: await inputs.rom.bytes(helpers),
      vbt: inputs.vbt.bytes,
      deviceId: device.deviceId,
      platform,
      accelerator,
      env: request.env,
      logger: context.logger,
    };
    return {
      digest: romModeDigest(romRequest),
      run: (signal) => checkRomMode({ ...romRequest, signal }),
    };
  };
}

/** How `facts.boot` was obtained: its own boot, or the IGD check's embedded-mode boot. */
export type BootSource = 'boot-check' | 'igd-embedded-boot';

function bootFacts(
  boot: BootVerification | null,
  request: VerifyInput['request'],
  source: BootSource,
  qemuBoots: number,
): Record<string, unknown> {
  if (boot === null) {
    return {
      checked: false,
      reason: !request.verifyBoot
        ? '--no-verify-boot'
        : request.flags.target === 'DEBUG'
          ? 'no boot check for this build'
          : 'RELEASE builds print no debug log',
    };
  }
  return {
    checked: true,
    passed: boot.passed,
    durationMs: boot.durationMs,
    timeToBdsMs: boot.timeToBdsMs ?? null,
    reachedBds: boot.reachedBds,
    loadedDrivers: boot.loadedDrivers.length,
    accel: boot.accel,
    source,
    qemuBoots,
  };
}

/** QEMU boots that gave the stage's verdicts (a KVM boot retried under TCG is not counted). */
function countQemuBoots(
  source: BootSource,
  boot: BootVerification | null,
  igd: IgdVerification | null,
): number {
  const igdBoots = igd === null ? 0 : [igd.embedded, igd.rom].filter((mode) => mode.checked).length;
  return (boot !== null && source === 'boot-check' ? 1 : 0) + igdBoots;
}

/** The verify stage with these checks (tests stand in for QEMU; the job uses REAL_CHECKS). */
export function createVerifyStage(checks: VerifyChecks = REAL_CHECKS): Stage<VerifyInput, VerifiedFirmware> {
  return async (input, context) => {
    const { request, inputs, built } = input;
    context.emit({ type: 'phase', phase: 'verify', message: 'checking the firmware (structure, QEMU boot)' });
    const structure = await checks.structure(
      built.code,
      inputs.gop.bytes,
      inputs.vbt.bytes,
      built.helperDrivers,
    );
    const bootRequest: BootCheckRequest | null =
      request.verifyBoot && request.flags.target === 'DEBUG'
        ? {
            code: built.code,
            vars: built.vars,
            secureBoot: request.flags.secureBoot,
            vbtSizeInBytes: inputs.vbt.bytes.length,
            accel: request.bootAccel ?? 'auto',
            env: request.env,
          }
        : null;
    const rom = await inputs.rom.bytes(built.helperDrivers ?? null);
    const target =
      request.verifyBoot && checks.igd !== undefined && built.helperDrivers !== undefined
        ? await igdTarget(inputs)
        : null;
    const igdRequest: IgdCheckRequest | null =
      target !== null
        ? {
            code: built.code,
            vars: built.vars,
            rom: inputs.rom.source.kind === 'generated' ? rom : null,
            romSkipReason: 'a user ROM: ROM mode is checked only for the generated IGD ROM chain',
            vbt: inputs.vbt.bytes,
            deviceId: target.device.deviceId,
            platform: target.platform,
            deviceReason: target.device.reason,
            env: request.env,
            signal: context.signal,
            logger: context.logger,
            // ROM mode may have run already, beside the build (early-rom.ts).
            precomputedRom: (digest, signal) => context.session.earlyRom.take(digest, signal),
          }
        : null;
    let boot: BootVerification | null;
    let igd: IgdVerification | null = null;
    let source: BootSource = 'boot-check';
    if (bootRequest !== null && igdRequest !== null && checks.bootAndIgd !== undefined) {
      // Embedded mode boots the same firmware with the same machine: one boot gives both verdicts.
      context.emit({
        type: 'phase',
        phase: 'verify-igd',
        message:
          'booting in QEMU: the boot check and IGD assignment (embedded mode in the same boot, ROM mode)',
      });
      ({ boot, igd } = await checks.bootAndIgd(bootRequest, igdRequest, context));
      source = 'igd-embedded-boot';
    } else {
      boot = bootRequest === null ? null : await checks.boot(bootRequest, context);
      if (igdRequest !== null && checks.igd !== undefined) {
        context.emit({
          type: 'phase',
          phase: 'verify-igd',
          message: 'checking IGD assignment in QEMU (embedded and ROM mode)',
        });
        igd = await checks.igd({
          ...igdRequest,
          accelerator: boot?.accel.accelerator === 'kvm' ? 'kvm' : 'tcg',
          smm: request.flags.secureBoot,
        });
      }
    }
    if (igd !== null) {
      context.logger.info({ igd }, 'IGD assignment check');
      const { assertIgdVerificationPassed } = await import('../verify/igd-modes.js');
      assertIgdVerificationPassed(igd);
    }
    const qemuBoots = countQemuBoots(source, boot, igd);
    context.logger.info({ qemuBoots, bootSource: boot === null ? null : source }, 'verify stage: QEMU boots');
    const facts = {
      ...built.facts,
      ...(structure === null ? {} : { structure }),
      boot: bootFacts(boot, request, source, qemuBoots),
      ...(igd === null ? {} : { igd }),
    };
    return {
      built,
      rom,
      facts,
      structure,
      boot,
      igd,
      bootAccel: boot === null ? null : { accelerator: boot.accel.accelerator, reason: boot.accel.reason },
    };
  };
}

/** Stage `verify`, for real. */
export const verify = createVerifyStage();
