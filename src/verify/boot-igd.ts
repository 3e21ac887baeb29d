// One QEMU boot for the boot check and the IGD check's embedded mode (issues 10 and 11): both
// boot the same DEBUG OVMF with the same machine, SMM and memory, so the embedded-mode boot's
// debug log gives the boot check's verdict too and the verify stage saves a whole TCG boot per
// job. The boot check's rules stay its own: its accelerator choice (the KVM probe, a forced KVM
// that fails is E_BOOT_KVM_FAILED, a KVM failure is recorded), its verdict (boot-verdict.ts via
// boot.ts's bootVerdictOf) and its codes, checked before the IGD verdict, as when it ran first.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { assertBootPassed, bootVerdictOf, onBootKvmFailure, prepareBootCheck } from './boot.js';
import type { AccelMode } from './accel.js';
import type { BootVerification } from './boot.js';
import type { BootRun, BootRunOutcome } from './boot-run.js';
import { SERIAL_DEBUG_RE } from './boot-verdict.js';
import { BDS_ENTRY_MARKER } from './debug-log.js';
import { verifyIgdModesWith, type IgdVerification, type IgdVerifyRequest } from './igd-modes.js';
import { IGD_MAX_LOG_BYTES, type IgdRun } from './igd-run.js';

export interface BootAndIgdRequest extends Omit<IgdVerifyRequest, 'accelerator' | 'smm'> {
  /** The build has secure boot: boot with SMM, as the boot check does. */
  readonly secureBoot: boolean;
  /** The policy driver's `VBT found, <n> bytes` line must report this size. */
  readonly vbtSizeInBytes: number;
  /** FILE_GUID of the IGD assignment driver the boot check requires too. */
  readonly igdAssignmentFileGuid: string;
  /**
   * The boot check's accelerator mode; ROM mode uses the accelerator it chooses.
   * @default 'auto'
   */
  readonly accel?: AccelMode;
}

export interface BootAndIgdResult {
  /** The boot check's verdict, from the embedded-mode boot. */
  readonly boot: BootVerification;
  readonly igd: IgdVerification;
}

/**
 * The boot check's view of an embedded-mode boot: the outcome runBoot would have ended with on
 * the same consoles. That boot runs on past BDS to the boot manager, so a log that shows
 * `[Bds] Entry` is judged by the verdict (drivers, ASSERTs after BDS); one that does not is an
 * ASSERT, QEMU gone, a silent debug console, a runaway log, or the time limit.
 */
export function bootRunOfIgdRun(run: IgdRun): BootRun {
  const reachedBds =
    run.timeToBdsMs !== null ||
    run.debugText.includes(BDS_ENTRY_MARKER) ||
    run.serialText.includes(BDS_ENTRY_MARKER);
  let outcome: BootRunOutcome;
  if (run.outcome === 'aborted' || run.outcome === 'kvm-failed') outcome = run.outcome;
  else if (reachedBds) outcome = 'bds';
  else if (run.outcome === 'assert' || run.outcome === 'exited') outcome = run.outcome;
  else if (run.debugText.length === 0 && !SERIAL_DEBUG_RE.test(run.serialText)) outcome = 'no-debug-output';
  else if (run.debugText.length >= IGD_MAX_LOG_BYTES) outcome = 'too-large';
  else outcome = 'timeout';
  return {
    outcome,
    debugText: run.debugText,
    serialText: run.serialText,
    stderr: run.stderr,
    exitCode: run.exit?.code ?? null,
    exitSignal: run.exit?.signal ?? null,
    durationMs: run.durationMs,
    ...(run.timeToBdsMs === null ? {} : { timeToBdsMs: run.timeToBdsMs }),
    ...(run.kvmFailure === undefined ? {} : { kvmFailure: run.kvmFailure }),
    args: run.args,
  };
}

/**
 * The boot check and the IGD check (embedded and ROM mode) with one boot of the built firmware.
 * Throws the boot check's coded errors first (E_BOOT_CHECK_FAILED when a driver did not load,
 * E_BOOT_ASSERT, E_BOOT_TIMEOUT, E_BOOT_KVM_FAILED, ...; see verifyBoot), then the IGD check's;
 * a failed IGD verdict is returned for assertIgdVerificationPassed, as verifyIgdModes does.
 */
export async function verifyBootAndIgdModes(request: BootAndIgdRequest): Promise<BootAndIgdResult> {
  const { signal, logger } = request;
  const directory = await mkdtemp(path.join(request.tmpDir ?? os.tmpdir(), 'ovmf-build-boot-igd-'));
  try {
    const codePath = path.join(directory, 'OVMF_CODE.fd');
    const varsPath = path.join(directory, 'OVMF_VARS.fd');
    await writeFile(codePath, request.code);
    await writeFile(varsPath, request.vars);
    const options = {
      codePath,
      varsPath,
      igdAssignmentFileGuid: request.igdAssignmentFileGuid,
      secureBoot: request.secureBoot,
      vbtSizeInBytes: request.vbtSizeInBytes,
      accel: request.accel ?? 'auto',
      ...(request.tmpDir === undefined ? {} : { tmpDir: request.tmpDir }),
      ...(request.env === undefined ? {} : { env: request.env }),
      ...(signal === undefined ? {} : { signal }),
      ...(logger === undefined ? {} : { logger }),
    };
    const setup = await prepareBootCheck(options);
    const kvmFailed = onBootKvmFailure(setup, logger);
    let boot: BootVerification | undefined;
    const igd = await verifyIgdModesWith(
      // Not nested in `directory`: QEMU's QMP socket path must stay under 108 bytes (sun_path).
      { ...request, accelerator: setup.choice.accelerator, smm: setup.smm },
      {
        onKvmFailure: (reason, run) => kvmFailed(reason, run),
        beforeVerdict: async (run, failedKvm) => {
          boot = await bootVerdictOf(bootRunOfIgdRun(run), failedKvm, setup, options);
          assertBootPassed(boot);
        },
      },
    );
    if (boot === undefined) throw new Error('the embedded-mode boot gave no boot verdict (a bug)');
    return { boot, igd };
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}
