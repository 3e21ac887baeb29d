// EFI_FFS_FILE_HEADER / EFI_FFS_FILE_HEADER2 (PI spec vol. 3, 2.2.3).
//
//   typedef struct {
//     EFI_GUID                Name;            // 0x00
//     EFI_FFS_INTEGRITY_CHECK IntegrityCheck;  // 0x10  {UINT8 Header; UINT8 File;}
//     EFI_FV_FILETYPE         Type;            // 0x12
//     EFI_FFS_FILE_ATTRIBUTES Attributes;      // 0x13
//     UINT8                   Size[3];         // 0x14
//     EFI_FFS_FILE_STATE      State;           // 0x17
//     UINT64                  ExtendedSize;    // 0x18  (EFI_FFS_FILE_HEADER2 only, FFS_ATTRIB_LARGE_FILE)
//   } EFI_FFS_FILE_HEADER2;
import { FormatError } from '../core/errors.js';
import { readGuid } from '../core/guid.js';
import { hex } from '../core/hex.js';

export const FFS_FILE_HEADER_SIZE = 0x18;
export const FFS_FILE_HEADER2_SIZE = 0x20;

export const FFS_ATTRIB_LARGE_FILE = 0x01;
/** PI 1.0 / revision-1 volumes: a 2-byte tail follows the file data. Same bit as LARGE_FILE. */
export const FFS_ATTRIB_TAIL_PRESENT = 0x01;
export const FFS_ATTRIB_DATA_ALIGNMENT_2 = 0x02;
export const FFS_ATTRIB_FIXED = 0x04;
export const FFS_ATTRIB_DATA_ALIGNMENT = 0x38;
export const FFS_ATTRIB_CHECKSUM = 0x40;
/** IntegrityCheck.File when FFS_ATTRIB_CHECKSUM is clear. */
export const FFS_FIXED_CHECKSUM = 0xaa;

export const EFI_FILE_HEADER_CONSTRUCTION = 0x01;
export const EFI_FILE_HEADER_VALID = 0x02;
export const EFI_FILE_DATA_VALID = 0x04;
export const EFI_FILE_MARKED_FOR_UPDATE = 0x08;
export const EFI_FILE_DELETED = 0x10;
export const EFI_FILE_HEADER_INVALID = 0x20;

export const EFI_FV_FILETYPE_RAW = 0x01;
export const EFI_FV_FILETYPE_FREEFORM = 0x02;
export const EFI_FV_FILETYPE_FIRMWARE_VOLUME_IMAGE = 0x0b;
export const EFI_FV_FILETYPE_FFS_PAD = 0xf0;

/** File type names as UEFITool/UEFIExtract print them (PI spec vol. 3, 2.1.4.1). */
const FILE_TYPE_NAMES: Readonly<Record<number, string>> = {
  0x00: 'All',
  0x01: 'Raw',
  0x02: 'Freeform',
  0x03: 'SEC core',
  0x04: 'PEI core',
  0x05: 'DXE core',
  0x06: 'PEI module',
  0x07: 'DXE driver',
  0x08: 'Combined PEI/DXE',
  0x09: 'Application',
  0x0a: 'SMM module',
  0x0b: 'Volume image',
  0x0c: 'Combined SMM/DXE',
  0x0d: 'SMM core',
  0x0e: 'MM standalone module',
  0x0f: 'MM standalone core',
  0xf0: 'Pad',
};

export function fileTypeName(type: number): string {
  const known = FILE_TYPE_NAMES[type];
  if (known !== undefined) return known;
  if (type >= 0xc0 && type <= 0xdf) return `OEM ${hex(type)}`;
  if (type >= 0xe0 && type <= 0xef) return `Debug ${hex(type)}`;
  if (type >= 0xf1) return `FFS ${hex(type)}`;
  return `Unknown ${hex(type)}`;
}

/** Files with these types contain sections (PI spec vol. 3, 2.1.4.1). */
export function fileTypeHasSections(type: number): boolean {
  return type !== EFI_FV_FILETYPE_RAW && type !== EFI_FV_FILETYPE_FFS_PAD && type !== 0x00 && type < 0xc0;
}

const ALIGNMENTS = [1, 16, 128, 512, 1024, 4096, 32_768, 65_536] as const;

export interface FfsFileHeader {
  readonly guid: string;
  readonly type: number;
  readonly typeName: string;
  readonly attributes: number;
  /** Whole file: header + data, in bytes (not counting alignment padding after it). */
  readonly sizeInBytes: number;
  readonly headerSize: number;
  readonly large: boolean;
  /** State bits with the erase polarity removed (EFI_FILE_*). */
  readonly state: number;
  readonly deleted: boolean;
  readonly dataAlignmentInBytes: number;
  readonly headerChecksum: { readonly stored: number; readonly valid: boolean };
  /** Data checksum; `valid` is null when not verified (see verifyDataChecksum). */
  readonly dataChecksum: { readonly stored: number; readonly valid: boolean | null };
  /** Bytes at the end of the data that are a revision-1 tail, not data. */
  readonly tailSize: number;
}

export interface FfsFileContext {
  readonly ffsVersion: 2 | 3;
  readonly erasePolarity: 0 | 1;
  readonly revision: number;
  /** Text naming the volume, for messages. */
  readonly where: string;
  /** Compute the data checksum (a pass over all file bytes). @default true */
  readonly verifyDataChecksum?: boolean;
}

