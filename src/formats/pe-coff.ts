// PE/COFF and TE image summary: Microsoft "PE Format" (MS-DOS stub, COFF file header,
// optional header, section table) and PI spec vol. 1, chapter 15 "TE image"
// (EFI_TE_IMAGE_HEADER). Only the headers are read; nothing is relocated or loaded.
import { FormatError } from '../core/errors.js';
import { hex } from '../core/hex.js';
import { fail } from './fail.js';

export interface PeSectionSummary {
  readonly name: string;
  readonly virtualSize: number;
  readonly virtualAddress: number;
  readonly rawSize: number;
  /** PointerToRawData as stored (for TE images: before the StrippedSize adjustment). */
  readonly rawOffset: number;
  readonly characteristics: number;
}

export interface PeImageSummary {
  readonly format: 'PE32' | 'PE32+' | 'TE';
  readonly machine: number;
  /** 'x64' | 'ia32' | 'aarch64' | 'arm' | 'ebc' | 'riscv64' | 'unknown(0x...)' */
  readonly machineName: string;
  readonly subsystem: number;
  /** 'EFI_APPLICATION' | 'EFI_BOOT_SERVICE_DRIVER' | 'EFI_RUNTIME_DRIVER' | 'EFI_ROM' | ... */
  readonly subsystemName: string;
  /** COFF TimeDateStamp (seconds since 1970); 0 for TE images, which strip it. */
  readonly timestamp: number;
  /**
   * OptionalHeader.SizeOfImage. TE images do not store it: there it is the end of the
   * highest section (VirtualAddress + max(VirtualSize, SizeOfRawData)).
   */
  readonly sizeOfImage: number;
  readonly entryPoint: number;
  /** OptionalHeader.ImageBase (64-bit for PE32+ and TE). */
  readonly imageBase: bigint;
  /** e_lfanew: offset of the "PE\0\0" signature; 0 for TE images. */
  readonly peHeaderOffset: number;
  /** COFF Characteristics; 0 for TE images. */
  readonly characteristics: number;
  /** OptionalHeader.SizeOfHeaders; for TE images the size of the TE header plus section table. */
  readonly sizeOfHeaders: number;
  /** TE only: bytes of the original PE headers that were stripped; 0 for PE images. */
  readonly strippedSize: number;
  readonly sections: readonly PeSectionSummary[];
}

/** Microsoft PE Format, "Machine Types". */
const MACHINE_NAMES: ReadonlyMap<number, string> = new Map([
  [0x8664, 'x64'],
  [0x014c, 'ia32'],
  [0xaa64, 'aarch64'],
  [0x01c2, 'arm'],
  [0x01c4, 'arm'],
  [0x0ebc, 'ebc'],
  [0x5064, 'riscv64'],
]);

/** Microsoft PE Format, "Windows Subsystem" (the EFI values are 10..13). */
const SUBSYSTEM_NAMES: ReadonlyMap<number, string> = new Map([
  [1, 'NATIVE'],
  [2, 'WINDOWS_GUI'],
  [3, 'WINDOWS_CUI'],
  [10, 'EFI_APPLICATION'],
  [11, 'EFI_BOOT_SERVICE_DRIVER'],
  [12, 'EFI_RUNTIME_DRIVER'],
  [13, 'EFI_ROM'],
]);

export function machineName(machine: number): string {
  return MACHINE_NAMES.get(machine) ?? `unknown(${hex(machine)})`;
}

export function subsystemName(subsystem: number): string {
  return SUBSYSTEM_NAMES.get(subsystem) ?? `unknown(${subsystem})`;
}

