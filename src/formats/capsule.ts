// Capsule headers in front of a firmware image.
//
// UEFI spec 2.10, 8.5.3:
//   typedef struct { EFI_GUID CapsuleGuid; UINT32 HeaderSize; UINT32 Flags; UINT32 CapsuleImageSize; } EFI_CAPSULE_HEADER;
// UEFI spec 2.10, 23.2 (FMP capsule body, at HeaderSize):
//   typedef struct { UINT32 Version; UINT16 EmbeddedDriverCount; UINT16 PayloadItemCount;
//                    UINT64 ItemOffsetList[]; } EFI_FIRMWARE_MANAGEMENT_CAPSULE_HEADER;
//   typedef struct { UINT32 Version; EFI_GUID UpdateImageTypeId; UINT8 UpdateImageIndex; UINT8 reserved[3];
//                    UINT32 UpdateImageSize; UINT32 UpdateVendorCodeSize;
//                    UINT64 UpdateHardwareInstance;   // Version >= 2
//                    UINT64 ImageCapsuleSupport;      // Version >= 3
//                  } EFI_FIRMWARE_MANAGEMENT_CAPSULE_IMAGE_HEADER;
// A header with a GUID no table names is taken only when its fields fit the file exactly
// (looksLikeCapsuleHeader), and is reported as "unknown capsule GUID <guid>".
// Vendor headers, as UEFITool's ffs.h describes them:
//   Toshiba: { EFI_GUID CapsuleGuid; UINT32 HeaderSize; UINT32 FullSize; UINT32 Flags; }
//   AMI Aptio: { EFI_CAPSULE_HEADER CapsuleHeader; UINT16 RomImageOffset; UINT16 RomLayoutOffset; }
//     (the image starts at RomImageOffset)
import { FormatError } from '../core/errors.js';
import { readGuid } from '../core/guid.js';
import { hex } from '../core/hex.js';
import type { ErrorCode } from '../core/error-codes.js';
import { u16, u32 } from './le-bytes.js';

export const EFI_CAPSULE_GUID = '3B6686BD-0D76-4030-B70E-B5519E2FC5A0';
export const EFI_FMP_CAPSULE_GUID = '6DCBD5ED-E82D-4C44-BDA1-7194199AD92A';
export const INTEL_CAPSULE_GUID = '539182B9-ABB5-4391-B69A-E3A943F72FCC';
export const LENOVO_CAPSULE_GUID = 'E20BAFD3-9914-4F4F-9537-3129E090EB3C';
export const LENOVO2_CAPSULE_GUID = '25B5FE76-8243-4A5C-A9BD-7EE3246198B5';
/** UEFITool's ffs.h names 3BE07062-... TOSHIBA_CAPSULE_GUID (a HeaderSize/FullSize/Flags layout). */
export const TOSHIBA_CAPSULE_GUID = '3BE07062-1D51-45D2-832B-F093257ED461';
export const APTIO_SIGNED_CAPSULE_GUID = '4A3CA68B-7723-48FB-803D-578CC1FEC44D';
export const APTIO_UNSIGNED_CAPSULE_GUID = '14EEBB90-890A-43DB-AED1-5D3C4588A418';
/** WIN_CERTIFICATE_UEFI_GUID.CertType of an authenticated FMP image (EFI_CERT_TYPE_PKCS7_GUID). */
export const EFI_CERT_TYPE_PKCS7_GUID = '4AAFD29D-68DF-49EE-8AA9-347D375665A7';

export const EFI_CAPSULE_HEADER_SIZE = 28;
export const APTIO_CAPSULE_HEADER_SIZE = 32;
/** Embedded drivers plus payloads in one FMP capsule. */
export const MAXIMUM_FMP_ITEMS = 256;

/**
 * 'unknown' is a header whose GUID no table names but whose EFI_CAPSULE_HEADER fields are
 * consistent with the file (looksLikeCapsuleHeader): vendors (Intel server boards, Dell TPM
 * updates) put their own GUIDs there.
 */
export type CapsuleKind =
  'UEFI' | 'FMP' | 'Intel' | 'Lenovo' | 'Toshiba' | 'AMI Aptio signed' | 'AMI Aptio unsigned' | 'unknown';

const KINDS: Readonly<Record<string, CapsuleKind>> = {
  [EFI_CAPSULE_GUID]: 'UEFI',
  [EFI_FMP_CAPSULE_GUID]: 'FMP',
  [INTEL_CAPSULE_GUID]: 'Intel',
  [LENOVO_CAPSULE_GUID]: 'Lenovo',
  [LENOVO2_CAPSULE_GUID]: 'Lenovo',
  [TOSHIBA_CAPSULE_GUID]: 'Toshiba',
  [APTIO_SIGNED_CAPSULE_GUID]: 'AMI Aptio signed',
  [APTIO_UNSIGNED_CAPSULE_GUID]: 'AMI Aptio unsigned',
};

