// The boot check's verdict, pure: what the consoles of one boot say (BDS reached, an ASSERT, a
// RELEASE build's silence, DEBUG output on the serial port), which error a boot that never got
// to BDS is, and whether the DEBUG log of a boot that did proves our drivers loaded (the check
// in BUILD-NOTES "Proving a driver loaded").
import type { OvmfBuildError } from '../core/errors.js';
import { BDS_ENTRY_MARKER, findLoadedDriver, lastLogLines, type DebugLogSummary } from './debug-log.js';
import type { BootRun, BootRunSettings } from './boot-run.js';
import { runAbortedError, VerificationError } from './errors.js';

/**
 * Text the boot manager prints on the serial console in every build, RELEASE included. A
 * BdsDxe line counts only once complete, so the last lines reported are whole lines.
 */
export const SERIAL_BDS_RE = /BdsDxe: [^\n]*\n|Shell> |UEFI Interactive Shell/;
/**
 * A complete ASSERT line (PlatformDebugLibIoPort: "ASSERT <file>(<line>): <expression>"). A DEBUG
 * OVMF dead-loops after it (PcdDebugPropertyMask), so waiting for BDS would only run into the timeout.
 */
export const ASSERT_LINE_RE = /^ASSERT [^\n]*\n/m;
/** DEBUG lines that show a DEBUG_ON_SERIAL_PORT build. */
export const SERIAL_DEBUG_RE = /^Loading (?:driver|PEIM) /m;

const LAST_LINES = 30;

/** The serial console carries the text console's ANSI escapes (colour, cursor moves). */
function withoutAnsi(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\x1b\[[0-9;=?]*[A-Za-z]/g, '');
}

/** The console that carried the DEBUG output: 0x402, or the serial port of a DEBUG_ON_SERIAL_PORT build. */
export function bootLogOf(run: Pick<BootRun, 'debugText' | 'serialText'>): {
  readonly text: string;
  readonly source: 'debugcon' | 'serial';
} {
  return run.debugText.length === 0 && SERIAL_DEBUG_RE.test(run.serialText)
    ? { text: run.serialText, source: 'serial' }
    : { text: run.debugText, source: 'debugcon' };
}

export interface BootFailureContext {
  readonly settings: Pick<BootRunSettings, 'timeoutMs' | 'maxLogBytes'>;
  /** Fields every error carries: duration, the kept log's path. */
  readonly common: Readonly<Record<string, unknown>>;
  /** The accelerator of the run and why (BootAccelerator). */
  readonly accel: unknown;
  readonly signal?: AbortSignal | undefined;
}

/**
 * The error for a boot that did not reach BDS (E_BOOT_NO_DEBUG_OUTPUT for a RELEASE build,
 * E_BOOT_ASSERT, E_BOOT_TIMEOUT, E_BOOT_LOG_TOO_LARGE, E_BOOT_QEMU_FAILED, E_BOOT_KVM_FAILED,
 * AbortError), or undefined when it did.
 */
export function bootRunFailure(run: BootRun, context: BootFailureContext): OvmfBuildError | undefined {
  const { common, accel, settings, signal } = context;
  const { args } = run;
  const logText = bootLogOf(run).text;
  switch (run.outcome) {
    case 'aborted':
      return runAbortedError('boot verification', signal, common);
    case 'no-debug-output':
      return new VerificationError(
        'E_BOOT_NO_DEBUG_OUTPUT',
        'the OVMF wrote nothing to the debug console (port 0x402): a RELEASE build cannot prove which drivers ' +
          'loaded; build with target DEBUG to verify by booting',
        {
          ...common,
          accel,
          detectedBy: run.noDebugOutputBy,
          ...(run.heldBackMs === undefined ? {} : { heldBackMs: run.heldBackMs }),
          serialReachedBds: SERIAL_BDS_RE.test(run.serialText),
          serialLastLines: lastLogLines(withoutAnsi(run.serialText), 10),
        },
      );
    case 'assert': {
      const assertion = ASSERT_LINE_RE.exec(logText)?.[0].trim() ?? 'ASSERT';
      return new VerificationError(
        'E_BOOT_ASSERT',
        `the OVMF stopped at an assertion before BDS: ${assertion}; last log lines:\n${lastLogLines(logText, 10).join('\n')}`,
        { ...common, accel, assertion, lastLines: lastLogLines(logText, LAST_LINES), args },
      );
    }
    case 'timeout':
      return new VerificationError(
        'E_BOOT_TIMEOUT',
        `the OVMF did not reach BDS within ${settings.timeoutMs} ms; last log lines:\n${lastLogLines(logText, 10).join('\n')}`,
        { ...common, accel, timeoutMs: settings.timeoutMs, lastLines: lastLogLines(logText, LAST_LINES) },
      );
    case 'too-large':
      return new VerificationError(
        'E_BOOT_LOG_TOO_LARGE',
        `the debug log grew past ${settings.maxLogBytes} bytes before BDS`,
        { ...common, accel, maxLogBytes: settings.maxLogBytes, lastLines: lastLogLines(logText, LAST_LINES) },
      );
    case 'exited':
      return new VerificationError(
        'E_BOOT_QEMU_FAILED',
        `QEMU exited (code ${String(run.exitCode)}, signal ${String(run.exitSignal)}) before the OVMF reached BDS` +
          (run.stderr.trim().length > 0 ? `: ${run.stderr.trim()}` : ''),
        {
          ...common,
          accel,
          exitCode: run.exitCode,
          signal: run.exitSignal,
          stderr: run.stderr,
          lastLines: lastLogLines(logText, LAST_LINES),
          args,
        },
      );
    case 'kvm-failed':
      // Only a KVM run watches for KVM failures, and a failed one is retried under TCG.
      return new VerificationError(
        'E_BOOT_KVM_FAILED',
        `KVM failed during the boot check: ${String(run.kvmFailure)}`,
        {
          ...common,
          accel,
          reason: run.kvmFailure,
        },
      );
    case 'bds':
      return undefined;
  }
}

