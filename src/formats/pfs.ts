// Dell PFS update packages: what Dell's BIOS, dock and TPM updaters carry inside their .exe
// (and inside LVFS capsules). UEFITool refuses them; the layout here is the one BIOSUtilities'
// Dell PFS Extract (platomav/BIOSUtilities, dell_pfs_extract.py) reads, re-derived and checked
// against a real Dell package (test/fixtures/vendor-parsers/README.md).
//
// A zlib section, found anywhere in the file (its start is not recorded anywhere):
//   UINT32 CompressedSize; UINT8 Type (0xAA firmware, 0xBB utilities);
//   UINT8 Magic[10] = EE AA 76 1B EC BB 20 F1 E6 51; UINT8 Xor8;   (the 16 bytes XOR to 0)
//   zlib stream (CompressedSize bytes, starts 78 xx);
//   UINT32 CompressedSize; UINT8 Magic[11] = EE AA EE 8F 49 1B E8 AE 14 37 90; UINT8 Xor8.
// The inflated stream is a PFS volume:
//   { CHAR8 Tag[8] = "PFS.HDR."; UINT32 HeaderVersion (1|2); UINT32 PayloadSize; }
//   entries (PayloadSize bytes)
//   { UINT32 PayloadSize; UINT32 Crc (~CRC-32 of the entries); CHAR8 Tag[8] = "PFS.FTR."; }
// An entry (0x48 bytes for version 1, 0x58 for version 2), then its four blobs in order:
//   { EFI_GUID Guid; UINT32 HeaderVersion; UINT8 VersionType[4]; UINT16 Version[4]; UINT64 Reserved;
//     UINT32 DataSize; UINT32 DataSigSize; UINT32 MetaSize; UINT32 MetaSigSize; UINT32 Unknown[4|8]; }
// An entry's data may itself be a PFS volume ("PFS.HDR.") or hold zlib sections (nested PFS, as
// in packages that carry several BIOS images); both are parsed, bounded by maxDepth.
// The name-information entry lists, per entry GUID: { UINT32 Version (1); EFI_GUID Guid;
//   UINT16 Version[4]; UINT8 VersionType[4]; UINT16 CharCount; CHAR16 Name[CharCount]; CHAR16 0 }.
import { FormatError } from '../core/errors.js';
import { readGuid } from '../core/guid.js';
import { hex } from '../core/hex.js';
import type { ErrorCode } from '../core/error-codes.js';
import { crc32 } from './compression/crc32.js';
import { u16, u32 } from './le-bytes.js';

export const PFS_SECTION_HEADER_SIZE = 16;
export const PFS_SECTION_FOOTER_SIZE = 16;
export const PFS_HEADER_SIZE = 16;
export const PFS_FOOTER_SIZE = 16;
/** The two entry-information GUIDs BIOSUtilities knows (names of the other entries). */
const NAME_INFO_GUIDS = new Set([
  'FD041960-0DC8-4B9F-8225-BBA9E37C71E0',
  '4D583FD3-F80E-4055-A145-9BEC16CB33B0',
]);
/** The model-information and signature-information entries (metadata, not payloads). */
const MODEL_INFO_GUID = '233AE3FB-DA68-4FD4-92CB-A6229A611D6F';
const SIGNATURE_INFO_GUID = '3C880BB7-ED58-4D5C-A9AE-DB3AEEAF86D0';

const SECTION_MAGIC = Uint8Array.of(0xee, 0xaa, 0x76, 0x1b, 0xec, 0xbb, 0x20, 0xf1, 0xe6, 0x51);
const FOOTER_MAGIC = Uint8Array.of(0xee, 0xaa, 0xee, 0x8f, 0x49, 0x1b, 0xe8, 0xae, 0x14, 0x37, 0x90);
const HDR_TAG = Uint8Array.from('PFS.HDR.', (c) => c.charCodeAt(0));
const FTR_TAG = Uint8Array.from('PFS.FTR.', (c) => c.charCodeAt(0));

/** Bounds of one PFS parse; every size and count read from the input passes one of these. */
export interface DellPfsLimits {
  /**
   * PFS volumes inside entries of PFS volumes (the outermost volume is depth 0).
   * @default 4
   */
  readonly maxDepth?: number;
  /**
   * Entries in one volume, and zlib sections in one area.
   * @default 1024
   */
  readonly maxEntries?: number;
  /**
   * Bytes all zlib sections of one parse may inflate to, together.
   * @default 268_435_456 (256 MiB)
   */
  readonly maxInflatedBytes?: number;
}