export interface FmpPayload {
  readonly index: number;
  readonly version: number;
  readonly updateImageTypeId: string;
  readonly updateImageIndex: number;
  /** Offset of the image header in the capsule file. */
  readonly offset: number;
  readonly headerSize: number;
  /** Offset and size of the update image in the capsule file. */
  readonly imageOffset: number;
  readonly imageSizeInBytes: number;
  readonly vendorCodeSizeInBytes: number;
  readonly hardwareInstance: bigint | null;
  /** Offset and size of the firmware inside the image, past any authentication and FMP payload header. */
  readonly payloadOffset: number;
  readonly payloadSizeInBytes: number;
  readonly authenticated: boolean;
  /** FMP_PAYLOAD_HEADER ('MSS1') versions, when present. */
  readonly fmpPayloadHeader: { readonly fwVersion: number; readonly lowestSupportedVersion: number } | null;
}

export interface CapsuleHeader {
  readonly kind: CapsuleKind;
  readonly guid: string;
  readonly headerSize: number;
  readonly flags: number;
  /** Whole capsule (header + image) as the header states it. */
  readonly capsuleSizeInBytes: number;
  /** Offset and size of the image that follows the header (for FMP: the FMP header). */
  readonly bodyOffset: number;
  readonly bodySizeInBytes: number;
  readonly fmp: {
    readonly version: number;
    readonly embeddedDriverCount: number;
    readonly embeddedDriverOffsets: readonly number[];
    readonly payloads: readonly FmpPayload[];
  } | null;
}

/** Largest HeaderSize an unknown-GUID capsule may state (known ones use 0x1C..0x1000). */
export const MAXIMUM_UNKNOWN_CAPSULE_HEADER_SIZE = 0x1_0000;
/** Flags bits the UEFI spec (8.5.3) leaves reserved: PersistAcrossReset, PopulateSystemTable and InitiateReset are 16-18. */
const RESERVED_CAPSULE_FLAGS = 0xfff8_0000;

/** "_FVH", EFI_FIRMWARE_VOLUME_HEADER.Signature, at 0x28 of a volume (PI spec vol. 3, 3.2.1). */
const FV_SIGNATURE_AT_0X28 = 0x4856_465f;

/**
 * Whether `bytes` starts with an EFI_CAPSULE_HEADER whatever its GUID: CapsuleImageSize is the
 * file's length exactly, HeaderSize is at least the header and less than the image (and at most
 * MAXIMUM_UNKNOWN_CAPSULE_HEADER_SIZE), no reserved flag is set, and the GUID is not all ones
 * (erased flash). An all-zero GUID is taken (Dell's LVFS TPM capsule has one, see
 * test/fixtures/vendor/README.md) unless "_FVH" sits at 0x28: then the zeros are a firmware
 * volume's ZeroVector. Never throws.
 */
export function looksLikeCapsuleHeader(bytes: Uint8Array): boolean {
  if (bytes.length < EFI_CAPSULE_HEADER_SIZE) return false;
  let zeros = 0;
  let ones = 0;
  for (let i = 0; i < 16; i++) {
    if (bytes[i] === 0) zeros++;
    else if (bytes[i] === 0xff) ones++;
  }
  if (ones === 16) return false;
  if (zeros === 16 && bytes.length >= 0x2c && u32(bytes, 0x28) === FV_SIGNATURE_AT_0X28) return false;
  const headerSize = u32(bytes, 16);
  const flags = u32(bytes, 20);
  const imageSize = u32(bytes, 24);
  return (
    imageSize === bytes.length &&
    headerSize >= EFI_CAPSULE_HEADER_SIZE &&
    headerSize < imageSize &&
    headerSize <= MAXIMUM_UNKNOWN_CAPSULE_HEADER_SIZE &&
    (flags & RESERVED_CAPSULE_FLAGS) === 0
  );
}

/**
 * The capsule kind when `bytes` starts with a known capsule GUID, 'unknown' when the GUID is
 * not known but the header's shape fits the file (looksLikeCapsuleHeader), else null. Never throws.
 */
export function capsuleKindOf(bytes: Uint8Array): CapsuleKind | null {
  if (bytes.length < EFI_CAPSULE_HEADER_SIZE) return null;
  return KINDS[readGuid(bytes, 0)] ?? (looksLikeCapsuleHeader(bytes) ? 'unknown' : null);
}

