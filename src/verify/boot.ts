// Boot verification: start a built OVMF in QEMU and prove from its DEBUG log that the DXE
// dispatcher loaded our GOP driver and our policy driver and that the boot reached BDS
// (the check in BUILD-NOTES "Proving a driver loaded"). This file is the orchestration:
// options, the accelerator (with one TCG retry when KVM fails), a private copy of the variable
// store per attempt, and the result. One boot is boot-run.ts; the verdict is boot-verdict.ts.
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { userStateDir } from '../cache/paths.js';
import { throwIfAborted } from '../core/errors.js';
import { isGuidString } from '../core/guid.js';
import { parseDebugLog, type DebugLogSummary } from './debug-log.js';
import {
  chooseAccelerator,
  isAccelMode,
  KVM_NO_SMM,
  recordKvmBootFailure,
  retryUnderTcg,
  type AccelMode,
  type AcceleratorChoice,
} from './accel.js';
import type { SpawnProcess } from './qemu-process.js';
import { runBoot, type BootRun, type BootRunSettings } from './boot-run.js';
import { bootLogOf, bootRunFailure, evaluateBootLog, type ExpectedDriver } from './boot-verdict.js';
import { VerificationError } from './errors.js';
import { DEFAULT_GOP_FILE_GUID, DEFAULT_POLICY_FILE_GUID } from './guids.js';
import {
  checkPositiveOptions,
  checkReadableInput,
  copyVarsStore,
  findQemu,
  type QemuAccelerator,
  type QemuMachine,
} from './qemu.js';

export type BootLogger = Pick<Logger, 'info' | 'debug' | 'warn'>;

