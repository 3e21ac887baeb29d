// EFI_COMMON_SECTION_HEADER / EFI_COMMON_SECTION_HEADER2 and the typed section headers
// (PI spec vol. 3, 2.2.4 and 3.2.5).
//
//   typedef struct { UINT8 Size[3]; EFI_SECTION_TYPE Type; } EFI_COMMON_SECTION_HEADER;
//   typedef struct { UINT8 Size[3]; EFI_SECTION_TYPE Type; UINT32 ExtendedSize; } EFI_COMMON_SECTION_HEADER2;
//     Size == 0xFFFFFF means ExtendedSize holds the size.
//   EFI_COMPRESSION_SECTION:  + UINT32 UncompressedLength; UINT8 CompressionType;
//   EFI_GUID_DEFINED_SECTION: + EFI_GUID SectionDefinitionGuid; UINT16 DataOffset; UINT16 Attributes;
//   EFI_VERSION_SECTION:      + UINT16 BuildNumber; CHAR16 VersionString[];
//   EFI_FREEFORM_SUBTYPE_GUID_SECTION: + EFI_GUID SubTypeGuid;
//   EFI_USER_INTERFACE_SECTION: CHAR16 FileNameString[];
import { FormatError } from '../core/errors.js';
import { readGuid } from '../core/guid.js';
import { hex } from '../core/hex.js';

export const EFI_SECTION_COMPRESSION = 0x01;
export const EFI_SECTION_GUID_DEFINED = 0x02;
export const EFI_SECTION_DISPOSABLE = 0x03;
export const EFI_SECTION_PE32 = 0x10;
export const EFI_SECTION_PIC = 0x11;
export const EFI_SECTION_TE = 0x12;
export const EFI_SECTION_DXE_DEPEX = 0x13;
export const EFI_SECTION_VERSION = 0x14;
export const EFI_SECTION_USER_INTERFACE = 0x15;
export const EFI_SECTION_COMPATIBILITY16 = 0x16;
export const EFI_SECTION_FIRMWARE_VOLUME_IMAGE = 0x17;
export const EFI_SECTION_FREEFORM_SUBTYPE_GUID = 0x18;
export const EFI_SECTION_RAW = 0x19;
export const EFI_SECTION_PEI_DEPEX = 0x1b;
export const EFI_SECTION_MM_DEPEX = 0x1c;

/** EFI_GUIDED_SECTION_PROCESSING_REQUIRED: the data cannot be read without the GUID's decoder. */
export const EFI_GUIDED_SECTION_PROCESSING_REQUIRED = 0x01;
export const EFI_GUIDED_SECTION_AUTH_STATUS_VALID = 0x02;

/** EFI_COMPRESSION_SECTION.CompressionType values. */
export const EFI_NOT_COMPRESSED = 0x00;
export const EFI_STANDARD_COMPRESSION = 0x01;

export const LZMA_GUID = 'EE4E5898-3914-4259-9D6E-DC7BD79403CF';
export const LZMA_F86_GUID = 'D42AE6BD-1352-4BFB-909A-CA72A6EAE889';
export const BROTLI_GUID = '3D532050-5CDA-4FD0-879E-0F7F630D5AFB';
export const CRC32_GUID = 'FC1BCDB0-7D31-49AA-936A-A4600D9DD083';
export const TIANO_GUID = 'A31280AD-481E-41B6-95E8-127F4C984779';

const SECTION_TYPE_NAMES: Readonly<Record<number, string>> = {
  0x01: 'Compressed',
  0x02: 'GUID defined',
  0x03: 'Disposable',
  0x10: 'PE32 image',
  0x11: 'PIC image',
  0x12: 'TE image',
  0x13: 'DXE dependency',
  0x14: 'Version',
  0x15: 'UI',
  0x16: '16-bit image',
  0x17: 'Volume image',
  0x18: 'Freeform subtype GUID',
  0x19: 'Raw',
  0x1b: 'PEI dependency',
  0x1c: 'MM dependency',
};

/** Section type names as UEFIExtract prints them. */
export function sectionTypeName(type: number): string {
  return SECTION_TYPE_NAMES[type] ?? `Unknown ${hex(type)}`;
}