function sum8(bytes: Uint8Array, from: number, to: number): number {
  let sum = 0;
  for (let i = from; i < to; i++) sum += bytes[i] as number;
  return sum & 0xff;
}

/** True when the 24 bytes at `offset` are all the erased byte: the volume's free space starts here. */
export function isErasedHeader(bytes: Uint8Array, offset: number, erasePolarity: 0 | 1): boolean {
  const erased = erasePolarity ? 0xff : 0x00;
  const end = Math.min(offset + FFS_FILE_HEADER_SIZE, bytes.length);
  for (let i = offset; i < end; i++) if (bytes[i] !== erased) return false;
  return true;
}

/**
 * Parses the file header at `offset` of `bytes` (the volume). The file must fit in
 * `bytes[offset, end)`; a larger size is a FormatError naming both sizes.
 */
export function parseFfsFileHeader(
  bytes: Uint8Array,
  offset: number,
  end: number,
  context: FfsFileContext,
): FfsFileHeader {
  const remaining = end - offset;
  if (remaining < FFS_FILE_HEADER_SIZE) {
    throw new FormatError(
      'E_FFS_TRUNCATED',
      `file header at ${hex(offset)} needs ${hex(FFS_FILE_HEADER_SIZE)} bytes, only ${hex(remaining)} remain in ${context.where}`,
      { offset, remaining },
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, remaining);
  const guid = readGuid(bytes, offset);
  const type = view.getUint8(0x12);
  const attributes = view.getUint8(0x13);
  const size24 = view.getUint8(0x14) | (view.getUint8(0x15) << 8) | (view.getUint8(0x16) << 16);
  const rawState = view.getUint8(0x17);
  const state = context.erasePolarity ? ~rawState & 0xff : rawState;
  const large = context.ffsVersion === 3 && (attributes & FFS_ATTRIB_LARGE_FILE) !== 0;
  let headerSize = FFS_FILE_HEADER_SIZE;
  let sizeInBytes = size24;
  if (large) {
    if (remaining < FFS_FILE_HEADER2_SIZE) {
      throw new FormatError(
        'E_FFS_TRUNCATED',
        `large file header at ${hex(offset)} needs ${hex(FFS_FILE_HEADER2_SIZE)} bytes, only ${hex(remaining)} remain in ${context.where}`,
        { offset, remaining, guid },
      );
    }
    headerSize = FFS_FILE_HEADER2_SIZE;
    const extended = view.getBigUint64(0x18, true);
    if (extended > BigInt(remaining)) {
      throw new FormatError(
        'E_FFS_BAD_SIZE',
        `file ${guid} at ${hex(offset)} claims ${hex(extended)} bytes (extended size), only ${hex(remaining)} remain in ${context.where}`,
        { offset, guid, claimed: extended.toString(), remaining },
      );
    }
    sizeInBytes = Number(extended);
  }
  if (sizeInBytes < headerSize || sizeInBytes > remaining) {
    throw new FormatError(
      'E_FFS_BAD_SIZE',
      `file ${guid} at ${hex(offset)} claims ${hex(sizeInBytes)} bytes, ${sizeInBytes < headerSize ? `less than its ${hex(headerSize)}-byte header` : `only ${hex(remaining)} remain`} in ${context.where}`,
      { offset, guid, claimed: sizeInBytes, remaining },
    );
  }
  const tailSize =
    context.revision === 1 && context.ffsVersion === 2 && (attributes & FFS_ATTRIB_TAIL_PRESENT) !== 0
      ? 2
      : 0;
  const headerStored = view.getUint8(0x10);
  const fileStored = view.getUint8(0x11);
  // Header checksum covers the header with IntegrityCheck.File and State taken as 0
  // (PI spec vol. 3, 2.2.3, EFI_FFS_INTEGRITY_CHECK).
  const headerSum = (sum8(bytes, offset, offset + headerSize) - fileStored - rawState) & 0xff;
  let dataValid: boolean | null = null;
  if (context.verifyDataChecksum ?? true) {
    dataValid =
      attributes & FFS_ATTRIB_CHECKSUM
        ? ((sum8(bytes, offset + headerSize, offset + sizeInBytes - tailSize) + fileStored) & 0xff) === 0
        : fileStored === FFS_FIXED_CHECKSUM;
  }
  const alignmentIndex = (attributes & FFS_ATTRIB_DATA_ALIGNMENT) >> 3;
  // FFS_ATTRIB_DATA_ALIGNMENT_2 (PI 1.6) switches the 3-bit field to 128 KiB..16 MiB.
  const dataAlignmentInBytes =
    context.ffsVersion === 3 && attributes & FFS_ATTRIB_DATA_ALIGNMENT_2
      ? 131_072 * 2 ** alignmentIndex
      : (ALIGNMENTS[alignmentIndex] as number);
  return {
    guid,
    type,
    typeName: fileTypeName(type),
    attributes,
    sizeInBytes,
    headerSize,
    large,
    state,
    deleted: (state & EFI_FILE_DELETED) !== 0,
    dataAlignmentInBytes,
    headerChecksum: { stored: headerStored, valid: headerSum === 0 },
    dataChecksum: { stored: fileStored, valid: dataValid },
    tailSize,
  };
}
