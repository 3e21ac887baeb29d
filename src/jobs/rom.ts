// The vBIOS option ROM shipped with the firmware: the user's ROM, validated, or one
// generated for a device id (EfiRom equivalent in src/formats). A generated ROM is the chain
// [IgdAssignmentDxe, PlatformGopPolicyDxe, GOP] built from the same helper binaries as the
// OVMF build, so the ROM alone makes a stock OVMF do IGD assignment (ROM mode).
import { FormatError, isOvmfBuildError, OvmfBuildError, UsageError } from '../core/errors.js';
import { sha256 } from '../core/digest.js';
import { buildOptionRom } from '../formats/option-rom-builder.js';
import { optionRomPeBytes, type OptionRomInfo } from '../formats/option-rom.js';
import { classifyRomChain, type RomChain, type RomImageRole } from '../formats/rom-chain.js';
import { VerificationError } from '../verify/errors.js';
import type { InputOrigin } from '../fetch/index.js';
import {
  DEFAULT_DEVICE_ID,
  INTEL_VENDOR_ID,
  ROM_GENERATOR_VERSION,
  generatedRomKeyInput,
  userRomKeyInput,
} from './rom-key.js';

/** The two helper drivers a ROM-mode chain carries besides the GOP (DEBUG EDK2 builds of ours). */
export interface HelperDrivers {
  readonly igdAssignment: Uint8Array;
  readonly gopPolicy: Uint8Array;
}

/** File names of the helpers in a build output or artifact directory. */
export const HELPER_FILE_NAMES = {
  igdAssignment: 'IgdAssignmentDxe.efi',
  gopPolicy: 'PlatformGopPolicyDxe.efi',
} as const;

/** PCI class code of a VGA-compatible display controller, for every image of a generated ROM. */
export const IGD_ROM_CLASS_CODE = 0x03_0000;

/** PCI base class 0x03: display controller (PCI Code and ID Assignment spec, 1.4). */
const DISPLAY_BASE_CLASS = 0x03;
const EFI_CODE_TYPE = 3;
const MACHINE_X64 = 0x8664;

export interface PreparedRom {
  readonly bytes: Uint8Array;
  readonly sha256: string;
  readonly info: OptionRomInfo;
  /** Each image's role, in chain order. */
  readonly roles: readonly RomImageRole[];
  readonly warnings: readonly string[];
  readonly source:
    | { readonly kind: 'user'; readonly origin: InputOrigin }
    | {
        readonly kind: 'generated';
        readonly vendorId: number;
        readonly deviceId: number;
        readonly generatorVersion: string;
      };
  /** The cache-key input: the user ROM's sha256, or the generator inputs. */
  readonly keyInput: string;
}

/** Parses "8086:9b41" or "9b41" (vendor must be Intel). */
export function parseDeviceId(text: string): number {
  const match = /^(?:([0-9a-f]{4}):)?([0-9a-f]{4})$/i.exec(text.trim());
  if (match === null) {
    throw new UsageError(`--device must look like 8086:9b41 or 9b41, got \`${text}\``, { device: text });
  }
  if (match[1] !== undefined && Number.parseInt(match[1], 16) !== INTEL_VENDOR_ID) {
    throw new UsageError(`--device must be an Intel device (vendor 8086), got \`${text}\``, { device: text });
  }
  return Number.parseInt(match[2] as string, 16);
}

function badRom(problem: string, details: Record<string, unknown> = {}): never {
  throw new FormatError(
    'E_INPUT_BAD_ROM',
    `the vBIOS ROM is not usable for Intel IGD passthrough: ${problem}`,
    {
      problem,
      ...details,
    },
  );
}

export interface ValidatedRom {
  readonly info: OptionRomInfo;
  /** What each image is (GOP, IGD assignment, GOP policy, other). */
  readonly chain: RomChain;
  /** Problems that do not stop a build but will likely leave the screen dark. */
  readonly warnings: readonly string[];
}