/** IMAGE_DOS_HEADER is 64 bytes; e_lfanew is its last field. */
const DOS_HEADER_SIZE = 0x40;
const E_LFANEW_OFFSET = 0x3c;
/** "PE\0\0" + IMAGE_FILE_HEADER. */
const PE_SIGNATURE_SIZE = 4;
const COFF_HEADER_SIZE = 20;
const SECTION_HEADER_SIZE = 40;
/** Fixed part of IMAGE_OPTIONAL_HEADER32 / 64 up to and including NumberOfRvaAndSizes. */
const OPTIONAL_HEADER_MIN_SIZE = { PE32: 96, 'PE32+': 112 } as const;
/** sizeof(EFI_TE_IMAGE_HEADER), PI spec vol. 1, 15.2. */
export const TE_HEADER_SIZE = 40;

/**
 * Largest e_lfanew accepted. Real images keep the PE header in the first KiB; the
 * bound stops a hostile value from sending the reader anywhere in a large buffer.
 * @default 0x1_0000
 */
export const MAX_E_LFANEW = 0x1_0000;
/** The Windows loader refuses more than 96 sections (PE Format, "COFF File Header"). */
export const MAX_SECTIONS = 96;

const MZ = 0x5a4d; // "MZ"
const PE00 = 0x0000_4550; // "PE\0\0"
const VZ = 0x5a56; // "VZ", EFI_TE_IMAGE_HEADER_SIGNATURE

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function need(bytes: Uint8Array, offset: number, size: number, what: string): void {
  if (offset + size > bytes.length) {
    throw new FormatError(
      'E_PE_TRUNCATED',
      `${what} at ${hex(offset)} needs ${hex(size)} bytes, only ${hex(Math.max(0, bytes.length - offset))} remain (image is ${hex(bytes.length)} bytes)`,
      { offset, size, length: bytes.length, what },
    );
  }
}

function sectionName(bytes: Uint8Array, offset: number): string {
  let name = '';
  for (let i = 0; i < 8; i++) {
    const c = bytes[offset + i] as number;
    if (c === 0) break;
    name += String.fromCharCode(c);
  }
  return name;
}

function readSections(
  bytes: Uint8Array,
  dv: DataView,
  tableOffset: number,
  count: number,
  /** Added to PointerToRawData to get the offset in `bytes` (TE: sizeof(TE header) - StrippedSize). */
  rawDelta: number,
): PeSectionSummary[] {
  need(bytes, tableOffset, count * SECTION_HEADER_SIZE, `section table (${count} entries)`);
  const sections: PeSectionSummary[] = [];
  for (let i = 0; i < count; i++) {
    const at = tableOffset + i * SECTION_HEADER_SIZE;
    // IMAGE_SECTION_HEADER: Name[8], VirtualSize, VirtualAddress, SizeOfRawData, PointerToRawData, ...
    const section: PeSectionSummary = {
      name: sectionName(bytes, at),
      virtualSize: dv.getUint32(at + 8, true),
      virtualAddress: dv.getUint32(at + 12, true),
      rawSize: dv.getUint32(at + 16, true),
      rawOffset: dv.getUint32(at + 20, true),
      characteristics: dv.getUint32(at + 36, true),
    };
    if (section.rawSize > 0) {
      const start = section.rawOffset + rawDelta;
      if (start < 0 || start + section.rawSize > bytes.length) {
        throw new FormatError(
          'E_PE_SECTION_OUT_OF_BOUNDS',
          `section ${i} "${section.name}" (header at ${hex(at)}) claims raw data ${hex(start)}..${hex(start + section.rawSize)}, past the end of the ${hex(bytes.length)}-byte image`,
          {
            offset: at,
            index: i,
            name: section.name,
            rawOffset: start,
            rawSize: section.rawSize,
            length: bytes.length,
          },
        );
      }
    }
    sections.push(section);
  }
  return sections;
}

