// PCI expansion ROM images: the 0x55AA ROM header and the "PCIR" data structure (PCI
// Firmware spec 3.0, 5.1) and, for code type 3, the EFI expansion ROM header (UEFI spec
// 2.10, 14.4.2 "PCI Option ROMs"; EDK2 EFI_PCI_EXPANSION_ROM_HEADER in EfiPci.h).
import { sha256 } from '../core/digest.js';
import { hex } from '../core/hex.js';
import { fail } from './fail.js';
// The decompressors' own files, not the compression/index.ts barrel, which also loads the
// EFI compressor: a cold `extract` never compresses.
import { decompressEfi } from './compression/efi-decompress.js';
import type { DecompressLimits } from './compression/limits.js';
import { scanForVbt, type VbtScanRejection } from './vbt.js';

export interface OptionRomImage {
  readonly offset: number;
  readonly vendorId: number;
  readonly deviceId: number;
  /** PCIR DeviceListOffset list (PCI 3.0, revision 3 only): further device ids; empty when absent. */
  readonly deviceList: readonly number[];
  /** 24-bit class code: base class << 16 | sub-class << 8 | programming interface. */
  readonly classCode: number;
  /** 0 = x86 PC-AT, 1 = Open Firmware, 2 = PA-RISC, 3 = EFI */
  readonly codeType: number;
  readonly codeTypeName: string;
  readonly codeRevision: number;
  readonly imageLengthInBytes: number;
  readonly lastImage: boolean;
  readonly pcirOffset: number;
  readonly pcirLength: number;
  readonly pcirRevision: number;
  readonly sha256: string;
  /**
   * Present for x86 PC-AT images: the legacy size byte at 0x02, in bytes; where the first VBT
   * in the image starts (from the image start; scanForVbt: "$VBT" followed by a VBT header and
   * a BDB), and the "$VBT" texts before it that are not one (absolute offsets).
   */
  readonly legacy: {
    readonly sizeInBytes: number;
    readonly vbtOffset: number | null;
    readonly notVbt: readonly VbtScanRejection[];
  } | null;
  /** Present for EFI images. */
  readonly efi: {
    readonly subsystem: number;
    readonly machine: number;
    readonly compressed: boolean;
    /** EfiImageHeaderOffset: where the (possibly compressed) PE image starts, from the image start. */
    readonly imageOffset: number;
    /** InitializationSize * 512. */
    readonly initSizeInBytes: number;
  } | null;
}

export interface OptionRomInfo {
  readonly images: readonly OptionRomImage[];
  readonly sizeInBytes: number;
  /** Bytes after the last image (padding of a flash chip dump); 0 for a built ROM. */
  readonly trailingBytes: number;
}

const ROM_SIGNATURE = 0xaa55;
const PCIR_SIGNATURE = 0x5249_4350; // "PCIR"
const EFI_SIGNATURE = 0x0ef1;
/** EFI_PCI_EXPANSION_ROM_HEADER: Signature u16, InitializationSize u16, EfiSignature u32, EfiSubsystem u16, EfiMachineType u16, CompressionType u16, Reserved[8], EfiImageHeaderOffset u16, PcirOffset u16. */
export const EFI_ROM_HEADER_SIZE = 0x1a;
/** PCI 2.2 PCIR structure (24 bytes); PCI 3.0 adds three u16 fields (28 bytes). */
export const PCIR_MIN_LENGTH = 0x18;
export const PCIR_3_0_LENGTH = 0x1c;
export const ROM_BLOCK_SIZE = 512;
/**
 * Most images one ROM may chain. Real ROMs carry 1-3 (legacy + EFI, GOP + helpers);
 * the bound stops a hostile chain of 512-byte images from producing 32k entries.
 * @default 32
 */
export const MAX_ROM_IMAGES = 32;
/** Longest device id list read from a PCI 3.0 PCIR (the list is u16s ended by 0). */
export const MAX_DEVICE_LIST_ENTRIES = 256;