export interface ExpectedDriver {
  /** Used in messages: `GOP driver`, `policy driver`. */
  readonly role: string;
  readonly guid: string;
}

export interface BootEvaluation {
  readonly passed: boolean;
  readonly failures: string[];
  readonly info: string[];
}

/**
 * The verdict on a parsed log: each expected driver was dispatched, its image loaded and
 * did not fail to start, nothing ASSERTed, BDS was reached, and our policy driver (when
 * it printed its VBT line) found the VBT of the expected size.
 */
export function evaluateBootLog(
  summary: DebugLogSummary,
  expected: readonly ExpectedDriver[],
  options: { readonly vbtSizeInBytes?: number } = {},
): BootEvaluation {
  const failures: string[] = [];
  const info: string[] = [];
  const ours = new Set(expected.map((driver) => driver.guid.toUpperCase()));
  for (const { role, guid } of expected) {
    const wanted = guid.toUpperCase();
    const loaded = findLoadedDriver(summary, wanted);
    if (loaded === undefined) {
      failures.push(`${role} ${wanted} was not dispatched: no "Loading driver ${wanted}" line`);
    } else if (loaded.imageBase === undefined && summary.imageLoadLineCount > 0) {
      failures.push(`${role} ${wanted} was dispatched (line ${loaded.line}) but its image did not load`);
    }
    for (const entry of summary.notLoaded.filter((item) => item.guid === wanted)) {
      failures.push(`${role} ${wanted} was discovered but not loaded (line ${entry.line})`);
    }
    for (const entry of summary.startFailures.filter((item) => item.guid === wanted)) {
      failures.push(`${role} ${wanted} failed to start: ${entry.status} (line ${entry.line})`);
    }
  }
  for (const entry of summary.asserts) failures.push(`ASSERT at line ${entry.line}: ${entry.text}`);
  if (!summary.reachedBds) failures.push(`the boot did not reach BDS: no "${BDS_ENTRY_MARKER}" line`);
  const vbt = summary.policyVbt;
  if (vbt !== undefined && !vbt.found) {
    failures.push(`the policy driver did not find VBT file ${vbt.guid}: ${vbt.status} (line ${vbt.line})`);
  } else if (
    vbt !== undefined &&
    options.vbtSizeInBytes !== undefined &&
    vbt.sizeInBytes !== options.vbtSizeInBytes
  ) {
    failures.push(
      `the policy driver found a VBT of ${vbt.sizeInBytes} bytes, expected ${options.vbtSizeInBytes} (line ${vbt.line})`,
    );
  }
  for (const entry of summary.notLoaded.filter((item) => !ours.has(item.guid))) {
    info.push(
      `${entry.smm ? 'SMM driver' : 'driver'} ${entry.guid} was discovered but not loaded (line ${entry.line})`,
    );
  }
  for (const entry of summary.startFailures.filter(
    (item) => item.guid === undefined || !ours.has(item.guid),
  )) {
    info.push(
      `image ${entry.guid ?? `at 0x${entry.imageBase}`} failed to start: ${entry.status} (line ${entry.line})`,
    );
  }
  if (vbt?.found === true)
    info.push(`policy driver: VBT found, ${vbt.sizeInBytes} bytes, signature "${vbt.signature}"`);
  return { passed: failures.length === 0, failures, info };
}
