// EFI_FIRMWARE_VOLUME_HEADER and EFI_FIRMWARE_VOLUME_EXT_HEADER (PI spec vol. 3, 3.2.1 and 3.2.2).
//
//   typedef struct {
//     UINT8                  ZeroVector[16];      // 0x00
//     EFI_GUID               FileSystemGuid;      // 0x10
//     UINT64                 FvLength;            // 0x20
//     UINT32                 Signature;           // 0x28  '_FVH'
//     EFI_FVB_ATTRIBUTES_2   Attributes;          // 0x2C
//     UINT16                 HeaderLength;        // 0x30
//     UINT16                 Checksum;            // 0x32
//     UINT16                 ExtHeaderOffset;     // 0x34
//     UINT8                  Reserved[1];         // 0x36
//     UINT8                  Revision;            // 0x37
//     EFI_FV_BLOCK_MAP_ENTRY BlockMap[1];         // 0x38  {UINT32 NumBlocks; UINT32 Length;} ... {0, 0}
//   } EFI_FIRMWARE_VOLUME_HEADER;
//
//   typedef struct { EFI_GUID FvName; UINT32 ExtHeaderSize; } EFI_FIRMWARE_VOLUME_EXT_HEADER;
import { FormatError } from '../core/errors.js';
import { readGuid } from '../core/guid.js';
import { hex } from '../core/hex.js';

export const FV_SIGNATURE = 0x4856_465f; // '_FVH' little-endian
export const FV_SIGNATURE_OFFSET = 0x28;
/** Fixed part of the header up to the block map. */
export const FV_HEADER_FIXED_SIZE = 0x38;
/** Attributes bit: the erased state of the flash is 1 (EFI_FVB2_ERASE_POLARITY). */
export const EFI_FVB2_ERASE_POLARITY = 0x0000_0800;

export const FFS_V2_GUID = '8C8CE578-8A3D-4F1C-9935-896185C32DD3';
export const FFS_V3_GUID = '5473C07A-3DCB-4DCA-BD6F-1E9689E7349A';
/** EFI_FIRMWARE_FILE_SYSTEM_GUID (PI 1.0 name of the v2 file system, same layout). */
export const FFS_V1_GUID = '7A9354D9-0468-444A-81CE-0BF617D890DF';
/** EFI_SYSTEM_NV_DATA_FV_GUID: the variable store volume (OVMF_VARS, AMI NVRAM). */
export const NVRAM_FV_GUID = 'FFF12B8D-7696-4C8B-A985-2747075B4F50';

/** Bounds applied to every volume header. */
export const FV_LIMITS = {
  /** A header (with block map) larger than this is hostile. */
  maximumHeaderLength: 0x1000,
  /** Block map entries before the {0,0} terminator. */
  maximumBlockMapEntries: 256,
  /** FvLength is a UINT64; volumes above 4 GiB do not exist in SPI flash. */
  maximumVolumeLength: 0xffff_ffff,
} as const;

export interface BlockMapEntry {
  readonly numBlocks: number;
  readonly blockLength: number;
}

export interface FirmwareVolumeHeader {
  readonly fileSystemGuid: string;
  /** 2 for FFSv2 (and PI 1.0 FFS), 3 for FFSv3, null for a non-FFS volume (NVRAM, vendor). */
  readonly ffsVersion: 2 | 3 | null;
  /** 'FFSv2' | 'FFSv3' | 'NVRAM' | 'Unknown' as UEFIExtract names it. */
  readonly subtypeName: string;
  readonly lengthInBytes: number;
  readonly attributes: number;
  readonly erasePolarity: 0 | 1;
  /** Data alignment required by the volume (EFI_FVB2_ALIGNMENT), in bytes. */
  readonly alignmentInBytes: number;
  readonly headerLength: number;
  readonly checksum: { readonly stored: number; readonly valid: boolean };
  readonly extHeaderOffset: number;
  readonly revision: number;
  readonly blockMap: readonly BlockMapEntry[];
  /** FvName from the extended header, when there is one. */
  readonly fvName: string | null;
  readonly extHeaderSize: number;
  /** Offset (from the volume start) of the first FFS file. */
  readonly filesOffset: number;
  /** UEFIExtract's display name: FvName, else the file system GUID. */
  readonly displayName: string;
}

function subtypeOf(guid: string): { ffsVersion: 2 | 3 | null; name: string } {
  if (guid === FFS_V2_GUID || guid === FFS_V1_GUID) return { ffsVersion: 2, name: 'FFSv2' };
  if (guid === FFS_V3_GUID) return { ffsVersion: 3, name: 'FFSv3' };
  if (guid === NVRAM_FV_GUID) return { ffsVersion: null, name: 'NVRAM' };
  return { ffsVersion: null, name: 'Unknown' };
}

