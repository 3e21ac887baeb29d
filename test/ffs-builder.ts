// Builds small, valid firmware structures (volumes, FFS files, sections) for unit and fuzz
// tests, following the PI spec vol. 3 layouts. Checksums are computed, not faked.
import { guidToBytes } from '../src/core/guid.js';
import { EFI_CAPSULE_GUID } from '../src/formats/capsule.js';

export function u8(...values: number[]): Uint8Array {
  return Uint8Array.from(values);
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function le(value: number, bytes: number): Uint8Array {
  const out = new Uint8Array(bytes);
  let v = BigInt(value);
  for (let i = 0; i < bytes; i++) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

export const le16 = (v: number): Uint8Array => le(v, 2);
export const le24 = (v: number): Uint8Array => le(v, 3);
export const le32 = (v: number): Uint8Array => le(v, 4);
export const le64 = (v: number): Uint8Array => le(v, 8);

export function utf16z(text: string): Uint8Array {
  return concat(new Uint8Array(Buffer.from(text, 'utf16le')), u8(0, 0));
}

/** EFI_COMMON_SECTION_HEADER(2) + type-specific header + body; `large` forces the 0xFFFFFF form. */
export function section(
  type: number,
  body: Uint8Array,
  extraHeader: Uint8Array = new Uint8Array(0),
  large = false,
): Uint8Array {
  const size = (large ? 8 : 4) + extraHeader.length + body.length;
  const common = large ? concat(le24(0xff_ffff), u8(type), le32(size)) : concat(le24(size), u8(type));
  return concat(common, extraHeader, body);
}

/** Sections laid out with 4-byte alignment. */
export function sections(...list: Uint8Array[]): Uint8Array {
  const parts: Uint8Array[] = [];
  let length = 0;
  for (const s of list) {
    const pad = (4 - (length % 4)) % 4;
    if (pad) parts.push(new Uint8Array(pad));
    parts.push(s);
    length += pad + s.length;
  }
  return concat(...parts);
}

export function guidedSection(
  guid: string,
  data: Uint8Array,
  attributes = 0x01,
  extra: Uint8Array = new Uint8Array(0),
): Uint8Array {
  // EFI_GUID_DEFINED_SECTION: common header (4) + GUID (16) + DataOffset (2) + Attributes (2) [+ extra].
  const dataOffset = 4 + 20 + extra.length;
  return section(0x02, concat(extra, data), concat(guidToBytes(guid), le16(dataOffset), le16(attributes)));
}

export interface FileOptions {
  readonly attributes?: number;
  /** FFSv3 large file (EFI_FFS_FILE_HEADER2). */
  readonly large?: boolean;
  /** Erase polarity of the volume (state bits are inverted when 1). @default 1 */
  readonly erasePolarity?: 0 | 1;
}

export function ffsFile(guid: string, type: number, body: Uint8Array, options: FileOptions = {}): Uint8Array {
  const large = options.large ?? false;
  const attributes = (options.attributes ?? 0) | (large ? 0x01 : 0);
  const headerSize = large ? 32 : 24;
  const size = headerSize + body.length;
  const header = new Uint8Array(headerSize);
  header.set(guidToBytes(guid), 0);
  header[0x12] = type;
  header[0x13] = attributes;
  header.set(large ? le24(0) : le24(size), 0x14);
  if (large) header.set(le64(size), 0x18);
  // Header checksum with File checksum and State taken as 0.
  let sum = 0;
  for (const b of header) sum += b;
  header[0x10] = (0x100 - (sum & 0xff)) & 0xff;
  if (attributes & 0x40) {
    let data = 0;
    for (const b of body) data += b;
    header[0x11] = (0x100 - (data & 0xff)) & 0xff;
  } else {
    header[0x11] = 0xaa;
  }
  const state = 0x07; // HEADER_CONSTRUCTION | HEADER_VALID | DATA_VALID
  header[0x17] = (options.erasePolarity ?? 1) ? ~state & 0xff : state;
  return concat(header, body);
}

export interface VolumeOptions {
  readonly fileSystemGuid?: string;
  /** Total volume length; files are followed by erased free space. */
  readonly lengthInBytes?: number;
  readonly fvName?: string;
  readonly erasePolarity?: 0 | 1;
  readonly revision?: number;
}

export const FFS2 = '8C8CE578-8A3D-4F1C-9935-896185C32DD3';
export const FFS3 = '5473C07A-3DCB-4DCA-BD6F-1E9689E7349A';

export function volume(files: readonly Uint8Array[], options: VolumeOptions = {}): Uint8Array {
  const polarity = options.erasePolarity ?? 1;
  const headerLength = 0x48; // fixed part + one block map entry + terminator
  const ext =
    options.fvName !== undefined ? concat(guidToBytes(options.fvName), le32(20)) : new Uint8Array(0);
  let filesStart = headerLength + ext.length;
  filesStart = (filesStart + 7) & ~7;
  const parts: Uint8Array[] = [];
  let at = filesStart;
  for (const f of files) {
    const pad = (8 - (at % 8)) % 8;
    if (pad) parts.push(new Uint8Array(pad).fill(polarity ? 0xff : 0));
    parts.push(f);
    at += pad + f.length;
  }
  const minimum = (at + 7) & ~7;
  const length = Math.max(options.lengthInBytes ?? minimum, minimum);
  const out = new Uint8Array(length).fill(polarity ? 0xff : 0x00);
  out.fill(0, 0, 16);
  out.set(guidToBytes(options.fileSystemGuid ?? FFS2), 0x10);
  out.set(le64(length), 0x20);
  out.set(u8(0x5f, 0x46, 0x56, 0x48), 0x28);
  out.set(le32(0x0004_feff & (polarity ? 0xffff_ffff : ~0x800)), 0x2c);
  out.set(le16(headerLength), 0x30);
  out.set(le16(0), 0x32);
  out.set(le16(ext.length ? headerLength : 0), 0x34);
  out[0x36] = 0;
  out[0x37] = options.revision ?? 2;
  out.set(le32(length / 8), 0x38);
  out.set(le32(8), 0x3c);
  out.set(le64(0), 0x40);
  if (ext.length) out.set(ext, headerLength);
  let p = filesStart;
  for (const part of parts) {
    out.set(part, p);
    p += part.length;
  }
  let sum = 0;
  for (let i = 0; i < headerLength; i += 2)
    sum = (sum + ((out[i] as number) | ((out[i + 1] as number) << 8))) & 0xffff;
  out.set(le16((0x1_0000 - sum) & 0xffff), 0x32);
  return out;
}

/**
 * An EFI_CAPSULE_HEADER (GUID, HeaderSize 28, Flags, CapsuleImageSize) around `body`; the flags
 * default to PERSIST_ACROSS_RESET | POPULATE_SYSTEM_TABLE (0x50000).
 */
export function uefiCapsule(body: Uint8Array, flags = 0x5_0000): Uint8Array {
  return concat(guidToBytes(EFI_CAPSULE_GUID), le32(28), le32(flags), le32(28 + body.length), body);
}
