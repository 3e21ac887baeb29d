// The IGD assignment check (issue 9, item 5): boot an OVMF in QEMU with a display device at
// 00:02.0 that the firmware is told to treat as an Intel iGPU, hand it an OpRegion and a
// stolen-memory size through fw_cfg as QEMU's vfio-pci IGD support does, and use QEMU itself as
// the oracle (igd-run.ts boots it, igd-trace.ts reads the trace, igd-verdict.ts decides). Works
// for our DEBUG OVMF (embedded mode) and for a stock OVMF with our option ROM (ROM mode), where
// the trace is the oracle and the debug console only carries our ROM drivers' lines. This file
// is the orchestration: the options, one TCG retry when KVM fails, and the result. The job's
// check of both modes side by side is igd-modes.ts.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { throwIfAborted } from '../core/errors.js';
import { parseOpRegion } from '../formats/opregion.js';
import { normalizeDeviceId, type IgdPlatform } from '../igd/device-table.js';
import { retryUnderTcg } from './accel.js';
import { VerificationError } from './errors.js';
import { ASSERT_RE, runIgdBoot, type IgdRun } from './igd-run.js';
import {
  evaluateIgdCheck,
  igdRunFailure,
  type IgdBdsm,
  type IgdRegisters,
  type IgdVbtSource,
} from './igd-verdict.js';
import { checkPositiveOptions, checkReadableInput, findQemu, type QemuAccelerator } from './qemu.js';

export type IgdCheckLogger = Pick<Logger, 'info' | 'debug' | 'warn'>;

export interface IgdCheckOptions {
  /** OVMF_CODE.fd (read-only pflash). */
  readonly codePath: string;
  /** OVMF_VARS.fd; QEMU gets a private copy. */
  readonly varsPath: string;
  /** An option ROM for the device at 00:02.0 (ROM mode). */
  readonly romPath?: string;
  /** The Intel device ID the firmware is told the device is (`opt/ovmf-build/igd-device-id`), e.g. `3e9b`. */
  readonly deviceId: string;
  /** The `etc/igd-opregion` bytes (buildOpRegion). */
  readonly opRegion: Uint8Array;
  /** The `etc/igd-bdsm-size` value; 0 leaves the file out (the firmware then finds no stolen size). */
  readonly bdsmSizeInBytes: number;
  /** The device's platform from the device table: which BDSM register the firmware must write. */
  readonly platform: IgdPlatform;
  /** @default 'tcg' */
  readonly accelerator?: QemuAccelerator;
  /**
   * Boot an SMM_REQUIRE (secure boot) build: `smm=on`, a secure varstore flash and S3 off, as
   * the boot check does (OvmfPkg/README "SMM support").
   * @default false
   */
  readonly smm?: boolean;
  /**
   * Hard limit for the boot to reach the boot manager.
   * @default 120_000
   */
  readonly timeoutMs?: number;
  /**
   * Time the guest keeps running after the boot manager's first boot-option line, so config
   * writes still queued behind it land in the trace.
   * @default 300
   */
  readonly settleMs?: number;
  /** @default 50 */
  readonly pollIntervalMs?: number;
  /** @default 512 */
  readonly memoryMiB?: number;
  /**
   * Dump the stolen memory and require it to be zero (the firmware must zero it); skipped for
   * sizes above 256 MiB.
   * @default true
   */
  readonly checkStolenZeroed?: boolean;
  /** qemu-system-x86_64 to run. @default the first one on PATH */
  readonly qemuPath?: string;
  /** @default process.env */
  readonly env?: NodeJS.ProcessEnv;
  /** Parent of the private temp dir. @default os.tmpdir() */
  readonly tmpDir?: string;
  /** Keep the trace, debug log and serial log here (the directory must exist). */
  readonly keepLogsIn?: string;
  readonly signal?: AbortSignal;
  readonly logger?: IgdCheckLogger;
}

export interface IgdCheckResult {
  /** Every check passed. */
  readonly passed: boolean;
  readonly failures: readonly string[];
  /** Facts that do not fail the check. */
  readonly info: readonly string[];
  /** The OpRegion address the firmware put in ASLS, or null when it never wrote it. */
  readonly asls: number | null;
  readonly bdsm: IgdBdsm | null;
  readonly opRegionMatches: boolean;
  /** Which VBT the GOP policy reported it serves (debug console), or null when it said nothing. */
  readonly vbtSource: IgdVbtSource | null;
  /** The trace lines of the IGD's ASLS and BDSM registers, in order. */
  readonly traceLines: readonly string[];
  /** `IgdAssignmentDxe:` and `OvmfGopPkg:` lines of the debug console. */
  readonly debugLines: readonly string[];
  /** QEMU start to the first ASLS write seen in the trace (poll granularity). */
  readonly timeToAslsMs: number | null;
  /** QEMU start to the boot manager's first boot-option line. */
  readonly timeToBootManagerMs: number | null;
  /** QEMU start to QEMU gone. */
  readonly durationMs: number;
  readonly accelerator: QemuAccelerator;
  readonly deviceId: string;
  readonly platform: string;
  readonly mode: 'embedded' | 'rom';
  readonly registers: IgdRegisters | null;
  readonly qemu: { readonly binary: string; readonly args: readonly string[] };
}