/** How a capsule is named in the chain: "AMI Aptio signed capsule", "unknown capsule GUID <guid>". */
export function capsuleLabel(capsule: Pick<CapsuleHeader, 'kind' | 'guid'>): string {
  return capsule.kind === 'unknown' ? `unknown capsule GUID ${capsule.guid}` : `${capsule.kind} capsule`;
}

function bad(code: ErrorCode, message: string, details: Record<string, unknown>): FormatError {
  return new FormatError(code, message, details);
}

function parseFmp(bytes: Uint8Array, start: number, end: number): NonNullable<CapsuleHeader['fmp']> {
  if (end - start < 8) {
    throw bad(
      'E_CAPSULE_TRUNCATED',
      `FMP capsule header at ${hex(start)} needs 8 bytes, only ${hex(end - start)} remain`,
      {
        offset: start,
      },
    );
  }
  const version = u32(bytes, start);
  const embeddedDriverCount = u16(bytes, start + 4);
  const payloadCount = u16(bytes, start + 6);
  const count = embeddedDriverCount + payloadCount;
  if (count > MAXIMUM_FMP_ITEMS || start + 8 + count * 8 > end) {
    throw bad(
      'E_CAPSULE_BAD_FMP',
      `FMP capsule header at ${hex(start)} claims ${embeddedDriverCount} drivers + ${payloadCount} payloads (limit ${MAXIMUM_FMP_ITEMS}), ${hex(end - start - 8)} bytes remain for the offset list`,
      { offset: start, embeddedDriverCount, payloadCount },
    );
  }
  const offsets: number[] = [];
  for (let i = 0; i < count; i++) {
    const item = new DataView(bytes.buffer, bytes.byteOffset + start + 8 + i * 8, 8).getBigUint64(0, true);
    if (item >= BigInt(end - start)) {
      throw bad(
        'E_CAPSULE_BAD_FMP',
        `FMP item ${i} offset ${hex(item)} (from ${hex(start)}) is past the capsule end ${hex(end)}`,
        { offset: start + 8 + i * 8, item: item.toString() },
      );
    }
    offsets.push(start + Number(item));
  }
  const payloads: FmpPayload[] = [];
  for (let i = 0; i < payloadCount; i++) {
    const at = offsets[embeddedDriverCount + i] as number;
    if (end - at < 32) {
      throw bad(
        'E_CAPSULE_TRUNCATED',
        `FMP payload ${i} header at ${hex(at)} needs 32 bytes, only ${hex(end - at)} remain`,
        {
          offset: at,
        },
      );
    }
    const itemVersion = u32(bytes, at);
    const headerSize = itemVersion >= 3 ? 48 : itemVersion === 2 ? 40 : 32;
    const imageSize = u32(bytes, at + 24);
    const vendorCodeSize = u32(bytes, at + 28);
    const imageOffset = at + headerSize;
    if (imageOffset + imageSize + vendorCodeSize > end) {
      throw bad(
        'E_CAPSULE_BAD_FMP',
        `FMP payload ${i} at ${hex(at)} claims ${hex(imageSize)} image + ${hex(vendorCodeSize)} vendor bytes, only ${hex(Math.max(end - imageOffset, 0))} remain`,
        { offset: at, imageSize, vendorCodeSize },
      );
    }
    const hardwareInstance =
      itemVersion >= 2
        ? new DataView(bytes.buffer, bytes.byteOffset + at + 32, 8).getBigUint64(0, true)
        : null;
    let payloadOffset = imageOffset;
    let payloadEnd = imageOffset + imageSize;
    // EFI_FIRMWARE_IMAGE_AUTHENTICATION: UINT64 MonotonicCount + WIN_CERTIFICATE_UEFI_GUID
    // {UINT32 dwLength; UINT16 wRevision (0x0200); UINT16 wCertificateType (0x0EF1); EFI_GUID CertType; ...}.
    let authenticated = false;
    if (
      payloadEnd - payloadOffset >= 32 &&
      u16(bytes, payloadOffset + 12) === 0x0200 &&
      u16(bytes, payloadOffset + 14) === 0x0ef1 &&
      readGuid(bytes, payloadOffset + 16) === EFI_CERT_TYPE_PKCS7_GUID
    ) {
      const certLength = u32(bytes, payloadOffset + 8);
      if (certLength < 24 || payloadOffset + 8 + certLength > payloadEnd) {
        throw bad(
          'E_CAPSULE_BAD_FMP',
          `FMP payload ${i}: authentication at ${hex(payloadOffset)} claims ${hex(certLength)} bytes, only ${hex(payloadEnd - payloadOffset - 8)} remain`,
          { offset: payloadOffset, certLength },
        );
      }
      payloadOffset += 8 + certLength;
      authenticated = true;
    }
    // FMP_PAYLOAD_HEADER (EDK2 FmpDevicePkg): UINT32 Signature 'MSS1'; UINT32 HeaderSize;
    // UINT32 FwVersion; UINT32 LowestSupportedVersion.
    let fmpPayloadHeader: FmpPayload['fmpPayloadHeader'] = null;
    if (payloadEnd - payloadOffset >= 16 && u32(bytes, payloadOffset) === 0x3153_534d) {
      const size = u32(bytes, payloadOffset + 4);
      if (size >= 16 && payloadOffset + size <= payloadEnd) {
        fmpPayloadHeader = {
          fwVersion: u32(bytes, payloadOffset + 8),
          lowestSupportedVersion: u32(bytes, payloadOffset + 12),
        };
        payloadOffset += size;
      }
    }
    payloadEnd = Math.max(payloadEnd, payloadOffset);
    payloads.push({
      index: i,
      version: itemVersion,
      updateImageTypeId: readGuid(bytes, at + 4),
      updateImageIndex: bytes[at + 20] as number,
      offset: at,
      headerSize,
      imageOffset,
      imageSizeInBytes: imageSize,
      vendorCodeSizeInBytes: vendorCodeSize,
      hardwareInstance,
      payloadOffset,
      payloadSizeInBytes: payloadEnd - payloadOffset,
      authenticated,
      fmpPayloadHeader,
    });
  }
  return {
    version,
    embeddedDriverCount,
    embeddedDriverOffsets: offsets.slice(0, embeddedDriverCount),
    payloads,
  };
}