const DEFAULTS: Required<DellPfsLimits> = {
  maxDepth: 4,
  maxEntries: 1024,
  maxInflatedBytes: 256 * 1024 * 1024,
};

export interface DellPfsEntry {
  readonly index: number;
  readonly guid: string;
  readonly headerVersion: number;
  /** Version from the entry header, as Dell's tools print it ("0.1.2.11"). */
  readonly version: string;
  /** Name from the volume's name-information entry, when it lists this GUID. */
  readonly name: string | null;
  /** 'name-info', 'model-info', 'signature-info' (metadata) or 'payload'. */
  readonly role: 'name-info' | 'model-info' | 'signature-info' | 'payload';
  /** Offset of the entry header and of its data, in the volume's bytes. */
  readonly offset: number;
  readonly dataOffset: number;
  readonly data: Uint8Array;
  readonly dataSignatureSizeInBytes: number;
  readonly metadataSizeInBytes: number;
  readonly metadataSignatureSizeInBytes: number;
  /** PFS volumes inside the data (raw "PFS.HDR." or zlib sections). */
  readonly nested: readonly DellPfsVolume[];
}

export interface DellPfsSection {
  /** Offset of the 16-byte section header in the bytes searched. */
  readonly offset: number;
  readonly type: number;
  readonly typeName: string;
  readonly compressedSizeInBytes: number;
  readonly inflatedSizeInBytes: number;
}

export interface DellPfsVolume {
  /** The zlib section the volume was inflated from, or null for a raw "PFS.HDR.". */
  readonly section: DellPfsSection | null;
  readonly headerVersion: number;
  readonly payloadSizeInBytes: number;
  readonly crc32: { readonly stored: number; readonly computed: number };
  readonly entries: readonly DellPfsEntry[];
}

interface Budget {
  readonly limits: Required<DellPfsLimits>;
  inflatedBytes: number;
}

function matchesAt(b: Uint8Array, at: number, pattern: Uint8Array): boolean {
  if (at < 0 || at + pattern.length > b.length) return false;
  for (let i = 0; i < pattern.length; i++) if (b[at + i] !== pattern[i]) return false;
  return true;
}
function xor8(b: Uint8Array, at: number, length: number): number {
  let x = 0;
  for (let i = 0; i < length; i++) x ^= b[at + i] as number;
  return x;
}
function bad(code: ErrorCode, message: string, details: Record<string, unknown>): FormatError {
  return new FormatError(code, message, details);
}

function resolve(limits: DellPfsLimits): Required<DellPfsLimits> {
  const out = { ...DEFAULTS };
  for (const key of Object.keys(DEFAULTS) as (keyof DellPfsLimits)[]) {
    const value = limits[key];
    if (value === undefined) continue;
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new TypeError(`Expected \`${key}\` to be a positive integer, got \`${String(value)}\``);
    }
    out[key] = value;
  }
  return out;
}

/** True when `bytes` starts with a PFS volume header ("PFS.HDR."). Never throws. */
export function isDellPfsVolume(bytes: Uint8Array): boolean {
  return matchesAt(bytes, 0, HDR_TAG);
}

/**
 * Offsets of the PFS zlib section headers in `bytes` (magic at +5, a zlib header at +16, the
 * 16 header bytes XOR to 0), outermost only: a match inside an earlier section's stream is
 * skipped. At most `maxCount + 1` are returned, so a caller can tell "more than the limit".
 * Never throws.
 */
export function findDellPfsSections(bytes: Uint8Array, maxCount = DEFAULTS.maxEntries): number[] {
  const found: number[] = [];
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  let from = 5;
  while (found.length <= maxCount) {
    const at = view.indexOf(SECTION_MAGIC, from);
    if (at < 0) break;
    const start = at - 5;
    from = at + 1;
    if (start < 0 || start + PFS_SECTION_HEADER_SIZE + 2 > bytes.length) continue;
    if (bytes[start + 16] !== 0x78 || xor8(bytes, start, PFS_SECTION_HEADER_SIZE) !== 0) continue;
    found.push(start);
    // Skip the stream: a nested section's magic inside it is its own volume's business.
    const end = start + PFS_SECTION_HEADER_SIZE + u32(bytes, start);
    if (end > from) from = Math.min(end, bytes.length);
  }
  return found;
}

