// The IGD volume (GOP driver and VBT, outside the compressed DXE volume) made again in
// TypeScript, over another build's images of the same compiled inputs: the variant path without a
// container (build.ts, VariantTemplates). What GenSec, GenFfs and GenFv write for the volume's
// two files (build-script.ts igdVolumeCommands runs them in the workspace):
// - a PE32 section (header 4: 24-bit size, type 0x10) holding the GOP driver as given, then the
//   UI and version sections of the clean build, each section at a 4-byte boundary of the file,
//   the gaps zero (GenFfs fills its buffer with zeros);
// - a RAW section (type 0x19) holding the VBT as given;
// - each in an FFS file with a 24-byte header: GenFfs sums the header with State and both
//   checksums zero (IntegrityCheck.Checksum.Header makes it 0), sets the file checksum to 0xAA
//   (no FFS_ATTRIB_CHECKSUM) and the state bits, which GenFv inverts in a volume of erase
//   polarity 1;
// - files at 8-byte boundaries of the volume, gaps and free space the erase byte (GenFv fills
//   the volume with it before placing files).
// The volume header, its name file and the gap before the GOP's file are the template's own, as
// are the GOP file's UI and version sections and both file headers but their sizes and checksums:
// none of them depends on the GOP or the VBT. A template is used only when it proves this on its
// own bytes (spliceIgdVolume): its sections hold exactly the GOP and VBT it was built from, and
// assembling those gives back its volume byte for byte. Parsers here take bytes and do no I/O.
import { readGuid } from '../core/guid.js';
import {
  EFI_FV_FILETYPE_FFS_PAD as FILE_PAD,
  EFI_FV_FILETYPE_FREEFORM as FILE_FREEFORM,
  FFS_ATTRIB_CHECKSUM,
  FFS_ATTRIB_LARGE_FILE,
  FFS_FILE_HEADER_SIZE,
  FFS_FIXED_CHECKSUM,
} from '../formats/ffs-file.js';
import { EFI_FVB2_ERASE_POLARITY as FVB2_ERASE_POLARITY } from '../formats/firmware-volume.js';
import { u16, u32 } from '../formats/le-bytes.js';
import {
  EFI_SECTION_PE32 as SECTION_PE32,
  EFI_SECTION_RAW as SECTION_RAW,
  EFI_SECTION_USER_INTERFACE as SECTION_UI,
  EFI_SECTION_VERSION as SECTION_VERSION,
} from '../formats/section.js';
import { GOP_FILE_GUID, igdVolumeSizes, VBT_FILE_GUID } from './layout.js';

const FFS_HEADER = FFS_FILE_HEADER_SIZE;
const FFS_MAX_SIZE = 0x100_0000;
/** EFI_FV_FILETYPE_DRIVER (the formats module names only the types it walks into). */
const FILE_DRIVER = 0x07;

/** Where the parts of an IGD volume are, and the bytes kept from it. */
export interface IgdVolumeLayout {
  /** Offset of the GOP's FFS file: everything before it is kept as is. */
  readonly gopFileOffset: number;
  readonly gopHeader: Uint8Array;
  /** The GOP file's UI and version sections (from the 4-byte boundary after the PE32 section). */
  readonly gopTail: Uint8Array;
  readonly vbtHeader: Uint8Array;
  /** The PE32 section's body and the RAW section's body. */
  readonly gop: Uint8Array;
  readonly vbt: Uint8Array;
  readonly eraseByte: number;
}

export type IgdVolumeResult<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

const fail = (reason: string): { ok: false; reason: string } => ({ ok: false, reason });
const align = (n: number, to: number): number => Math.ceil(n / to) * to;
const u24 = (b: Uint8Array, at: number): number => u16(b, at) | ((b[at + 2] as number) << 16);

/** A 24-byte FFS header at `at` whose size is `size`: its fields, or why it is not one. */
function ffsFile(
  volume: Uint8Array,
  at: number,
  guid: string,
  type: number,
): IgdVolumeResult<{ header: Uint8Array; size: number }> {
  if (at + FFS_HEADER > volume.length) return fail(`no room for the file ${guid} at 0x${at.toString(16)}`);
  const found = readGuid(volume, at);
  if (found !== guid) return fail(`expected the file ${guid} at 0x${at.toString(16)}, found ${found}`);
  const attributes = volume[at + 19] as number;
  if (volume[at + 18] !== type)
    return fail(`file ${guid} has type 0x${(volume[at + 18] as number).toString(16)}`);
  if (
    (attributes & (FFS_ATTRIB_LARGE_FILE | FFS_ATTRIB_CHECKSUM)) !== 0 ||
    volume[at + 17] !== FFS_FIXED_CHECKSUM
  ) {
    return fail(`file ${guid} has attributes 0x${attributes.toString(16)} (a large file or a data checksum)`);
  }
  const size = u24(volume, at + 20);
  if (size < FFS_HEADER || at + size > volume.length)
    return fail(`file ${guid} has size 0x${size.toString(16)}`);
  const header = volume.slice(at, at + FFS_HEADER);
  if (headerChecksum(header) !== header[16]) return fail(`file ${guid} has a bad header checksum`);
  return { ok: true, value: { header, size } };
}

