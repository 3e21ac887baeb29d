// One boot of the IGD check in QEMU: a display device at 00:02.0 (with the option ROM in ROM
// mode) that the firmware is told to treat as an Intel iGPU, the OpRegion and the stolen-memory
// size as the fw_cfg files QEMU's vfio-pci IGD support hands over (hw/vfio/igd.c), PCI config
// writes traced, and the monitor (QMP) on a socket. Once the boot manager runs, the guest is
// stopped, 00:02.0's registers are read back through the monitor and `pmemsave` dumps the
// guest memory at ASLS and at the stolen range.
import { open, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { findKvmStall } from './accel.js';
import { BDS_ENTRY_MARKER } from './debug-log.js';
import type { IgdCheckOptions } from './igd-check.js';
import type { IgdRegisters } from './igd-verdict.js';
import { ASLS_WRITE_RE, FOUR_GIB, IGD_REGISTERS, IGD_SLOT, MiB } from './igd-trace.js';
import { buildQemuArgs, copyVarsStore, escapeQemuOptionValue, type QemuAccelerator } from './qemu.js';
import { drainLogs, GrowingFile, QemuProcess, type QemuExit } from './qemu-process.js';
import { QmpClient, readPciConfigDword } from './qmp.js';

/** QEMU's names for the fw_cfg files (hw/vfio/igd.c) and ovmf-build's test switch. */
export const FW_CFG_OPREGION = 'etc/igd-opregion';
export const FW_CFG_BDSM_SIZE = 'etc/igd-bdsm-size';
export const FW_CFG_DEVICE_ID = 'opt/ovmf-build/igd-device-id';

/**
 * Text the boot manager prints on the console once the drivers are connected and it starts a
 * boot option (MdeModulePkg BdsDxe: "BdsDxe: loading Boot0001 ..."), in every build; DEBUG
 * builds also log "[Bds]Booting" on the debug console. A line counts once complete.
 */
const BOOT_MANAGER_RE =
  /BdsDxe: (?:loading|starting|failed to load) Boot[^\n]*\n|\[Bds\]\s?Booting [^\n]*\n|Shell> /u;
export const ASSERT_RE = /^ASSERT [^\n]*\n/mu;
/** Past this a console is no longer read (GrowingFile's cap). */
export const IGD_MAX_LOG_BYTES = 16 * MiB;
const MAX_STOLEN_DUMP_BYTES = 256 * MiB;
/** A working KVM vCPU prints SEC's first debug lines and config writes within milliseconds. */
const KVM_NO_OUTPUT_MS = 10_000;

/** The check's inputs for one boot, with paths resolved and the device ID normalised. */
export interface IgdBootPlan extends Pick<
  IgdCheckOptions,
  'codePath' | 'varsPath' | 'romPath' | 'opRegion' | 'bdsmSizeInBytes' | 'platform' | 'keepLogsIn'
> {
  /** Normalised (4 lower-case hex digits). */
  readonly deviceId: string;
  readonly smm: boolean;
  readonly memoryMiB: number;
  readonly accelerator: QemuAccelerator;
  /** The private temp dir of the check. */
  readonly directory: string;
}

export interface IgdRunSettings {
  readonly timeoutMs: number;
  readonly settleMs: number;
  readonly pollIntervalMs: number;
  readonly checkStolenZeroed: boolean;
}

export type IgdRunOutcome = 'boot-manager' | 'assert' | 'exited' | 'timeout' | 'aborted' | 'kvm-failed';

/** What the guest left behind, read with the guest stopped. */
interface GuestState {
  readonly registers: IgdRegisters | null;
  /** Guest memory at ASLS, `opRegion.length` bytes, when ASLS was set. */
  readonly memoryAtAsls: Uint8Array | null;
  /** Whether the stolen memory read back as zero; undefined when it was not dumped. */
  readonly stolenZeroed?: boolean;
}

export interface IgdRun extends GuestState {
  readonly outcome: IgdRunOutcome;
  readonly accelerator: QemuAccelerator;
  readonly traceText: string;
  readonly debugText: string;
  readonly serialText: string;
  readonly stderr: string;
  readonly exit: QemuExit | undefined;
  readonly durationMs: number;
  readonly timeToAslsMs: number | null;
  readonly timeToBootManagerMs: number | null;
  /** QEMU start to the first `[Bds] Entry` on either console (the boot check's mark, boot-igd.ts). */
  readonly timeToBdsMs: number | null;
  /** Why the KVM run was given up (outcome `kvm-failed`). */
  readonly kvmFailure?: string;
  readonly args: readonly string[];
  /**
   * Set when the first boot ended in BDS's memory-type reset (MEMORY_TYPE_RESET_RE), or an SMM
   * build's first boot in a reset with a silent debug console (RELEASE), and this is the second
   * boot, from the VARS the first one wrote; its duration is not in `durationMs`.
   */
  readonly firstBootReset?: {
    readonly durationMs: number;
    /** Whether the debug console named the memory-type reset (false: a silent RELEASE SMM build). */
    readonly logged: boolean;
  };
}

const ZERO_CHUNK = Buffer.alloc(MiB);

/**
 * Whether `file` holds exactly `sizeInBytes` bytes, all zero. Read a MiB at a time into one
 * buffer and compared with memcmp (Buffer.equals): the job's 32 MiB stolen dump read whole and
 * tested byte by byte cost about 0.4 s per boot on a machine with slow page faults.
 */
export async function isZeroFile(file: string, sizeInBytes: number): Promise<boolean> {
  const handle = await open(file, 'r');
  try {
    const chunk = Buffer.alloc(MiB);
    let total = 0;
    for (;;) {
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, null);
      if (bytesRead === 0) return total === sizeInBytes;
      if (!chunk.subarray(0, bytesRead).equals(ZERO_CHUNK.subarray(0, bytesRead))) return false;
      total += bytesRead;
      if (total > sizeInBytes) return false;
    }
  } finally {
    await handle.close();
  }
}