const CODE_TYPE_NAMES: readonly string[] = ['x86 PC-AT', 'Open Firmware', 'PA-RISC', 'EFI'];

export function codeTypeName(codeType: number): string {
  return CODE_TYPE_NAMES[codeType] ?? `unknown(${hex(codeType)})`;
}

/** True when the bytes start with 0x55AA and a PCIR structure. Never throws. */
export function looksLikeOptionRom(bytes: Uint8Array): boolean {
  if (bytes.length < 0x1c || bytes[0] !== 0x55 || bytes[1] !== 0xaa) return false;
  const pcir = (bytes[0x18] as number) | ((bytes[0x19] as number) << 8);
  return (
    pcir + 4 <= bytes.length &&
    bytes[pcir] === 0x50 &&
    bytes[pcir + 1] === 0x43 &&
    bytes[pcir + 2] === 0x49 &&
    bytes[pcir + 3] === 0x52
  );
}

function readDeviceList(
  bytes: Uint8Array,
  dv: DataView,
  at: number,
  imageEnd: number,
  offset: number,
): number[] {
  const list: number[] = [];
  for (let i = 0; ; i++) {
    const entry = at + i * 2;
    if (entry + 2 > imageEnd) {
      fail(
        'E_ROM_BAD_DEVICE_LIST',
        `device id list at ${hex(at)} of the image at ${hex(offset)} runs past the image end ${hex(imageEnd)}`,
        {
          offset: at,
          imageOffset: offset,
        },
      );
    }
    const id = dv.getUint16(entry, true);
    if (id === 0) return list;
    if (list.length >= MAX_DEVICE_LIST_ENTRIES) {
      fail(
        'E_ROM_BAD_DEVICE_LIST',
        `device id list at ${hex(at)} has more than ${MAX_DEVICE_LIST_ENTRIES} entries without a 0 terminator`,
        {
          offset: at,
          imageOffset: offset,
        },
      );
    }
    list.push(id);
  }
}

