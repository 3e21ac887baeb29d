// The first stage of the job: read and validate the GOP driver, the VBT and the ROM (or take
// the GOP and VBT out of a vendor image), look the device up and name the artifact. It costs
// milliseconds, so a bad input fails before any engine, download or build.
import path from 'node:path';
import { userCacheDir } from '../cache/paths.js';
import { sha256 } from '../core/digest.js';
import { OvmfBuildError, UsageError } from '../core/errors.js';
import type { BuildFlags } from '../edk2/flags.js';
import { igdVolumeBytesUsed, igdVolumeSizes } from '../edk2/layout.js';
import { resolveInput } from '../fetch/resolve-input.js';
import { assertGopDriver, type GopDriverInfo } from '../formats/gop.js';
import { assertVbt, type VbtInfo } from '../formats/vbt.js';
import { lookupDevice } from '../igd/device-table.js';
import { generationWarnings, gopFamily } from '../igd/generation.js';
import { loadIgdDeviceTable } from '../igd/load.js';
import { assertArtifactName } from '../publish/index.js';
import { generationArtifactName } from '../publish/naming.js';
import type { DeviceFacts, JobRequest, ResolvedInputs, RomPlan } from './job-types.js';
import type { StageContext } from './stage.js';
import {
  DEFAULT_DEVICE_ID,
  INTEL_VENDOR_ID,
  ROM_GENERATOR_VERSION,
  generatedRomKeyInput,
} from './rom-key.js';

/** The device's platform (device table) and what contradicts it in the GOP and VBT. */
async function deviceFacts(
  deviceId: number | undefined,
  gop: GopDriverInfo,
  vbt: VbtInfo,
): Promise<DeviceFacts> {
  if (deviceId === undefined) {
    return { deviceId: null, platform: undefined, warnings: [] };
  }
  const id = deviceId.toString(16).padStart(4, '0');
  const platform = lookupDevice(await loadIgdDeviceTable(), id);
  return { deviceId: id, platform, warnings: generationWarnings({ deviceId: id, platform, gop, vbt }) };
}

/** Request checks that need no input bytes: they fail before anything is read. */
function assertRequestConsistent(request: JobRequest): void {
  if (request.flags.secureBoot && request.machine === 'i440fx') {
    throw new UsageError('--secure-boot needs SMM, which QEMU emulates only on q35; use --machine q35');
  }
  if (request.name !== undefined) {
    try {
      assertArtifactName(request.name);
    } catch (error) {
      throw new UsageError((error as Error).message, { name: request.name });
    }
  }
}

/**
 * The GOP driver and the VBT go into the firmware's IGD volume, whose size the flash size fixes
 * (edk2/layout.ts); inputs that cannot fit fail here, before any engine or build, instead of as
 * a GenFv error at the end of a build.
 */
function assertFitsIgdVolume(gop: Uint8Array, vbt: Uint8Array, fdSize: BuildFlags['fdSize']): void {
  const capacity = igdVolumeSizes(fdSize).igdVolume;
  const needed = igdVolumeBytesUsed(gop.length, vbt.length);
  if (needed <= capacity) return;
  throw new OvmfBuildError(
    'E_INPUT_IGD_VOLUME_FULL',
    `the GOP driver (${gop.length} bytes) and the VBT (${vbt.length} bytes) need ${needed} bytes in the ` +
      `firmware's IGD volume, which holds ${capacity} bytes in a ${fdSize} image` +
      (fdSize === '2MB' ? '; build a 4 MiB image (--fd-size 4MB)' : ''),
    {
      gopSizeInBytes: gop.length,
      vbtSizeInBytes: vbt.length,
      neededBytes: needed,
      capacityBytes: capacity,
      fdSize,
    },
  );
}

interface GopAndVbt {
  readonly gop: Uint8Array;
  readonly vbt: Uint8Array;
  readonly gopOrigin: unknown;
  readonly vbtOrigin: unknown;
  readonly firmware: ResolvedInputs['firmware'];
}

async function readGopAndVbt(
  request: JobRequest,
  common: Parameters<typeof resolveInput>[1],
  /** Told the chain when --firmware was a vendor package. */
  onPackage?: (chain: string) => void,
): Promise<GopAndVbt> {
  if ('firmware' in request.inputs) {
    const image = await resolveInput(request.inputs.firmware, { ...common, what: 'the firmware image' });
    // The firmware parser (and its decompressors) load only for --firmware.
    const { parseFirmware } = await import('../formats/firmware-tree.js');
    const { locateGopAndVbt, gopNotFoundError, vbtNotFoundError } = await import('../formats/locate.js');
    // A vendor package (zip, 7z, SFX, cab) is unpacked outside-in to the firmware piece.
    const { openPackage, chainText, packageWithoutGop } = await import('../vendor/open-package.js');
    const name = image.origin.kind === 'path' ? image.origin.path : image.origin.url;
    const pkg = await openPackage(image.bytes, { name, signal: common.signal });
    const located = locateGopAndVbt(parseFirmware(pkg?.leaf.bytes ?? image.bytes));
    if (located.gop === null) {
      const missing = gopNotFoundError(located);
      throw pkg === null || missing.code !== 'E_GOP_NOT_FOUND'
        ? missing
        : packageWithoutGop(name, pkg, missing.message);
    }
    if (located.vbt === null) throw vbtNotFoundError(located);
    if (pkg !== null) onPackage?.(chainText(pkg));
    return {
      gop: located.gop.body,
      // The VBT's own size (vbt_size) ends the table; the section may carry padding after it.
      vbt: located.vbt.body.subarray(0, located.vbt.info.vbtSize),
      gopOrigin: { kind: 'firmware', path: located.gop.path, fileGuid: located.gop.guid },
      vbtOrigin: { kind: 'firmware', path: located.vbt.path, fileGuid: located.vbt.guid },
      firmware: { sha256: image.sha256, origin: image.origin },
    };
  }
  // allSettled: when one input fails, the other's download has finished (and cleaned up)
  // before the error is reported, so nothing is left in flight.
  const [gopResult, vbtResult] = await Promise.allSettled([
    resolveInput(request.inputs.gop, { ...common, what: 'the GOP driver' }),
    resolveInput(request.inputs.vbt, { ...common, what: 'the VBT' }),
  ]);
  if (gopResult.status === 'rejected') throw gopResult.reason;
  if (vbtResult.status === 'rejected') throw vbtResult.reason;
  return {
    gop: gopResult.value.bytes,
    vbt: vbtResult.value.bytes,
    gopOrigin: gopResult.value.origin,
    vbtOrigin: vbtResult.value.origin,
    firmware: null,
  };
}