/** Throws VerificationError E_VERIFY_IGD_CHECK_FAILED listing the failures when the check did not pass. */
export function assertIgdCheckPassed(result: IgdCheckResult): void {
  if (result.passed) return;
  throw new VerificationError(
    'E_VERIFY_IGD_CHECK_FAILED',
    `the IGD assignment check (${result.mode} mode, device ${result.deviceId}, ${result.platform}) failed: ${result.failures.join('; ')}`,
    {
      failures: result.failures,
      mode: result.mode,
      deviceId: result.deviceId,
      platform: result.platform,
      traceLines: result.traceLines,
      debugLines: result.debugLines,
    },
  );
}

/**
 * Runs the IGD check in QEMU and returns the verdict (`passed: false` with `failures` when the
 * firmware did not do its part). Throws VerificationError E_VERIFY_IGD_TIMEOUT (the boot
 * manager never ran), E_VERIFY_IGD_QEMU_FAILED (QEMU exited early), E_VERIFY_IGD_QMP_FAILED,
 * E_BOOT_QEMU_MISSING, InputError E_INPUT_NOT_FOUND, or AbortError. Under KVM, a KVM
 * failure (an error on stderr, or no output at all within 10 s: BUILD-NOTES, "QEMU on these
 * machines") runs the check again under TCG at once, with a note in `info`. The temp dir is
 * removed on every path.
 */
export function checkIgdAssignment(options: IgdCheckOptions): Promise<IgdCheckResult> {
  return checkIgdAssignmentWith(options, {});
}

/**
 * How a caller that takes more than the IGD verdict from the same boot steps in (boot-igd.ts:
 * the boot check's verdict comes from the embedded-mode boot).
 */
export interface IgdBootHooks {
  /** Replaces the warning when KVM failed and the check runs again under TCG; may throw. */
  readonly onKvmFailure?: (reason: string, run: IgdRun) => Promise<void> | void;
  /** Sees the boot that gives the verdict before the IGD verdict is made; may throw. */
  readonly beforeVerdict?: (
    run: IgdRun,
    failedKvm: { readonly reason: string; readonly run: IgdRun } | undefined,
  ) => Promise<void> | void;
}