export interface VerifyBootOptions {
  /** OVMF_CODE.fd; attached read-only, never modified. */
  readonly codePath: string;
  /** OVMF_VARS.fd; QEMU gets a private copy, the file itself is never modified. */
  readonly varsPath: string;
  /**
   * FILE_GUID of the GOP driver that must be dispatched.
   * @default '1647B4F3-3E8A-4FDD-81C8-328ED647AB1A'
   */
  readonly gopFileGuid?: string;
  /**
   * FILE_GUID of the platform GOP policy driver that must be dispatched.
   * @default '6FE0ECC8-FDFF-490E-A0C6-B60B3A8E98A2' (OvmfGopPkg PlatformGopPolicyDxe)
   */
  readonly policyFileGuid?: string;
  /**
   * FILE_GUID of an IGD assignment driver that must be dispatched too (the build's boot check
   * passes OvmfGopPkg IgdAssignmentDxe's, DEFAULT_IGD_ASSIGNMENT_FILE_GUID).
   * @default none: not checked, so firmware built before that driver existed still verifies
   */
  readonly igdAssignmentFileGuid?: string;
  /** When set, the policy driver's `VBT found, <n> bytes` line must report this size. */
  readonly vbtSizeInBytes?: number;
  /**
   * Hard limit for the whole boot; QEMU is killed with SIGKILL when it passes.
   * @default 120_000 (a DEBUG build reaches BDS in a few seconds under TCG)
   */
  readonly timeoutMs?: number;
  /** @default 'q35' */
  readonly machine?: QemuMachine;
  /**
   * Boot an SMM_REQUIRE build (`smm=on`, secure pflash). q35 only.
   * @default secureBoot
   */
  readonly smm?: boolean;
  /**
   * The build has secure boot; OVMF's secure boot builds require SMM, so this implies `smm`
   * unless `smm` is given.
   * @default false
   */
  readonly secureBoot?: boolean;
  /** @default 512 */
  readonly memoryMiB?: number;
  /**
   * Time QEMU keeps running after `[Bds] Entry`, to catch errors printed right after it.
   * @default 1_000
   */
  readonly bdsGraceMs?: number;
  /**
   * If the debug console is still empty after this long (or the serial console already
   * shows the boot manager), the build prints no DEBUG output: E_BOOT_NO_DEBUG_OUTPUT. The time
   * QEMU spent waiting for a CPU on a loaded machine does not count.
   * @default 30_000
   */
  readonly noDebugOutputMs?: number;
  /** How often the logs are read while QEMU runs. @default 50 */
  readonly pollIntervalMs?: number;
  /**
   * Largest debug log accepted; a runaway log stops the boot (E_BOOT_LOG_TOO_LARGE).
   * @default 67_108_864 (64 MiB)
   */
  readonly maxLogBytes?: number;
  /** qemu-system-x86_64 to run. @default the first one on PATH */
  readonly qemuPath?: string;
  /**
   * `auto`: KVM when the device opens and KVM passed the probe (accel.ts), else TCG; a KVM
   * failure during the boot (a KVM error on stderr, or no output at all within
   * `kvmNoOutputMs`) stops QEMU and boots again under TCG at once. `kvm` or `tcg` force one;
   * a forced KVM that fails is E_BOOT_KVM_FAILED (or E_BOOT_KVM_UNAVAILABLE without a device).
   * @default 'auto'
   */
  readonly accel?: AccelMode;
  /** @default '/dev/kvm' */
  readonly kvmDevice?: string;
  /**
   * Under KVM, a boot that printed nothing on either console after this long has a stopped
   * vCPU (a working KVM prints SEC's first lines within milliseconds).
   * @default 10_000
   */
  readonly kvmNoOutputMs?: number;
  /** @default 5_000 */
  readonly kvmProbeTimeoutMs?: number;
  /** Where the KVM probe verdict is kept. @default the user state dir (`$XDG_STATE_HOME/ovmf-build`) */
  readonly stateDir?: string;
  /** Test hook for the KVM probe's QEMU starts. @default child_process.spawn */
  readonly spawnProcess?: SpawnProcess;
  /** Environment (PATH for finding QEMU, the user state dir). @default process.env */
  readonly env?: NodeJS.ProcessEnv;
  /** Parent of the private temp dir. @default os.tmpdir() */
  readonly tmpDir?: string;
  /** Keep a copy of the debug log here (written atomically, on every outcome that has a log). */
  readonly logPath?: string;
  readonly signal?: AbortSignal;
  readonly logger?: BootLogger;
}

export interface BootVerification {
  /** GOP and policy driver loaded and started, BDS reached, no ASSERT, VBT found when reported. */
  readonly passed: boolean;
  /** QEMU start to QEMU gone. */
  readonly durationMs: number;
  /** QEMU start to the first `[Bds] Entry` seen (measured at `pollIntervalMs` granularity). */
  readonly timeToBdsMs?: number;
  /** FILE_GUIDs the DXE dispatcher loaded, in order, upper case. */
  readonly loadedDrivers: readonly string[];
  readonly reachedBds: boolean;
  /** Why it did not pass; empty when it passed. */
  readonly failures: readonly string[];
  /** Notes that do not fail the boot (other drivers' errors appear in every normal boot). */
  readonly info: readonly string[];
  /** Where the debug log was kept (only with `logPath`). */
  readonly logPath?: string;
  /** Which console carried the DEBUG output: 0x402, or the serial port for DEBUG_ON_SERIAL_PORT builds. */
  readonly logSource: 'debugcon' | 'serial';
  readonly summary: DebugLogSummary;
  readonly qemu: { readonly binary: string; readonly args: readonly string[] };
  /** The accelerator of the boot that gave this verdict, and why it was chosen. */
  readonly accel: BootAccelerator;
}

export interface BootAccelerator {
  readonly accelerator: QemuAccelerator;
  readonly reason: string;
  /** Milliseconds the KVM probe took, when one ran for this boot. */
  readonly probeMs?: number;
  /** Milliseconds lost in a KVM boot that failed before the TCG retry. */
  readonly failedKvmBootMs?: number;
}