/** 00:02.0's ID, ASLS and BDSM registers and the memory they point at, read through the monitor. */
async function readGuestState(
  qmp: QmpClient,
  plan: IgdBootPlan,
  settings: IgdRunSettings,
): Promise<GuestState> {
  await qmp.execute('stop');
  const dword = (offset: number): Promise<number> => readPciConfigDword(qmp, IGD_SLOT, offset);
  const id = await dword(0x00);
  const asls = await dword(IGD_REGISTERS.asls);
  const bdsm32 = await dword(IGD_REGISTERS.bdsm32);
  const low = await dword(IGD_REGISTERS.bdsm64);
  const high = await dword(IGD_REGISTERS.bdsm64 + 4);
  const registers = { id, asls, bdsm32, bdsm64: low + high * FOUR_GIB };
  /** Guest memory saved to a temp file (`pmemsave`), read by `read`, then removed. */
  const dump = async <T>(
    address: number,
    sizeInBytes: number,
    name: string,
    read: (file: string) => Promise<T>,
  ): Promise<T> => {
    const file = path.join(plan.directory, `${name}.${plan.accelerator}.bin`);
    await qmp.execute('pmemsave', { val: address, size: sizeInBytes, filename: file });
    try {
      return await read(file);
    } finally {
      await rm(file, { force: true });
    }
  };
  let memoryAtAsls: Uint8Array | null = null;
  if (asls !== 0 && asls + plan.opRegion.length <= FOUR_GIB) {
    memoryAtAsls = await dump(
      asls,
      plan.opRegion.length,
      'asls',
      async (file) => new Uint8Array(await readFile(file)),
    );
  }
  const bdsmBase =
    plan.platform.bdsm === 'bdsm64' ? registers.bdsm64 : plan.platform.bdsm === 'bdsm32' ? bdsm32 : 0;
  let stolenZeroed: boolean | undefined;
  if (
    settings.checkStolenZeroed &&
    bdsmBase !== 0 &&
    plan.bdsmSizeInBytes > 0 &&
    plan.bdsmSizeInBytes <= MAX_STOLEN_DUMP_BYTES &&
    bdsmBase + plan.bdsmSizeInBytes <= FOUR_GIB
  ) {
    const size = plan.bdsmSizeInBytes;
    stolenZeroed = await dump(bdsmBase, size, 'stolen', (file) => isZeroFile(file, size));
  }
  return { registers, memoryAtAsls, ...(stolenZeroed === undefined ? {} : { stolenZeroed }) };
}

/**
 * Boots `plan` and watches the trace and both consoles until the boot manager runs (plus
 * `settleMs`), an ASSERT, QEMU's exit, a stalled KVM or the time limit; then reads the guest
 * back. Throws E_BOOT_QEMU_MISSING or E_VERIFY_IGD_QEMU_FAILED when QEMU cannot be started,
 * E_VERIFY_IGD_QMP_FAILED when the monitor fails; every other ending is an outcome.
 */
