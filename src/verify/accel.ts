// Which accelerator the boot check runs QEMU under, and why. KVM is fast, but a host can
// offer a /dev/kvm that opens fine and then cannot run OVMF: QEMU prints "KVM internal error.
// Suberror: 1 ... emulation failure" and leaves the vCPU stopped without exiting (BUILD-NOTES,
// "QEMU on these machines"). So KVM is used only after a tiny firmware reached its marker
// under it; the verdict is kept per QEMU binary, QEMU version and kernel release, so the
// probe is paid once per host.
import { constants as fsConstants } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { AbortError, throwIfAborted } from '../core/errors.js';
import { VerificationError } from './errors.js';
import { buildQemuArgs, type QemuAccelerator } from './qemu.js';
import { drainLogs, GrowingFile, QemuProcess, type SpawnProcess } from './qemu-process.js';
import { buildTinyFirmware } from './tiny-firmware.js';

/** `--accel`: `auto` probes KVM once per host and falls back to TCG; the others force one. */
export type AccelMode = 'auto' | 'kvm' | 'tcg';
export const ACCEL_MODES: readonly AccelMode[] = ['auto', 'kvm', 'tcg'];

export function isAccelMode(value: unknown): value is AccelMode {
  return typeof value === 'string' && (ACCEL_MODES as readonly string[]).includes(value);
}

export type AccelLogger = Pick<Logger, 'info' | 'debug' | 'warn'>;

export const DEFAULT_KVM_DEVICE = '/dev/kvm';
/** File in the user state dir that keeps the last probe verdict. */
export const KVM_VERDICT_FILE = 'kvm-probe.json';
const VERDICT_FORMAT_VERSION = 1;
/** What the probe firmware writes on the debug console once it runs. */
export const KVM_PROBE_MARKER = 'ovmf-build KVM probe: running';

/**
 * What findKvmFailure answers when QEMU refused `smm=on` under KVM (target/i386/kvm/kvm.c,
 * kvm_arch_init: "System Management Mode not supported by this hypervisor.", then exit 1).
 * It says nothing about KVM for a boot without SMM, so the boot check retries that one boot
 * under TCG without recording a verdict against KVM.
 */
export const KVM_NO_SMM = 'KVM offers no System Management Mode (smm=on)';

/**
 * The KVM failure QEMU reports on stderr, as a short reason, or undefined. Texts from QEMU 7.2
 * accel/kvm/kvm-all.c: kvm_init ("Could not access KVM kernel module", "failed to initialize
 * kvm"), kvm_handle_internal_error ("KVM internal error. Suberror: %d", then "emulation
 * failure" for KVM_INTERNAL_ERROR_EMULATION), kvm_cpu_exec ("error: kvm run failed") and the
 * x86 hardware entry failure ("KVM: entry failed, hardware error 0x%x"); and from
 * target/i386/kvm/kvm.c, a KVM without SMM (KVM_NO_SMM).
 */
export function findKvmFailure(stderr: string): string | undefined {
  const internal = /KVM internal error\. Suberror: (\d+)/.exec(stderr);
  if (internal !== null) {
    // Suberror 1 is KVM_INTERNAL_ERROR_EMULATION (linux/kvm.h), which QEMU then prints as
    // "emulation failure": read from the number, the reason does not depend on whether that
    // later line had arrived when stderr was read (a probe and a boot read it mid-stream).
    if (internal[1] === '1' || /^emulation failure\s*$/m.test(stderr)) return 'emulation failure';
    return `KVM internal error, suberror ${internal[1] ?? '?'}`;
  }
  const entry = /KVM: entry failed, hardware error (0x[0-9a-f]+)/i.exec(stderr);
  if (entry !== null) return `KVM entry failed, hardware error ${entry[1] ?? '?'}`;
  const run = /kvm run failed ([^\n]*)/.exec(stderr);
  if (run !== null) return `kvm run failed: ${(run[1] ?? '').trim()}`;
  const module = /Could not access KVM kernel module: ([^\n]*)/.exec(stderr);
  if (module !== null) return `could not access the KVM kernel module: ${(module[1] ?? '').trim()}`;
  const init = /failed to initialize kvm: ([^\n]*)/i.exec(stderr);
  if (init !== null) return `failed to initialize kvm: ${(init[1] ?? '').trim()}`;
  if (/System Management Mode not supported by this hypervisor/.test(stderr)) return KVM_NO_SMM;
  return undefined;
}

