// The VBT inside a legacy PCI video option ROM that firmware stores as data. Older platforms
// keep the VBIOS (x86 code type 0, 0x55AA + "PCIR") as an FFS file, e.g. a freeform file whose
// raw section (often inside a CRC32 GUID-defined section) holds the ROM, and its VBT sits
// somewhere inside the ROM image, at no fixed offset. Takes bytes, returns values; no I/O.
import { hex } from '../core/hex.js';
import { isOvmfBuildError } from '../core/errors.js';
import { looksLikeOptionRom, parseOptionRom } from './option-rom.js';
import { parseVbt, type VbtInfo } from './vbt.js';

export interface LegacyRomVbt {
  /** Index of the legacy image in the ROM's image chain. */
  readonly imageIndex: number;
  /** Offset of "$VBT" from the start of the ROM bytes given. */
  readonly offset: number;
  /** Exactly vbt_size bytes. */
  readonly bytes: Uint8Array;
  readonly info: VbtInfo;
}

export interface LegacyRomVbtResult {
  /** The first VBT of a legacy image in chain order, or null. */
  readonly vbt: LegacyRomVbt | null;
  /**
   * Why a ROM that could have held one yields none: its chain does not parse, or it carries
   * "$VBT" text that is not a VBT. Null when found, or when the ROM simply has no "$VBT"
   * (an EFI-only ROM, a NIC's PXE ROM): that is not worth reporting.
   */
  readonly reason: string | null;
}

/**
 * When `bytes` start with a PCI option ROM: the VBT of its first legacy (x86 PC-AT) image
 * that has one (option-rom.ts scanForVbt: "$VBT" text must be followed by a VBT header and
 * a BDB). Null when the bytes are not an option ROM. Never throws for bad ROM data.
 */
export function vbtInLegacyRom(bytes: Uint8Array): LegacyRomVbtResult | null {
  if (!looksLikeOptionRom(bytes)) return null;
  let images;
  try {
    images = parseOptionRom(bytes).images;
  } catch (error) {
    if (!isOvmfBuildError(error)) throw error;
    return {
      vbt: null,
      reason: `0x55AA option ROM whose image chain does not parse: ${error.message} [${error.code}]`,
    };
  }
  const notVbt: string[] = [];
  for (const [imageIndex, image] of images.entries()) {
    if (image.legacy === null) continue;
    if (image.legacy.vbtOffset !== null) {
      const offset = image.offset + image.legacy.vbtOffset;
      const info = parseVbt(bytes.subarray(offset, image.offset + image.imageLengthInBytes));
      return {
        vbt: { imageIndex, offset, bytes: bytes.subarray(offset, offset + info.vbtSize), info },
        reason: null,
      };
    }
    for (const text of image.legacy.notVbt)
      notVbt.push(`at ${hex(text.offset)} in image ${imageIndex}: ${text.reason}`);
  }
  return {
    vbt: null,
    reason:
      notVbt.length === 0 ? null : `legacy option ROM whose "$VBT" text is not a VBT (${notVbt.join('; ')})`,
  };
}