/** The header checksum GenFfs writes: the header sums to zero with State and the file checksum zero. */
function headerChecksum(header: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < FFS_HEADER; i += 1) {
    if (i !== 16 && i !== 17 && i !== 23) sum += header[i] as number;
  }
  return (0x100 - (sum & 0xff)) & 0xff;
}

/** A section header at `at`: its type and its size (the 24-bit form only). */
function section(bytes: Uint8Array, at: number): { type: number; size: number } {
  return { type: bytes[at + 3] as number, size: u24(bytes, at) };
}

/** Reads an IGD volume as GenFv made it: header, name file, the GOP's file, the VBT's file, free space. */
export function parseIgdVolume(volume: Uint8Array): IgdVolumeResult<IgdVolumeLayout> {
  if (volume.length < 0x48 || u32(volume, 0x28) !== 0x4856465f) return fail('no _FVH volume header');
  if (u32(volume, 0x20) !== volume.length || u32(volume, 0x24) !== 0) {
    return fail(
      `the volume header gives FvLength 0x${u32(volume, 0x20).toString(16)}, not the region's 0x${volume.length.toString(16)}`,
    );
  }
  const eraseByte = (u32(volume, 0x2c) & FVB2_ERASE_POLARITY) !== 0 ? 0xff : 0x00;
  const headerLength = u16(volume, 0x30);
  const padAt = align(headerLength, 8);
  if (padAt + FFS_HEADER > volume.length || volume[padAt + 18] !== FILE_PAD) {
    return fail('the volume does not start with the pad file that holds its name');
  }
  const gopFileOffset = align(padAt + u24(volume, padAt + 20), 8);
  const gopFile = ffsFile(volume, gopFileOffset, GOP_FILE_GUID, FILE_DRIVER);
  if (!gopFile.ok) return gopFile;
  const pe32 = section(volume, gopFileOffset + FFS_HEADER);
  const tailAt = align(gopFileOffset + FFS_HEADER + pe32.size, 4);
  const gopEnd = gopFileOffset + gopFile.value.size;
  if (pe32.type !== SECTION_PE32 || pe32.size < 4 || tailAt > gopEnd)
    return fail('the GOP file does not start with its PE32 section');
  for (let i = gopFileOffset + FFS_HEADER + pe32.size; i < tailAt; i += 1) {
    if (volume[i] !== 0) return fail('the gap after the PE32 section is not zero');
  }
  const ui = section(volume, tailAt);
  const versionAt = align(tailAt + ui.size, 4);
  const version = section(volume, versionAt);
  if (ui.type !== SECTION_UI || version.type !== SECTION_VERSION || versionAt + version.size !== gopEnd) {
    return fail('the GOP file is not PE32, UI and version sections');
  }
  const vbtAt = align(gopEnd, 8);
  const vbtFile = ffsFile(volume, vbtAt, VBT_FILE_GUID, FILE_FREEFORM);
  if (!vbtFile.ok) return vbtFile;
  const raw = section(volume, vbtAt + FFS_HEADER);
  const vbtEnd = vbtAt + vbtFile.value.size;
  if (raw.type !== SECTION_RAW || FFS_HEADER + raw.size !== vbtFile.value.size)
    return fail('the VBT file is not one RAW section');
  for (let i = vbtEnd; i < volume.length; i += 1) {
    if (volume[i] !== eraseByte)
      return fail(`the volume holds more after the VBT file (at 0x${i.toString(16)})`);
  }
  return {
    ok: true,
    value: {
      gopFileOffset,
      gopHeader: gopFile.value.header,
      gopTail: volume.slice(tailAt, gopEnd),
      vbtHeader: vbtFile.value.header,
      gop: volume.subarray(gopFileOffset + FFS_HEADER + 4, gopFileOffset + FFS_HEADER + pe32.size),
      vbt: volume.subarray(vbtAt + FFS_HEADER + 4, vbtEnd),
      eraseByte,
    },
  };
}

