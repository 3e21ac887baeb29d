// Intel flash descriptor (Intel PCH SPI programming guides; layout as UEFITool's descriptor.h).
//
//   0x00  UINT8  ReservedVector[16]   (absent on the oldest ICH8 descriptors)
//   0x10  UINT32 Signature            0x0FF0A55A
//   0x14  UINT32 FLMAP0               FCBA[7:0] (x16), NC[9:8], FRBA[23:16] (x16), NR[26:24]
//   0x18  UINT32 FLMAP1
//   0x1C  UINT32 FLMAP2
//   FRBA: UINT32 FLREG[n]            Base[14:0] (x4 KiB), Limit[30:16] (x4 KiB, inclusive)
import { FormatError } from '../core/errors.js';
import { hex } from '../core/hex.js';
import { u32 } from './le-bytes.js';

export const FLASH_DESCRIPTOR_SIGNATURE = 0x0ff0_a55a;
/** The descriptor region is 4 KiB; FLREG entries beyond it are not read. */
export const FLASH_DESCRIPTOR_SIZE = 0x1000;
/** FLREG0..FLREG15 on current PCHs. */
export const MAXIMUM_FLASH_REGIONS = 16;

/** Region names in FLREG order, as UEFITool prints them. */
export const FLASH_REGION_NAMES = [
  'Descriptor',
  'BIOS',
  'ME',
  'GbE',
  'PDR',
  'DevExp1',
  'BIOS2',
  'Microcode',
  'EC',
  'DevExp2',
  'IE',
  '10GbE1',
  '10GbE2',
  'Reserved1',
  'Reserved2',
  'PTT',
] as const;

export interface FlashRegion {
  readonly index: number;
  readonly name: string;
  readonly offset: number;
  readonly sizeInBytes: number;
}

export interface FlashDescriptor {
  /** Offset of the signature: 0x10 on all current images, 0 on the oldest. */
  readonly signatureOffset: number;
  readonly flmap0: number;
  readonly regionBaseOffset: number;
  /** Used regions, sorted by offset. */
  readonly regions: readonly FlashRegion[];
}

/** Offset of the descriptor signature (0x10 or 0), or -1. Never throws. */
export function findFlashDescriptorSignature(bytes: Uint8Array): number {
  if (bytes.length >= FLASH_DESCRIPTOR_SIZE) {
    if (u32(bytes, 0x10) === FLASH_DESCRIPTOR_SIGNATURE) return 0x10;
    if (u32(bytes, 0) === FLASH_DESCRIPTOR_SIGNATURE) return 0;
  }
  return -1;
}

/** Parses the descriptor of an image that starts with one; regions must lie inside the image. */
export function parseFlashDescriptor(bytes: Uint8Array): FlashDescriptor {
  const signatureOffset = findFlashDescriptorSignature(bytes);
  if (signatureOffset < 0) {
    throw new FormatError(
      'E_DESCRIPTOR_BAD_SIGNATURE',
      `no flash descriptor signature ${hex(FLASH_DESCRIPTOR_SIGNATURE)} at 0x10 or 0x0`,
      {},
    );
  }
  const flmap0 = u32(bytes, signatureOffset + 4);
  const regionBaseOffset = ((flmap0 >>> 16) & 0xff) << 4;
  if (regionBaseOffset === 0 || regionBaseOffset + 4 > FLASH_DESCRIPTOR_SIZE) {
    throw new FormatError(
      'E_DESCRIPTOR_BAD_FLMAP',
      `flash descriptor FLMAP0 ${hex(flmap0)} puts the region table at ${hex(regionBaseOffset)}, outside the 4 KiB descriptor`,
      { flmap0, regionBaseOffset },
    );
  }
  const regions: FlashRegion[] = [];
  for (let index = 0; index < MAXIMUM_FLASH_REGIONS; index++) {
    const at = regionBaseOffset + index * 4;
    if (at + 4 > FLASH_DESCRIPTOR_SIZE) break;
    const flreg = u32(bytes, at);
    const base = (flreg & 0x7fff) << 12;
    const limit = (((flreg >>> 16) & 0x7fff) << 12) | 0xfff;
    // Unused regions have base > limit (0x7FFF/0x0000); erased entries point past the chip.
    if (base > limit || limit >= bytes.length) continue;
    // Only the descriptor itself may start at 0.
    if (index !== 0 && base === 0) continue;
    regions.push({
      index,
      name: FLASH_REGION_NAMES[index] ?? `Region${index}`,
      offset: base,
      sizeInBytes: limit - base + 1,
    });
  }
  if (!regions.some((r) => r.index === 0)) {
    throw new FormatError(
      'E_DESCRIPTOR_BAD_REGIONS',
      `flash descriptor region table at ${hex(regionBaseOffset)} has no descriptor region`,
      { regionBaseOffset },
    );
  }
  regions.sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < regions.length; i++) {
    const previous = regions[i - 1] as FlashRegion;
    const current = regions[i] as FlashRegion;
    if (current.offset < previous.offset + previous.sizeInBytes) {
      throw new FormatError(
        'E_DESCRIPTOR_BAD_REGIONS',
        `flash region ${current.name} at ${hex(current.offset)} overlaps ${previous.name} (${hex(previous.offset)}..${hex(previous.offset + previous.sizeInBytes)})`,
        { region: current.name, offset: current.offset },
      );
    }
  }
  return { signatureOffset, flmap0, regionBaseOffset, regions };
}
