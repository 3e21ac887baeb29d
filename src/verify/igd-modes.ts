// The job's IGD check of a built firmware (issue 9): both modes side by side, embedded (our
// DEBUG OVMF, its own drivers) and ROM mode (the option ROM alone on Debian's stock OVMF), each
// one run of the single check in igd-check.ts, and the summaries the manifest and `--json` keep.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sha256 } from '../core/digest.js';
import { hex } from '../core/hex.js';
import { buildOpRegion } from '../formats/opregion.js';
import { normalizeDeviceId, type IgdPlatform } from '../igd/device-table.js';
import { VerificationError } from './errors.js';
import {
  checkIgdAssignment,
  checkIgdAssignmentWith,
  type IgdBootHooks,
  type IgdCheckLogger,
  type IgdCheckResult,
} from './igd-check.js';
import { MiB } from './igd-trace.js';
import type { IgdVbtSource } from './igd-verdict.js';
import { checkReadableInput, type QemuAccelerator } from './qemu.js';

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
  /**
   * A ROM-mode verdict already under way for exactly these ROM-mode inputs (`romModeDigest`),
   * e.g. started while this build's workspace was being committed (jobs/early-rom.ts); undefined:
   * ROM mode runs here. A precomputed check that failed to run (not a failed verdict) is run again.
   */
  readonly precomputedRom?: (digest: string, signal: AbortSignal) => Promise<IgdModeSummary> | undefined;
}

/** What ROM mode boots: the ROM alone on the stock OVMF, posing as `deviceId`. */
export interface RomModeRequest {
  readonly rom: Uint8Array;
  readonly vbt: Uint8Array;
  readonly deviceId: string;
  readonly platform: IgdPlatform;
  readonly accelerator: QemuAccelerator;
  /** @default STOCK_OVMF */
  readonly stockOvmf?: { readonly code: string; readonly vars: string };
  readonly env?: NodeJS.ProcessEnv;
  readonly tmpDir?: string;
  readonly signal?: AbortSignal;
  readonly logger?: IgdCheckLogger;
}

/**
 * Every input the ROM-mode verdict depends on, hashed: the ROM, the VBT the OpRegion is built
 * from, the device and its platform, the stolen size, the accelerator and the stock OVMF's
 * files. Two requests with the same digest get the same verdict.
 */
export function romModeDigest(request: RomModeRequest): string {
  const stock = request.stockOvmf ?? STOCK_OVMF;
  return sha256(
    JSON.stringify({
      rom: sha256(request.rom),
      vbt: sha256(request.vbt),
      deviceId: normalizeDeviceId(request.deviceId),
      platform: request.platform,
      stolen: JOB_STOLEN_SIZE_IN_BYTES,
      opRegionVersion: '2.1',
      accelerator: request.accelerator,
      stock: [stock.code, stock.vars],
    }),
  );
}

/**
 * ROM mode of the job's IGD check: the ROM on Debian's stock OVMF (not checked, with the
 * reason, when that is not installed). Throws as checkIgdAssignment does; the temp dir is
 * removed on every path.
 */