function parseTe(bytes: Uint8Array): PeImageSummary {
  need(bytes, 0, TE_HEADER_SIZE, 'EFI_TE_IMAGE_HEADER');
  const dv = view(bytes);
  // EFI_TE_IMAGE_HEADER: Signature u16, Machine u16, NumberOfSections u8, Subsystem u8,
  // StrippedSize u16, AddressOfEntryPoint u32, BaseOfCode u32, ImageBase u64, DataDirectory[2].
  const machine = dv.getUint16(2, true);
  const count = bytes[4] as number;
  const subsystem = bytes[5] as number;
  const strippedSize = dv.getUint16(6, true);
  const entryPoint = dv.getUint32(8, true);
  const imageBase = dv.getBigUint64(16, true);
  if (count > MAX_SECTIONS) {
    throw new FormatError(
      'E_PE_TOO_MANY_SECTIONS',
      `TE header at 0x0 claims ${count} sections, more than ${MAX_SECTIONS}`,
      {
        offset: 4,
        count,
      },
    );
  }
  if (strippedSize < TE_HEADER_SIZE) {
    // A TE image replaces at least a DOS header + PE headers, which are larger than the TE header.
    throw new FormatError(
      'E_PE_BAD_TE_STRIPPED_SIZE',
      `TE header at 0x0 claims StrippedSize ${hex(strippedSize)}, smaller than the ${hex(TE_HEADER_SIZE)}-byte TE header`,
      { offset: 6, strippedSize },
    );
  }
  const sections = readSections(bytes, dv, TE_HEADER_SIZE, count, TE_HEADER_SIZE - strippedSize);
  let sizeOfImage = 0;
  for (const s of sections) {
    sizeOfImage = Math.max(sizeOfImage, s.virtualAddress + Math.max(s.virtualSize, s.rawSize));
  }
  return {
    format: 'TE',
    machine,
    machineName: machineName(machine),
    subsystem,
    subsystemName: subsystemName(subsystem),
    timestamp: 0,
    sizeOfImage,
    entryPoint,
    imageBase,
    peHeaderOffset: 0,
    characteristics: 0,
    sizeOfHeaders: TE_HEADER_SIZE + count * SECTION_HEADER_SIZE,
    strippedSize,
    sections,
  };
}

