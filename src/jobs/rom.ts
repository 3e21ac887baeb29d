// The vBIOS option ROM shipped with the firmware: the user's ROM, validated, or one
// generated from the GOP driver for a device id (EfiRom equivalent in src/formats).
import { FormatError, isOvmfBuildError, UsageError } from '../core/errors.js';
import { sha256 } from '../core/digest.js';
import { buildOptionRom } from '../formats/option-rom-builder.js';
import { parseOptionRom, type OptionRomInfo } from '../formats/option-rom.js';
import type { InputOrigin } from '../fetch/index.js';
import {
  DEFAULT_DEVICE_ID,
  INTEL_VENDOR_ID,
  ROM_GENERATOR_VERSION,
  generatedRomKeyInput,
  userRomKeyInput,
} from './rom-key.js';

export { DEFAULT_DEVICE_ID, INTEL_VENDOR_ID, ROM_GENERATOR_VERSION, generatedRomKeyInput, userRomKeyInput };

/** PCI base class 0x03: display controller (PCI Code and ID Assignment spec, 1.4). */
const DISPLAY_BASE_CLASS = 0x03;
const EFI_CODE_TYPE = 3;
const MACHINE_X64 = 0x8664;

export interface PreparedRom {
  readonly bytes: Uint8Array;
  readonly sha256: string;
  readonly info: OptionRomInfo;
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

/** Parses "8086:9b41" (vendor must be Intel). */
export function parseDeviceId(text: string): number {
  const match = /^([0-9a-f]{4}):([0-9a-f]{4})$/i.exec(text.trim());
  if (match === null) {
    throw new UsageError(`--device must look like 8086:9b41, got \`${text}\``, { device: text });
  }
  if (Number.parseInt(match[1] as string, 16) !== INTEL_VENDOR_ID) {
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

/**
 * Checks a ROM the tool will ship: a sane PCI expansion ROM chain (0x55AA, PCIR), Intel
 * vendor id and display class in every image, and at least one EFI image for x64.
 */
export function validateIgdRom(bytes: Uint8Array): OptionRomInfo {
  let info: OptionRomInfo;
  try {
    info = parseOptionRom(bytes);
  } catch (error) {
    if (isOvmfBuildError(error)) badRom(`${error.code}: ${error.message}`, { cause: error.code });
    throw error;
  }
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
  return info;
}

/** The user's ROM (validated) or a ROM generated from the GOP for the device id. */
export function prepareRom(
  options:
    | { readonly kind: 'user'; readonly bytes: Uint8Array; readonly origin: InputOrigin }
    | { readonly kind: 'generated'; readonly gop: Uint8Array; readonly deviceId?: number },
): PreparedRom {
  if (options.kind === 'user') {
    const info = validateIgdRom(options.bytes);
    const digest = sha256(options.bytes);
    return {
      bytes: options.bytes,
      sha256: digest,
      info,
      source: { kind: 'user', origin: options.origin },
      keyInput: userRomKeyInput(digest),
    };
  }
  const deviceId = options.deviceId ?? DEFAULT_DEVICE_ID;
  const bytes = buildOptionRom({
    images: [{ pe: options.gop, vendorId: INTEL_VENDOR_ID, deviceId, classCode: 0x03_0000 }],
  });
  // Parse what we made with the same checks as a user ROM: a generator bug must not ship.
  const info = validateIgdRom(bytes);
  return {
    bytes,
    sha256: sha256(bytes),
    info,
    source: {
      kind: 'generated',
      vendorId: INTEL_VENDOR_ID,
      deviceId,
      generatorVersion: ROM_GENERATOR_VERSION,
    },
    keyInput: generatedRomKeyInput(deviceId),
  };
}