/**
 * A quick look for the unpacker registry: 1 for "PFS.HDR." or a zlib section header at 0
 * (signatures), 0.75 for a zlib section further in (Dell's updater .exe: a 16-byte header
 * with a 10-byte magic, a checksum and a zlib header is stronger evidence than an archive
 * signature found somewhere in a PE, which self-extracting archives are guessed from at 0.5).
 */
export function dellPfsConfidence(bytes: Uint8Array): number {
  if (isDellPfsVolume(bytes)) return 1;
  const [first] = findDellPfsSections(bytes, 1);
  return first === undefined ? 0 : first === 0 ? 1 : 0.75;
}

function inflate(stream: Uint8Array, at: number, budget: Budget): Uint8Array {
  const left = budget.limits.maxInflatedBytes - budget.inflatedBytes;
  let output: Uint8Array;
  try {
    // zlib is compute, not I/O: loaded on the first section only, as compression/brotli.ts does.
    output = process
      .getBuiltinModule('node:zlib')
      .inflateSync(stream, { maxOutputLength: Math.max(1, left) });
  } catch (error) {
    const tooLarge = error instanceof RangeError || /maxOutputLength|buffer/i.test(String(error));
    throw bad(
      tooLarge ? 'E_PFS_TOO_LARGE' : 'E_PFS_INFLATE',
      tooLarge
        ? `PFS zlib section at ${hex(at)} inflates past the ${hex(left)} bytes left of maxInflatedBytes ${hex(budget.limits.maxInflatedBytes)}`
        : `PFS zlib section at ${hex(at)} does not inflate: ${error instanceof Error ? error.message : String(error)}`,
      { offset: at, leftBytes: left },
    );
  }
  budget.inflatedBytes += output.length;
  return new Uint8Array(output.buffer, output.byteOffset, output.length);
}

function parseSection(bytes: Uint8Array, at: number, budget: Budget, depth: number): DellPfsVolume {
  const size = u32(bytes, at);
  const streamAt = at + PFS_SECTION_HEADER_SIZE;
  const footerAt = streamAt + size;
  if (footerAt + PFS_SECTION_FOOTER_SIZE > bytes.length) {
    throw bad(
      'E_PFS_TRUNCATED',
      `PFS zlib section at ${hex(at)} claims ${hex(size)} compressed bytes and a footer, only ${hex(bytes.length - streamAt)} remain`,
      { offset: at, compressedSize: size, length: bytes.length },
    );
  }
  if (
    !matchesAt(bytes, footerAt + 4, FOOTER_MAGIC) ||
    u32(bytes, footerAt) !== size ||
    xor8(bytes, footerAt, PFS_SECTION_FOOTER_SIZE) !== 0
  ) {
    throw bad(
      'E_PFS_BAD_STRUCTURE',
      `PFS zlib section at ${hex(at)}: no matching footer at ${hex(footerAt)} (size ${hex(u32(bytes, footerAt))}, header says ${hex(size)})`,
      { offset: at, footerOffset: footerAt },
    );
  }
  const type = bytes[at + 4] as number;
  const inflated = inflate(bytes.subarray(streamAt, footerAt), at, budget);
  const section: DellPfsSection = {
    offset: at,
    type,
    typeName: type === 0xaa ? 'Firmware' : type === 0xbb ? 'Utilities' : `type ${hex(type)}`,
    compressedSizeInBytes: size,
    inflatedSizeInBytes: inflated.length,
  };
  return parseVolume(inflated, section, budget, depth);
}

function versionText(b: Uint8Array, typesAt: number, valuesAt: number): string {
  const parts: string[] = [];
  for (let i = 0; i < 4; i++) {
    const type = b[typesAt + i] as number;
    const value = u16(b, valuesAt + i * 2);
    if (type === 0 || type === 0x20) break;
    parts.push(type === 0x4e ? value.toString(10) : value.toString(16).toUpperCase());
  }
  return parts.join('.');
}

/** GUID -> name from a name-information entry; damaged records end the list quietly (names are cosmetic). */
function readNames(info: Uint8Array): Map<string, string> {
  const names = new Map<string, string>();
  let at = 0;
  while (at + 0x22 <= info.length && u32(info, at) === 1 && names.size < 4096) {
    const guid = readGuid(info, at + 4);
    const count = u16(info, at + 0x20);
    const nameAt = at + 0x22;
    if (nameAt + count * 2 > info.length) break;
    let name = '';
    for (let i = 0; i < count; i++) name += String.fromCharCode(u16(info, nameAt + i * 2));
    names.set(guid, name.replace(/\0+$/, '').trim());
    at = nameAt + count * 2 + 2;
  }
  return names;
}