function parsePe(bytes: Uint8Array): PeImageSummary {
  need(bytes, 0, DOS_HEADER_SIZE, 'IMAGE_DOS_HEADER');
  const dv = view(bytes);
  const lfanew = dv.getUint32(E_LFANEW_OFFSET, true);
  if (lfanew > MAX_E_LFANEW || lfanew + PE_SIGNATURE_SIZE + COFF_HEADER_SIZE > bytes.length) {
    throw new FormatError(
      'E_PE_BAD_LFANEW',
      `e_lfanew at ${hex(E_LFANEW_OFFSET)} is ${hex(lfanew)}: the PE header would not fit in the ${hex(bytes.length)}-byte image (limit ${hex(MAX_E_LFANEW)})`,
      { offset: E_LFANEW_OFFSET, lfanew, length: bytes.length },
    );
  }
  const signature = dv.getUint32(lfanew, true);
  if (signature !== PE00) {
    throw new FormatError(
      'E_PE_BAD_SIGNATURE',
      `no "PE\\0\\0" signature at ${hex(lfanew)} (found ${hex(signature)})`,
      {
        offset: lfanew,
        found: signature,
      },
    );
  }
  // IMAGE_FILE_HEADER: Machine u16, NumberOfSections u16, TimeDateStamp u32,
  // PointerToSymbolTable u32, NumberOfSymbols u32, SizeOfOptionalHeader u16, Characteristics u16.
  const coff = lfanew + PE_SIGNATURE_SIZE;
  const machine = dv.getUint16(coff, true);
  const count = dv.getUint16(coff + 2, true);
  const timestamp = dv.getUint32(coff + 4, true);
  const optionalSize = dv.getUint16(coff + 16, true);
  const characteristics = dv.getUint16(coff + 18, true);
  if (count > MAX_SECTIONS) {
    throw new FormatError(
      'E_PE_TOO_MANY_SECTIONS',
      `COFF header at ${hex(coff)} claims ${count} sections, more than ${MAX_SECTIONS}`,
      { offset: coff + 2, count },
    );
  }
  const optional = coff + COFF_HEADER_SIZE;
  need(bytes, optional, 2, 'optional header magic');
  const magic = dv.getUint16(optional, true);
  const format = magic === 0x10b ? 'PE32' : magic === 0x20b ? 'PE32+' : null;
  if (format === null) {
    throw new FormatError(
      'E_PE_BAD_OPTIONAL_MAGIC',
      `optional header at ${hex(optional)} has magic ${hex(magic)}, expected 0x10b (PE32) or 0x20b (PE32+)`,
      { offset: optional, magic },
    );
  }
  const minimum = OPTIONAL_HEADER_MIN_SIZE[format];
  if (optionalSize < minimum) {
    throw new FormatError(
      'E_PE_BAD_OPTIONAL_SIZE',
      `COFF header at ${hex(coff)} claims SizeOfOptionalHeader ${hex(optionalSize)}, a ${format} optional header needs at least ${hex(minimum)}`,
      { offset: coff + 16, optionalSize, minimum },
    );
  }
  need(bytes, optional, optionalSize, `${format} optional header`);
  // IMAGE_OPTIONAL_HEADER32/64 share offsets up to BaseOfCode; ImageBase is u32 at 28
  // (after BaseOfData) in PE32 and u64 at 24 in PE32+. SizeOfImage at 56, SizeOfHeaders
  // at 60, Subsystem at 68 in both.
  const entryPoint = dv.getUint32(optional + 16, true);
  const imageBase =
    format === 'PE32' ? BigInt(dv.getUint32(optional + 28, true)) : dv.getBigUint64(optional + 24, true);
  const sizeOfImage = dv.getUint32(optional + 56, true);
  const sizeOfHeaders = dv.getUint32(optional + 60, true);
  const subsystem = dv.getUint16(optional + 68, true);
  const sections = readSections(bytes, dv, optional + optionalSize, count, 0);
  return {
    format,
    machine,
    machineName: machineName(machine),
    subsystem,
    subsystemName: subsystemName(subsystem),
    timestamp,
    sizeOfImage,
    entryPoint,
    imageBase,
    peHeaderOffset: lfanew,
    characteristics,
    sizeOfHeaders,
    strippedSize: 0,
    sections,
  };
}

/** True when the bytes start with an MZ/PE or TE header that parses. Never throws. */
export function looksLikePe(bytes: Uint8Array): boolean {
  try {
    parsePeImage(bytes);
    return true;
  } catch {
    return false;
  }
}

/** Parses the headers; throws FormatError (E_PE_*) on malformed input. */
export function parsePeImage(bytes: Uint8Array): PeImageSummary {
  if (bytes.length < 2) {
    throw new FormatError('E_PE_TRUNCATED', `${bytes.length} bytes cannot hold a PE or TE header`, {
      offset: 0,
      length: bytes.length,
    });
  }
  const first = (bytes[0] as number) | ((bytes[1] as number) << 8);
  if (first === MZ) return parsePe(bytes);
  if (first === VZ) return parseTe(bytes);
  throw new FormatError(
    'E_PE_BAD_DOS_SIGNATURE',
    `no "MZ" or "VZ" signature at 0x0 (found ${hex(first)}): not a PE/COFF or TE image`,
    { offset: 0, found: first },
  );
}

/** IMAGE_FILE_EXECUTABLE_IMAGE (PE Format, "Characteristics"): the image is valid and can be run. */
export const IMAGE_FILE_EXECUTABLE_IMAGE = 0x0002;
/** IMAGE_SCN_CNT_CODE and IMAGE_SCN_MEM_EXECUTE (PE Format, "Section Flags"). */
const IMAGE_SCN_CNT_CODE = 0x0000_0020;
const IMAGE_SCN_MEM_EXECUTE = 0x2000_0000;
/** IMAGE_NUMBEROF_DIRECTORY_ENTRIES. */
const MAX_DATA_DIRECTORIES = 16;
/** PE Format: FileAlignment is a power of 2 up to 64 KiB (EDK2's GenFw uses 0x20). */
const MAX_FILE_ALIGNMENT = 0x1_0000;
/** Largest SectionAlignment accepted: 2 MiB pages are the largest any UEFI loader honours. */
const MAX_SECTION_ALIGNMENT = 0x20_0000;

