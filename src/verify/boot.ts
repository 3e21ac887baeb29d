// Boot verification: start a built OVMF in QEMU and prove from its DEBUG log that the DXE
// dispatcher loaded our GOP driver and our policy driver and that the boot reached BDS
// (the check in BUILD-NOTES "Proving a driver loaded"). QEMU stops as soon as `[Bds] Entry`
// has appeared plus a short grace, so the shell's 5 s countdown is never waited for.
import { constants as fsConstants } from 'node:fs';
import { access, chmod, copyFile, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { userStateDir } from '../cache/paths.js';
import { AbortError, OvmfBuildError, throwIfAborted } from '../core/errors.js';
import { isGuidString } from '../core/guid.js';
import {
  BDS_ENTRY_MARKER,
  findLoadedDriver,
  parseDebugLog,
  splitLogLines,
  type DebugLogSummary,
} from './debug-log.js';
import {
  chooseAccelerator,
  findKvmFailure,
  isAccelMode,
  recordKvmBootFailure,
  type AccelMode,
  type SpawnProcess,
} from './accel.js';
import { VerificationError } from './errors.js';
import { DEFAULT_GOP_FILE_GUID, DEFAULT_POLICY_FILE_GUID } from './guids.js';
import {
  buildQemuArgs,
  findQemu,
  type QemuAccelerator,
  type QemuBootPlan,
  type QemuMachine,
} from './qemu.js';
import { GrowingFile, startQemu } from './qemu-process.js';

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
   * shows the boot manager), the build prints no DEBUG output: E_BOOT_NO_DEBUG_OUTPUT.
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

const LAST_LINES = 30;
/**
 * Text the boot manager prints on the serial console in every build, RELEASE included. A
 * BdsDxe line counts only once complete, so the last lines reported are whole lines.
 */
const SERIAL_BDS_RE = /BdsDxe: [^\n]*\n|Shell> |UEFI Interactive Shell/;
/**
 * A complete ASSERT line (PlatformDebugLibIoPort: "ASSERT <file>(<line>): <expression>"). A DEBUG
 * OVMF dead-loops after it (PcdDebugPropertyMask), so waiting for BDS would only run into the timeout.
 */
const ASSERT_LINE_RE = /^ASSERT [^\n]*\n/m;
/** DEBUG lines that show a DEBUG_ON_SERIAL_PORT build. */
const SERIAL_DEBUG_RE = /^Loading (?:driver|PEIM) /m;

function checkPositive(name: string, value: number | undefined): void {
  if (value !== undefined && (!Number.isFinite(value) || value <= 0)) {
    throw new TypeError(`Expected \`${name}\` to be a positive number, got \`${String(value)}\``);
  }
}

function checkGuid(name: string, value: string): void {
  if (!isGuidString(value)) throw new TypeError(`Expected \`${name}\` to be a GUID string, got \`${value}\``);
}

async function checkReadable(file: string, role: string): Promise<void> {
  try {
    await access(file, fsConstants.R_OK);
  } catch (error) {
    throw new OvmfBuildError(
      'E_INPUT_NOT_FOUND',
      `${role} ${file} does not exist or cannot be read`,
      { path: file },
      {
        cause: error,
      },
    );
  }
}

type RunOutcome =
  'bds' | 'exited' | 'timeout' | 'no-debug-output' | 'too-large' | 'aborted' | 'assert' | 'kvm-failed';

interface QemuRun {
  readonly outcome: RunOutcome;
  readonly debugText: string;
  readonly serialText: string;
  readonly stderr: string;
  readonly exitCode: number | null;
  readonly exitSignal: NodeJS.Signals | null;
  readonly durationMs: number;
  readonly timeToBdsMs?: number;
  /** Why the KVM run was given up (outcome `kvm-failed`). */
  readonly kvmFailure?: string;
}

interface RunSettings {
  readonly timeoutMs: number;
  readonly bdsGraceMs: number;
  readonly noDebugOutputMs: number;
  readonly pollIntervalMs: number;
  readonly maxLogBytes: number;
  readonly kvmNoOutputMs: number;
}

function lastLines(text: string, count = LAST_LINES): string[] {
  return splitLogLines(text).slice(-count);
}

/** The serial console carries the text console's ANSI escapes (colour, cursor moves). */
function withoutAnsi(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\x1b\[[0-9;=?]*[A-Za-z]/g, '');
}