export interface SectionHeader {
  readonly type: number;
  readonly typeName: string;
  /** Whole section, header included, in bytes. */
  readonly sizeInBytes: number;
  /** Offset from the section start of the data (for GUID-defined sections: DataOffset). */
  readonly dataOffset: number;
  /** Common (4 or 8) plus type-specific header bytes. */
  readonly headerSize: number;
  readonly large: boolean;
  /** EFI_SECTION_COMPRESSION. */
  readonly compression?: { readonly type: number; readonly uncompressedLength: number };
  /** EFI_SECTION_GUID_DEFINED. */
  readonly guided?: { readonly guid: string; readonly attributes: number };
  /** EFI_SECTION_FREEFORM_SUBTYPE_GUID. */
  readonly subtypeGuid?: string;
  /** EFI_SECTION_VERSION. */
  readonly buildNumber?: number;
}

/** Decodes a NUL-terminated UTF-16LE string from `bytes[from, to)`. */
export function readUtf16z(bytes: Uint8Array, from: number, to: number): string {
  let end = from;
  while (end + 1 < to && (bytes[end] !== 0 || bytes[end + 1] !== 0)) end += 2;
  return Buffer.from(bytes.buffer, bytes.byteOffset + from, end - from).toString('utf16le');
}

/**
 * Parses the section header at `offset`; the section must fit in `bytes[offset, end)`.
 * @param where text naming the file, for messages (e.g. "file 7C04A583-...").
 */
export function parseSectionHeader(
  bytes: Uint8Array,
  offset: number,
  end: number,
  where: string,
): SectionHeader {
  const remaining = end - offset;
  if (remaining < 4) {
    throw new FormatError(
      'E_SECTION_TRUNCATED',
      `section at ${hex(offset)} needs 4 header bytes, only ${hex(remaining)} remain in ${where}`,
      { offset, remaining },
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, remaining);
  const size24 = view.getUint8(0) | (view.getUint8(1) << 8) | (view.getUint8(2) << 16);
  const type = view.getUint8(3);
  let size = size24;
  let common = 4;
  const large = size24 === 0xff_ffff;
  if (large) {
    if (remaining < 8) {
      throw new FormatError(
        'E_SECTION_TRUNCATED',
        `large section at ${hex(offset)} needs 8 header bytes, only ${hex(remaining)} remain in ${where}`,
        { offset, remaining },
      );
    }
    size = view.getUint32(4, true);
    common = 8;
  }
  const extra =
    type === EFI_SECTION_COMPRESSION
      ? 5
      : type === EFI_SECTION_GUID_DEFINED
        ? 20
        : type === EFI_SECTION_VERSION
          ? 2
          : type === EFI_SECTION_FREEFORM_SUBTYPE_GUID
            ? 16
            : 0;
  const headerSize = common + extra;
  if (size > remaining) {
    throw new FormatError(
      'E_SECTION_BAD_SIZE',
      `section at ${hex(offset)} claims ${hex(size)} bytes, only ${hex(remaining)} remain in ${where}`,
      { offset, claimed: size, remaining },
    );
  }
  if (size < headerSize) {
    throw new FormatError(
      'E_SECTION_BAD_SIZE',
      `section at ${hex(offset)} (${sectionTypeName(type)}) claims ${hex(size)} bytes, less than its ${hex(headerSize)}-byte header in ${where}`,
      { offset, claimed: size, headerSize },
    );
  }
  const base = { type, typeName: sectionTypeName(type), sizeInBytes: size, headerSize, large };
  switch (type) {
    case EFI_SECTION_COMPRESSION:
      return {
        ...base,
        dataOffset: headerSize,
        compression: { uncompressedLength: view.getUint32(common, true), type: view.getUint8(common + 4) },
      };
    case EFI_SECTION_GUID_DEFINED: {
      const guid = readGuid(bytes, offset + common);
      const dataOffset = view.getUint16(common + 16, true);
      const attributes = view.getUint16(common + 18, true);
      if (dataOffset < headerSize || dataOffset > size) {
        throw new FormatError(
          'E_SECTION_BAD_DATA_OFFSET',
          `GUID-defined section ${guid} at ${hex(offset)} has DataOffset ${hex(dataOffset)}, outside ${hex(headerSize)}..${hex(size)} in ${where}`,
          { offset, guid, dataOffset, sizeInBytes: size },
        );
      }
      return { ...base, dataOffset, guided: { guid, attributes } };
    }
    case EFI_SECTION_VERSION:
      return { ...base, dataOffset: headerSize, buildNumber: view.getUint16(common, true) };
    case EFI_SECTION_FREEFORM_SUBTYPE_GUID:
      return { ...base, dataOffset: headerSize, subtypeGuid: readGuid(bytes, offset + common) };
    default:
      return { ...base, dataOffset: headerSize };
  }
}