function isPowerOfTwo(value: number): boolean {
  return value > 0 && (value & (value - 1)) === 0;
}

/**
 * Checks that a PE32/PE32+ image is one a UEFI loader can load (PE Format; EDK2
 * BasePeCoffLib PeCoffLoaderGetPeHeader applies the same bounds): at least one section,
 * every section inside the file and inside SizeOfImage in ascending order, headers that
 * hold the section table, power-of-two alignments, SizeOfImage equal to the end of the
 * last section (rounded up to SectionAlignment), an entry point inside an executable
 * section and the IMAGE_FILE_EXECUTABLE_IMAGE characteristic. A header that parses is not
 * enough: a "driver" with 0 sections or SizeOfImage 0xFFFFFFFF must not reach a build.
 * Section addresses and raw offsets need not be aligned: EDK2's loader copies them as they
 * are, and real drivers (iPXE's) rely on it.
 * Returns the summary; throws FormatError (E_PE_*) naming the field and its offset.
 */
export function validatePeImage(bytes: Uint8Array): PeImageSummary {
  const pe = parsePeImage(bytes);
  if (pe.format === 'TE') {
    fail('E_PE_UNSUPPORTED_FORMAT', 'a TE image is not a loadable PE/COFF driver file', {
      format: pe.format,
    });
  }
  const dv = view(bytes);
  const coff = pe.peHeaderOffset + PE_SIGNATURE_SIZE;
  const optional = coff + COFF_HEADER_SIZE;
  const optionalSize = dv.getUint16(coff + 16, true);
  // IMAGE_OPTIONAL_HEADER32/64: SectionAlignment at 32, FileAlignment at 36 in both;
  // NumberOfRvaAndSizes ends the fixed part (at 92 in PE32, 108 in PE32+).
  const sectionAlignment = dv.getUint32(optional + 32, true);
  const fileAlignment = dv.getUint32(optional + 36, true);
  const fixedSize = OPTIONAL_HEADER_MIN_SIZE[pe.format];
  const rvaCountAt = optional + fixedSize - 4;
  const rvaCount = dv.getUint32(rvaCountAt, true);
  if (rvaCount > MAX_DATA_DIRECTORIES || optionalSize !== fixedSize + rvaCount * 8) {
    fail(
      'E_PE_BAD_DATA_DIRECTORIES',
      `NumberOfRvaAndSizes at ${hex(rvaCountAt)} is ${rvaCount}: expected at most ${MAX_DATA_DIRECTORIES} and SizeOfOptionalHeader ${hex(optionalSize)} = ${hex(fixedSize)} + 8 * NumberOfRvaAndSizes`,
      { offset: rvaCountAt, numberOfRvaAndSizes: rvaCount, optionalHeaderSize: optionalSize },
    );
  }
  if ((pe.characteristics & IMAGE_FILE_EXECUTABLE_IMAGE) === 0) {
    fail(
      'E_PE_NOT_EXECUTABLE',
      `COFF Characteristics at ${hex(coff + 18)} is ${hex(pe.characteristics)}: IMAGE_FILE_EXECUTABLE_IMAGE (0x2) is not set`,
      { offset: coff + 18, characteristics: pe.characteristics },
    );
  }
  if (!isPowerOfTwo(fileAlignment) || fileAlignment > MAX_FILE_ALIGNMENT) {
    fail(
      'E_PE_BAD_ALIGNMENT',
      `FileAlignment at ${hex(optional + 36)} is ${hex(fileAlignment)}: expected a power of 2 up to ${hex(MAX_FILE_ALIGNMENT)}`,
      { offset: optional + 36, fileAlignment },
    );
  }
  if (
    !isPowerOfTwo(sectionAlignment) ||
    sectionAlignment < fileAlignment ||
    sectionAlignment > MAX_SECTION_ALIGNMENT
  ) {
    fail(
      'E_PE_BAD_ALIGNMENT',
      `SectionAlignment at ${hex(optional + 32)} is ${hex(sectionAlignment)}: expected a power of 2 from FileAlignment ${hex(fileAlignment)} up to ${hex(MAX_SECTION_ALIGNMENT)}`,
      { offset: optional + 32, sectionAlignment, fileAlignment },
    );
  }
  if (pe.sections.length === 0) {
    fail('E_PE_NO_SECTIONS', `COFF header at ${hex(coff)} declares 0 sections: there is no code to load`, {
      offset: coff + 2,
      count: 0,
    });
  }
  const tableEnd = optional + optionalSize + pe.sections.length * SECTION_HEADER_SIZE;
  if (pe.sizeOfHeaders < tableEnd || pe.sizeOfHeaders > bytes.length) {
    fail(
      'E_PE_BAD_SIZE_OF_HEADERS',
      `SizeOfHeaders at ${hex(optional + 60)} is ${hex(pe.sizeOfHeaders)}: expected a value from the section table end ${hex(tableEnd)} to the file size ${hex(bytes.length)}`,
      { offset: optional + 60, sizeOfHeaders: pe.sizeOfHeaders, tableEnd, length: bytes.length },
    );
  }
  let end = pe.sizeOfHeaders;
  let entrySection: PeSectionSummary | null = null;
  for (const [index, section] of pe.sections.entries()) {
    const at = optional + optionalSize + index * SECTION_HEADER_SIZE;
    const size = section.virtualSize === 0 ? section.rawSize : section.virtualSize;
    if (section.virtualAddress < end || size === 0) {
      fail(
        'E_PE_BAD_SECTION',
        `section ${index} "${section.name}" (header at ${hex(at)}) starts at RVA ${hex(section.virtualAddress)} with ${hex(size)} bytes: sections must be non-empty and follow the headers and each other (next free RVA ${hex(end)})`,
        {
          offset: at,
          index,
          name: section.name,
          virtualAddress: section.virtualAddress,
          virtualSize: size,
          expectedAtLeast: end,
        },
      );
    }
    end = section.virtualAddress + size;
    if (
      pe.entryPoint >= section.virtualAddress &&
      pe.entryPoint < end &&
      (section.characteristics & (IMAGE_SCN_CNT_CODE | IMAGE_SCN_MEM_EXECUTE)) !== 0
    ) {
      entrySection = section;
    }
  }
  const alignedEnd = Math.ceil(end / sectionAlignment) * sectionAlignment;
  if (pe.sizeOfImage < end || pe.sizeOfImage > alignedEnd) {
    fail(
      'E_PE_BAD_SIZE_OF_IMAGE',
      `SizeOfImage at ${hex(optional + 56)} is ${hex(pe.sizeOfImage)}, but the sections end at RVA ${hex(end)} (${hex(alignedEnd)} aligned to SectionAlignment)`,
      { offset: optional + 56, sizeOfImage: pe.sizeOfImage, sectionsEnd: end, expected: alignedEnd },
    );
  }
  if (entrySection === null) {
    fail(
      'E_PE_BAD_ENTRY_POINT',
      `AddressOfEntryPoint at ${hex(optional + 16)} is ${hex(pe.entryPoint)}: not inside an executable section of the ${hex(pe.sizeOfImage)}-byte image`,
      { offset: optional + 16, entryPoint: pe.entryPoint, sizeOfImage: pe.sizeOfImage },
    );
  }
  return pe;
}