/** 16-bit sum of `length` bytes (little-endian words) from `offset`. */
function sum16(bytes: Uint8Array, offset: number, length: number): number {
  let sum = 0;
  for (let i = 0; i + 1 < length; i += 2) {
    sum = (sum + ((bytes[offset + i] as number) | ((bytes[offset + i + 1] as number) << 8))) & 0xffff;
  }
  return sum;
}

/**
 * Cheap test used while scanning: `_FVH` at +0x28, revision 1 or 2, a sane header and length.
 * A candidate with a bad header checksum is accepted only when it is 8-byte aligned and names
 * a known file system, so code bytes that happen to contain `_FVH` are not taken for volumes.
 * Never throws.
 */
export function looksLikeVolumeHeader(bytes: Uint8Array, offset: number): boolean {
  if (offset < 0 || offset + FV_HEADER_FIXED_SIZE + 16 > bytes.length) return false;
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, FV_HEADER_FIXED_SIZE + 16);
  if (view.getUint32(0x28, true) !== FV_SIGNATURE) return false;
  const revision = view.getUint8(0x37);
  if (revision !== 1 && revision !== 2) return false;
  const headerLength = view.getUint16(0x30, true);
  if (headerLength < FV_HEADER_FIXED_SIZE + 8 || headerLength > FV_LIMITS.maximumHeaderLength) return false;
  if (headerLength % 2 !== 0) return false;
  const length = Number(view.getBigUint64(0x20, true));
  if (length < headerLength || length > FV_LIMITS.maximumVolumeLength) return false;
  if (offset + headerLength <= bytes.length && sum16(bytes, offset, headerLength) === 0) return true;
  const known = subtypeOf(readGuid(bytes, offset + 0x10)).name !== 'Unknown';
  return offset % 8 === 0 && known;
}

/**
 * Parses the volume header at `offset`. Every field that sizes something is bounded; the
 * volume must fit in `bytes` (a truncated volume is a FormatError naming both sizes).
 * @param where text naming the container, for messages (e.g. "BIOS region").
 */