export async function checkRomMode(request: RomModeRequest): Promise<IgdModeSummary> {
  const stock = request.stockOvmf ?? STOCK_OVMF;
  if (!(await readable(stock.code)) || !(await readable(stock.vars))) {
    return {
      mode: 'rom',
      checked: false,
      reason: `Debian's stock OVMF (${stock.code}) is not installed (apt-get install ovmf)`,
    };
  }
  const directory = await mkdtemp(path.join(request.tmpDir ?? os.tmpdir(), 'ovmf-build-igd-rom-'));
  try {
    const romPath = path.join(directory, 'vbios.rom');
    await writeFile(romPath, request.rom);
    const result = await checkIgdAssignment({
      deviceId: request.deviceId,
      opRegion: buildOpRegion({ vbt: request.vbt, version: '2.1' }),
      bdsmSizeInBytes: JOB_STOLEN_SIZE_IN_BYTES,
      platform: request.platform,
      accelerator: request.accelerator,
      // Beside the ROM's directory, not in it: QEMU's QMP socket path must stay under 108
      // bytes (sun_path), and each nested temp dir adds about 25.
      ...(request.tmpDir === undefined ? {} : { tmpDir: request.tmpDir }),
      codePath: stock.code,
      varsPath: stock.vars,
      romPath,
      ...(request.env === undefined ? {} : { env: request.env }),
      ...(request.signal === undefined ? {} : { signal: request.signal }),
      ...(request.logger === undefined ? {} : { logger: request.logger }),
    });
    return summarizeIgdCheck(result, stock.code);
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
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

const readable = (file: string): Promise<boolean> =>
  checkReadableInput(file, 'file').then(
    () => true,
    () => false,
  );

/**
 * The job's IGD check of a built firmware: embedded mode on the firmware itself and ROM mode
 * (the ROM alone on Debian's stock OVMF, when installed), side by side. Returns both verdicts;
 * `assertIgdVerificationPassed` turns a failed one into E_VERIFY_IGD_CHECK_FAILED.
 */
export function verifyIgdModes(request: IgdVerifyRequest): Promise<IgdVerification> {
  return verifyIgdModesWith(request, {});
}

/** verifyIgdModes with `embeddedHooks` on the embedded-mode boot. */
export async function verifyIgdModesWith(
  request: IgdVerifyRequest,
  embeddedHooks: IgdBootHooks,
): Promise<IgdVerification> {
  const opRegion = buildOpRegion({ vbt: request.vbt, version: '2.1' });
  const directory = await mkdtemp(path.join(request.tmpDir ?? os.tmpdir(), 'ovmf-build-igd-job-'));
  try {
    const codePath = path.join(directory, 'OVMF_CODE.fd');
    const varsPath = path.join(directory, 'OVMF_VARS.fd');
    await writeFile(codePath, request.code);
    await writeFile(varsPath, request.vars);
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
    // A failed embedded mode stops ROM mode: its QEMU must not outlive the temp dir.
    const romAbort = new AbortController();
    const stopRom = (): void => romAbort.abort(request.signal?.reason);
    request.signal?.addEventListener('abort', stopRom, { once: true });
    const embedded = checkIgdAssignmentWith(
      { ...common, codePath, varsPath, smm: request.smm === true },
      embeddedHooks,
    ).then(
      (result) => summarizeIgdCheck(result, 'built OVMF_CODE.fd'),
      (error: unknown) => {
        romAbort.abort(error);
        throw error;
      },
    );
    let rom: Promise<IgdModeSummary>;
    if (request.rom === null) {
      rom = Promise.resolve({ mode: 'rom', checked: false, reason: request.romSkipReason ?? 'no ROM' });
    } else {
      const romRequest: RomModeRequest = {
        rom: request.rom,
        vbt: request.vbt,
        deviceId: request.deviceId,
        platform: request.platform,
        accelerator: request.accelerator,
        tmpDir: directory,
        signal: romAbort.signal,
        ...(request.stockOvmf === undefined ? {} : { stockOvmf: request.stockOvmf }),
        ...(request.env === undefined ? {} : { env: request.env }),
        ...(request.logger === undefined ? {} : { logger: request.logger }),
      };
      // Taken with ROM mode's own signal: a failed embedded mode stops it as it stops a check run here.
      const precomputed = request.precomputedRom?.(romModeDigest(romRequest), romAbort.signal);
      rom =
        precomputed === undefined
          ? checkRomMode(romRequest)
          : precomputed.then(
              (summary) => {
                request.logger?.info(
                  { passed: summary.checked && summary.passed },
                  'IGD check: ROM mode verdict from the check started when the helper drivers came out of a build',
                );
                return summary;
              },
              (error: unknown) => {
                if (romAbort.signal.aborted) throw error;
                request.logger?.warn(
                  { err: error },
                  'IGD check: the ROM-mode check run ahead did not finish; running it again',
                );
                return checkRomMode(romRequest);
              },
            );
    }
    const [embeddedSettled, romSettled] = await Promise.allSettled([embedded, rom]);
    request.signal?.removeEventListener('abort', stopRom);
    if (embeddedSettled.status === 'rejected') throw embeddedSettled.reason;
    if (romSettled.status === 'rejected') throw romSettled.reason;
    return {
      deviceId: request.deviceId,
      platform: request.platform.key,
      deviceReason: request.deviceReason,
      embedded: embeddedSettled.value,
      rom: romSettled.value,
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