/**
 * Why a run under KVM is to be given up, or undefined: a KVM failure on stderr, or no output at
 * all (`silent`) after `noOutputMs`. A failing KVM leaves QEMU running with the vCPU stopped, and
 * a working one prints SEC's first lines within milliseconds (BUILD-NOTES, "QEMU on these
 * machines"), so waiting for the boot would only run into the timeout.
 */
export function findKvmStall(
  stderr: string,
  silent: boolean,
  elapsedMs: number,
  noOutputMs: number,
): string | undefined {
  const failure = findKvmFailure(stderr);
  if (failure !== undefined || !silent || elapsedMs < noOutputMs) return failure;
  return `no output on either console within ${noOutputMs} ms (the vCPU stopped)`;
}

export interface TcgRetry<R> {
  /** The run that gave the verdict. */
  readonly run: R;
  /** The KVM run given up before it, and why. */
  readonly failedKvm?: { readonly reason: string; readonly run: R };
}

/**
 * Runs `attempt` under `accelerator`; when that was KVM and `kvmFailureOf` says KVM failed,
 * `onKvmFailure` runs (it records the failure, or throws to refuse the retry when KVM was
 * forced) and the attempt runs once more under TCG. The one retry of the boot check and the
 * IGD check.
 */
export async function retryUnderTcg<R>(
  accelerator: QemuAccelerator,
  attempt: (accelerator: QemuAccelerator) => Promise<R>,
  kvmFailureOf: (run: R) => string | undefined,
  onKvmFailure: (reason: string, run: R) => Promise<void> | void,
): Promise<TcgRetry<R>> {
  const first = await attempt(accelerator);
  const reason = accelerator === 'kvm' ? kvmFailureOf(first) : undefined;
  if (reason === undefined) return { run: first };
  await onKvmFailure(reason, first);
  return { run: await attempt('tcg'), failedKvm: { reason, run: first } };
}

export type KvmDeviceCheck = { readonly usable: true } | { readonly usable: false; readonly reason: string };

/** Whether the KVM device opens read-write and is a character device (what QEMU's kvm_init needs). */
export async function checkKvmDevice(device: string = DEFAULT_KVM_DEVICE): Promise<KvmDeviceCheck> {
  let handle;
  try {
    // O_NONBLOCK: whatever the path is (a FIFO, say), opening it must not wait.
    handle = await open(device, fsConstants.O_RDWR | fsConstants.O_NONBLOCK | fsConstants.O_NOCTTY);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    return { usable: false, reason: code === 'ENOENT' ? `no ${device}` : `cannot open ${device}: ${code}` };
  }
  try {
    const info = await handle.stat();
    if (!info.isCharacterDevice()) return { usable: false, reason: `${device} is not a character device` };
    return { usable: true };
  } finally {
    await handle.close();
  }
}

/** What a verdict is valid for: another QEMU build or another kernel may behave otherwise. */
export interface KvmVerdictKey {
  readonly qemuBinary: string;
  readonly qemuVersion: string;
  readonly kernelRelease: string;
  readonly kvmDevice: string;
}

/** The QEMU binary as it was when its version was read: while it is unchanged, the version is too. */
export interface BinaryIdentity {
  readonly sizeInBytes: number;
  readonly mtimeMs: number;
  readonly inode: number;
}

export interface KvmVerdict {
  readonly formatVersion: number;
  readonly key: KvmVerdictKey;
  readonly binary: BinaryIdentity;
  readonly kvmWorks: boolean;
  /** Why KVM does not work (empty when it does). */
  readonly reason: string;
  /** `probe`, or `boot-check` when KVM passed the probe and then failed during a real boot. */
  readonly from: 'probe' | 'boot-check';
  readonly probedAt: string;
  readonly probeMs: number;
}

async function binaryIdentity(file: string): Promise<BinaryIdentity> {
  const info = await stat(file);
  return { sizeInBytes: info.size, mtimeMs: info.mtimeMs, inode: info.ino };
}

function sameBinary(a: BinaryIdentity, b: BinaryIdentity): boolean {
  return a.sizeInBytes === b.sizeInBytes && a.mtimeMs === b.mtimeMs && a.inode === b.inode;
}

function sameKey(a: KvmVerdictKey, b: KvmVerdictKey): boolean {
  return (
    a.qemuBinary === b.qemuBinary &&
    a.qemuVersion === b.qemuVersion &&
    a.kernelRelease === b.kernelRelease &&
    a.kvmDevice === b.kvmDevice
  );
}