/** checkIgdAssignment with `hooks`. */
export async function checkIgdAssignmentWith(
  options: IgdCheckOptions,
  hooks: IgdBootHooks,
): Promise<IgdCheckResult> {
  const deviceId = normalizeDeviceId(options.deviceId);
  if (deviceId === null) {
    throw new TypeError(`Expected \`deviceId\` to be 1-4 hex digits, got \`${options.deviceId}\``);
  }
  if (!Number.isSafeInteger(options.bdsmSizeInBytes) || options.bdsmSizeInBytes < 0) {
    throw new TypeError(
      `Expected \`bdsmSizeInBytes\` to be a non-negative integer, got \`${String(options.bdsmSizeInBytes)}\``,
    );
  }
  const accelerator = options.accelerator ?? 'tcg';
  if (accelerator !== 'tcg' && accelerator !== 'kvm') {
    throw new TypeError(`Expected \`accelerator\` to be \`kvm\` or \`tcg\`, got \`${String(accelerator)}\``);
  }
  const settings = {
    timeoutMs: options.timeoutMs ?? 120_000,
    settleMs: options.settleMs ?? 300,
    pollIntervalMs: options.pollIntervalMs ?? 50,
    checkStolenZeroed: options.checkStolenZeroed ?? true,
  };
  const memoryMiB = options.memoryMiB ?? 512;
  checkPositiveOptions({
    timeoutMs: settings.timeoutMs,
    settleMs: settings.settleMs,
    pollIntervalMs: settings.pollIntervalMs,
    memoryMiB,
  });
  // The OpRegion must at least parse: a check around a broken one proves nothing.
  parseOpRegion(options.opRegion);
  const { signal, logger } = options;
  throwIfAborted(signal);
  const binary = await findQemu({ qemuPath: options.qemuPath, env: options.env ?? process.env });
  await checkReadableInput(options.codePath, 'OVMF code image');
  await checkReadableInput(options.varsPath, 'OVMF variable store');
  if (options.romPath !== undefined) await checkReadableInput(options.romPath, 'option ROM');

  const directory = await mkdtemp(path.join(options.tmpDir ?? os.tmpdir(), 'ovmf-build-igd-'));
  try {
    const plan = {
      codePath: path.resolve(options.codePath),
      varsPath: options.varsPath,
      ...(options.romPath === undefined ? {} : { romPath: path.resolve(options.romPath) }),
      deviceId,
      opRegion: options.opRegion,
      bdsmSizeInBytes: options.bdsmSizeInBytes,
      platform: options.platform,
      smm: options.smm === true,
      memoryMiB,
      directory,
      ...(options.keepLogsIn === undefined ? {} : { keepLogsIn: options.keepLogsIn }),
    };
    const { run, failedKvm } = await retryUnderTcg(
      accelerator,
      (attempt) => runIgdBoot(binary, { ...plan, accelerator: attempt }, settings, signal, logger),
      (first: IgdRun) => (first.outcome === 'kvm-failed' ? (first.kvmFailure ?? 'KVM failed') : undefined),
      hooks.onKvmFailure ??
        ((reason) => {
          logger?.warn({ reason }, 'IGD check: KVM failed; running it under TCG');
        }),
    );
    await hooks.beforeVerdict?.(run, failedKvm);
    const common = { durationMs: run.durationMs, deviceId, platform: options.platform.key, args: run.args };
    const failure = igdRunFailure(run, { timeoutMs: settings.timeoutMs, common, signal });
    if (failure !== undefined) throw failure;
    const evaluation = evaluateIgdCheck({
      traceText: run.traceText,
      debugText: run.debugText,
      registers: run.registers,
      memoryAtAsls: run.memoryAtAsls,
      ...(run.stolenZeroed === undefined ? {} : { stolenZeroed: run.stolenZeroed }),
      opRegion: options.opRegion,
      bdsmSizeInBytes: options.bdsmSizeInBytes,
      platform: options.platform,
      deviceId,
    });
    const failures = [...evaluation.failures];
    if (run.outcome === 'assert') {
      const assertion = ASSERT_RE.exec(run.debugText)?.[0].trim() ?? 'ASSERT';
      failures.unshift(`the firmware stopped at an assertion before the boot manager: ${assertion}`);
    }
    if (run.registers !== null && run.registers.id === 0xffff_ffff)
      failures.push('no device answers at 00:02.0');
    const result: IgdCheckResult = {
      passed: failures.length === 0,
      failures,
      info: [
        ...(failedKvm === undefined
          ? []
          : [`KVM failed (${failedKvm.reason}); the check ran again under TCG`]),
        ...(run.firstBootReset === undefined
          ? []
          : [
              run.firstBootReset.logged
                ? `the first boot (${run.firstBootReset.durationMs} ms) ended in BDS's warm reset to store the memory ` +
                  'type information, as an SMM build does once on a fresh VARS store when reserved memory (the ' +
                  'stolen memory) outgrows its bin; the second boot, from the VARS it wrote, is the one checked'
                : `the first boot (${run.firstBootReset.durationMs} ms) of this SMM build ended in a reset before the ` +
                  'boot manager, with nothing on the debug console (a RELEASE build does not say why); an SMM build ' +
                  'resets once on a fresh VARS store to store the memory type information, so the check booted ' +
                  'again from the VARS it wrote, and that second boot is the one checked',
            ]),
        ...evaluation.info,
      ],
      asls: evaluation.asls,
      bdsm: evaluation.bdsm,
      opRegionMatches: evaluation.opRegionMatches,
      vbtSource: evaluation.vbtSource,
      traceLines: evaluation.traceLines,
      debugLines: evaluation.debugLines,
      timeToAslsMs: run.timeToAslsMs,
      timeToBootManagerMs: run.timeToBootManagerMs,
      durationMs: run.durationMs,
      accelerator: run.accelerator,
      deviceId,
      platform: options.platform.key,
      mode: options.romPath === undefined ? 'embedded' : 'rom',
      registers: run.registers,
      qemu: { binary, args: run.args },
    };
    logger?.info(
      {
        passed: result.passed,
        asls: result.asls,
        bdsm: result.bdsm,
        vbtSource: result.vbtSource,
        durationMs: result.durationMs,
        failures,
      },
      'IGD check done',
    );
    return result;
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}
