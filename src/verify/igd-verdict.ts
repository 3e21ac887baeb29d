// The IGD check's verdict (issue 9, item 5), pure: which error a boot that never got to the boot
// manager is, and, from the trace, the registers read back, the guest memory at ASLS and the
// debug log of one that did, whether the firmware did its half of QEMU's IGD assignment, with a
// reason for each failure.
import type { OvmfBuildError } from '../core/errors.js';
import { hex } from '../core/hex.js';
import { parseOpRegion, type OpRegionVbtSource } from '../formats/opregion.js';
import { normalizeDeviceId, type IgdPlatform } from '../igd/device-table.js';
import { lastLogLines } from './debug-log.js';
import { runAbortedError, VerificationError } from './errors.js';
import { parseIgdDebugLog } from './igd-debug-log.js';
import type { IgdRun } from './igd-run.js';
import {
  FOUR_GIB,
  IGD_REGISTERS,
  MiB,
  igdRegisterWrites,
  igdTraceLines,
  parsePciCfgWrites,
  tracedValue,
} from './igd-trace.js';

const PAGE_SIZE = 4096;

export interface IgdRegisters {
  /** Vendor and device ID dword (config 0x00). */
  readonly id: number;
  readonly asls: number;
  readonly bdsm32: number;
  readonly bdsm64: number;
}

export type IgdVbtSource = `opregion-${OpRegionVbtSource}` | 'firmware-volume';

/** The BDSM register the firmware wrote and the value it left there. */
export interface IgdBdsm {
  readonly offset: number;
  readonly width: 32 | 64;
  readonly value: number;
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
  readonly bdsm: IgdBdsm | null;
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
  let bdsm: IgdBdsm | null = null;
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

/**
 * The error for an IGD boot that did not get to the boot manager (E_VERIFY_IGD_TIMEOUT,
 * E_VERIFY_IGD_QEMU_FAILED, E_VERIFY_IGD_KVM_FAILED, AbortError), or undefined when it did (an
 * ASSERT after which the registers were read back is a failure of the verdict, not an error).
 */
export function igdRunFailure(
  run: IgdRun,
  context: {
    readonly timeoutMs: number;
    readonly common: Readonly<Record<string, unknown>>;
    readonly signal?: AbortSignal | undefined;
  },
): OvmfBuildError | undefined {
  const { common, signal } = context;
  switch (run.outcome) {
    case 'aborted':
      return runAbortedError('IGD check', signal, common);
    case 'timeout':
      return new VerificationError(
        'E_VERIFY_IGD_TIMEOUT',
        `the firmware did not reach the boot manager within ${context.timeoutMs} ms; last debug lines:\n${lastLogLines(run.debugText, 10).join('\n')}`,
        {
          ...common,
          timeoutMs: context.timeoutMs,
          traceLines: igdTraceLines(parsePciCfgWrites(run.traceText)),
          lastDebugLines: lastLogLines(run.debugText, 30),
          lastSerialLines: lastLogLines(run.serialText, 10),
        },
      );
    case 'kvm-failed':
      // Only a KVM run watches for KVM failures, and a failed one is retried under TCG.
      return new VerificationError(
        'E_VERIFY_IGD_KVM_FAILED',
        `KVM failed during the IGD check: ${String(run.kvmFailure)}`,
        {
          ...common,
          reason: run.kvmFailure,
          stderr: run.stderr,
        },
      );
    case 'exited':
      return new VerificationError(
        'E_VERIFY_IGD_QEMU_FAILED',
        `QEMU exited (code ${String(run.exit?.code)}, signal ${String(run.exit?.signal)}) before the boot manager ran` +
          (run.stderr.trim().length > 0 ? `: ${run.stderr.trim()}` : ''),
        {
          ...common,
          stderr: run.stderr,
          exitCode: run.exit?.code ?? null,
          lastDebugLines: lastLogLines(run.debugText, 30),
        },
      );
    case 'assert':
    case 'boot-manager':
      return undefined;
  }
}