/**
 * Parses the capsule header at the start of `bytes` (a known GUID, or an unknown one whose
 * header shape fits the file: kind 'unknown', body at HeaderSize); throws FormatError (E_CAPSULE_*).
 */
export function parseCapsuleHeader(bytes: Uint8Array): CapsuleHeader {
  const kind = capsuleKindOf(bytes);
  if (kind === null) {
    throw bad(
      'E_CAPSULE_BAD_GUID',
      `no known capsule GUID at offset 0, and no EFI_CAPSULE_HEADER whose sizes fit the ${hex(bytes.length)}-byte file`,
      { length: bytes.length },
    );
  }
  const guid = readGuid(bytes, 0);
  const length = bytes.length;
  if (kind === 'Toshiba') {
    const headerSize = u32(bytes, 16);
    const fullSize = u32(bytes, 20);
    const flags = u32(bytes, 24);
    if (headerSize < EFI_CAPSULE_HEADER_SIZE || headerSize > fullSize || fullSize > length) {
      throw bad(
        'E_CAPSULE_BAD_SIZE',
        `Toshiba capsule header claims header ${hex(headerSize)} and full size ${hex(fullSize)}, file has ${hex(length)} bytes`,
        { headerSize, fullSize, length },
      );
    }
    return {
      kind,
      guid,
      headerSize,
      flags,
      capsuleSizeInBytes: fullSize,
      bodyOffset: headerSize,
      bodySizeInBytes: fullSize - headerSize,
      fmp: null,
    };
  }
  const headerSize = u32(bytes, 16);
  const flags = u32(bytes, 20);
  const imageSize = u32(bytes, 24);
  if (imageSize > length || imageSize < EFI_CAPSULE_HEADER_SIZE) {
    throw bad(
      'E_CAPSULE_BAD_SIZE',
      `${kind} capsule claims ${hex(imageSize)} bytes, file has ${hex(length)} (minimum ${hex(EFI_CAPSULE_HEADER_SIZE)})`,
      { imageSize, length },
    );
  }
  let bodyOffset = headerSize;
  if (kind === 'AMI Aptio signed' || kind === 'AMI Aptio unsigned') {
    if (length < APTIO_CAPSULE_HEADER_SIZE) {
      throw bad(
        'E_CAPSULE_TRUNCATED',
        `AMI Aptio capsule needs ${APTIO_CAPSULE_HEADER_SIZE} header bytes, file has ${length}`,
        {
          length,
        },
      );
    }
    bodyOffset = u16(bytes, 28);
  }
  if (bodyOffset < EFI_CAPSULE_HEADER_SIZE || bodyOffset > imageSize) {
    throw bad(
      'E_CAPSULE_BAD_SIZE',
      `${kind} capsule image offset ${hex(bodyOffset)} is outside ${hex(EFI_CAPSULE_HEADER_SIZE)}..${hex(imageSize)}`,
      { bodyOffset, imageSize },
    );
  }
  return {
    kind,
    guid,
    headerSize,
    flags,
    capsuleSizeInBytes: imageSize,
    bodyOffset,
    bodySizeInBytes: imageSize - bodyOffset,
    fmp: kind === 'FMP' ? parseFmp(bytes, bodyOffset, imageSize) : null,
  };
}
