// The GOP driver (and a VBT) out of a PCI option ROM, chosen by content: in a chain of images
// (legacy VBIOS + EFI GOP, or GOP + IGD helpers) the GOP is the EFI image whose PE is an
// Intel GOP driver (classifyGopDriver), wherever it sits; EfiRom-compressed images are
// decompressed first. The VBT is the "$VBT" table inside a legacy x86 VBIOS image, cut to its
// vbt_size. Takes bytes, returns values; no I/O.
import { hex } from '../core/hex.js';
import { isOvmfBuildError } from '../core/errors.js';
import type { ErrorCode } from '../core/error-codes.js';
import type { DecompressLimits } from './compression/limits.js';
import { classifyGopDriver, type GopDriverInfo } from './gop.js';
import { optionRomPeBytes, parseOptionRom, type OptionRomImage, type OptionRomInfo } from './option-rom.js';
import { parseVbt, type VbtInfo } from './vbt.js';

export interface RomGop {
  readonly index: number;
  readonly image: OptionRomImage;
  /** The PE/COFF driver, decompressed when the image is EFI-compressed. */
  readonly body: Uint8Array;
  readonly info: GopDriverInfo;
}

export interface RomVbt {
  readonly index: number;
  readonly image: OptionRomImage;
  /** Absolute offset of "$VBT" in the ROM. */
  readonly offset: number;
  /** The VBT's vbt_size bytes. */
  readonly body: Uint8Array;
  readonly info: VbtInfo;
}

export interface RomImageVerdict {
  readonly index: number;
  readonly offset: number;
  readonly codeType: string;
  readonly vendorId: number;
  readonly deviceId: number;
  readonly compressed: boolean;
  /** 'gop', 'vbt' (a legacy VBIOS with a VBT), or 'other' with the reason. */
  readonly role: 'gop' | 'vbt' | 'other';
  readonly reason: string | null;
}

export interface RomExtraction {
  readonly rom: OptionRomInfo;
  /** The first image (chain order) that is an Intel GOP driver. */
  readonly gop: RomGop | null;
  readonly otherGops: readonly RomGop[];
  readonly vbt: RomVbt | null;
  readonly images: readonly RomImageVerdict[];
  /** Images whose bytes could not be read (bad compressed data, a VBT that does not parse). */
  readonly problems: readonly {
    readonly index: number;
    readonly offset: number;
    readonly code: ErrorCode;
    readonly message: string;
  }[];
}

function describe(error: unknown): { code: ErrorCode; message: string } {
  // An interruption (limits.signal) is no property of the image.
  if (isOvmfBuildError(error) && error.code !== 'E_ABORTED')
    return { code: error.code, message: error.message };
  throw error;
}

/**
 * Parses the chain (FormatError E_ROM_* when it is broken) and picks the GOP and VBT by
 * content. Never throws for an image that is not a GOP; `problems` lists images that could
 * not be decoded.
 */
export function extractFromOptionRom(bytes: Uint8Array, limits: DecompressLimits = {}): RomExtraction {
  const rom = parseOptionRom(bytes);
  const gops: RomGop[] = [];
  let vbt: RomVbt | null = null;
  const images: RomImageVerdict[] = [];
  const problems: { index: number; offset: number; code: ErrorCode; message: string }[] = [];
  for (const [index, image] of rom.images.entries()) {
    const base = {
      index,
      offset: image.offset,
      codeType: image.codeTypeName,
      vendorId: image.vendorId,
      deviceId: image.deviceId,
      compressed: image.efi?.compressed ?? false,
    };
    if (image.efi !== null) {
      let pe: Uint8Array;
      try {
        pe = optionRomPeBytes(bytes, image, limits);
      } catch (error) {
        const problem = describe(error);
        problems.push({ index, offset: image.offset, ...problem });
        images.push({ ...base, role: 'other', reason: `${problem.code}: ${problem.message}` });
        continue;
      }
      const result = classifyGopDriver(pe);
      if (result.isGop) {
        gops.push({ index, image, body: pe, info: result.info });
        images.push({ ...base, role: 'gop', reason: null });
      } else {
        images.push({ ...base, role: 'other', reason: result.reason });
      }
      continue;
    }
    if (image.legacy?.vbtOffset !== null && image.legacy?.vbtOffset !== undefined) {
      const offset = image.offset + image.legacy.vbtOffset;
      try {
        const info = parseVbt(bytes.subarray(offset, image.offset + image.imageLengthInBytes));
        if (vbt === null)
          vbt = { index, image, offset, body: bytes.subarray(offset, offset + info.vbtSize), info };
        images.push({ ...base, role: 'vbt', reason: null });
      } catch (error) {
        const problem = describe(error);
        problems.push({ index, offset, ...problem });
        images.push({
          ...base,
          role: 'other',
          reason: `"$VBT" at ${hex(offset)} does not parse: ${problem.message}`,
        });
      }
      continue;
    }
    const [text] = image.legacy?.notVbt ?? [];
    images.push({
      ...base,
      role: 'other',
      reason:
        text === undefined
          ? `${image.codeTypeName} image without a VBT`
          : `${image.codeTypeName} image without a VBT ("$VBT" at ${hex(text.offset)} is not one: ${text.reason})`,
    });
  }
  return { rom, gop: gops[0] ?? null, otherGops: gops.slice(1), vbt, images, problems };
}