export interface ValidateRomOptions {
  /**
   * Whether the firmware the ROM goes with does IGD assignment itself (ours does, in embedded
   * mode; a stock OVMF does not). Unknown when absent: the ROM alone is judged.
   */
  readonly firmwareHasIgdAssignment?: boolean;
}

/** Warnings for a ROM chain that validated (see ValidatedRom.warnings). */
export function igdRomWarnings(chain: RomChain, options: ValidateRomOptions = {}): string[] {
  const warnings: string[] = [];
  if (!chain.hasIgdAssignment && options.firmwareHasIgdAssignment !== true) {
    warnings.push(
      options.firmwareHasIgdAssignment === false
        ? 'neither the firmware nor the ROM carries IGD assignment: nothing will copy the OpRegion (etc/igd-opregion) or program ASLS/BDSM, and the GOP will likely show nothing'
        : 'the ROM carries no IGD assignment image: it works only with an OVMF that does IGD assignment itself (ovmf-build embedded mode), not with a stock OVMF',
    );
  }
  if (!chain.hasGop) {
    warnings.push('the ROM carries no Intel GOP driver (no image has the "Intel(R) GOP Driver" name)');
  }
  return warnings;
}

/**
 * Checks a ROM the tool will ship: a sane PCI expansion ROM chain (0x55AA, PCIR), Intel
 * vendor id and display class in every image, and at least one EFI image for x64; names
 * each image and warns when neither the firmware nor the ROM does IGD assignment.
 */
export function validateIgdRom(bytes: Uint8Array, options: ValidateRomOptions = {}): ValidatedRom {
  let chain: RomChain;
  try {
    chain = classifyRomChain(bytes);
  } catch (error) {
    if (isOvmfBuildError(error)) badRom(`${error.code}: ${error.message}`, { cause: error.code });
    throw error;
  }
  const { info } = chain;
  for (const [index, image] of info.images.entries()) {
    if (image.vendorId !== INTEL_VENDOR_ID) {
      badRom(`image ${index} has PCIR vendor ${image.vendorId.toString(16).padStart(4, '0')}, not 8086`, {
        index,
      });
    }
    // Class 000000 is EfiRom's default (-l not given); the GOP ROMs people use for IGD
    // passthrough carry it (corpus: alderlake-n-n150-vfio-igd.rom, gen12-gop-gangqizai.rom),
    // so it is accepted. Any other class (a NIC's 020000) is some other device's ROM.
    if (image.classCode >> 16 !== DISPLAY_BASE_CLASS && image.classCode !== 0) {
      badRom(
        `image ${index} has class code ${image.classCode.toString(16).padStart(6, '0')}, not a display controller (03xxxx)`,
        { index },
      );
    }
  }
  const efi = info.images.filter((image) => image.codeType === EFI_CODE_TYPE && image.efi !== null);
  if (efi.length === 0) badRom('it has no EFI image (code type 3); OVMF runs only EFI option ROM code');
  if (!efi.some((image) => image.efi?.machine === MACHINE_X64)) {
    badRom('none of its EFI images is for x64 (machine 0x8664)');
  }
  return { info, chain, warnings: igdRomWarnings(chain, options) };
}

export interface BuildIgdRomOptions {
  readonly gop: Uint8Array;
  /** The helper drivers; null for a GOP-only ROM (embedded mode only). */
  readonly helpers: HelperDrivers | null;
  readonly deviceId: number;
  /** @default 0x8086 */
  readonly vendorId?: number;
  /** @default 0x030000 */
  readonly classCode?: number;
  /** EFI-compress every image (EfiRom -ec). @default false */
  readonly compress?: boolean;
}

/**
 * Builds [IgdAssignmentDxe, PlatformGopPolicyDxe, GOP] (or [GOP]) as EfiRom would
 * (`EfiRom -f 8086 -i <dev> -l 030000 -e igd.efi policy.efi gop.efi`) and reads it back:
 * each image must hold the very bytes it was built from and be recognised as its role.
 * A helper that is not what it claims is E_INPUT_BAD_HELPER; a builder bug is
 * E_VERIFY_ROM_MISMATCH.
 */