async function runQemu(
  binary: string,
  args: readonly string[],
  plan: QemuBootPlan,
  settings: RunSettings,
  signal: AbortSignal | undefined,
  logger: BootLogger | undefined,
): Promise<QemuRun> {
  const qemu = startQemu(binary, args);
  const { child, exited, startedAt: started } = qemu;
  const debugLog = new GrowingFile(plan.debugLogPath);
  const serialLog = new GrowingFile(plan.serialLogPath);
  let bdsSeenAt: number | undefined;
  let outcome: RunOutcome | undefined;
  let searchedUpTo = 0;
  let assertSeen = false;
  /** Start of the first line not yet searched for an ASSERT (an incomplete line is searched again). */
  let assertFrom = 0;
  let kvmFailure: string | undefined;
  const watchKvm = plan.accelerator === 'kvm';
  const wake = new AbortController();
  const onAbort = (): void => wake.abort();
  signal?.addEventListener('abort', onAbort, { once: true });
  void exited.then(onAbort);
  try {
    while (outcome === undefined) {
      if (!wake.signal.aborted) {
        await sleep(settings.pollIntervalMs, undefined, { signal: wake.signal }).catch(() => undefined);
      }
      if (qemu.spawnError() !== undefined) break;
      await debugLog.poll();
      await serialLog.poll();
      const elapsedMs = performance.now() - started;
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
      if (watchKvm && bdsSeenAt === undefined) {
        // A failing KVM leaves QEMU running with the vCPU stopped: waiting for BDS would only
        // run into the timeout.
        kvmFailure = findKvmFailure(qemu.stderr());
        if (
          kvmFailure === undefined &&
          qemu.exit() === undefined &&
          debugLog.sizeInBytes === 0 &&
          serialLog.sizeInBytes === 0 &&
          elapsedMs >= settings.kvmNoOutputMs
        ) {
          kvmFailure = `no output on either console within ${settings.kvmNoOutputMs} ms (the vCPU stopped)`;
        }
      }
      if (signal?.aborted === true) outcome = 'aborted';
      else if (kvmFailure !== undefined) outcome = 'kvm-failed';
      else if (bdsSeenAt === undefined && assertSeen) outcome = 'assert';
      else if (qemu.exit() !== undefined) outcome = bdsSeenAt === undefined ? 'exited' : 'bds';
      else if (bdsSeenAt !== undefined && elapsedMs - bdsSeenAt >= settings.bdsGraceMs) outcome = 'bds';
      else if (debugLog.sizeInBytes > settings.maxLogBytes) outcome = 'too-large';
      else if (
        debugLog.sizeInBytes === 0 &&
        !SERIAL_DEBUG_RE.test(serialLog.text) &&
        (SERIAL_BDS_RE.test(serialLog.text) || elapsedMs >= settings.noDebugOutputMs)
      ) {
        outcome = 'no-debug-output';
      } else if (elapsedMs >= settings.timeoutMs) outcome = 'timeout';
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
    if (qemu.exit() === undefined && qemu.spawnError() === undefined) {
      child.kill('SIGKILL');
      await exited;
    }
    await debugLog.poll().catch(() => undefined);
    await serialLog.poll().catch(() => undefined);
    await debugLog.close();
    await serialLog.close();
  }
  const spawnError = qemu.spawnError();
  if (spawnError !== undefined) {
    const code = (spawnError as NodeJS.ErrnoException).code;
    throw new OvmfBuildError(
      code === 'ENOENT' ? 'E_BOOT_QEMU_MISSING' : 'E_BOOT_QEMU_FAILED',
      `cannot start ${binary}: ${spawnError.message}`,
      { binary, errno: code },
      { cause: spawnError },
    );
  }
  return {
    outcome: outcome ?? 'exited',
    debugText: debugLog.text,
    serialText: serialLog.text,
    stderr: qemu.stderr(),
    exitCode: qemu.exit()?.code ?? null,
    exitSignal: qemu.exit()?.signal ?? null,
    durationMs: Math.round((qemu.endedAt() ?? performance.now()) - started),
    ...(bdsSeenAt === undefined ? {} : { timeToBdsMs: Math.round(bdsSeenAt) }),
    ...(kvmFailure === undefined ? {} : { kvmFailure }),
  };
}

async function keepLog(target: string, text: string): Promise<void> {
  const temporary = `${target}.${process.pid}.tmp`;
  await writeFile(temporary, text, 'latin1');
  await rename(temporary, target);
}

/**
 * Boots OVMF_CODE + a copy of OVMF_VARS in QEMU and checks the DEBUG log. Returns the
 * verdict (`passed: false` with `failures` when a driver did not load or BDS was not
 * reached); throws VerificationError E_BOOT_NO_DEBUG_OUTPUT (RELEASE build),
 * E_BOOT_TIMEOUT, E_BOOT_QEMU_FAILED, E_BOOT_LOG_TOO_LARGE, OvmfBuildError
 * E_BOOT_QEMU_MISSING / E_INPUT_NOT_FOUND, or AbortError. The temp dir is removed on
 * every path.
 */
export async function verifyBoot(options: VerifyBootOptions): Promise<BootVerification> {
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
  const settings: RunSettings = {
    timeoutMs: options.timeoutMs ?? DEFAULTS.timeoutMs,
    bdsGraceMs: options.bdsGraceMs ?? DEFAULTS.bdsGraceMs,
    noDebugOutputMs: options.noDebugOutputMs ?? DEFAULTS.noDebugOutputMs,
    pollIntervalMs: options.pollIntervalMs ?? DEFAULTS.pollIntervalMs,
    maxLogBytes: options.maxLogBytes ?? DEFAULTS.maxLogBytes,
    kvmNoOutputMs: options.kvmNoOutputMs ?? DEFAULTS.kvmNoOutputMs,
  };
  for (const [name, value] of Object.entries(settings)) checkPositive(name, value);
  checkPositive('memoryMiB', options.memoryMiB);
  const mode = options.accel ?? 'auto';
  if (!isAccelMode(mode)) {
    throw new TypeError(`Expected \`accel\` to be \`auto\`, \`kvm\` or \`tcg\`, got \`${String(mode)}\``);
  }
  const { signal, logger } = options;
  throwIfAborted(signal);

  const binary = await findQemu({ qemuPath: options.qemuPath, env: options.env ?? process.env });
  await checkReadable(options.codePath, 'OVMF code image');
  await checkReadable(options.varsPath, 'OVMF variable store');
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
  const directory = await mkdtemp(path.join(options.tmpDir ?? os.tmpdir(), 'ovmf-build-boot-'));
  try {
    // Each attempt gets its own vars copy and logs: a failed KVM boot may have written to them.
    const attempt = async (accelerator: QemuAccelerator): Promise<{ run: QemuRun; args: string[] }> => {
      const plan: QemuBootPlan = {
        codePath: path.resolve(options.codePath),
        varsPath: path.join(directory, `OVMF_VARS.${accelerator}.fd`),
        debugLogPath: path.join(directory, `debug.${accelerator}.log`),
        serialLogPath: path.join(directory, `serial.${accelerator}.log`),
        machine,
        smm: options.smm ?? options.secureBoot ?? false,
        accelerator,
        memoryMiB: options.memoryMiB ?? DEFAULTS.memoryMiB,
      };
      await copyFile(options.varsPath, plan.varsPath);
      // The copy of a read-only input (as in the corpus) must be writable for pflash unit 1.
      await chmod(plan.varsPath, 0o600);
      const planArgs = buildQemuArgs(plan);
      logger?.info(
        { binary, args: planArgs, reason: choice.reason },
        `booting OVMF in QEMU (${accelerator})`,
      );
      return { run: await runQemu(binary, planArgs, plan, settings, signal, logger), args: planArgs };
    };
    let accel: BootAccelerator = {
      accelerator: choice.accelerator,
      reason: choice.reason,
      ...(choice.probeMs === undefined ? {} : { probeMs: choice.probeMs }),
    };
    let { run, args } = await attempt(choice.accelerator);
    if (run.outcome === 'kvm-failed') {
      const why = run.kvmFailure ?? 'KVM failed';
      if (mode === 'kvm') {
        throw new VerificationError(
          'E_BOOT_KVM_FAILED',
          `KVM failed during the boot check (forced by --accel kvm): ${why}; use --accel auto or --accel tcg`,
          { reason: why, durationMs: run.durationMs, stderr: run.stderr, args },
        );
      }
      logger?.warn(
        { reason: why, durationMs: run.durationMs },
        'KVM failed during the boot check; retrying under TCG',
      );
      if (choice.verdictKey !== undefined) {
        await recordKvmBootFailure(stateDir, choice.verdictKey, why).catch((error: unknown) => {
          logger?.warn({ error: String(error) }, 'could not record the KVM failure');
        });
      }
      accel = {
        accelerator: 'tcg',
        reason: `kvm failed during the boot check: ${why}; retried under tcg`,
        ...(choice.probeMs === undefined ? {} : { probeMs: choice.probeMs }),
        failedKvmBootMs: run.durationMs,
      };
      ({ run, args } = await attempt('tcg'));
    }
    const useSerial = run.debugText.length === 0 && SERIAL_DEBUG_RE.test(run.serialText);
    const logText = useSerial ? run.serialText : run.debugText;
    let logPath: string | undefined;
    if (options.logPath !== undefined && logText.length > 0) {
      await keepLog(options.logPath, logText);
      logPath = options.logPath;
    }
    const common = { durationMs: run.durationMs, ...(logPath === undefined ? {} : { logPath }) };
    switch (run.outcome) {
      case 'aborted':
        throw new AbortError(`boot verification aborted: ${String(signal?.reason ?? 'signal')}`, common, {
          cause: signal?.reason,
        });
      case 'no-debug-output':
        throw new VerificationError(
          'E_BOOT_NO_DEBUG_OUTPUT',
          'the OVMF wrote nothing to the debug console (port 0x402): a RELEASE build cannot prove which drivers ' +
            'loaded; build with target DEBUG to verify by booting',
          {
            ...common,
            accel,
            serialReachedBds: SERIAL_BDS_RE.test(run.serialText),
            serialLastLines: lastLines(withoutAnsi(run.serialText), 10),
          },
        );
      case 'assert': {
        const assertion = ASSERT_LINE_RE.exec(logText)?.[0].trim() ?? 'ASSERT';
        throw new VerificationError(
          'E_BOOT_ASSERT',
          `the OVMF stopped at an assertion before BDS: ${assertion}; last log lines:\n${lastLines(logText, 10).join('\n')}`,
          { ...common, accel, assertion, lastLines: lastLines(logText), args },
        );
      }
      case 'timeout':
        throw new VerificationError(
          'E_BOOT_TIMEOUT',
          `the OVMF did not reach BDS within ${settings.timeoutMs} ms; last log lines:\n${lastLines(logText, 10).join('\n')}`,
          { ...common, accel, timeoutMs: settings.timeoutMs, lastLines: lastLines(logText) },
        );
      case 'too-large':
        throw new VerificationError(
          'E_BOOT_LOG_TOO_LARGE',
          `the debug log grew past ${settings.maxLogBytes} bytes before BDS`,
          { ...common, accel, maxLogBytes: settings.maxLogBytes, lastLines: lastLines(logText) },
        );
      case 'exited':
        throw new VerificationError(
          'E_BOOT_QEMU_FAILED',
          `QEMU exited (code ${String(run.exitCode)}, signal ${String(run.exitSignal)}) before the OVMF reached BDS` +
            (run.stderr.trim().length > 0 ? `: ${run.stderr.trim()}` : ''),
          {
            ...common,
            accel,
            exitCode: run.exitCode,
            signal: run.exitSignal,
            stderr: run.stderr,
            lastLines: lastLines(logText),
            args,
          },
        );
      case 'kvm-failed':
        // Only the first attempt runs under KVM; the retry runs under TCG.
        throw new VerificationError(
          'E_BOOT_KVM_FAILED',
          `KVM failed during the boot check: ${String(run.kvmFailure)}`,
          {
            ...common,
            accel,
            reason: run.kvmFailure,
          },
        );
      case 'bds':
        break;
    }
    const summary = parseDebugLog(logText);
    const evaluation = evaluateBootLog(
      summary,
      [
        { role: 'GOP driver', guid: gopFileGuid },
        { role: 'policy driver', guid: policyFileGuid },
        ...(igdAssignmentFileGuid === undefined
          ? []
          : [{ role: 'IGD assignment driver', guid: igdAssignmentFileGuid }]),
      ],
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
      logSource: useSerial ? 'serial' : 'debugcon',
      summary,
      qemu: { binary, args },
      accel,
    };
    logger?.info(
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
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}
