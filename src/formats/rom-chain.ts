// What each image of a PCI option ROM chain is, by content: an Intel GOP driver (with its
// build), an IGD-assignment helper (the firmware half of QEMU's IGD setup: it reads the
// fw_cfg files QEMU offers, QEMU docs/igd-assign.txt), a PlatformGopPolicy driver (it names
// the PLATFORM_GOP_POLICY protocol GUID the GOP waits for), or something else. Names and
// PCIR ids are not trusted: IGD ROMs carry device ffff or some other board's id, and the
// helpers are plain EDK2 drivers. EFI-compressed images are decompressed first.
import { isOvmfBuildError } from '../core/errors.js';
import { guidToBytes } from '../core/guid.js';
import type { DecompressLimits } from './compression/limits.js';
import { classifyGopDriver } from './gop.js';
import { GOP_POLICY_PROTOCOL_GUID } from './known-guids.js';
import { optionRomPeBytes, parseOptionRom, type OptionRomImage, type OptionRomInfo } from './option-rom.js';

export type RomImageRole = 'gop' | 'igd-assignment' | 'gop-policy' | 'other';

/** What an image does, independently of its role (a helper may do both). */
export interface RomImageCapabilities {
  /** Reads QEMU's fw_cfg `etc/igd-opregion` or `etc/igd-bdsm-size` (QEMU hw/vfio/igd.c). */
  readonly igdAssignment: boolean;
  /** Holds the PLATFORM_GOP_POLICY protocol GUID (installs it, or, for a GOP, waits for it). */
  readonly gopPolicyGuid: boolean;
}

export interface RomChainImage {
  readonly index: number;
  readonly offset: number;
  readonly role: RomImageRole;
  readonly capabilities: RomImageCapabilities;
  /** The Intel GOP build number for a GOP image ("1077"), else null. */
  readonly gopBuild: string | null;
  /** The module name a DEBUG build leaves in its PDB path or strings, when one of ours or VfioIgdPkg's. */
  readonly moduleName: string | null;
  /** Why the PE bytes could not be read (bad compressed data); role is then 'other'. */
  readonly problem: string | null;
  readonly image: OptionRomImage;
}

export interface RomChain {
  readonly info: OptionRomInfo;
  readonly images: readonly RomChainImage[];
  /** Some image is an IGD-assignment helper (or an image with that capability). */
  readonly hasIgdAssignment: boolean;
  readonly hasGop: boolean;
  readonly hasGopPolicy: boolean;
}

const IGD_FW_CFG_NAMES = ['etc/igd-opregion', 'etc/igd-bdsm-size'].map((name) => Buffer.from(`${name}\0`));
const POLICY_GUID_BYTES = Buffer.from(guidToBytes(GOP_POLICY_PROTOCOL_GUID));
/**
 * Module names of the IGD helpers we know (ours: OvmfGopPkg; VfioIgdPkg; gangqizai's
 * IgdLegacyModeDisplay). Checked before behaviour, as a policy driver that reads the
 * OpRegion itself also names `etc/igd-opregion`.
 */
const MODULE_NAMES: ReadonlyArray<readonly [RegExp, RomImageRole]> = [
  [/PlatformGopPolicy(?:Dxe)?/u, 'gop-policy'],
  [/IgdAssignment(?:Dxe)?/u, 'igd-assignment'],
  [/IgdLegacyModeDisplay/u, 'igd-assignment'],
];

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function moduleNameOf(pe: Buffer): { name: string; role: RomImageRole } | null {
  // A DEBUG EDK2 build keeps "<...>/<Module>/DEBUG/<Module>.dll" (the PDB path) in the image.
  const pdb = /\/([A-Za-z0-9_]+)\.(?:dll|pdb|efi)\0/u.exec(pe.toString('latin1'));
  const candidate = pdb?.[1];
  if (candidate === undefined) return null;
  for (const [pattern, role] of MODULE_NAMES) if (pattern.test(candidate)) return { name: candidate, role };
  return null;
}

function classifyImage(
  bytes: Uint8Array,
  image: OptionRomImage,
  index: number,
  limits: DecompressLimits,
): RomChainImage {
  const none = { igdAssignment: false, gopPolicyGuid: false };
  const base = { index, offset: image.offset, image };
  if (image.efi === null) {
    return { ...base, role: 'other', capabilities: none, gopBuild: null, moduleName: null, problem: null };
  }
  let pe: Buffer;
  try {
    pe = asBuffer(optionRomPeBytes(bytes, image, limits));
  } catch (error) {
    // An interruption (limits.signal) is no property of the image.
    if (isOvmfBuildError(error) && error.code === 'E_ABORTED') throw error;
    const problem = isOvmfBuildError(error) ? `${error.code}: ${error.message}` : String(error);
    return { ...base, role: 'other', capabilities: none, gopBuild: null, moduleName: null, problem };
  }
  const capabilities = {
    igdAssignment: IGD_FW_CFG_NAMES.some((name) => pe.includes(name)),
    gopPolicyGuid: pe.includes(POLICY_GUID_BYTES),
  };
  const gop = classifyGopDriver(pe);
  if (gop.isGop) {
    return { ...base, role: 'gop', capabilities, gopBuild: gop.info.build, moduleName: null, problem: null };
  }
  const module = moduleNameOf(pe);
  const role: RomImageRole =
    module?.role ??
    (capabilities.igdAssignment ? 'igd-assignment' : capabilities.gopPolicyGuid ? 'gop-policy' : 'other');
  return { ...base, role, capabilities, gopBuild: null, moduleName: module?.name ?? null, problem: null };
}

/**
 * Parses a ROM chain (FormatError E_ROM_* for a broken chain) and names each image. An
 * image whose compressed PE cannot be decompressed is 'other' with a `problem`.
 */
export function classifyRomChain(bytes: Uint8Array, limits: DecompressLimits = {}): RomChain {
  const info = parseOptionRom(bytes);
  const images = info.images.map((image, index) => classifyImage(bytes, image, index, limits));
  return {
    info,
    images,
    hasIgdAssignment: images.some((i) => i.role === 'igd-assignment' || i.capabilities.igdAssignment),
    hasGop: images.some((i) => i.role === 'gop'),
    hasGopPolicy: images.some(
      (i) => i.role === 'gop-policy' || (i.role === 'igd-assignment' && i.capabilities.gopPolicyGuid),
    ),
  };
}

/** "gop 1077", "igd-assignment", ...: one short label per image, for text output. */
export function romImageLabel(image: RomChainImage): string {
  if (image.role === 'gop') return `Intel GOP driver, build ${image.gopBuild ?? 'unknown'}`;
  if (image.role === 'igd-assignment') {
    return `IGD assignment (${image.moduleName ?? 'reads etc/igd-opregion'}${image.capabilities.gopPolicyGuid ? ', also GOP policy' : ''})`;
  }
  if (image.role === 'gop-policy') return `PlatformGopPolicy (${image.moduleName ?? 'policy GUID'})`;
  return image.problem === null ? 'other' : `other (${image.problem})`;
}
