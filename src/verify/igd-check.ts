// The IGD assignment check (issue 9, item 5): boot an OVMF in QEMU with a display device at
// 00:02.0 that the firmware is told to treat as an Intel iGPU, hand it an OpRegion and a
// stolen-memory size through fw_cfg as QEMU's vfio-pci IGD support does (hw/vfio/igd.c:
// etc/igd-opregion, etc/igd-bdsm-size), and use QEMU itself as the oracle: the trace of PCI
// config writes says whether and where ASLS (0xFC) and BDSM (0x5C, or 0xC0/0xC4) were written;
// once the boot manager runs, the guest is stopped, the registers are read back through the
// monitor and `pmemsave` dumps the guest memory at ASLS, which must hold the OpRegion bytes.
// Works for our DEBUG OVMF (embedded mode) and for a stock OVMF with our option ROM (ROM mode),
// where the trace is the oracle and the debug console only carries our ROM drivers' lines.
import { constants as fsConstants } from 'node:fs';
import { access, chmod, copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { AbortError, OvmfBuildError, throwIfAborted } from '../core/errors.js';
import { hex } from '../core/hex.js';
import { buildOpRegion, parseOpRegion, type OpRegionVbtSource } from '../formats/opregion.js';
import { normalizeDeviceId, type IgdPlatform } from '../igd/device-table.js';
import { VerificationError } from './errors.js';
import { findKvmFailure } from './accel.js';
import { escapeQemuOptionValue, findQemu, type QemuAccelerator } from './qemu.js';
import { GrowingFile, startQemu } from './qemu-process.js';
import { QmpClient, readPciConfigDword } from './qmp.js';

export type IgdCheckLogger = Pick<Logger, 'info' | 'debug' | 'warn'>;

/** QEMU's names for the fw_cfg files (hw/vfio/igd.c) and ovmf-build's test switch. */
export const FW_CFG_OPREGION = 'etc/igd-opregion';
export const FW_CFG_BDSM_SIZE = 'etc/igd-bdsm-size';
export const FW_CFG_DEVICE_ID = 'opt/ovmf-build/igd-device-id';

/** IGD config registers (QEMU docs/igd-assign.txt). */
export const IGD_REGISTERS = { bdsm32: 0x5c, bdsm64: 0xc0, asls: 0xfc } as const;
const IGD_SLOT = { bus: 0, slot: 2, func: 0 } as const;
const FOUR_GIB = 0x1_0000_0000;
const MiB = 1_048_576;
const PAGE_SIZE = 4096;

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

/** One `pci_cfg_write` trace event (QEMU hw/pci/trace-events). */
export interface PciCfgWrite {
  readonly device: string;
  readonly bus: number;
  readonly slot: number;
  readonly func: number;
  readonly offset: number;
  /** The value as traced; the access width is not in the trace. */
  readonly value: number;
  /** The trace line as QEMU wrote it. */
  readonly text: string;
}

export interface IgdRegisters {
  /** Vendor and device ID dword (config 0x00). */
  readonly id: number;
  readonly asls: number;
  readonly bdsm32: number;
  readonly bdsm64: number;
}

export interface IgdDebugReport {
  /** `IgdAssignmentDxe: <bb:dd.f> <vvvv>:<dddd> <key> gen <version>` of 00:02.0. */
  readonly device?: { readonly deviceId: string; readonly key: string; readonly graphicsVersion: string };
  readonly opRegion?: { readonly sizeInBytes: number; readonly address: number };
  readonly stolen?: {
    readonly sizeInBytes: number;
    readonly address: number;
    readonly register: number;
    readonly width: 32 | 64;
  };
  readonly noBdsm?: string;
  readonly vbt?: {
    readonly source: 'mailbox4' | 'rvda' | 'firmware-volume';
    readonly sizeInBytes: number;
    readonly address: number;
  };
}

export type IgdVbtSource = `opregion-${OpRegionVbtSource}` | 'firmware-volume';

export interface IgdCheckResult {
  /** Every check passed. */
  readonly passed: boolean;
  readonly failures: readonly string[];
  /** Facts that do not fail the check. */
  readonly info: readonly string[];
  /** The OpRegion address the firmware put in ASLS, or null when it never wrote it. */
  readonly asls: number | null;
  readonly bdsm: { readonly offset: number; readonly width: 32 | 64; readonly value: number } | null;
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

/**
 * QEMU 7.2 hw/pci/trace-events: `pci_cfg_write(const char *dev, uint32_t bus, uint32_t slot,
 * uint32_t func, unsigned offs, unsigned val) "%s %02x:%02x.%x @0x%x <- 0x%x"`, with the log
 * backend's optional `<pid>@<seconds>.<micros>:` prefix (-msg timestamp=on).
 */
const PCI_CFG_WRITE_RE =
  /^(?:\d+@\d+\.\d+:)?pci_cfg_write (\S+) ([0-9a-f]{2}):([0-9a-f]{2})\.([0-7]) @0x([0-9a-f]{1,3}) <- 0x([0-9a-f]{1,8})$/u;

/** Every `pci_cfg_write` event of a trace log; other lines (other trace events) are skipped. */
export function parsePciCfgWrites(text: string): PciCfgWrite[] {
  const writes: PciCfgWrite[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    const match = PCI_CFG_WRITE_RE.exec(line);
    if (match === null) continue;
    const [, device, bus, slot, func, offset, value] = match as unknown as [
      string,
      string,
      string,
      string,
      string,
      string,
      string,
    ];
    const parsedOffset = Number.parseInt(offset, 16);
    if (parsedOffset > 0xfff) continue;
    writes.push({
      device,
      bus: Number.parseInt(bus, 16),
      slot: Number.parseInt(slot, 16),
      func: Number.parseInt(func, 16),
      offset: parsedOffset,
      value: Number.parseInt(value, 16) >>> 0,
      text: line,
    });
  }
  return writes;
}

/** The trace lines of 00:02.0's ASLS and BDSM registers, in trace order. */
export function igdTraceLines(writes: readonly PciCfgWrite[]): string[] {
  return writes
    .filter(
      (write) =>
        isIgdSlot(write) &&
        (inRange(write, IGD_REGISTERS.asls, 4) ||
          inRange(write, IGD_REGISTERS.bdsm32, 4) ||
          inRange(write, IGD_REGISTERS.bdsm64, 8)),
    )
    .map((write) => write.text);
}

const inRange = (write: PciCfgWrite, from: number, length: number): boolean =>
  write.offset >= from && write.offset < from + length;
const isIgdSlot = (write: PciCfgWrite): boolean =>
  write.bus === IGD_SLOT.bus && write.slot === IGD_SLOT.slot && write.func === IGD_SLOT.func;

/** Writes to ASLS (0xFC-0xFF), BDSM (0x5C-0x5F) and BDSM64 (0xC0-0xC7) of 00:02.0. */
export function igdRegisterWrites(writes: readonly PciCfgWrite[]): {
  readonly asls: PciCfgWrite[];
  readonly bdsm32: PciCfgWrite[];
  readonly bdsm64: PciCfgWrite[];
} {
  const igd = writes.filter(isIgdSlot);
  return {
    asls: igd.filter((write) => inRange(write, IGD_REGISTERS.asls, 4)),
    bdsm32: igd.filter((write) => inRange(write, IGD_REGISTERS.bdsm32, 4)),
    bdsm64: igd.filter((write) => inRange(write, IGD_REGISTERS.bdsm64, 8)),
  };
}

/**
 * The value of a register as the trace leaves it, assuming dword writes at dword offsets (what
 * PciIo.Pci.Write with EfiPciIoWidthUint32 produces); a byte or word write is placed at its
 * offset. Registers start at 0 (QEMU's VGA config space is zero there).
 */
function tracedValue(writes: readonly PciCfgWrite[], base: number, sizeInBytes: 4 | 8): number {
  const bytes = new Uint8Array(sizeInBytes);
  for (const write of writes) {
    const width = (write.offset & 3) === 0 ? 4 : (write.offset & 1) === 0 ? 2 : 1;
    for (let index = 0; index < width; index++) {
      const at = write.offset - base + index;
      if (at >= 0 && at < sizeInBytes) bytes[at] = (write.value >>> (8 * index)) & 0xff;
    }
  }
  const dv = new DataView(bytes.buffer);
  return sizeInBytes === 4 ? dv.getUint32(0, true) : dv.getUint32(0, true) + dv.getUint32(4, true) * FOUR_GIB;
}

const DEVICE_LINE_RE = /^IgdAssignmentDxe: 00:02\.0 ([0-9a-f]{4}):([0-9a-f]{4}) (\S+) gen (\S+)$/iu;
const OPREGION_LINE_RE = /^IgdAssignmentDxe: OpRegion (\d+) bytes at 0x([0-9a-f]+), ASLS written$/iu;
const STOLEN_LINE_RE =
  /^IgdAssignmentDxe: stolen memory (\d+) bytes at 0x([0-9a-f]+), BDSM 0x([0-9a-f]+) \((32|64)-bit\)$/iu;
const NO_BDSM_LINE_RE = /^IgdAssignmentDxe: no BDSM on (\S+)$/u;
const VBT_LINE_RE =
  /^OvmfGopPkg: VBT from (OpRegion \((mailbox 4|RVDA)\)|firmware volume), (\d+) bytes at 0x([0-9a-f]+)/iu;

/** Our drivers' lines from a debug log: what IgdAssignmentDxe did and which VBT the policy served. */
export function parseIgdDebugLog(text: string): {
  readonly lines: string[];
  readonly report: IgdDebugReport;
} {
  const lines = text
    .split('\n')
    .map((line) => line.replace(/\r$/u, ''))
    .filter((line) => line.startsWith('IgdAssignmentDxe: ') || line.startsWith('OvmfGopPkg: '));
  let report: {
    -readonly [K in keyof IgdDebugReport]: IgdDebugReport[K];
  } = {};
  for (const line of lines) {
    let match: RegExpExecArray | null;
    if ((match = DEVICE_LINE_RE.exec(line)) !== null && report.device === undefined) {
      report = {
        ...report,
        device: {
          deviceId: (match[2] as string).toLowerCase(),
          key: match[3] as string,
          graphicsVersion: match[4] as string,
        },
      };
    } else if ((match = OPREGION_LINE_RE.exec(line)) !== null && report.opRegion === undefined) {
      report.opRegion = { sizeInBytes: Number(match[1]), address: Number.parseInt(match[2] as string, 16) };
    } else if ((match = STOLEN_LINE_RE.exec(line)) !== null && report.stolen === undefined) {
      report.stolen = {
        sizeInBytes: Number(match[1]),
        address: Number.parseInt(match[2] as string, 16),
        register: Number.parseInt(match[3] as string, 16),
        width: match[4] === '64' ? 64 : 32,
      };
    } else if ((match = NO_BDSM_LINE_RE.exec(line)) !== null) {
      report.noBdsm = match[1] as string;
    } else if ((match = VBT_LINE_RE.exec(line)) !== null && report.vbt === undefined) {
      const where = match[2]?.toLowerCase();
      report.vbt = {
        source: where === undefined ? 'firmware-volume' : where === 'rvda' ? 'rvda' : 'mailbox4',
        sizeInBytes: Number(match[3]),
        address: Number.parseInt(match[4] as string, 16),
      };
    }
  }
  return { lines, report };
}

export interface IgdEvaluationInput {
  readonly traceText: string;
  readonly debugText: string;
  /** Config registers read back with the guest stopped, when the monitor could read them. */
  readonly registers: IgdRegisters | null;
  /** Guest memory at ASLS, `opRegion.length` bytes, when ASLS was set. */
  readonly memoryAtAsls: Uint8Array | null;
  /** Whether the stolen memory read back as zero; undefined when it was not dumped. */
  readonly stolenZeroed?: boolean;
  readonly opRegion: Uint8Array;
  readonly bdsmSizeInBytes: number;
  readonly platform: IgdPlatform;
  readonly deviceId: string;
}

export interface IgdEvaluation {
  readonly failures: string[];
  readonly info: string[];
  readonly asls: number | null;
  readonly bdsm: IgdCheckResult['bdsm'];
  readonly opRegionMatches: boolean;
  readonly vbtSource: IgdVbtSource | null;
  readonly traceLines: string[];
  readonly debugLines: string[];
}

function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const length = Math.min(a.length, b.length);
  for (let index = 0; index < length; index++) if (a[index] !== b[index]) return index;
  return a.length === b.length ? -1 : length;
}

/**
 * The verdict of issue 9 item 5 from what QEMU recorded: ASLS written, page aligned and below
 * 4 GiB with the OpRegion bytes behind it; BDSM written at the platform's register and width
 * (0x5C dword, 0xC0/0xC4 qword) with a 1 MiB aligned base whose stolen range ends below 4 GiB
 * and does not overlap the OpRegion, or not written at all for platforms without BDSM; and,
 * when the debug console carries our drivers' lines, that they agree with the trace and that
 * the policy names the OpRegion's VBT as its source. Pure.
 */
export function evaluateIgdCheck(input: IgdEvaluationInput): IgdEvaluation {
  const failures: string[] = [];
  const info: string[] = [];
  const all = parsePciCfgWrites(input.traceText);
  const writes = igdRegisterWrites(all);
  const traceLines = igdTraceLines(all);
  const { platform, registers } = input;

  // ASLS.
  let asls: number | null = null;
  let opRegionMatches = false;
  if (writes.asls.length === 0) {
    failures.push('ASLS (config 0xFC of 00:02.0) was never written: no firmware driver set up the OpRegion');
  } else {
    const traced = tracedValue(writes.asls, IGD_REGISTERS.asls, 4);
    asls = registers?.asls ?? traced;
    if (registers !== null && registers.asls !== traced) {
      failures.push(`ASLS reads back as ${hex(registers.asls)} but the trace's writes leave ${hex(traced)}`);
    }
    if (asls === 0) failures.push('ASLS was written with 0');
    else if (asls % PAGE_SIZE !== 0) failures.push(`ASLS ${hex(asls)} is not page aligned`);
    if (asls + input.opRegion.length > FOUR_GIB) {
      failures.push(
        `the OpRegion at ASLS ${hex(asls)} (${input.opRegion.length} bytes) does not end below 4 GiB`,
      );
    }
    if (input.memoryAtAsls === null) {
      failures.push(`the guest memory at ASLS ${hex(asls)} could not be read`);
    } else {
      const at = firstDifference(input.memoryAtAsls, input.opRegion);
      opRegionMatches = at < 0;
      if (!opRegionMatches) {
        const differing = input.memoryAtAsls.reduce(
          (count, byte, index) => count + (byte === input.opRegion[index] ? 0 : 1),
          0,
        );
        failures.push(
          `the guest memory at ASLS ${hex(asls)} is not the OpRegion: ${differing} of ${input.opRegion.length} bytes differ, the first at offset ${hex(at)}`,
        );
      }
    }
  }

  // BDSM.
  let bdsm: IgdCheckResult['bdsm'] = null;
  const expectWrite = platform.bdsm !== 'none' && input.bdsmSizeInBytes > 0;
  if (platform.bdsm !== 'bdsm32' && writes.bdsm32.length > 0) {
    failures.push(
      `BDSM at 0x5C was written on ${platform.key} (${platform.bdsm}): ${writes.bdsm32.map((w) => w.text).join('; ')}`,
    );
  }
  if (platform.bdsm !== 'bdsm64' && writes.bdsm64.length > 0) {
    failures.push(
      `BDSM at 0xC0/0xC4 was written on ${platform.key} (${platform.bdsm}): ${writes.bdsm64.map((w) => w.text).join('; ')}`,
    );
  }
  if (platform.bdsm === 'bdsm32' || platform.bdsm === 'bdsm64') {
    const wide = platform.bdsm === 'bdsm64';
    const own = wide ? writes.bdsm64 : writes.bdsm32;
    const offset = wide ? IGD_REGISTERS.bdsm64 : IGD_REGISTERS.bdsm32;
    if (own.length === 0) {
      if (expectWrite)
        failures.push(`BDSM (${hex(offset)}, ${wide ? 64 : 32}-bit) was never written on ${platform.key}`);
      else info.push(`no stolen size was given, and BDSM was not written`);
    } else {
      if (!expectWrite) failures.push(`BDSM was written although no stolen size was given`);
      if (wide && !own.some((write) => write.offset === IGD_REGISTERS.bdsm64)) {
        failures.push('BDSM64 was written without its low dword at 0xC0');
      }
      const traced = tracedValue(own, offset, wide ? 8 : 4);
      const readBack = registers === null ? undefined : wide ? registers.bdsm64 : registers.bdsm32;
      const value = readBack ?? traced;
      if (readBack !== undefined && readBack !== traced) {
        failures.push(`BDSM reads back as ${hex(readBack)} but the trace's writes leave ${hex(traced)}`);
      }
      bdsm = { offset, width: wide ? 64 : 32, value };
      if (value === 0) failures.push('BDSM was written with 0');
      else if (value % MiB !== 0) failures.push(`BDSM ${hex(value)} is not 1 MiB aligned`);
      if (value + input.bdsmSizeInBytes > FOUR_GIB) {
        failures.push(
          `the stolen memory at BDSM ${hex(value)} (${input.bdsmSizeInBytes} bytes) does not end below 4 GiB`,
        );
      }
      if (asls !== null && asls < value + input.bdsmSizeInBytes && value < asls + input.opRegion.length) {
        failures.push(`the stolen memory at ${hex(value)} overlaps the OpRegion at ${hex(asls)}`);
      }
      if (input.stolenZeroed === false) failures.push(`the stolen memory at ${hex(value)} is not zeroed`);
    }
  }

  // The debug console: only our DEBUG drivers write there in ROM mode, and a RELEASE OVMF never.
  const { lines: debugLines, report } = parseIgdDebugLog(input.debugText);
  let vbtSource: IgdVbtSource | null = null;
  const wantedId = normalizeDeviceId(input.deviceId) ?? input.deviceId;
  if (debugLines.length === 0) {
    info.push(
      input.debugText.length === 0
        ? 'the debug console is empty (a RELEASE firmware and no DEBUG driver in a ROM): the trace is the only oracle'
        : 'the debug console has no IgdAssignmentDxe or OvmfGopPkg line',
    );
  } else {
    if (report.device === undefined) {
      failures.push(
        'the debug log has no "IgdAssignmentDxe: 00:02.0 <vendor>:<device> <platform> gen <version>" line',
      );
    } else if (report.device.deviceId !== wantedId || report.device.key !== platform.key) {
      failures.push(
        `IgdAssignmentDxe took 00:02.0 for ${report.device.deviceId} ${report.device.key}, expected ${wantedId} ${platform.key}`,
      );
    }
    if (report.opRegion !== undefined && asls !== null) {
      if (report.opRegion.address !== asls || report.opRegion.sizeInBytes !== input.opRegion.length) {
        failures.push(
          `IgdAssignmentDxe reports the OpRegion as ${report.opRegion.sizeInBytes} bytes at ${hex(report.opRegion.address)}, the trace shows ASLS ${hex(asls)} and the file has ${input.opRegion.length} bytes`,
        );
      }
    }
    if (report.stolen !== undefined && bdsm !== null) {
      if (
        report.stolen.address !== bdsm.value ||
        report.stolen.register !== bdsm.offset ||
        report.stolen.width !== bdsm.width ||
        report.stolen.sizeInBytes !== input.bdsmSizeInBytes
      ) {
        failures.push(
          `IgdAssignmentDxe reports stolen memory ${report.stolen.sizeInBytes} bytes at ${hex(report.stolen.address)} in ${hex(report.stolen.register)} (${report.stolen.width}-bit), the trace shows ${hex(bdsm.value)} in ${hex(bdsm.offset)} (${bdsm.width}-bit) for ${input.bdsmSizeInBytes} bytes`,
        );
      }
    }
    if (platform.bdsm === 'none' && report.noBdsm !== undefined && report.noBdsm !== platform.key) {
      failures.push(`IgdAssignmentDxe says "no BDSM on ${report.noBdsm}", expected ${platform.key}`);
    }
    if (report.vbt === undefined) {
      failures.push(
        'the debug log does not say which VBT the GOP policy serves (no "OvmfGopPkg: VBT from ..." line)',
      );
    } else if (report.vbt.source === 'firmware-volume') {
      vbtSource = 'firmware-volume';
      failures.push(
        `the GOP policy served the VBT of the firmware volume (${report.vbt.sizeInBytes} bytes), not the OpRegion's`,
      );
    } else {
      vbtSource = `opregion-${report.vbt.source}`;
      const expected = parseOpRegion(
        input.opRegion,
        asls === null ? {} : { physicalAddress: BigInt(asls) },
      ).vbt;
      if (expected === null) {
        failures.push('the GOP policy reports an OpRegion VBT, but the OpRegion given holds none');
      } else if (
        expected.source !== report.vbt.source ||
        expected.sizeInBytes !== report.vbt.sizeInBytes ||
        (asls !== null && report.vbt.address !== asls + expected.offset)
      ) {
        failures.push(
          `the GOP policy serves the OpRegion VBT from ${report.vbt.source}, ${report.vbt.sizeInBytes} bytes at ${hex(report.vbt.address)}; expected ${expected.source}, ${expected.sizeInBytes} bytes at ${asls === null ? `offset ${hex(expected.offset)}` : hex(asls + expected.offset)}`,
        );
      }
    }
  }
  return { failures, info, asls, bdsm, opRegionMatches, vbtSource, traceLines, debugLines };
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
 * Text the boot manager prints on the console once the drivers are connected and it starts a
 * boot option (MdeModulePkg BdsDxe: "BdsDxe: loading Boot0001 ..."), in every build; DEBUG
 * builds also log "[Bds]Booting" on the debug console. A line counts once complete.
 */
const BOOT_MANAGER_RE =
  /BdsDxe: (?:loading|starting|failed to load) Boot[^\n]*\n|\[Bds\]\s?Booting [^\n]*\n|Shell> /u;
const ASSERT_RE = /^ASSERT [^\n]*\n/mu;
const MAX_LOG_BYTES = 16 * MiB;
const MAX_STOLEN_DUMP_BYTES = 256 * MiB;

function checkPositive(name: string, value: number | undefined): void {
  if (value !== undefined && (!Number.isFinite(value) || value <= 0)) {
    throw new TypeError(`Expected \`${name}\` to be a positive number, got \`${String(value)}\``);
  }
}

async function checkReadable(file: string, role: string): Promise<void> {
  try {
    await access(file, fsConstants.R_OK);
  } catch (error) {
    throw new OvmfBuildError(
      'E_INPUT_NOT_FOUND',
      `${role} ${file} does not exist or cannot be read`,
      { path: file },
      { cause: error },
    );
  }
}

function lastLines(text: string, count: number): string[] {
  return text
    .split('\n')
    .filter((line) => line.trim().length > 0)
    .slice(-count);
}

/**
 * Runs the IGD check in QEMU and returns the verdict (`passed: false` with `failures` when the
 * firmware did not do its part). Throws VerificationError E_VERIFY_IGD_TIMEOUT (the boot
 * manager never ran), E_VERIFY_IGD_QEMU_FAILED (QEMU exited early), E_VERIFY_IGD_QMP_FAILED,
 * OvmfBuildError E_BOOT_QEMU_MISSING / E_INPUT_NOT_FOUND, or AbortError. Under KVM, a KVM
 * failure (an error on stderr, or no output at all within 10 s: BUILD-NOTES, "QEMU on these
 * machines") runs the check again under TCG at once, with a note in `info`. The temp dir is
 * removed on every path.
 */
export async function checkIgdAssignment(options: IgdCheckOptions): Promise<IgdCheckResult> {
  try {
    return await runIgdCheck(options);
  } catch (error) {
    if (!(error instanceof VerificationError) || error.code !== 'E_VERIFY_IGD_KVM_FAILED') throw error;
    options.logger?.warn({ reason: error.details['reason'] }, 'IGD check: KVM failed; running it under TCG');
    const result = await runIgdCheck({ ...options, accelerator: 'tcg' });
    return {
      ...result,
      info: [
        `KVM failed (${String(error.details['reason'])}); the check ran again under TCG`,
        ...result.info,
      ],
    };
  }
}

/** A working KVM vCPU prints SEC's first debug lines and config writes within milliseconds. */
const KVM_NO_OUTPUT_MS = 10_000;

async function runIgdCheck(options: IgdCheckOptions): Promise<IgdCheckResult> {
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
  const timeoutMs = options.timeoutMs ?? 120_000;
  const settleMs = options.settleMs ?? 300;
  const pollIntervalMs = options.pollIntervalMs ?? 50;
  const memoryMiB = options.memoryMiB ?? 512;
  for (const [name, value] of Object.entries({ timeoutMs, settleMs, pollIntervalMs, memoryMiB }))
    checkPositive(name, value);
  // The OpRegion must at least parse: a check around a broken one proves nothing.
  parseOpRegion(options.opRegion);
  const { signal, logger } = options;
  throwIfAborted(signal);
  const binary = await findQemu({ qemuPath: options.qemuPath, env: options.env ?? process.env });
  await checkReadable(options.codePath, 'OVMF code image');
  await checkReadable(options.varsPath, 'OVMF variable store');
  if (options.romPath !== undefined) await checkReadable(options.romPath, 'option ROM');

  const directory = await mkdtemp(path.join(options.tmpDir ?? os.tmpdir(), 'ovmf-build-igd-'));
  try {
    const file = (name: string): string => path.join(directory, name);
    const varsPath = file('OVMF_VARS.fd');
    await copyFile(options.varsPath, varsPath);
    await chmod(varsPath, 0o600);
    await writeFile(file('opregion.bin'), options.opRegion);
    const sizeFile = new Uint8Array(8);
    new DataView(sizeFile.buffer).setBigUint64(0, BigInt(options.bdsmSizeInBytes), true);
    await writeFile(file('bdsm-size.bin'), sizeFile);
    const qmpSocket = file('qmp.sock');
    const vga = ['VGA', 'bus=pcie.0', 'addr=02.0'];
    if (options.romPath !== undefined)
      vga.push(`romfile=${escapeQemuOptionValue(path.resolve(options.romPath))}`);
    const smm =
      options.smm === true
        ? ['-global', 'driver=cfi.pflash01,property=secure,value=on', '-global', 'ICH9-LPC.disable_s3=1']
        : [];
    const args = [
      '-machine',
      options.smm === true ? 'q35,smm=on' : 'q35',
      '-accel',
      accelerator,
      ...smm,
      '-m',
      String(memoryMiB),
      '-nographic',
      '-nodefaults',
      '-display',
      'none',
      '-monitor',
      'none',
      '-net',
      'none',
      '-no-reboot',
      '-drive',
      `if=pflash,format=raw,unit=0,readonly=on,file=${escapeQemuOptionValue(path.resolve(options.codePath))}`,
      '-drive',
      `if=pflash,format=raw,unit=1,file=${escapeQemuOptionValue(varsPath)}`,
      '-device',
      vga.join(','),
      '-fw_cfg',
      `name=${FW_CFG_OPREGION},file=${escapeQemuOptionValue(file('opregion.bin'))}`,
      ...(options.bdsmSizeInBytes > 0
        ? ['-fw_cfg', `name=${FW_CFG_BDSM_SIZE},file=${escapeQemuOptionValue(file('bdsm-size.bin'))}`]
        : []),
      '-fw_cfg',
      `name=${FW_CFG_DEVICE_ID},string=${deviceId}`,
      '-trace',
      'pci_cfg_write',
      '-D',
      file('trace.log'),
      '-debugcon',
      `file:${file('debug.log')}`,
      '-global',
      'isa-debugcon.iobase=0x402',
      '-serial',
      `file:${file('serial.log')}`,
      '-qmp',
      `unix:${escapeQemuOptionValue(qmpSocket)},server=on,wait=off`,
    ];
    logger?.info({ binary, args, deviceId, platform: options.platform.key }, 'IGD check: booting in QEMU');
    const qemu = startQemu(binary, args);
    const { child, exited, startedAt: started } = qemu;
    const trace = new GrowingFile(file('trace.log'), { maxSizeInBytes: MAX_LOG_BYTES });
    const debug = new GrowingFile(file('debug.log'), { maxSizeInBytes: MAX_LOG_BYTES });
    const serial = new GrowingFile(file('serial.log'), { maxSizeInBytes: MAX_LOG_BYTES });
    let qmp: QmpClient | undefined;
    let timeToAslsMs: number | null = null;
    let timeToBootManagerMs: number | null = null;
    let outcome: 'boot-manager' | 'assert' | 'exited' | 'timeout' | 'aborted' | 'kvm-failed' | undefined;
    let kvmFailure: string | undefined;
    let registers: IgdRegisters | null = null;
    let memoryAtAsls: Uint8Array | null = null;
    let stolenZeroed: boolean | undefined;
    const wake = new AbortController();
    const onAbort = (): void => wake.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    void exited.then(onAbort);
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
      }).catch((error: unknown) => {
        if (qemu.spawnError() !== undefined || qemu.exit() !== undefined) return undefined;
        throw error;
      });
      const aslsPattern = /^(?:\d+@\d+\.\d+:)?pci_cfg_write \S+ 00:02\.0 @0xf[c-f] /mu;
      while (outcome === undefined) {
        if (!wake.signal.aborted) {
          await sleep(pollIntervalMs, undefined, { signal: wake.signal }).catch(() => undefined);
        }
        if (qemu.spawnError() !== undefined) break;
        await Promise.all([trace.poll(), debug.poll(), serial.poll()]);
        const elapsedMs = performance.now() - started;
        if (timeToAslsMs === null && aslsPattern.test(trace.text)) timeToAslsMs = Math.round(elapsedMs);
        if (
          timeToBootManagerMs === null &&
          (BOOT_MANAGER_RE.test(serial.text) || BOOT_MANAGER_RE.test(debug.text))
        ) {
          timeToBootManagerMs = Math.round(elapsedMs);
          logger?.debug({ timeToBootManagerMs }, 'IGD check: the boot manager runs');
        }
        if (accelerator === 'kvm' && timeToBootManagerMs === null) {
          kvmFailure = findKvmFailure(qemu.stderr());
          if (
            kvmFailure === undefined &&
            elapsedMs >= KVM_NO_OUTPUT_MS &&
            trace.text.length === 0 &&
            debug.text.length === 0 &&
            serial.text.length === 0
          ) {
            kvmFailure = `no output within ${KVM_NO_OUTPUT_MS} ms (the vCPU stopped)`;
          }
        }
        if (signal?.aborted === true) outcome = 'aborted';
        else if (kvmFailure !== undefined) outcome = 'kvm-failed';
        else if (qemu.exit() !== undefined) outcome = 'exited';
        else if (ASSERT_RE.test(debug.text)) outcome = 'assert';
        else if (timeToBootManagerMs !== null && elapsedMs - timeToBootManagerMs >= settleMs)
          outcome = 'boot-manager';
        else if (elapsedMs >= timeoutMs) outcome = 'timeout';
      }
      if ((outcome === 'boot-manager' || outcome === 'assert') && qmp !== undefined) {
        await qmp.execute('stop');
        await Promise.all([trace.poll(), debug.poll(), serial.poll()]);
        const dword = (offset: number): Promise<number> =>
          readPciConfigDword(qmp as QmpClient, IGD_SLOT, offset);
        const id = await dword(0x00);
        const asls = await dword(IGD_REGISTERS.asls);
        const bdsm32 = await dword(IGD_REGISTERS.bdsm32);
        const low = await dword(IGD_REGISTERS.bdsm64);
        const high = await dword(IGD_REGISTERS.bdsm64 + 4);
        registers = { id, asls, bdsm32, bdsm64: low + high * FOUR_GIB };
        if (asls !== 0 && asls + options.opRegion.length <= FOUR_GIB) {
          const dump = file('asls.bin');
          await qmp.execute('pmemsave', { val: asls, size: options.opRegion.length, filename: dump });
          memoryAtAsls = new Uint8Array(await readFile(dump));
        }
        const bdsmBase =
          options.platform.bdsm === 'bdsm64'
            ? registers.bdsm64
            : options.platform.bdsm === 'bdsm32'
              ? bdsm32
              : 0;
        if (
          (options.checkStolenZeroed ?? true) &&
          bdsmBase !== 0 &&
          options.bdsmSizeInBytes > 0 &&
          options.bdsmSizeInBytes <= MAX_STOLEN_DUMP_BYTES &&
          bdsmBase + options.bdsmSizeInBytes <= FOUR_GIB
        ) {
          const dump = file('stolen.bin');
          await qmp.execute('pmemsave', { val: bdsmBase, size: options.bdsmSizeInBytes, filename: dump });
          stolenZeroed = (await readFile(dump)).every((byte) => byte === 0);
          await rm(dump, { force: true });
        }
        await qmp.execute('quit').catch(() => undefined);
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
      qmp?.close();
      if (qemu.exit() === undefined && qemu.spawnError() === undefined) {
        const killed = setTimeout(() => child.kill('SIGKILL'), outcome === 'boot-manager' ? 2_000 : 0);
        await exited;
        clearTimeout(killed);
      }
      await Promise.all([trace.poll(), debug.poll(), serial.poll()]).catch(() => undefined);
      await Promise.all([trace.close(), debug.close(), serial.close()]);
      if (options.keepLogsIn !== undefined) {
        await Promise.all([
          writeFile(path.join(options.keepLogsIn, 'trace.log'), trace.text, 'latin1'),
          writeFile(path.join(options.keepLogsIn, 'debug.log'), debug.text, 'latin1'),
          writeFile(path.join(options.keepLogsIn, 'serial.log'), serial.text, 'latin1'),
        ]).catch((error: unknown) =>
          logger?.warn({ error: String(error) }, 'IGD check: could not keep the logs'),
        );
      }
    }
    const durationMs = Math.round((qemu.endedAt() ?? performance.now()) - started);
    const spawnError = qemu.spawnError();
    if (spawnError !== undefined) {
      const code = (spawnError as NodeJS.ErrnoException).code;
      throw new OvmfBuildError(
        code === 'ENOENT' ? 'E_BOOT_QEMU_MISSING' : 'E_VERIFY_IGD_QEMU_FAILED',
        `cannot start ${binary}: ${spawnError.message}`,
        { binary, errno: code },
        { cause: spawnError },
      );
    }
    const common = { durationMs, deviceId, platform: options.platform.key, args };
    switch (outcome) {
      case 'aborted':
        throw new AbortError(`IGD check aborted: ${String(signal?.reason ?? 'signal')}`, common, {
          cause: signal?.reason,
        });
      case 'timeout':
        throw new VerificationError(
          'E_VERIFY_IGD_TIMEOUT',
          `the firmware did not reach the boot manager within ${timeoutMs} ms; last debug lines:\n${lastLines(debug.text, 10).join('\n')}`,
          {
            ...common,
            timeoutMs,
            traceLines: igdTraceLines(parsePciCfgWrites(trace.text)),
            lastDebugLines: lastLines(debug.text, 30),
            lastSerialLines: lastLines(serial.text, 10),
          },
        );
      case 'kvm-failed':
        throw new VerificationError(
          'E_VERIFY_IGD_KVM_FAILED',
          `KVM failed during the IGD check: ${String(kvmFailure)}`,
          {
            ...common,
            reason: kvmFailure,
            stderr: qemu.stderr(),
          },
        );
      case 'exited':
      case undefined:
        throw new VerificationError(
          'E_VERIFY_IGD_QEMU_FAILED',
          `QEMU exited (code ${String(qemu.exit()?.code)}, signal ${String(qemu.exit()?.signal)}) before the boot manager ran` +
            (qemu.stderr().trim().length > 0 ? `: ${qemu.stderr().trim()}` : ''),
          {
            ...common,
            stderr: qemu.stderr(),
            exitCode: qemu.exit()?.code ?? null,
            lastDebugLines: lastLines(debug.text, 30),
          },
        );
      case 'assert':
      case 'boot-manager':
        break;
    }
    const evaluation = evaluateIgdCheck({
      traceText: trace.text,
      debugText: debug.text,
      registers,
      memoryAtAsls,
      ...(stolenZeroed === undefined ? {} : { stolenZeroed }),
      opRegion: options.opRegion,
      bdsmSizeInBytes: options.bdsmSizeInBytes,
      platform: options.platform,
      deviceId,
    });
    const failures = [...evaluation.failures];
    if (outcome === 'assert') {
      const assertion = ASSERT_RE.exec(debug.text)?.[0].trim() ?? 'ASSERT';
      failures.unshift(`the firmware stopped at an assertion before the boot manager: ${assertion}`);
    }
    if (registers !== null && registers.id === 0xffff_ffff) failures.push('no device answers at 00:02.0');
    const result: IgdCheckResult = {
      passed: failures.length === 0,
      failures,
      info: evaluation.info,
      asls: evaluation.asls,
      bdsm: evaluation.bdsm,
      opRegionMatches: evaluation.opRegionMatches,
      vbtSource: evaluation.vbtSource,
      traceLines: evaluation.traceLines,
      debugLines: evaluation.debugLines,
      timeToAslsMs,
      timeToBootManagerMs,
      durationMs,
      accelerator,
      deviceId,
      platform: options.platform.key,
      mode: options.romPath === undefined ? 'embedded' : 'rom',
      registers,
      qemu: { binary, args },
    };
    logger?.info(
      {
        passed: result.passed,
        asls: result.asls,
        bdsm: result.bdsm,
        vbtSource: result.vbtSource,
        durationMs,
        failures,
      },
      'IGD check done',
    );
    return result;
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

/** Debian's stock OVMF (package `ovmf`), the firmware of ROM mode: the one Proxmox ships too. */
export const STOCK_OVMF = {
  code: '/usr/share/OVMF/OVMF_CODE_4M.fd',
  vars: '/usr/share/OVMF/OVMF_VARS_4M.fd',
} as const;

/** Stolen memory handed to the firmware in the job's checks: QEMU's smallest common GMS. */
export const JOB_STOLEN_SIZE_IN_BYTES = 32 * MiB;

/**
 * A device of each GOP family for the IGD check when the user gave no --device: the check
 * proves what the firmware does for that generation's BDSM layout (igd-devices.json).
 */
export const REPRESENTATIVE_DEVICE: Readonly<Record<string, string>> = {
  'hsw-bdw': '0416',
  gen9: '3e9b',
  gen12: '9a49',
};
export const FALLBACK_DEVICE = '3e9b';

/** One mode of the job's IGD check, as the manifest and `--json` record it. */
export type IgdModeSummary =
  | {
      readonly mode: 'embedded' | 'rom';
      readonly checked: true;
      readonly passed: boolean;
      readonly firmware: string;
      readonly deviceId: string;
      readonly platform: string;
      readonly accelerator: QemuAccelerator;
      readonly asls: string | null;
      readonly bdsm: { readonly offset: string; readonly width: 32 | 64; readonly value: string } | null;
      readonly opRegionMatches: boolean;
      readonly vbtSource: IgdVbtSource | null;
      readonly timeToAslsMs: number | null;
      readonly timeToBootManagerMs: number | null;
      readonly durationMs: number;
      readonly traceLines: readonly string[];
      readonly debugLines: readonly string[];
      readonly failures: readonly string[];
    }
  | { readonly mode: 'embedded' | 'rom'; readonly checked: false; readonly reason: string };

export interface IgdVerification {
  readonly deviceId: string;
  readonly platform: string;
  /** Why this device: the user's --device, or a representative of the GOP's generation. */
  readonly deviceReason: string;
  readonly embedded: IgdModeSummary;
  readonly rom: IgdModeSummary;
}

export interface IgdVerifyRequest {
  readonly code: Uint8Array;
  readonly vars: Uint8Array;
  /** The ROM to try on stock OVMF; null skips ROM mode for `romSkipReason`. */
  readonly rom: Uint8Array | null;
  readonly romSkipReason?: string;
  /** The VBT the OpRegion is built around (version 2.1: mailbox 4, or RVDA above 6 KiB). */
  readonly vbt: Uint8Array;
  readonly deviceId: string;
  readonly platform: IgdPlatform;
  readonly deviceReason: string;
  readonly accelerator: QemuAccelerator;
  /** The built firmware needs SMM (a secure boot build); stock OVMF in ROM mode never does. */
  readonly smm?: boolean;
  /** @default STOCK_OVMF */
  readonly stockOvmf?: { readonly code: string; readonly vars: string };
  readonly env?: NodeJS.ProcessEnv;
  readonly tmpDir?: string;
  readonly signal?: AbortSignal;
  readonly logger?: IgdCheckLogger;
}

export function summarizeIgdCheck(result: IgdCheckResult, firmware: string): IgdModeSummary {
  return {
    mode: result.mode,
    checked: true,
    passed: result.passed,
    firmware,
    deviceId: result.deviceId,
    platform: result.platform,
    accelerator: result.accelerator,
    asls: result.asls === null ? null : hex(result.asls),
    bdsm:
      result.bdsm === null
        ? null
        : { offset: hex(result.bdsm.offset), width: result.bdsm.width, value: hex(result.bdsm.value) },
    opRegionMatches: result.opRegionMatches,
    vbtSource: result.vbtSource,
    timeToAslsMs: result.timeToAslsMs,
    timeToBootManagerMs: result.timeToBootManagerMs,
    durationMs: result.durationMs,
    traceLines: result.traceLines,
    debugLines: result.debugLines,
    failures: result.failures,
  };
}

async function readable(file: string): Promise<boolean> {
  try {
    await access(file, fsConstants.R_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The job's IGD check of a built firmware: embedded mode on the firmware itself and ROM mode
 * (the ROM alone on Debian's stock OVMF, when installed), side by side. Returns both verdicts;
 * `assertIgdVerificationPassed` turns a failed one into E_VERIFY_IGD_CHECK_FAILED.
 */
export async function verifyIgdModes(request: IgdVerifyRequest): Promise<IgdVerification> {
  const opRegion = buildOpRegion({ vbt: request.vbt, version: '2.1' });
  const directory = await mkdtemp(path.join(request.tmpDir ?? os.tmpdir(), 'ovmf-build-igd-job-'));
  try {
    const codePath = path.join(directory, 'OVMF_CODE.fd');
    const varsPath = path.join(directory, 'OVMF_VARS.fd');
    const romPath = path.join(directory, 'vbios.rom');
    await writeFile(codePath, request.code);
    await writeFile(varsPath, request.vars);
    if (request.rom !== null) await writeFile(romPath, request.rom);
    const stock = request.stockOvmf ?? STOCK_OVMF;
    const common = {
      deviceId: request.deviceId,
      opRegion,
      bdsmSizeInBytes: JOB_STOLEN_SIZE_IN_BYTES,
      platform: request.platform,
      accelerator: request.accelerator,
      tmpDir: directory,
      ...(request.env === undefined ? {} : { env: request.env }),
      ...(request.signal === undefined ? {} : { signal: request.signal }),
      ...(request.logger === undefined ? {} : { logger: request.logger }),
    };
    const embedded = checkIgdAssignment({ ...common, codePath, varsPath, smm: request.smm === true }).then(
      (result) => summarizeIgdCheck(result, 'built OVMF_CODE.fd'),
    );
    let rom: Promise<IgdModeSummary>;
    if (request.rom === null) {
      rom = Promise.resolve({ mode: 'rom', checked: false, reason: request.romSkipReason ?? 'no ROM' });
    } else if (!(await readable(stock.code)) || !(await readable(stock.vars))) {
      rom = Promise.resolve({
        mode: 'rom',
        checked: false,
        reason: `Debian's stock OVMF (${stock.code}) is not installed (apt-get install ovmf)`,
      });
    } else {
      rom = checkIgdAssignment({ ...common, codePath: stock.code, varsPath: stock.vars, romPath }).then(
        (result) => summarizeIgdCheck(result, stock.code),
      );
    }
    const [embeddedSummary, romSummary] = await Promise.all([embedded, rom]);
    return {
      deviceId: request.deviceId,
      platform: request.platform.key,
      deviceReason: request.deviceReason,
      embedded: embeddedSummary,
      rom: romSummary,
    };
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

/** Throws E_VERIFY_IGD_CHECK_FAILED naming each failed mode and its failures. */
export function assertIgdVerificationPassed(verification: IgdVerification): void {
  const failed = [verification.embedded, verification.rom].filter(
    (summary): summary is Extract<IgdModeSummary, { checked: true }> => summary.checked && !summary.passed,
  );
  if (failed.length === 0) return;
  throw new VerificationError(
    'E_VERIFY_IGD_CHECK_FAILED',
    `the IGD assignment check failed for device ${verification.deviceId} (${verification.platform}): ` +
      failed.map((summary) => `${summary.mode} mode: ${summary.failures.join('; ')}`).join(' | '),
    { verification },
  );
}
