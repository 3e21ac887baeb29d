// Walks an FFS file's section stream (PI spec vol. 3, 2.2.4): leaf sections (UI, version,
// PE32/TE) and encapsulation sections (compression, GUID-defined), whose decoded output is
// walked again as a section stream. Volume-image and raw sections go back to the area walker.
import { FormatError } from '../core/errors.js';
import { hex } from '../core/hex.js';
// The decoders' own files, not the compression/index.ts barrel (it also loads the compressor).
import { decompressBrotli } from './compression/brotli.js';
import { crc32 } from './compression/crc32.js';
import {
  decompressStandard,
  decompressTiano,
  type EfiVariant as StandardCompressionVariant,
} from './compression/efi-decompress.js';
import { decompressLzma, decompressLzmaF86 } from './compression/lzma.js';
import type { FileNode, SectionNode } from './firmware-node.js';
import { parsePeImage } from './pe-coff.js';
import {
  BROTLI_GUID,
  CRC32_GUID,
  EFI_GUIDED_SECTION_PROCESSING_REQUIRED,
  EFI_NOT_COMPRESSED,
  EFI_SECTION_COMPRESSION,
  EFI_SECTION_DISPOSABLE,
  EFI_SECTION_FIRMWARE_VOLUME_IMAGE,
  EFI_SECTION_GUID_DEFINED,
  EFI_SECTION_PE32,
  EFI_SECTION_RAW,
  EFI_SECTION_TE,
  EFI_SECTION_USER_INTERFACE,
  EFI_SECTION_VERSION,
  EFI_STANDARD_COMPRESSION,
  LZMA_F86_GUID,
  LZMA_GUID,
  parseSectionHeader,
  readUtf16z,
  TIANO_GUID,
  type SectionHeader,
} from './section.js';
import { alignUp, describeOffset, type DecompressBudget, type WalkContext } from './walk-context.js';

/** Walks the section stream `bytes` (a file body or a decoded section) into `parent`. */
export function walkSections(
  ctx: WalkContext,
  parent: FileNode | SectionNode,
  bytes: Uint8Array,
  base: number | null,
  where: string,
  depth: number,
): void {
  ctx.checkDepth(depth, 'section', base);
  let at = 0;
  let count = 0;
  while (at < bytes.length) {
    // Section headers are 4-byte aligned from the start of the section stream (PI vol. 3, 2.2.4).
    at = alignUp(at, 4);
    if (at >= bytes.length) break;
    count++;
    ctx.checkCount(count, 'maximumSectionsPerFile', 'E_FW_TOO_MANY_SECTIONS', where, 'sections');
    const header = parseSectionHeader(bytes, at, bytes.length, where);
    walkSection(ctx, parent, bytes, at, header, base, where, depth);
    at += header.sizeInBytes;
  }
}

function walkSection(
  ctx: WalkContext,
  parent: FileNode | SectionNode,
  stream: Uint8Array,
  at: number,
  header: SectionHeader,
  base: number | null,
  where: string,
  depth: number,
): void {
  ctx.sections++;
  const abs = base === null ? null : base + at;
  const bytes = stream.subarray(at, at + header.sizeInBytes);
  const data = bytes.subarray(header.dataOffset);
  const node = ctx.add(
    'section',
    {
      parent,
      type: 'Section',
      subtype: header.typeName,
      name: header.guided !== undefined ? header.guided.guid : `${header.typeName} section`,
      offset: abs,
      sizeInBytes: header.sizeInBytes,
      bytes,
      body: data,
    },
    { section: header, compression: null, uiName: null, version: null, crc32: null, pe: null },
  );
  const dataAbs = abs === null ? null : abs + header.dataOffset;
  try {
    switch (header.type) {
      case EFI_SECTION_COMPRESSION:
        walkCompressed(ctx, node, data, dataAbs, where, depth);
        break;
      case EFI_SECTION_GUID_DEFINED:
        walkGuided(ctx, node, bytes, data, dataAbs, where, depth);
        break;
      case EFI_SECTION_DISPOSABLE:
        break;
      case EFI_SECTION_FIRMWARE_VOLUME_IMAGE:
        if (ctx.walkArea(ctx, node, data, dataAbs, depth + 1, false) === 0) {
          throw new FormatError(
            'E_SECTION_NO_VOLUME',
            `volume image section at ${describeOffset(abs)} holds no firmware volume (${hex(data.length)} bytes) in ${where}`,
            { sizeInBytes: data.length },
          );
        }
        break;
      case EFI_SECTION_RAW:
        // Raw sections may carry volumes (UEFITool parses them as raw areas); the scan is one indexOf.
        ctx.walkArea(ctx, node, data, dataAbs, depth + 1, false);
        break;
      case EFI_SECTION_USER_INTERFACE:
        node.uiName = readUtf16z(data, 0, data.length);
        node.text = node.uiName;
        break;
      case EFI_SECTION_VERSION:
        node.version = { buildNumber: header.buildNumber ?? 0, text: readUtf16z(data, 0, data.length) };
        break;
      case EFI_SECTION_PE32:
      case EFI_SECTION_TE:
        if (ctx.summarizePe) {
          try {
            node.pe = parsePeImage(data);
          } catch {
            // Not every PE32 section holds a well-formed image; the summary is informative only.
            node.pe = null;
          }
        }
        break;
      default:
        break;
    }
  } catch (error) {
    ctx.fail(node, error, abs);
  }
}