export async function runIgdBoot(
  binary: string,
  plan: IgdBootPlan,
  settings: IgdRunSettings,
  signal: AbortSignal | undefined,
  logger: Pick<Logger, 'info' | 'debug' | 'warn'> | undefined,
): Promise<IgdRun> {
  const varsPath = path.join(plan.directory, `OVMF_VARS.${plan.accelerator}.fd`);
  await copyVarsStore(plan.varsPath, varsPath);
  const first = await bootOnce(binary, plan, varsPath, 1, settings, signal, logger);
  // QEMU (-no-reboot) exits with 0 when the guest resets. The reset is the memory-type one when
  // the debug console says so; a RELEASE build says nothing there, so for an SMM build, which
  // takes that reset on a fresh VARS store, a silent reset gets the second boot as well. A
  // firmware that resets for another reason resets again, and the second boot fails the check.
  const reset = first.outcome === 'exited' && first.exit?.code === 0;
  const logged = reset && MEMORY_TYPE_RESET_RE.test(first.debugText);
  if (!logged && !(reset && plan.smm && first.debugText === '')) return first;
  logger?.info(
    { durationMs: first.durationMs, logged },
    'IGD check: the first boot reset (an SMM build stores the memory type information and resets once when ' +
      'reserved memory, here the stolen memory, outgrows its bin); booting again from the same VARS, as the VM would',
  );
  const second = await bootOnce(binary, plan, varsPath, 2, settings, signal, logger);
  return { ...second, firstBootReset: { durationMs: first.durationMs, logged } };
}

/**
 * The last lines of a boot that BDS ended with a warm reset because the memory type information
 * changed (MdeModulePkg UefiBootManagerLib BmSetMemoryTypeInformationVariable). OVMF sets
 * PcdResetOnMemoryTypeInformationChange for SMM builds only (OvmfPkgX64.dsc), so on the first
 * boot of a fresh VARS store such a build resets once when reserved memory, such as the IGD's
 * stolen memory, outgrows the default bin; the next boot finds the new sizes in the variable.
 */
export const MEMORY_TYPE_RESET_RE = /Memory Type Information settings change\.\r?\n\.\.\.Warm Reset!!!\r?\n/u;

/** How long a QMP failure waits for QEMU's exit before it counts as a monitor failure. */
const QEMU_EXIT_AFTER_QMP_CLOSE_MS = 2_000;