function parseVolume(
  bytes: Uint8Array,
  section: DellPfsSection | null,
  budget: Budget,
  depth: number,
): DellPfsVolume {
  const where =
    section === null ? 'PFS volume' : `PFS volume inflated from the section at ${hex(section.offset)}`;
  if (depth > budget.limits.maxDepth) {
    throw bad(
      'E_PFS_TOO_DEEP',
      `${where} is nested ${depth} levels deep (maxDepth ${budget.limits.maxDepth})`,
      {
        depth,
        limit: budget.limits.maxDepth,
      },
    );
  }
  if (!matchesAt(bytes, 0, HDR_TAG)) {
    throw bad('E_PFS_BAD_STRUCTURE', `${where} does not start with "PFS.HDR."`, { length: bytes.length });
  }
  if (bytes.length < PFS_HEADER_SIZE + PFS_FOOTER_SIZE) {
    throw bad('E_PFS_TRUNCATED', `${where} has ${hex(bytes.length)} bytes, fewer than a header and footer`, {
      length: bytes.length,
    });
  }
  const headerVersion = u32(bytes, 8);
  const payloadSize = u32(bytes, 12);
  if (headerVersion !== 1 && headerVersion !== 2) {
    throw bad('E_PFS_BAD_STRUCTURE', `${where} has header version ${headerVersion} (known: 1, 2)`, {
      headerVersion,
    });
  }
  const end = PFS_HEADER_SIZE + payloadSize;
  if (end + PFS_FOOTER_SIZE > bytes.length) {
    throw bad(
      'E_PFS_TRUNCATED',
      `${where} claims ${hex(payloadSize)} payload bytes and a footer, only ${hex(bytes.length - PFS_HEADER_SIZE)} remain`,
      { payloadSize, length: bytes.length },
    );
  }
  if (!matchesAt(bytes, end + 8, FTR_TAG) || u32(bytes, end) !== payloadSize) {
    throw bad(
      'E_PFS_BAD_STRUCTURE',
      `${where}: no "PFS.FTR." with payload size ${hex(payloadSize)} at ${hex(end)}`,
      {
        footerOffset: end,
      },
    );
  }
  const stored = u32(bytes, end + 4);
  const computed = ~crc32(bytes.subarray(PFS_HEADER_SIZE, end)) >>> 0;
  if (stored !== computed) {
    throw bad(
      'E_PFS_BAD_CHECKSUM',
      `${where}: footer checksum ${hex(stored)} does not match the payload's ${hex(computed)}`,
      { stored, computed },
    );
  }
  type Raw = Omit<DellPfsEntry, 'name' | 'nested' | 'role'>;
  const raws: Raw[] = [];
  let at = PFS_HEADER_SIZE;
  while (at < end) {
    if (raws.length >= budget.limits.maxEntries) {
      throw bad(
        'E_PFS_TOO_MANY_ENTRIES',
        `${where} holds more than ${budget.limits.maxEntries} entries (maxEntries)`,
        {
          limit: budget.limits.maxEntries,
        },
      );
    }
    const entryVersion = at + 0x14 <= end ? u32(bytes, at + 0x10) : 0;
    const headerSize = entryVersion === 1 ? 0x48 : 0x58;
    if (at + headerSize > end) {
      throw bad(
        'E_PFS_TRUNCATED',
        `PFS entry ${raws.length} header at ${hex(at)} needs ${hex(headerSize)} bytes, only ${hex(end - at)} remain in the payload`,
        { offset: at },
      );
    }
    const sizes = [
      u32(bytes, at + 0x28),
      u32(bytes, at + 0x2c),
      u32(bytes, at + 0x30),
      u32(bytes, at + 0x34),
    ];
    const total = sizes.reduce((a, b) => a + b, 0);
    if (at + headerSize + total > end) {
      throw bad(
        'E_PFS_TRUNCATED',
        `PFS entry ${raws.length} at ${hex(at)} claims ${hex(total)} bytes of data, signatures and metadata, only ${hex(end - at - headerSize)} remain in the payload`,
        { offset: at, sizes },
      );
    }
    const dataOffset = at + headerSize;
    raws.push({
      index: raws.length,
      guid: readGuid(bytes, at),
      headerVersion: entryVersion,
      version: versionText(bytes, at + 0x14, at + 0x18),
      offset: at,
      dataOffset,
      data: bytes.subarray(dataOffset, dataOffset + (sizes[0] as number)),
      dataSignatureSizeInBytes: sizes[1] as number,
      metadataSizeInBytes: sizes[2] as number,
      metadataSignatureSizeInBytes: sizes[3] as number,
    });
    at = dataOffset + total;
  }
  const info = raws.find((r) => NAME_INFO_GUIDS.has(r.guid));
  const names = info === undefined ? new Map<string, string>() : readNames(info.data);
  const entries = raws.map((raw): DellPfsEntry => {
    const role = NAME_INFO_GUIDS.has(raw.guid)
      ? 'name-info'
      : raw.guid === MODEL_INFO_GUID
        ? 'model-info'
        : raw.guid === SIGNATURE_INFO_GUID
          ? 'signature-info'
          : 'payload';
    return {
      ...raw,
      name: names.get(raw.guid) ?? null,
      role,
      nested: role === 'payload' ? parseNested(raw.data, budget, depth + 1) : [],
    };
  });
  return {
    section,
    headerVersion,
    payloadSizeInBytes: payloadSize,
    crc32: { stored, computed },
    entries,
  };
}