/** The stored verdict, or undefined when there is none or it cannot be read (a probe then runs again). */
export async function readKvmVerdict(stateDir: string): Promise<KvmVerdict | undefined> {
  try {
    const value = JSON.parse(await readFile(path.join(stateDir, KVM_VERDICT_FILE), 'utf8')) as unknown;
    if (typeof value !== 'object' || value === null) return undefined;
    const verdict = value as Partial<KvmVerdict>;
    const key = verdict.key as Partial<KvmVerdictKey> | undefined;
    if (
      verdict.formatVersion !== VERDICT_FORMAT_VERSION ||
      typeof verdict.kvmWorks !== 'boolean' ||
      typeof verdict.reason !== 'string' ||
      typeof key?.qemuBinary !== 'string' ||
      typeof key.qemuVersion !== 'string' ||
      typeof key.kernelRelease !== 'string' ||
      typeof key.kvmDevice !== 'string' ||
      typeof verdict.binary?.sizeInBytes !== 'number' ||
      typeof verdict.binary.mtimeMs !== 'number' ||
      typeof verdict.binary.inode !== 'number'
    ) {
      return undefined;
    }
    return verdict as KvmVerdict;
  } catch {
    return undefined;
  }
}

/** Written to a temp name, fsynced and renamed: a reader sees the old verdict or the new one. */
export async function writeKvmVerdict(stateDir: string, verdict: KvmVerdict): Promise<void> {
  await mkdir(stateDir, { recursive: true });
  const target = path.join(stateDir, KVM_VERDICT_FILE);
  const temporary = `${target}.${process.pid}.${Math.random().toString(16).slice(2)}.tmp`;
  try {
    const handle = await open(temporary, 'w', 0o644);
    try {
      await handle.writeFile(`${JSON.stringify(verdict, null, 2)}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, target);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}

/** The first line of `qemu-system-x86_64 -version` ("QEMU emulator version 7.2.22 (Debian ...)"). */
export async function readQemuVersion(binary: string, spawnProcess?: SpawnProcess): Promise<string> {
  const qemu = new QemuProcess(binary, ['-version'], spawnProcess);
  await qemu.stop(10_000);
  const exitCode = qemu.exit()?.code ?? null;
  const first = qemu.stdout().split('\n')[0]?.trim() ?? '';
  if (qemu.spawnError() !== undefined || exitCode !== 0 || first === '') {
    throw new VerificationError(
      'E_BOOT_QEMU_FAILED',
      `${binary} -version failed (code ${String(exitCode)}): ${qemu.stderr().trim() || String(qemu.spawnError()?.message ?? 'no output')}`,
      { binary, exitCode, stderr: qemu.stderr() },
    );
  }
  return first;
}

/**
 * The probe image: the tiny firmware, entered through a stub that first runs what OVMF's SEC
 * runs first of all (UefiCpuPkg InitializeFloatingPointUnits: `finit`, that is FWAIT then
 * FNINIT, and `fldcw`), then writes KVM_PROBE_MARKER to the debug console and halts. Where a
 * failing KVM stops SEC depends on the host: BUILD-NOTES saw FNINIT; on 2026-12-02 a host
 * (kernel 6.18) ran FNINIT alone and stopped at the FWAIT before it ("emulation failure",
 * instruction bytes 9b db e3 d9 2d ...), so a probe of FNINIT alone passed and every first boot
 * of OVMF then failed. The stub runs the same bytes as SEC, in real mode.
 */
export function kvmProbeFirmware(): Uint8Array {
  const image = buildTinyFirmware({ text: `${KVM_PROBE_MARKER}\n`, port: 0x402, end: 'hang' });
  // tiny-firmware.ts: program at 0x0000, IDT descriptor at 0x0020, text from 0x0100; 0x0080 to
  // 0x00ff is free: the stub at 0x80, the FPU control word it loads at 0xf0.
  const stub = 0x80;
  const controlWord = 0xf0;
  const resetVector = 0xfff0;
  // SEC's mFpuControlWord: 0x027f (precision 64 bits, round to nearest, exceptions masked).
  image.set([0x7f, 0x02], controlWord);
  const code = [
    // finit (FWAIT; FNINIT)
    0x9b,
    0xdb,
    0xe3,
    // fldcw cs:[controlWord] (CS override: the word is in the flash, DS is 0 at reset)
    0x2e,
    0xd9,
    0x2e,
    controlWord & 0xff,
    controlWord >> 8,
  ];
  // jmp near 0x0000 (rel16 from the next instruction).
  const back = (0x1_0000 - (stub + code.length + 3)) & 0xffff;
  image.set([...code, 0xe9, back & 0xff, back >> 8], stub);
  // jmp near stub, from the reset vector (rel16 from 0xfff3, wrapping in the 64 KiB segment).
  const there = (stub - (resetVector + 3) + 0x1_0000) & 0xffff;
  image.set([0xe9, there & 0xff, there >> 8], resetVector);
  return image;
}

export interface KvmProbeResult {
  readonly kvmWorks: boolean;
  /** Why it failed (empty when it worked). */
  readonly reason: string;
  readonly durationMs: number;
}

export interface KvmProbeOptions {
  readonly qemuBinary: string;
  /** @default 5_000 (a working KVM gets there in well under a second) */
  readonly timeoutMs?: number;
  /** How often the debug log and stderr are looked at. @default 20 */
  readonly pollIntervalMs?: number;
  /** Parent of the private temp dir. @default os.tmpdir() */
  readonly tmpDir?: string;
  readonly signal?: AbortSignal;
  readonly spawnProcess?: SpawnProcess;
}

/**
 * Boots the probe firmware under `-accel kvm` alone: KVM works when the marker appears on the
 * debug console in time. QEMU is killed as soon as the verdict is known, so a stopped vCPU
 * costs `timeoutMs` at most and a reported failure much less.
 */
export async function probeKvm(options: KvmProbeOptions): Promise<KvmProbeResult> {
  const timeoutMs = options.timeoutMs ?? 5_000;
  const pollIntervalMs = options.pollIntervalMs ?? 20;
  throwIfAborted(options.signal);
  const directory = await mkdtemp(path.join(options.tmpDir ?? os.tmpdir(), 'ovmf-build-kvm-probe-'));
  try {
    const codePath = path.join(directory, 'probe.fd');
    const varsPath = path.join(directory, 'vars.fd');
    const debugLogPath = path.join(directory, 'debug.log');
    await writeFile(codePath, kvmProbeFirmware());
    await writeFile(varsPath, new Uint8Array(0x1_0000).fill(0xff));
    await writeFile(debugLogPath, '');
    const args = buildQemuArgs({
      codePath,
      varsPath,
      debugLogPath,
      serialLogPath: path.join(directory, 'serial.log'),
      machine: 'q35',
      smm: false,
      accelerator: 'kvm',
      memoryMiB: 64,
    });
    const qemu = new QemuProcess(options.qemuBinary, args, options.spawnProcess);
    const debugLog = new GrowingFile(debugLogPath);
    let verdict: { kvmWorks: boolean; reason: string } | 'aborted' | undefined;
    try {
      verdict = await qemu.pollUntil({
        logs: [debugLog],
        pollIntervalMs,
        signal: options.signal,
        decide: (elapsedMs) => {
          const failure = findKvmFailure(qemu.stderr());
          const exit = qemu.exit();
          if (debugLog.text.includes(KVM_PROBE_MARKER)) return { kvmWorks: true, reason: '' };
          if (failure !== undefined) return { kvmWorks: false, reason: failure };
          if (exit !== undefined) {
            const firstLine = qemu.stderr().trim().split('\n')[0] ?? '';
            return {
              kvmWorks: false,
              reason: `QEMU exited (code ${String(exit.code)}) before the marker${firstLine === '' ? '' : `: ${firstLine}`}`,
            };
          }
          if (elapsedMs < timeoutMs) return undefined;
          return {
            kvmWorks: false,
            reason: `the probe firmware did not reach its marker within ${timeoutMs} ms`,
          };
        },
      });
    } finally {
      await qemu.stop();
      await drainLogs([debugLog]);
    }
    qemu.throwIfStartFailed('E_BOOT_QEMU_FAILED');
    if (verdict === 'aborted' || verdict === undefined) {
      throw new AbortError(`KVM probe aborted: ${String(options.signal?.reason ?? 'signal')}`);
    }
    return { ...verdict, durationMs: qemu.durationMs() };
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

export interface AcceleratorChoice {
  readonly accelerator: QemuAccelerator;
  /** Why, for people: "no /dev/kvm", "kvm probe passed (cached)", "forced by --accel tcg". */
  readonly reason: string;
  /** Milliseconds the probe took when one ran for this choice. */
  readonly probeMs?: number;
  /** The key a probe verdict was found or stored under (auto mode with a usable device). */
  readonly verdictKey?: KvmVerdictKey;
}

export interface ChooseAcceleratorOptions {
  /** @default 'auto' */
  readonly mode?: AccelMode;
  /** Absolute path of the QEMU binary that will run the boot (part of the verdict key). */
  readonly qemuBinary: string;
  /** @default '/dev/kvm' */
  readonly kvmDevice?: string;
  /** Where the verdict file lives (the user state dir). */
  readonly stateDir: string;
  /** @default os.release() */
  readonly kernelRelease?: string;
  /** @default 5_000 */
  readonly probeTimeoutMs?: number;
  readonly tmpDir?: string;
  readonly signal?: AbortSignal;
  readonly logger?: AccelLogger;
  /** @default child_process.spawn with stdout and stderr piped */
  readonly spawnProcess?: SpawnProcess;
}

/**
 * TCG when forced, when the KVM device cannot be opened, or when KVM failed the probe; KVM
 * when forced or when it passed the probe. `--accel kvm` with no usable device is
 * E_BOOT_KVM_UNAVAILABLE.
 */
export async function chooseAccelerator(options: ChooseAcceleratorOptions): Promise<AcceleratorChoice> {
  const mode = options.mode ?? 'auto';
  if (!isAccelMode(mode)) {
    throw new TypeError(`Expected \`mode\` to be one of auto, kvm, tcg, got \`${String(mode)}\``);
  }
  if (mode === 'tcg') return { accelerator: 'tcg', reason: 'forced by --accel tcg' };
  const kvmDevice = options.kvmDevice ?? DEFAULT_KVM_DEVICE;
  const device = await checkKvmDevice(kvmDevice);
  if (!device.usable) {
    if (mode === 'kvm') {
      throw new VerificationError(
        'E_BOOT_KVM_UNAVAILABLE',
        `--accel kvm, but KVM cannot be used: ${device.reason}; use --accel auto or --accel tcg`,
        { kvmDevice, reason: device.reason },
      );
    }
    return { accelerator: 'tcg', reason: device.reason };
  }
  if (mode === 'kvm') return { accelerator: 'kvm', reason: 'forced by --accel kvm' };

  const { spawnProcess } = options;
  const stored = await readKvmVerdict(options.stateDir);
  const binary = await binaryIdentity(options.qemuBinary);
  // Reading the version starts QEMU (about 50 ms); an unchanged binary has the recorded one.
  const qemuVersion =
    stored !== undefined && stored.key.qemuBinary === options.qemuBinary && sameBinary(stored.binary, binary)
      ? stored.key.qemuVersion
      : await readQemuVersion(options.qemuBinary, spawnProcess);
  const key: KvmVerdictKey = {
    qemuBinary: options.qemuBinary,
    qemuVersion,
    kernelRelease: options.kernelRelease ?? os.release(),
    kvmDevice,
  };
  if (stored !== undefined && sameKey(stored.key, key)) {
    return stored.kvmWorks
      ? { accelerator: 'kvm', reason: 'kvm probe passed (cached)', verdictKey: key }
      : {
          accelerator: 'tcg',
          reason: `kvm failed ${stored.from === 'probe' ? 'the probe' : 'a boot check'} (cached): ${stored.reason}`,
          verdictKey: key,
        };
  }
  const probe = await probeKvm({
    qemuBinary: options.qemuBinary,
    ...(options.probeTimeoutMs === undefined ? {} : { timeoutMs: options.probeTimeoutMs }),
    ...(options.tmpDir === undefined ? {} : { tmpDir: options.tmpDir }),
    ...(options.signal === undefined ? {} : { signal: options.signal }),
    ...(spawnProcess === undefined ? {} : { spawnProcess }),
  });
  options.logger?.info({ ...probe, key }, 'KVM probe');
  // A state dir that cannot be written costs a probe per run, not the boot check.
  await writeKvmVerdict(options.stateDir, {
    formatVersion: VERDICT_FORMAT_VERSION,
    key,
    binary,
    kvmWorks: probe.kvmWorks,
    reason: probe.reason,
    from: 'probe',
    probedAt: new Date().toISOString(),
    probeMs: probe.durationMs,
  }).catch((error: unknown) => {
    options.logger?.warn(
      { stateDir: options.stateDir, error: String(error) },
      'could not keep the KVM probe verdict',
    );
  });
  return probe.kvmWorks
    ? { accelerator: 'kvm', reason: 'kvm probe passed', probeMs: probe.durationMs, verdictKey: key }
    : {
        accelerator: 'tcg',
        reason: `kvm failed the probe: ${probe.reason}`,
        probeMs: probe.durationMs,
        verdictKey: key,
      };
}

/** KVM passed the probe and then failed a real boot: later runs go straight to TCG. */
export async function recordKvmBootFailure(
  stateDir: string,
  key: KvmVerdictKey,
  reason: string,
): Promise<void> {
  await writeKvmVerdict(stateDir, {
    formatVersion: VERDICT_FORMAT_VERSION,
    key,
    binary: await binaryIdentity(key.qemuBinary),
    kvmWorks: false,
    reason,
    from: 'boot-check',
    probedAt: new Date().toISOString(),
    probeMs: 0,
  });
}