export function parseFirmwareVolumeHeader(
  bytes: Uint8Array,
  offset: number,
  where = 'image',
): FirmwareVolumeHeader {
  const remaining = bytes.length - offset;
  if (offset < 0 || remaining < FV_HEADER_FIXED_SIZE + 8) {
    throw new FormatError(
      'E_FV_TRUNCATED',
      `volume header at ${hex(offset)} needs ${hex(FV_HEADER_FIXED_SIZE + 8)} bytes, only ${hex(Math.max(remaining, 0))} remain in ${where}`,
      { offset, remaining },
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, remaining);
  const signature = view.getUint32(0x28, true);
  if (signature !== FV_SIGNATURE) {
    throw new FormatError(
      'E_FV_BAD_SIGNATURE',
      `volume at ${hex(offset)} has signature ${hex(signature)}, expected _FVH in ${where}`,
      { offset, signature },
    );
  }
  const revision = view.getUint8(0x37);
  const headerLength = view.getUint16(0x30, true);
  if (headerLength < FV_HEADER_FIXED_SIZE + 8 || headerLength > FV_LIMITS.maximumHeaderLength) {
    throw new FormatError(
      'E_FV_BAD_HEADER',
      `volume at ${hex(offset)} claims a header of ${hex(headerLength)} bytes, expected ${hex(FV_HEADER_FIXED_SIZE + 8)}..${hex(FV_LIMITS.maximumHeaderLength)} in ${where}`,
      { offset, headerLength },
    );
  }
  const lengthBig = view.getBigUint64(0x20, true);
  if (lengthBig > BigInt(remaining) || lengthBig < BigInt(headerLength)) {
    throw new FormatError(
      'E_FV_BAD_LENGTH',
      `volume at ${hex(offset)} claims ${hex(lengthBig)} bytes, only ${hex(remaining)} remain in ${where}`,
      { offset, claimed: lengthBig.toString(), remaining },
    );
  }
  const lengthInBytes = Number(lengthBig);
  if (headerLength > lengthInBytes) {
    throw new FormatError(
      'E_FV_BAD_HEADER',
      `volume at ${hex(offset)} header (${hex(headerLength)}) is longer than the volume (${hex(lengthInBytes)}) in ${where}`,
      { offset, headerLength, lengthInBytes },
    );
  }
  const attributes = view.getUint32(0x2c, true);
  const stored = view.getUint16(0x32, true);
  const valid = sum16(bytes, offset, headerLength) === 0;
  const blockMap: BlockMapEntry[] = [];
  for (let at = FV_HEADER_FIXED_SIZE; ; at += 8) {
    if (at + 8 > headerLength) {
      throw new FormatError(
        'E_FV_BAD_BLOCK_MAP',
        `volume at ${hex(offset)}: block map has no {0,0} terminator within the ${hex(headerLength)}-byte header in ${where}`,
        { offset, headerLength },
      );
    }
    const numBlocks = view.getUint32(at, true);
    const blockLength = view.getUint32(at + 4, true);
    if (numBlocks === 0 && blockLength === 0) break;
    if (blockMap.length >= FV_LIMITS.maximumBlockMapEntries) {
      throw new FormatError(
        'E_FV_BAD_BLOCK_MAP',
        `volume at ${hex(offset)}: block map has more than ${FV_LIMITS.maximumBlockMapEntries} entries in ${where}`,
        { offset },
      );
    }
    blockMap.push({ numBlocks, blockLength });
  }
  const fileSystemGuid = readGuid(bytes, offset + 0x10);
  const { ffsVersion, name } = subtypeOf(fileSystemGuid);
  const extHeaderOffset = view.getUint16(0x34, true);
  let fvName: string | null = null;
  let extHeaderSize = 0;
  let filesOffset = headerLength;
  // Revision 1 volumes (PI 1.0) have no extended header; the field is reserved there.
  if (extHeaderOffset !== 0 && revision >= 2 && ffsVersion !== null) {
    if (extHeaderOffset < headerLength || extHeaderOffset + 20 > lengthInBytes) {
      throw new FormatError(
        'E_FV_BAD_EXT_HEADER',
        `volume at ${hex(offset)}: extended header offset ${hex(extHeaderOffset)} is outside ${hex(headerLength)}..${hex(lengthInBytes - 20)} in ${where}`,
        { offset, extHeaderOffset },
      );
    }
    fvName = readGuid(bytes, offset + extHeaderOffset);
    extHeaderSize = view.getUint32(extHeaderOffset + 16, true);
    if (extHeaderSize < 20 || extHeaderOffset + extHeaderSize > lengthInBytes) {
      throw new FormatError(
        'E_FV_BAD_EXT_HEADER',
        `volume at ${hex(offset)}: extended header at ${hex(extHeaderOffset)} claims ${hex(extHeaderSize)} bytes, only ${hex(lengthInBytes - extHeaderOffset)} remain in the volume`,
        { offset, extHeaderOffset, extHeaderSize },
      );
    }
    filesOffset = extHeaderOffset + extHeaderSize;
  }
  // FFS files are 8-byte aligned from the volume start (PI spec vol. 3, 2.1.4.1).
  filesOffset = Math.min((filesOffset + 7) & ~7, lengthInBytes);
  const alignmentInBytes = 2 ** ((attributes >>> 16) & 0x1f);
  return {
    fileSystemGuid,
    ffsVersion,
    subtypeName: name,
    lengthInBytes,
    attributes,
    erasePolarity: attributes & EFI_FVB2_ERASE_POLARITY ? 1 : 0,
    alignmentInBytes,
    headerLength,
    checksum: { stored, valid },
    extHeaderOffset,
    revision,
    blockMap,
    fvName,
    extHeaderSize,
    filesOffset,
    displayName: fvName ?? fileSystemGuid,
  };
}

/**
 * Offset of the first plausible volume header starting at or after `from` (its `_FVH`
 * signature at +0x28 lies before `to`), or -1. Never throws.
 */
export function nextVolumeCandidate(bytes: Uint8Array, from = 0, to = bytes.length): number {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = Math.max(from, 0) + FV_SIGNATURE_OFFSET;
  while (at < to) {
    const hit = buffer.indexOf('_FVH', at, 'latin1');
    if (hit < 0 || hit >= to) return -1;
    const start = hit - FV_SIGNATURE_OFFSET;
    if (looksLikeVolumeHeader(bytes, start)) return start;
    at = hit + 1;
  }
  return -1;
}

/** Offsets of every plausible volume header in `bytes[from, to)`, in order (nested ones too). */
export function findVolumeCandidates(bytes: Uint8Array, from = 0, to = bytes.length): number[] {
  const found: number[] = [];
  for (let at = nextVolumeCandidate(bytes, from, to); at >= 0; at = nextVolumeCandidate(bytes, at + 1, to)) {
    found.push(at);
  }
  return found;
}