/** An FFS header from a template's, with another size and the checksum GenFfs gives it. */
function resized(template: Uint8Array, size: number): Uint8Array {
  const header = template.slice();
  header[20] = size & 0xff;
  header[21] = (size >> 8) & 0xff;
  header[22] = (size >> 16) & 0xff;
  header[16] = headerChecksum(header);
  return header;
}

function sectionHeader(size: number, type: number): Uint8Array {
  return Uint8Array.of(size & 0xff, (size >> 8) & 0xff, (size >> 16) & 0xff, type);
}

/** The volume `template` (parsed as `layout`) with this GOP driver and VBT instead of its own. */
export function assembleIgdVolume(
  template: Uint8Array,
  layout: IgdVolumeLayout,
  gop: Uint8Array,
  vbt: Uint8Array,
): IgdVolumeResult<Uint8Array> {
  const gopSize = FFS_HEADER + align(4 + gop.length, 4) + layout.gopTail.length;
  const vbtSize = FFS_HEADER + 4 + vbt.length;
  if (gopSize >= FFS_MAX_SIZE || vbtSize >= FFS_MAX_SIZE)
    return fail('the GOP or the VBT needs a large FFS file');
  const vbtAt = align(layout.gopFileOffset + gopSize, 8);
  if (vbtAt + vbtSize > template.length) {
    return fail(
      `the GOP driver and the VBT need 0x${(vbtAt + vbtSize).toString(16)} bytes of the IGD volume's 0x${template.length.toString(16)}`,
    );
  }
  const volume = new Uint8Array(template.length).fill(layout.eraseByte);
  volume.set(template.subarray(0, layout.gopFileOffset));
  let at = layout.gopFileOffset;
  volume.set(resized(layout.gopHeader, gopSize), at);
  volume.set(sectionHeader(4 + gop.length, SECTION_PE32), at + FFS_HEADER);
  volume.set(gop, at + FFS_HEADER + 4);
  const tailAt = at + FFS_HEADER + align(4 + gop.length, 4);
  volume.fill(0, at + FFS_HEADER + 4 + gop.length, tailAt);
  volume.set(layout.gopTail, tailAt);
  at = vbtAt;
  volume.set(resized(layout.vbtHeader, vbtSize), at);
  volume.set(sectionHeader(4 + vbt.length, SECTION_RAW), at + FFS_HEADER);
  volume.set(vbt, at + FFS_HEADER + 4);
  return { ok: true, value: volume };
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

/** A build's images and the GOP and VBT it packaged: what a variant is made from. */
export interface IgdVolumeTemplate {
  readonly code: Uint8Array;
  /** OVMF.fd: VARS, then the code. */
  readonly combined: Uint8Array;
  readonly gop: Uint8Array;
  readonly vbt: Uint8Array;
}

/**
 * OVMF_CODE.fd and OVMF.fd of `template` with the IGD volume made again for `gop` and `vbt`; a
 * reason instead when the template does not prove that its volume is what this module would
 * write for its own GOP and VBT (another GenFv, another layout), or the new files do not fit.
 */
export function spliceIgdVolume(
  template: IgdVolumeTemplate,
  fdSize: '2MB' | '4MB',
  gop: Uint8Array,
  vbt: Uint8Array,
): IgdVolumeResult<{ readonly code: Uint8Array; readonly combined: Uint8Array }> {
  const sizes = igdVolumeSizes(fdSize);
  if (
    template.code.length < sizes.igdVolume ||
    template.combined.length !== sizes.varsSize + template.code.length
  ) {
    return fail('the template images do not have this flash size');
  }
  const volume = template.code.subarray(0, sizes.igdVolume);
  if (!equal(volume, template.combined.subarray(sizes.varsSize, sizes.varsSize + sizes.igdVolume))) {
    return fail('the IGD volume of OVMF.fd differs from that of OVMF_CODE.fd');
  }
  const layout = parseIgdVolume(volume);
  if (!layout.ok) return layout;
  if (!equal(layout.value.gop, template.gop) || !equal(layout.value.vbt, template.vbt)) {
    return fail('the IGD volume does not hold the GOP and VBT the template was built from, as given');
  }
  const again = assembleIgdVolume(volume, layout.value, template.gop, template.vbt);
  if (!again.ok) return again;
  if (!equal(again.value, volume))
    return fail("assembling the template's own GOP and VBT does not give its volume");
  const made = assembleIgdVolume(volume, layout.value, gop, vbt);
  if (!made.ok) return made;
  const code = template.code.slice();
  code.set(made.value, 0);
  const combined = template.combined.slice();
  combined.set(made.value, sizes.varsSize);
  return { ok: true, value: { code, combined } };
}