async function romPlan(
  request: JobRequest,
  gop: Uint8Array,
  common: Parameters<typeof resolveInput>[1],
): Promise<RomPlan> {
  if (request.rom !== undefined) {
    const user = await resolveInput(request.rom, { ...common, what: 'the ROM' });
    // The ROM parser loads only for --rom; a bad ROM fails here, before any build.
    const { prepareRom } = await import('./rom.js');
    // Our OVMF carries IgdAssignmentDxe (embedded mode), so a GOP-only user ROM is fine here.
    const prepared = prepareRom({
      kind: 'user',
      bytes: user.bytes,
      origin: user.origin,
      firmwareHasIgdAssignment: true,
    });
    return {
      keyInput: prepared.keyInput,
      source: prepared.source,
      warnings: prepared.warnings,
      bytes: () => Promise.resolve(prepared.bytes),
    };
  }
  const deviceId = request.deviceId ?? DEFAULT_DEVICE_ID;
  return {
    keyInput: generatedRomKeyInput(deviceId),
    source: {
      kind: 'generated',
      vendorId: INTEL_VENDOR_ID,
      deviceId,
      generatorVersion: ROM_GENERATOR_VERSION,
    },
    warnings: [],
    bytes: async (helpers) => {
      const { buildIgdRom, prepareRom } = await import('./rom.js');
      if (helpers === null) return buildIgdRom({ gop, helpers: null, deviceId }).bytes;
      return prepareRom({ kind: 'generated', gop, helpers, deviceId }).bytes;
    },
  };
}

/** Stage `resolveInputs`: every input read and validated, the ROM planned, the artifact named. */
export async function resolveInputs(request: JobRequest, context: StageContext): Promise<ResolvedInputs> {
  assertRequestConsistent(request);
  context.emit({ type: 'phase', phase: 'validate', message: 'checking the GOP driver, VBT and ROM' });
  const downloadDir = path.join(userCacheDir(request.env), 'downloads');
  const common = { cwd: request.cwd, downloadDir, signal: context.signal, offline: request.offline };
  const read = await readGopAndVbt(request, common, (chain) => {
    context.logger.info({ chain }, 'firmware package unpacked');
    context.emit({ type: 'note', message: `firmware package: ${chain}` });
  });
  const gopInfo = assertGopDriver(read.gop);
  const vbtInfo = assertVbt(read.vbt);
  assertFitsIgdVolume(read.gop, read.vbt, request.flags.fdSize);
  const rom = await romPlan(request, read.gop, common);
  const device = await deviceFacts(request.deviceId, gopInfo, vbtInfo);
  const family = gopFamily(gopInfo);
  const inputs: ResolvedInputs = {
    device,
    gop: { bytes: read.gop, sha256: gopInfo.sha256, info: gopInfo, origin: read.gopOrigin },
    vbt: { bytes: read.vbt, sha256: sha256(read.vbt), info: vbtInfo, origin: read.vbtOrigin },
    firmware: read.firmware,
    rom,
    name:
      request.name ??
      request.recipe?.name ??
      generationArtifactName({
        platformKey: device.platform?.key ?? null,
        deviceId: device.platform === undefined ? null : device.deviceId,
        gopFamilyKey: family?.key ?? null,
        gopBuild: gopInfo.build,
      }),
  };
  context.logger.info(
    {
      gop: { sha256: inputs.gop.sha256, build: gopInfo.build },
      vbt: { sha256: inputs.vbt.sha256, signature: vbtInfo.signature },
      rom: rom.source,
    },
    'inputs validated',
  );
  for (const warning of [...device.warnings, ...rom.warnings]) {
    context.logger.warn({ warning }, 'input warning');
    context.emit({ type: 'note', message: `warning: ${warning}` });
  }
  if (device.deviceId === null && request.name === undefined && request.recipe === undefined) {
    context.emit({
      type: 'note',
      message:
        family === null
          ? 'no --device: the GOP driver does not tell its generation, so the artifact is named by GOP build only; give --device 8086:XXXX (lspci -n -s 00:02.0)'
          : `no --device: generation inferred from the GOP driver, ${family.description}; give --device 8086:XXXX (lspci -n -s 00:02.0) to name the platform`,
    });
  }
  return inputs;
}