export function buildIgdRom(options: BuildIgdRomOptions): { bytes: Uint8Array; chain: RomChain } {
  const vendorId = options.vendorId ?? INTEL_VENDOR_ID;
  const classCode = options.classCode ?? IGD_ROM_CLASS_CODE;
  const compress = options.compress ?? false;
  const parts: ReadonlyArray<readonly [RomImageRole, Uint8Array]> =
    options.helpers === null
      ? [['gop', options.gop]]
      : [
          ['igd-assignment', options.helpers.igdAssignment],
          ['gop-policy', options.helpers.gopPolicy],
          ['gop', options.gop],
        ];
  const bytes = buildOptionRom({
    images: parts.map(([, pe]) => ({ pe, vendorId, deviceId: options.deviceId, classCode, compress })),
  });
  const chain = classifyRomChain(bytes);
  for (const [index, [role, pe]] of parts.entries()) {
    const named = chain.images[index];
    if (named === undefined || sha256(optionRomPeBytes(bytes, named.image)) !== sha256(pe)) {
      throw new VerificationError(
        'E_VERIFY_ROM_MISMATCH',
        `image ${index} of the built option ROM does not parse back to the ${role} driver it was built from`,
        { index, role },
      );
    }
    if (named.role !== role) {
      throw new OvmfBuildError(
        'E_INPUT_BAD_HELPER',
        `the driver given as ${role} (image ${index}) looks like ${named.role}: ${role === 'igd-assignment' ? 'it never names etc/igd-opregion' : role === 'gop-policy' ? 'it lacks the PLATFORM_GOP_POLICY protocol GUID' : 'not an Intel GOP'}`,
        { index, expected: role, found: named.role },
      );
    }
  }
  if (chain.images.length !== parts.length) {
    throw new VerificationError(
      'E_VERIFY_ROM_MISMATCH',
      `the built option ROM has ${chain.images.length} images, expected ${parts.length}`,
      { images: chain.images.length },
    );
  }
  return { bytes, chain };
}

/**
 * The user's ROM (validated) or the ROM-mode chain generated from the GOP and the build's
 * helper drivers for the device id.
 */
export function prepareRom(
  options:
    | {
        readonly kind: 'user';
        readonly bytes: Uint8Array;
        readonly origin: InputOrigin;
        readonly firmwareHasIgdAssignment?: boolean;
      }
    | {
        readonly kind: 'generated';
        readonly gop: Uint8Array;
        readonly helpers: HelperDrivers;
        readonly deviceId?: number;
      },
): PreparedRom {
  if (options.kind === 'user') {
    const validated = validateIgdRom(
      options.bytes,
      options.firmwareHasIgdAssignment === undefined
        ? {}
        : { firmwareHasIgdAssignment: options.firmwareHasIgdAssignment },
    );
    const digest = sha256(options.bytes);
    return {
      bytes: options.bytes,
      sha256: digest,
      info: validated.info,
      roles: validated.chain.images.map((i) => i.role),
      warnings: validated.warnings,
      source: { kind: 'user', origin: options.origin },
      keyInput: userRomKeyInput(digest),
    };
  }
  const deviceId = options.deviceId ?? DEFAULT_DEVICE_ID;
  const { bytes } = buildIgdRom({ gop: options.gop, helpers: options.helpers, deviceId });
  // Parse what we made with the same checks as a user ROM: a generator bug must not ship.
  const validated = validateIgdRom(bytes);
  return {
    bytes,
    sha256: sha256(bytes),
    info: validated.info,
    roles: validated.chain.images.map((i) => i.role),
    warnings: validated.warnings,
    source: {
      kind: 'generated',
      vendorId: INTEL_VENDOR_ID,
      deviceId,
      generatorVersion: ROM_GENERATOR_VERSION,
    },
    keyInput: generatedRomKeyInput(deviceId),
  };
}