/** Throws E_BOOT_CHECK_FAILED listing the failures when a boot did not pass. */
export function assertBootPassed(result: BootVerification): void {
  if (result.passed) return;
  throw new VerificationError(
    'E_BOOT_CHECK_FAILED',
    `the OVMF boot did not pass verification: ${result.failures.join('; ')}`,
    { failures: result.failures, loadedDrivers: result.loadedDrivers, reachedBds: result.reachedBds },
  );
}

const DEFAULTS = {
  timeoutMs: 120_000,
  memoryMiB: 512,
  bdsGraceMs: 1_000,
  noDebugOutputMs: 30_000,
  pollIntervalMs: 50,
  maxLogBytes: 64 * 1024 * 1024,
  kvmNoOutputMs: 10_000,
} as const;

function checkGuid(name: string, value: string): void {
  if (!isGuidString(value)) throw new TypeError(`Expected \`${name}\` to be a GUID string, got \`${value}\``);
}

async function keepLog(target: string, text: string): Promise<void> {
  const temporary = `${target}.${process.pid}.tmp`;
  await writeFile(temporary, text, 'latin1');
  await rename(temporary, target);
}

/** What a boot check settles before QEMU starts: checked options, the QEMU binary, the accelerator. */
export interface BootCheckSetup {
  readonly binary: string;
  readonly settings: BootRunSettings;
  readonly mode: AccelMode;
  readonly choice: AcceleratorChoice;
  readonly stateDir: string;
  /** The drivers whose loading the verdict requires. */
  readonly expected: readonly ExpectedDriver[];
  readonly machine: QemuMachine;
  readonly smm: boolean;
  readonly memoryMiB: number;
}

/**
 * Checks `options`, finds QEMU, checks the inputs are readable and chooses the accelerator
 * (the KVM probe, cached). Throws TypeError for a bad option, E_BOOT_QEMU_MISSING,
 * E_INPUT_NOT_FOUND, E_BOOT_KVM_UNAVAILABLE (forced KVM), or AbortError.
 */
export async function prepareBootCheck(options: VerifyBootOptions): Promise<BootCheckSetup> {
  const gopFileGuid = (options.gopFileGuid ?? DEFAULT_GOP_FILE_GUID).toUpperCase();
  const policyFileGuid = (options.policyFileGuid ?? DEFAULT_POLICY_FILE_GUID).toUpperCase();
  checkGuid('gopFileGuid', gopFileGuid);
  checkGuid('policyFileGuid', policyFileGuid);
  const igdAssignmentFileGuid = options.igdAssignmentFileGuid?.toUpperCase();
  if (igdAssignmentFileGuid !== undefined) checkGuid('igdAssignmentFileGuid', igdAssignmentFileGuid);
  const machine = options.machine ?? 'q35';
  if (machine !== 'q35' && machine !== 'i440fx') {
    throw new TypeError(`Expected \`machine\` to be \`q35\` or \`i440fx\`, got \`${String(machine)}\``);
  }
  const settings: BootRunSettings = {
    timeoutMs: options.timeoutMs ?? DEFAULTS.timeoutMs,
    bdsGraceMs: options.bdsGraceMs ?? DEFAULTS.bdsGraceMs,
    noDebugOutputMs: options.noDebugOutputMs ?? DEFAULTS.noDebugOutputMs,
    pollIntervalMs: options.pollIntervalMs ?? DEFAULTS.pollIntervalMs,
    maxLogBytes: options.maxLogBytes ?? DEFAULTS.maxLogBytes,
    kvmNoOutputMs: options.kvmNoOutputMs ?? DEFAULTS.kvmNoOutputMs,
  };
  checkPositiveOptions({ ...settings, memoryMiB: options.memoryMiB });
  const mode = options.accel ?? 'auto';
  if (!isAccelMode(mode)) {
    throw new TypeError(`Expected \`accel\` to be \`auto\`, \`kvm\` or \`tcg\`, got \`${String(mode)}\``);
  }
  const { signal, logger } = options;
  throwIfAborted(signal);

  const binary = await findQemu({ qemuPath: options.qemuPath, env: options.env ?? process.env });
  await checkReadableInput(options.codePath, 'OVMF code image');
  await checkReadableInput(options.varsPath, 'OVMF variable store');
  const stateDir = options.stateDir ?? userStateDir(options.env ?? process.env);
  const choice = await chooseAccelerator({
    mode,
    qemuBinary: binary,
    stateDir,
    ...(options.kvmDevice === undefined ? {} : { kvmDevice: options.kvmDevice }),
    ...(options.kvmProbeTimeoutMs === undefined ? {} : { probeTimeoutMs: options.kvmProbeTimeoutMs }),
    ...(options.tmpDir === undefined ? {} : { tmpDir: options.tmpDir }),
    ...(signal === undefined ? {} : { signal }),
    ...(logger === undefined ? {} : { logger }),
    ...(options.spawnProcess === undefined ? {} : { spawnProcess: options.spawnProcess }),
  });
  return {
    binary,
    settings,
    mode,
    choice,
    stateDir,
    expected: [
      { role: 'GOP driver', guid: gopFileGuid },
      { role: 'policy driver', guid: policyFileGuid },
      ...(igdAssignmentFileGuid === undefined
        ? []
        : [{ role: 'IGD assignment driver', guid: igdAssignmentFileGuid }]),
    ],
    machine,
    smm: options.smm ?? options.secureBoot ?? false,
    memoryMiB: options.memoryMiB ?? DEFAULTS.memoryMiB,
  };
}