function parseImage(bytes: Uint8Array, dv: DataView, offset: number, index: number): OptionRomImage {
  if (offset + 0x1c > bytes.length) {
    fail(
      'E_ROM_TRUNCATED',
      `image ${index} at ${hex(offset)}: ${hex(bytes.length - offset)} bytes cannot hold a ROM header`,
      {
        offset,
        index,
        length: bytes.length,
      },
    );
  }
  const signature = dv.getUint16(offset, true);
  if (signature !== ROM_SIGNATURE) {
    fail(
      'E_ROM_BAD_SIGNATURE',
      `image ${index} at ${hex(offset)}: no 0x55AA ROM signature (found ${hex(signature)})`,
      {
        offset,
        index,
        found: signature,
      },
    );
  }
  const pcirRelative = dv.getUint16(offset + 0x18, true);
  const pcir = offset + pcirRelative;
  if (pcirRelative < 0x1a || pcir + PCIR_MIN_LENGTH > bytes.length) {
    fail(
      'E_ROM_BAD_PCIR_OFFSET',
      `image ${index} at ${hex(offset)}: PCIR offset ${hex(pcirRelative)} at ${hex(offset + 0x18)} points inside the ROM header or past the end (${hex(bytes.length)})`,
      { offset: offset + 0x18, index, pcirOffset: pcirRelative },
    );
  }
  const pcirSignature = dv.getUint32(pcir, true);
  if (pcirSignature !== PCIR_SIGNATURE) {
    fail(
      'E_ROM_BAD_PCIR_SIGNATURE',
      `image ${index}: no "PCIR" signature at ${hex(pcir)} (found ${hex(pcirSignature)})`,
      {
        offset: pcir,
        index,
        found: pcirSignature,
      },
    );
  }
  // PCI Firmware spec 3.0, table 5-2: Signature, VendorId, DeviceId, DeviceListOffset
  // (reserved before 3.0), Length, Revision, ClassCode[3], ImageLength (512-byte units),
  // CodeRevision, CodeType, Indicator, then three 3.0-only u16 fields.
  const vendorId = dv.getUint16(pcir + 4, true);
  const deviceId = dv.getUint16(pcir + 6, true);
  const deviceListOffset = dv.getUint16(pcir + 8, true);
  const pcirLength = dv.getUint16(pcir + 10, true);
  const pcirRevision = bytes[pcir + 12] as number;
  const classCode =
    (bytes[pcir + 13] as number) | ((bytes[pcir + 14] as number) << 8) | ((bytes[pcir + 15] as number) << 16);
  const imageLengthInBytes = dv.getUint16(pcir + 16, true) * ROM_BLOCK_SIZE;
  const codeRevision = dv.getUint16(pcir + 18, true);
  const codeType = bytes[pcir + 20] as number;
  const indicator = bytes[pcir + 21] as number;
  if (imageLengthInBytes === 0 || offset + imageLengthInBytes > bytes.length) {
    fail(
      'E_ROM_BAD_IMAGE_LENGTH',
      `image ${index} at ${hex(offset)}: PCIR ImageLength at ${hex(pcir + 16)} claims ${hex(imageLengthInBytes)} bytes, ${hex(bytes.length - offset)} remain in the ${hex(bytes.length)}-byte ROM`,
      { offset: pcir + 16, index, imageLengthInBytes, remaining: bytes.length - offset },
    );
  }
  const imageEnd = offset + imageLengthInBytes;
  if (pcirLength < PCIR_MIN_LENGTH || pcir + pcirLength > imageEnd) {
    fail(
      'E_ROM_BAD_PCIR_LENGTH',
      `image ${index}: PCIR at ${hex(pcir)} claims Length ${hex(pcirLength)}, expected ${hex(PCIR_MIN_LENGTH)}.. within the image ending at ${hex(imageEnd)}`,
      { offset: pcir + 10, index, pcirLength },
    );
  }
  const deviceList =
    pcirRevision >= 3 && deviceListOffset !== 0
      ? readDeviceList(bytes, dv, pcir + deviceListOffset, imageEnd, offset)
      : [];

  let efi: OptionRomImage['efi'] = null;
  let legacy: OptionRomImage['legacy'] = null;
  if (codeType === 3) {
    const efiSignature = dv.getUint32(offset + 4, true);
    if (efiSignature !== EFI_SIGNATURE) {
      fail(
        'E_ROM_BAD_EFI_SIGNATURE',
        `image ${index} at ${hex(offset)}: code type EFI but EfiSignature at ${hex(offset + 4)} is ${hex(efiSignature)}, expected 0xef1`,
        {
          offset: offset + 4,
          index,
          found: efiSignature,
        },
      );
    }
    const initSizeInBytes = dv.getUint16(offset + 2, true) * ROM_BLOCK_SIZE;
    const compressionType = dv.getUint16(offset + 0x0c, true);
    const imageOffset = dv.getUint16(offset + 0x16, true);
    if (compressionType > 1) {
      fail(
        'E_ROM_BAD_COMPRESSION_TYPE',
        `image ${index} at ${hex(offset)}: CompressionType at ${hex(offset + 0x0c)} is ${compressionType}; UEFI defines 0 (none) and 1 (EFI compression)`,
        { offset: offset + 0x0c, index, compressionType },
      );
    }
    if (imageOffset < EFI_ROM_HEADER_SIZE || imageOffset >= imageLengthInBytes) {
      fail(
        'E_ROM_BAD_EFI_IMAGE_OFFSET',
        `image ${index} at ${hex(offset)}: EfiImageHeaderOffset at ${hex(offset + 0x16)} is ${hex(imageOffset)}, outside ${hex(EFI_ROM_HEADER_SIZE)}..${hex(imageLengthInBytes)}`,
        { offset: offset + 0x16, index, imageOffset, imageLengthInBytes },
      );
    }
    if (initSizeInBytes > imageLengthInBytes) {
      fail(
        'E_ROM_BAD_INIT_SIZE',
        `image ${index} at ${hex(offset)}: InitializationSize ${hex(initSizeInBytes)} exceeds the PCIR image length ${hex(imageLengthInBytes)}`,
        { offset: offset + 2, index, initSizeInBytes, imageLengthInBytes },
      );
    }
    efi = {
      subsystem: dv.getUint16(offset + 8, true),
      machine: dv.getUint16(offset + 0x0a, true),
      compressed: compressionType === 1,
      imageOffset,
      initSizeInBytes,
    };
  } else if (codeType === 0) {
    const scan = scanForVbt(bytes, offset, imageEnd);
    legacy = {
      sizeInBytes: (bytes[offset + 2] as number) * ROM_BLOCK_SIZE,
      vbtOffset: scan.found === null ? null : scan.found.offset - offset,
      notVbt: scan.rejected,
    };
  }
  return {
    offset,
    vendorId,
    deviceId,
    deviceList,
    classCode,
    codeType,
    codeTypeName: codeTypeName(codeType),
    codeRevision,
    imageLengthInBytes,
    lastImage: (indicator & 0x80) !== 0,
    pcirOffset: pcirRelative,
    pcirLength,
    pcirRevision,
    sha256: sha256(bytes.subarray(offset, imageEnd)),
    legacy,
    efi,
  };
}

