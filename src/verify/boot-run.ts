// One boot of OVMF in QEMU for the boot check: QEMU runs until `[Bds] Entry` has appeared plus
// a short grace, or until something shows the boot cannot get there (an ASSERT, QEMU gone, a
// runaway or silent debug console, a stalled KVM, the time limit). What it watches for is
// decided in boot-verdict.ts; this file only runs QEMU and reads its consoles.
import type { Logger } from 'pino';
import { BDS_ENTRY_MARKER } from './debug-log.js';
import { findKvmStall } from './accel.js';
import { ASSERT_LINE_RE, SERIAL_BDS_RE, SERIAL_DEBUG_RE } from './boot-verdict.js';
import { buildQemuArgs, type QemuBootPlan } from './qemu.js';
import { drainLogs, GrowingFile, QemuProcess } from './qemu-process.js';

export type BootRunOutcome =
  'bds' | 'exited' | 'timeout' | 'no-debug-output' | 'too-large' | 'aborted' | 'assert' | 'kvm-failed';

export interface BootRun {
  readonly outcome: BootRunOutcome;
  readonly debugText: string;
  readonly serialText: string;
  readonly stderr: string;
  readonly exitCode: number | null;
  readonly exitSignal: NodeJS.Signals | null;
  readonly durationMs: number;
  readonly timeToBdsMs?: number;
  /** Why the KVM run was given up (outcome `kvm-failed`). */
  readonly kvmFailure?: string;
  /**
   * What showed a build without DEBUG output (outcome `no-debug-output`): the serial console
   * already showed the boot manager, or the debug console stayed silent for `noDebugOutputMs`.
   */
  readonly noDebugOutputBy?: 'serial-boot-manager' | 'silence';
  /**
   * How long QEMU had waited for a CPU when the silence limit was last checked
   * (QemuProcess.runQueueDelayMs); set once the wall clock passed `noDebugOutputMs`.
   */
  readonly heldBackMs?: number;
  /** The QEMU arguments of this run. */
  readonly args: readonly string[];
}

export interface BootRunSettings {
  readonly timeoutMs: number;
  readonly bdsGraceMs: number;
  readonly noDebugOutputMs: number;
  readonly pollIntervalMs: number;
  readonly maxLogBytes: number;
  readonly kvmNoOutputMs: number;
}

/**
 * Boots `plan` in `binary` and watches the debug and serial consoles. Throws E_BOOT_QEMU_MISSING
 * or E_BOOT_QEMU_FAILED when QEMU cannot be started; every other ending is an outcome.
 */
export async function runBoot(
  binary: string,
  plan: QemuBootPlan,
  settings: BootRunSettings,
  signal: AbortSignal | undefined,
  logger: Pick<Logger, 'info' | 'debug'> | undefined,
): Promise<BootRun> {
  const args = buildQemuArgs(plan);
  logger?.info({ binary, args }, `booting OVMF in QEMU (${plan.accelerator})`);
  const qemu = new QemuProcess(binary, args);
  const debugLog = new GrowingFile(plan.debugLogPath);
  const serialLog = new GrowingFile(plan.serialLogPath);
  let bdsSeenAt: number | undefined;
  let searchedUpTo = 0;
  let assertSeen = false;
  /** Start of the first line not yet searched for an ASSERT (an incomplete line is searched again). */
  let assertFrom = 0;
  let kvmFailure: string | undefined;
  let noDebugOutputBy: BootRun['noDebugOutputBy'];
  let heldBackMs: number | undefined;
  let outcome: BootRunOutcome | undefined;
  try {
    outcome = await qemu.pollUntil<BootRunOutcome>({
      logs: [debugLog, serialLog],
      pollIntervalMs: settings.pollIntervalMs,
      signal,
      decide: (elapsedMs) => {
        if (bdsSeenAt === undefined) {
          const debugText = debugLog.text;
          const from = Math.max(0, searchedUpTo - BDS_ENTRY_MARKER.length);
          if (debugText.includes(BDS_ENTRY_MARKER, from) || serialLog.text.includes(BDS_ENTRY_MARKER)) {
            bdsSeenAt = elapsedMs;
            logger?.debug({ timeToBdsMs: Math.round(elapsedMs) }, 'OVMF reached BDS');
          }
          searchedUpTo = debugText.length;
          assertSeen ||= ASSERT_LINE_RE.test(debugText.slice(assertFrom));
          assertFrom = debugText.lastIndexOf('\n') + 1;
        }
        if (plan.accelerator === 'kvm' && bdsSeenAt === undefined) {
          const silent =
            qemu.exit() === undefined && debugLog.sizeInBytes === 0 && serialLog.sizeInBytes === 0;
          kvmFailure = findKvmStall(qemu.stderr(), silent, elapsedMs, settings.kvmNoOutputMs);
        }
        if (kvmFailure !== undefined) return 'kvm-failed';
        if (bdsSeenAt === undefined && assertSeen) return 'assert';
        if (qemu.exit() !== undefined) return bdsSeenAt === undefined ? 'exited' : 'bds';
        if (bdsSeenAt !== undefined && elapsedMs - bdsSeenAt >= settings.bdsGraceMs) return 'bds';
        if (debugLog.sizeInBytes > settings.maxLogBytes) return 'too-large';
        if (debugLog.sizeInBytes === 0 && !SERIAL_DEBUG_RE.test(serialLog.text)) {
          // At every poll while silent: a wait shows within one poll (runQueueDelayMs).
          const heldBackNowMs = qemu.runQueueDelayMs();
          if (SERIAL_BDS_RE.test(serialLog.text)) noDebugOutputBy = 'serial-boot-manager';
          else if (elapsedMs >= settings.noDebugOutputMs) {
            // Silence counts the time QEMU could run: on a loaded machine a niced QEMU may wait
            // most of the limit for a CPU (a CI run at load ~8 gave Debian's RELEASE OVMF 30 s of
            // wall time that did not reach its boot manager), and a DEBUG build starved that long
            // has not been silent, only not run.
            heldBackMs = heldBackNowMs;
            if (elapsedMs - heldBackMs >= settings.noDebugOutputMs) noDebugOutputBy = 'silence';
          }
          if (noDebugOutputBy !== undefined) return 'no-debug-output';
        }
        return elapsedMs >= settings.timeoutMs ? 'timeout' : undefined;
      },
    });
  } finally {
    await qemu.stop();
    await drainLogs([debugLog, serialLog]);
  }
  qemu.throwIfStartFailed('E_BOOT_QEMU_FAILED');
  return {
    outcome: outcome ?? 'exited',
    debugText: debugLog.text,
    serialText: serialLog.text,
    stderr: qemu.stderr(),
    exitCode: qemu.exit()?.code ?? null,
    exitSignal: qemu.exit()?.signal ?? null,
    durationMs: qemu.durationMs(),
    ...(bdsSeenAt === undefined ? {} : { timeToBdsMs: Math.round(bdsSeenAt) }),
    ...(kvmFailure === undefined ? {} : { kvmFailure }),
    ...(noDebugOutputBy === undefined ? {} : { noDebugOutputBy }),
    ...(heldBackMs === undefined ? {} : { heldBackMs }),
    args,
  };
}