/**
 * What the boot check does when KVM fails during a boot: a forced KVM is E_BOOT_KVM_FAILED;
 * otherwise a warning, and the failure is recorded so later runs go straight to TCG.
 */
export function onBootKvmFailure(
  setup: BootCheckSetup,
  logger: BootLogger | undefined,
): (
  why: string,
  first: { readonly durationMs: number; readonly stderr: string; readonly args: readonly string[] },
) => Promise<void> {
  return async (why, first) => {
    if (setup.mode === 'kvm') {
      throw new VerificationError(
        'E_BOOT_KVM_FAILED',
        `KVM failed during the boot check (forced by --accel kvm): ${why}; use --accel auto or --accel tcg`,
        { reason: why, durationMs: first.durationMs, stderr: first.stderr, args: first.args },
      );
    }
    logger?.warn(
      { reason: why, durationMs: first.durationMs },
      'KVM failed during the boot check; retrying under TCG',
    );
    const key = setup.choice.verdictKey;
    // No SMM says nothing about boots without it: this boot alone goes to TCG.
    if (key === undefined || why === KVM_NO_SMM) return;
    await recordKvmBootFailure(setup.stateDir, key, why).catch((error: unknown) => {
      logger?.warn({ error: String(error) }, 'could not record the KVM failure');
    });
  };
}

/**
 * The boot check's verdict on the boot that ran last (`run`, after a failed KVM boot when
 * `failedKvm` is set): throws the coded error of a boot that did not reach BDS
 * (bootRunFailure), else returns the verdict on its debug log (`passed: false` with
 * `failures` when a driver did not load).
 */