/** One QEMU run of the check (pass 2 after a memory-type reset, with its own log files). */
async function bootOnce(
  binary: string,
  plan: IgdBootPlan,
  varsPath: string,
  pass: 1 | 2,
  settings: IgdRunSettings,
  signal: AbortSignal | undefined,
  logger: Pick<Logger, 'info' | 'debug' | 'warn'> | undefined,
): Promise<IgdRun> {
  const { accelerator } = plan;
  /** Names the pass's log files and monitor socket: `tcg`, then `tcg.2`. */
  const run = pass === 1 ? accelerator : `${accelerator}.2`;
  const file = (name: string): string => path.join(plan.directory, name);
  await writeFile(file('opregion.bin'), plan.opRegion);
  const sizeFile = new Uint8Array(8);
  new DataView(sizeFile.buffer).setBigUint64(0, BigInt(plan.bdsmSizeInBytes), true);
  await writeFile(file('bdsm-size.bin'), sizeFile);
  const qmpSocket = file(`qmp.${run}.sock`);
  const tracePath = file(`trace.${run}.log`);
  const vga = ['VGA', 'bus=pcie.0', 'addr=02.0'];
  if (plan.romPath !== undefined) vga.push(`romfile=${escapeQemuOptionValue(plan.romPath)}`);
  const args = buildQemuArgs({
    codePath: plan.codePath,
    varsPath,
    debugLogPath: file(`debug.${run}.log`),
    serialLogPath: file(`serial.${run}.log`),
    machine: 'q35',
    smm: plan.smm,
    accelerator,
    memoryMiB: plan.memoryMiB,
    extraArgs: [
      '-device',
      vga.join(','),
      '-fw_cfg',
      `name=${FW_CFG_OPREGION},file=${escapeQemuOptionValue(file('opregion.bin'))}`,
      ...(plan.bdsmSizeInBytes > 0
        ? ['-fw_cfg', `name=${FW_CFG_BDSM_SIZE},file=${escapeQemuOptionValue(file('bdsm-size.bin'))}`]
        : []),
      '-fw_cfg',
      `name=${FW_CFG_DEVICE_ID},string=${plan.deviceId}`,
      '-trace',
      'pci_cfg_write',
      '-D',
      tracePath,
      '-qmp',
      `unix:${escapeQemuOptionValue(qmpSocket)},server=on,wait=off`,
    ],
  });
  logger?.info(
    { binary, args, deviceId: plan.deviceId, platform: plan.platform.key },
    `IGD check: booting in QEMU (${run})`,
  );
  const qemu = new QemuProcess(binary, args);
  const trace = new GrowingFile(tracePath, { maxSizeInBytes: IGD_MAX_LOG_BYTES });
  const debug = new GrowingFile(file(`debug.${run}.log`), { maxSizeInBytes: IGD_MAX_LOG_BYTES });
  const serial = new GrowingFile(file(`serial.${run}.log`), { maxSizeInBytes: IGD_MAX_LOG_BYTES });
  let qmp: QmpClient | undefined;
  let timeToAslsMs: number | null = null;
  let timeToBootManagerMs: number | null = null;
  let timeToBdsMs: number | null = null;
  /** Where the next search for BDS_ENTRY_MARKER starts (a marker cut at the end is searched again). */
  let bdsSearchFrom = 0;
  let kvmFailure: string | undefined;
  let outcome: IgdRunOutcome | undefined;
  let guest: GuestState = { registers: null, memoryAtAsls: null };
  try {
    qmp = await QmpClient.connect({
      socketPath: qmpSocket,
      giveUp: () => {
        const spawnError = qemu.spawnError();
        const exit = qemu.exit();
        if (spawnError !== undefined) return spawnError.message;
        return exit === undefined
          ? undefined
          : `QEMU exited (code ${String(exit.code)}): ${qemu.stderr().trim()}`;
      },
      ...(signal === undefined ? {} : { signal }),
    }).catch(async (error: unknown) => {
      // QEMU that exits at once (a triple fault under -no-reboot) can close the socket in the
      // middle of the handshake before its exit reaches us: its exit is the outcome, not QMP's.
      if (await qemu.endsWithin(QEMU_EXIT_AFTER_QMP_CLOSE_MS)) return undefined;
      throw error;
    });
    outcome = await qemu.pollUntil<IgdRunOutcome>({
      logs: [trace, debug, serial],
      pollIntervalMs: settings.pollIntervalMs,
      signal,
      decide: (elapsedMs) => {
        if (timeToAslsMs === null && ASLS_WRITE_RE.test(trace.text)) timeToAslsMs = Math.round(elapsedMs);
        if (timeToBdsMs === null) {
          const debugText = debug.text;
          if (debugText.includes(BDS_ENTRY_MARKER, bdsSearchFrom) || serial.text.includes(BDS_ENTRY_MARKER)) {
            timeToBdsMs = Math.round(elapsedMs);
          }
          bdsSearchFrom = Math.max(0, debugText.length - BDS_ENTRY_MARKER.length);
        }
        if (
          timeToBootManagerMs === null &&
          (BOOT_MANAGER_RE.test(serial.text) || BOOT_MANAGER_RE.test(debug.text))
        ) {
          timeToBootManagerMs = Math.round(elapsedMs);
          logger?.debug({ timeToBootManagerMs }, 'IGD check: the boot manager runs');
        }
        if (accelerator === 'kvm' && timeToBootManagerMs === null) {
          const silent =
            qemu.exit() === undefined &&
            trace.sizeInBytes === 0 &&
            debug.sizeInBytes === 0 &&
            serial.sizeInBytes === 0;
          kvmFailure = findKvmStall(qemu.stderr(), silent, elapsedMs, KVM_NO_OUTPUT_MS);
        }
        if (kvmFailure !== undefined) return 'kvm-failed';
        if (qemu.exit() !== undefined) return 'exited';
        if (ASSERT_RE.test(debug.text)) return 'assert';
        if (timeToBootManagerMs !== null && elapsedMs - timeToBootManagerMs >= settings.settleMs) {
          return 'boot-manager';
        }
        return elapsedMs >= settings.timeoutMs ? 'timeout' : undefined;
      },
    });
    if ((outcome === 'boot-manager' || outcome === 'assert') && qmp !== undefined) {
      guest = await readGuestState(qmp, plan, settings);
      await qmp.execute('quit').catch(() => undefined);
    }
  } finally {
    qmp?.close();
    await qemu.stop(outcome === 'boot-manager' ? 2_000 : 0);
    await drainLogs([trace, debug, serial]);
    if (plan.keepLogsIn !== undefined) {
      const keepIn = plan.keepLogsIn;
      await Promise.all([
        writeFile(path.join(keepIn, 'trace.log'), trace.text, 'latin1'),
        writeFile(path.join(keepIn, 'debug.log'), debug.text, 'latin1'),
        writeFile(path.join(keepIn, 'serial.log'), serial.text, 'latin1'),
      ]).catch((error: unknown) =>
        logger?.warn({ error: String(error) }, 'IGD check: could not keep the logs'),
      );
    }
  }
  qemu.throwIfStartFailed('E_VERIFY_IGD_QEMU_FAILED');
  return {
    ...guest,
    outcome: outcome ?? 'exited',
    accelerator,
    traceText: trace.text,
    debugText: debug.text,
    serialText: serial.text,
    stderr: qemu.stderr(),
    exit: qemu.exit(),
    durationMs: qemu.durationMs(),
    timeToAslsMs,
    timeToBootManagerMs,
    timeToBdsMs,
    ...(kvmFailure === undefined ? {} : { kvmFailure }),
    args,
  };
}