function parseNested(data: Uint8Array, budget: Budget, depth: number): DellPfsVolume[] {
  if (isDellPfsVolume(data)) return [parseVolume(data, null, budget, depth)];
  const offsets = findDellPfsSections(data, budget.limits.maxEntries);
  return offsets.map((offset) => parseSection(data, offset, budget, depth));
}

/**
 * Parses a Dell PFS package: a raw "PFS.HDR." volume, or any bytes (the updater .exe, a
 * capsule body) holding PFS zlib sections. Throws FormatError: E_PFS_NOT_FOUND when there is
 * neither, E_PFS_TRUNCATED / E_PFS_BAD_STRUCTURE / E_PFS_BAD_CHECKSUM on damage (what, where,
 * why), E_PFS_TOO_DEEP / E_PFS_TOO_MANY_ENTRIES / E_PFS_TOO_LARGE past a limit, E_PFS_INFLATE
 * when a zlib stream is corrupt.
 */
export function parseDellPfs(bytes: Uint8Array, limits: DellPfsLimits = {}): DellPfsVolume[] {
  const budget: Budget = { limits: resolve(limits), inflatedBytes: 0 };
  if (isDellPfsVolume(bytes)) return [parseVolume(bytes, null, budget, 0)];
  const offsets = findDellPfsSections(bytes, budget.limits.maxEntries);
  if (offsets.length === 0) {
    throw bad('E_PFS_NOT_FOUND', 'no Dell PFS volume ("PFS.HDR.") or PFS zlib section in the file', {
      length: bytes.length,
    });
  }
  if (offsets.length > budget.limits.maxEntries) {
    throw bad(
      'E_PFS_TOO_MANY_ENTRIES',
      `more than ${budget.limits.maxEntries} PFS zlib sections (maxEntries)`,
      {
        limit: budget.limits.maxEntries,
      },
    );
  }
  return offsets.map((offset) => parseSection(bytes, offset, budget, 0));
}

/** One payload of a PFS package, named by the path of volumes and entries that lead to it. */
export interface DellPfsPayload {
  /** e.g. "Firmware/3 Dock EC v0.1.2.11"; nested volumes add a level. */
  readonly name: string;
  readonly bytes: Uint8Array;
}

/**
 * The payloads of parsed PFS volumes, in package order: entries with data that are neither
 * metadata nor containers of further PFS volumes (those are descended into instead).
 */
export function dellPfsPayloads(volumes: readonly DellPfsVolume[], prefix = ''): DellPfsPayload[] {
  const out: DellPfsPayload[] = [];
  volumes.forEach((volume, v) => {
    const level = `${prefix}${volume.section?.typeName ?? 'PFS'}${volumes.length > 1 ? ` ${v + 1}` : ''}/`;
    for (const entry of volume.entries) {
      if (entry.role !== 'payload' || entry.data.length === 0) continue;
      const label = `${entry.index + 1} ${entry.name ?? entry.guid}${entry.version === '' ? '' : ` v${entry.version}`}`;
      if (entry.nested.length > 0) out.push(...dellPfsPayloads(entry.nested, `${level}${label}/`));
      else out.push({ name: `${level}${label}`, bytes: entry.data });
    }
  });
  return out;
}