export async function bootVerdictOf(
  run: BootRun,
  failedKvm: { readonly reason: string; readonly run: { readonly durationMs: number } } | undefined,
  setup: BootCheckSetup,
  options: Pick<VerifyBootOptions, 'logPath' | 'vbtSizeInBytes' | 'signal' | 'logger'>,
): Promise<BootVerification> {
  const { choice, settings, binary } = setup;
  const accel: BootAccelerator = {
    ...(failedKvm === undefined
      ? { accelerator: choice.accelerator, reason: choice.reason }
      : {
          accelerator: 'tcg',
          reason: `kvm failed during the boot check: ${failedKvm.reason}; retried under tcg`,
        }),
    ...(choice.probeMs === undefined ? {} : { probeMs: choice.probeMs }),
    ...(failedKvm === undefined ? {} : { failedKvmBootMs: failedKvm.run.durationMs }),
  };
  const { text: logText, source: logSource } = bootLogOf(run);
  let logPath: string | undefined;
  if (options.logPath !== undefined && logText.length > 0) {
    await keepLog(options.logPath, logText);
    logPath = options.logPath;
  }
  const common = { durationMs: run.durationMs, ...(logPath === undefined ? {} : { logPath }) };
  const failure = bootRunFailure(run, { settings, common, accel, signal: options.signal });
  if (failure !== undefined) throw failure;
  const summary = parseDebugLog(logText);
  const evaluation = evaluateBootLog(
    summary,
    setup.expected,
    options.vbtSizeInBytes === undefined ? {} : { vbtSizeInBytes: options.vbtSizeInBytes },
  );
  const result: BootVerification = {
    passed: evaluation.passed,
    ...common,
    ...(run.timeToBdsMs === undefined ? {} : { timeToBdsMs: run.timeToBdsMs }),
    loadedDrivers: summary.loadedDrivers.map((driver) => driver.guid),
    reachedBds: summary.reachedBds,
    failures: evaluation.failures,
    info: evaluation.info,
    logSource,
    summary,
    qemu: { binary, args: run.args },
    accel,
  };
  options.logger?.info(
    {
      passed: result.passed,
      durationMs: result.durationMs,
      timeToBdsMs: result.timeToBdsMs,
      accelerator: accel.accelerator,
      accelReason: accel.reason,
    },
    'OVMF boot verified',
  );
  return result;
}

/**
 * Boots OVMF_CODE + a copy of OVMF_VARS in QEMU and checks the DEBUG log. Returns the
 * verdict (`passed: false` with `failures` when a driver did not load or BDS was not
 * reached); throws VerificationError E_BOOT_NO_DEBUG_OUTPUT (RELEASE build),
 * E_BOOT_ASSERT, E_BOOT_TIMEOUT, E_BOOT_QEMU_FAILED, E_BOOT_LOG_TOO_LARGE,
 * E_BOOT_QEMU_MISSING, E_BOOT_KVM_FAILED / E_BOOT_KVM_UNAVAILABLE (forced KVM), InputError
 * E_INPUT_NOT_FOUND, or AbortError. The temp dir is removed on every path.
 */
export async function verifyBoot(options: VerifyBootOptions): Promise<BootVerification> {
  const setup = await prepareBootCheck(options);
  const { signal, logger } = options;
  const directory = await mkdtemp(path.join(options.tmpDir ?? os.tmpdir(), 'ovmf-build-boot-'));
  try {
    // Each attempt gets its own vars copy and logs: a failed KVM boot may have written to them.
    const attempt = async (accelerator: QemuAccelerator): Promise<BootRun> => {
      const varsPath = path.join(directory, `OVMF_VARS.${accelerator}.fd`);
      await copyVarsStore(options.varsPath, varsPath);
      const plan = {
        codePath: path.resolve(options.codePath),
        varsPath,
        debugLogPath: path.join(directory, `debug.${accelerator}.log`),
        serialLogPath: path.join(directory, `serial.${accelerator}.log`),
        machine: setup.machine,
        smm: setup.smm,
        accelerator,
        memoryMiB: setup.memoryMiB,
      };
      return runBoot(setup.binary, plan, setup.settings, signal, logger);
    };
    const { run, failedKvm } = await retryUnderTcg(
      setup.choice.accelerator,
      attempt,
      (first) => (first.outcome === 'kvm-failed' ? (first.kvmFailure ?? 'KVM failed') : undefined),
      onBootKvmFailure(setup, logger),
    );
    return await bootVerdictOf(run, failedKvm, setup, options);
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}