function walkCompressed(
  ctx: WalkContext,
  node: SectionNode,
  data: Uint8Array,
  dataAbs: number | null,
  where: string,
  depth: number,
): void {
  const compression = node.section.compression as NonNullable<SectionHeader['compression']>;
  if (compression.type === EFI_NOT_COMPRESSED) {
    node.compression = { algorithm: 'None', decoded: true, compressedSize: data.length };
    walkSections(ctx, node, data, dataAbs, where, depth + 1);
    return;
  }
  if (compression.type !== EFI_STANDARD_COMPRESSION) {
    node.compression = { algorithm: 'Unknown', decoded: false, compressedSize: data.length };
    throw new FormatError(
      'E_SECTION_BAD_COMPRESSION',
      `compression section at ${describeOffset(dataAbs)} has compression type ${compression.type}, expected 0 or 1 in ${where}`,
      { compressionType: compression.type },
    );
  }
  node.compression = { algorithm: 'EFI 1.1', decoded: false, compressedSize: data.length };
  let variant: StandardCompressionVariant = 'efi';
  node.body = ctx.runDecompressor(
    'EFI 1.1',
    (d, l) => {
      const result = decompressStandard(d, l);
      variant = result.variant;
      return result.output;
    },
    data,
  );
  node.compression = {
    algorithm: variant === 'efi' ? 'EFI 1.1' : 'Tiano',
    decoded: true,
    compressedSize: data.length,
  };
  walkSections(ctx, node, node.body, null, where, depth + 1);
}

function walkGuided(
  ctx: WalkContext,
  node: SectionNode,
  bytes: Uint8Array,
  data: Uint8Array,
  dataAbs: number | null,
  where: string,
  depth: number,
): void {
  const guided = node.section.guided as NonNullable<SectionHeader['guided']>;
  const decode = (algorithm: string, fn: (d: Uint8Array, l: DecompressBudget) => Uint8Array): void => {
    node.compression = { algorithm, decoded: false, compressedSize: data.length };
    node.body = ctx.runDecompressor(algorithm, fn, data);
    node.compression = { algorithm, decoded: true, compressedSize: data.length };
    walkSections(ctx, node, node.body, null, where, depth + 1);
  };
  switch (guided.guid) {
    case LZMA_GUID:
      decode('LZMA', decompressLzma);
      return;
    case LZMA_F86_GUID:
      decode('LZMAF86', decompressLzmaF86);
      return;
    case BROTLI_GUID:
      // zlib gathers Brotli output in chunks and then concatenates them: twice the output
      // at the peak. Half the budget keeps that peak inside it.
      decode('Brotli', (d, l) => decompressBrotli(d, { maxOutputBytes: Math.floor(l.maxOutputBytes / 2) }));
      return;
    case TIANO_GUID:
      decode('Tiano', decompressTiano);
      return;
    case CRC32_GUID: {
      // EFI_CRC32_GUIDED_SECTION_HEADER: the common GUID-defined header then UINT32 CRC32.
      const crcAt = node.section.headerSize;
      if (node.section.dataOffset < crcAt + 4) {
        throw new FormatError(
          'E_SECTION_BAD_DATA_OFFSET',
          `CRC32 section at ${describeOffset(dataAbs === null ? null : dataAbs - node.section.dataOffset)} has DataOffset ${hex(node.section.dataOffset)}, too small for the CRC field in ${where}`,
          { dataOffset: node.section.dataOffset },
        );
      }
      const stored =
        ((bytes[crcAt] as number) |
          ((bytes[crcAt + 1] as number) << 8) |
          ((bytes[crcAt + 2] as number) << 16) |
          ((bytes[crcAt + 3] as number) << 24)) >>>
        0;
      const computed = crc32(data) >>> 0;
      node.crc32 = { stored, computed, valid: stored === computed };
      node.compression = { algorithm: 'CRC32', decoded: true, compressedSize: data.length };
      walkSections(ctx, node, data, dataAbs, where, depth + 1);
      return;
    }
    default:
      if ((guided.attributes & EFI_GUIDED_SECTION_PROCESSING_REQUIRED) === 0) {
        // The data is plain sections that a reader may use without the GUID's decoder.
        node.compression = { algorithm: 'None', decoded: true, compressedSize: data.length };
        walkSections(ctx, node, data, dataAbs, where, depth + 1);
      } else {
        node.compression = { algorithm: 'Unknown', decoded: false, compressedSize: data.length };
      }
  }
}