/**
 * Parses the image chain; throws FormatError (E_ROM_*). Images follow each other at
 * offset + ImageLength until one has the last-image indicator (bit 7); every length is
 * non-zero and inside the buffer, so the walk cannot loop or overlap.
 */
export function parseOptionRom(bytes: Uint8Array): OptionRomInfo {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const images: OptionRomImage[] = [];
  let offset = 0;
  for (;;) {
    if (images.length >= MAX_ROM_IMAGES) {
      fail(
        'E_ROM_TOO_MANY_IMAGES',
        `more than ${MAX_ROM_IMAGES} images chained before a last-image indicator (next at ${hex(offset)})`,
        {
          offset,
        },
      );
    }
    if (offset >= bytes.length) {
      fail(
        'E_ROM_CHAIN_UNTERMINATED',
        `image ${images.length - 1} is not marked last but the ROM ends at ${hex(bytes.length)}`,
        {
          offset,
          index: images.length,
        },
      );
    }
    const image = parseImage(bytes, dv, offset, images.length);
    images.push(image);
    offset += image.imageLengthInBytes;
    if (image.lastImage) break;
  }
  return { images, sizeInBytes: bytes.length, trailingBytes: bytes.length - offset };
}

/**
 * The PE/COFF bytes of an EFI image: from EfiImageHeaderOffset to the end of the image
 * (EfiRom pads before an uncompressed PE, so the PE ends with the image), decompressed
 * with EFI 1.1 decompression when CompressionType is 1. Throws E_ROM_NOT_EFI for other
 * code types, and the decompressor's errors for bad compressed data.
 */
export function optionRomPeBytes(
  bytes: Uint8Array,
  image: OptionRomImage,
  limits: DecompressLimits = {},
): Uint8Array {
  if (image.efi === null) {
    fail('E_ROM_NOT_EFI', `image at ${hex(image.offset)} has code type ${image.codeTypeName}, not EFI`, {
      offset: image.offset,
      codeType: image.codeType,
    });
  }
  const start = image.offset + image.efi.imageOffset;
  const end = image.offset + image.imageLengthInBytes;
  if (end > bytes.length) {
    fail(
      'E_ROM_TRUNCATED',
      `image at ${hex(image.offset)} ends at ${hex(end)}, past the ${hex(bytes.length)}-byte ROM`,
      {
        offset: image.offset,
        end,
        length: bytes.length,
      },
    );
  }
  const stored = bytes.subarray(start, end);
  return image.efi.compressed ? decompressEfi(stored, limits) : stored;
}
