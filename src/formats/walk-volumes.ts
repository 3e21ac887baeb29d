// Walks firmware volumes and their FFS files (PI spec vol. 3, 2.1 and 2.2.3): finds volumes
// in an area by their _FVH signature, lists each volume's files, free space and padding the
// way UEFITool does, and hands each file's body to the section walker.
import {
  EFI_FV_FILETYPE_FFS_PAD,
  EFI_FV_FILETYPE_RAW,
  FFS_FILE_HEADER_SIZE,
  fileTypeHasSections,
  isErasedHeader,
  parseFfsFileHeader,
  type FfsFileHeader,
} from './ffs-file.js';
import type { FirmwareNode, VolumeNode } from './firmware-node.js';
import {
  nextVolumeCandidate,
  parseFirmwareVolumeHeader,
  type FirmwareVolumeHeader,
} from './firmware-volume.js';
import { firstNotErased } from './erased.js';
import { identifyNvramStores } from './nvram.js';
import { alignDown, alignUp, describeOffset, type AreaWalker, type WalkContext } from './walk-context.js';
import { walkSections } from './walk-sections.js';

function isErased(bytes: Uint8Array, from: number, to: number, value: number): boolean {
  return firstNotErased(bytes, from, to, value) === to;
}

/** A file's UI name: the first UI section, through encapsulation sections but not into volumes. */
function findUiName(node: FirmwareNode): string | null {
  for (const child of node.children) {
    if (child.kind === 'section') {
      if (child.uiName !== null) return child.uiName;
      const nested = findUiName(child);
      if (nested !== null) return nested;
    }
  }
  return null;
}

/** Bytes [from, to) of `bytes` between structures: padding, empty when all 0xFF. */
export function addPadding(
  ctx: WalkContext,
  parent: FirmwareNode,
  bytes: Uint8Array,
  from: number,
  to: number,
  base: number | null,
): void {
  const empty = isErased(bytes, from, to, 0xff);
  ctx.add(
    'padding',
    {
      parent,
      type: 'Padding',
      subtype: empty ? 'Empty (0xFF)' : 'Non-empty',
      name: 'Padding',
      offset: base === null ? null : base + from,
      bytes: bytes.subarray(from, to),
    },
    { empty },
  );
}

/**
 * Finds volumes in an area by their `_FVH` signature and walks each; gaps become padding
 * when `withPadding`. Returns the number of volumes found.
 */
export const walkArea: AreaWalker = (ctx, parent, bytes, base, depth, withPadding) => {
  const gap = withPadding
    ? (from: number, to: number): void => {
        if (to > from) addPadding(ctx, parent, bytes, from, to, base);
      }
    : undefined;
  return scanVolumes(ctx, bytes, base, depth, () => parent, gap);
};

/**
 * Finds and walks the volumes of an area, each under the node `holder` picks for its extent;
 * `gap` is told of the bytes between them. Returns the number of volumes found.
 */
export function scanVolumes(
  ctx: WalkContext,
  bytes: Uint8Array,
  base: number | null,
  depth: number,
  holder: (start: number, end: number) => FirmwareNode,
  gap?: (from: number, to: number) => void,
): number {
  ctx.checkDepth(depth, 'area', base);
  let cursor = 0;
  let found = 0;
  // Search from the end of the last volume: the inside of a parsed volume is not rescanned.
  for (
    let start = nextVolumeCandidate(bytes, 0);
    start >= 0;
    start = nextVolumeCandidate(bytes, Math.max(cursor, start + 1))
  ) {
    let header: FirmwareVolumeHeader;
    try {
      header = parseFirmwareVolumeHeader(bytes, start, base === null ? 'decompressed data' : 'image');
    } catch (error) {
      // A truncated or inconsistent header found by scanning is reported on the area.
      const owner = holder(start, start);
      ctx.fail(owner, error, base === null ? null : base + start);
      continue;
    }
    found++;
    ctx.checkCount(
      found,
      'maximumVolumesPerArea',
      'E_FW_TOO_MANY_VOLUMES',
      `area at ${describeOffset(base)}`,
      'volumes',
    );
    gap?.(cursor, start);
    const end = start + header.lengthInBytes;
    walkVolume(ctx, holder(start, end), bytes, start, header, base, depth + 1);
    cursor = end;
  }
  gap?.(cursor, bytes.length);
  return found;
}

function walkVolume(
  ctx: WalkContext,
  parent: FirmwareNode,
  area: Uint8Array,
  start: number,
  volume: FirmwareVolumeHeader,
  base: number | null,
  depth: number,
): void {
  const abs = base === null ? null : base + start;
  ctx.checkDepth(depth, 'volume', abs);
  ctx.volumes++;
  const bytes = area.subarray(start, start + volume.lengthInBytes);
  const node = ctx.add(
    'volume',
    {
      parent,
      type: 'Volume',
      subtype: volume.subtypeName,
      name: volume.displayName,
      offset: abs,
      sizeInBytes: volume.lengthInBytes,
      bytes,
      body: bytes.subarray(volume.filesOffset),
    },
    {
      volume,
      nvram: volume.subtypeName === 'NVRAM' ? identifyNvramStores(bytes.subarray(volume.headerLength)) : null,
    },
  );
  if (volume.ffsVersion === null) return;
  try {
    walkFiles(ctx, node, bytes, volume, abs, depth);
  } catch (error) {
    ctx.fail(node, error, abs);
  }
}

/** Free space at the end of a volume or before the next file (all bytes the erase polarity). */
function addFreeSpace(ctx: WalkContext, parent: VolumeNode, view: Uint8Array, offset: number | null): void {
  ctx.add(
    'free-space',
    { parent, type: 'Free space', subtype: '', name: 'Volume free space', offset, bytes: view },
    {},
  );
}

function walkFiles(
  ctx: WalkContext,
  node: VolumeNode,
  bytes: Uint8Array,
  volume: FirmwareVolumeHeader,
  abs: number | null,
  depth: number,
): void {
  const erased = volume.erasePolarity ? 0xff : 0x00;
  const where = `volume ${volume.displayName}`;
  let at = volume.filesOffset;
  let count = 0;
  const end = bytes.length;
  while (at + FFS_FILE_HEADER_SIZE <= end) {
    if (isErasedHeader(bytes, at, volume.erasePolarity)) {
      // Free space runs to the end of the volume, or to the next non-erased byte, where
      // (UEFITool does the same) parsing resumes at the 8-byte boundary below it.
      const next = firstNotErased(bytes, at, end, erased);
      const resume = next >= end ? end : Math.max(alignDown(next, 8), at + 8);
      addFreeSpace(ctx, node, bytes.subarray(at, resume), abs === null ? null : abs + at);
      at = resume;
      continue;
    }
    count++;
    ctx.checkCount(count, 'maximumFilesPerVolume', 'E_FW_TOO_MANY_FILES', where, 'files');
    const header = parseFfsFileHeader(bytes, at, end, {
      ffsVersion: volume.ffsVersion as 2 | 3,
      erasePolarity: volume.erasePolarity,
      revision: volume.revision,
      where: `${where} at ${describeOffset(abs)}`,
      verifyDataChecksum: ctx.verifyChecksums,
    });
    walkFile(ctx, node, bytes, at, header, abs, depth + 1);
    at = alignUp(at + header.sizeInBytes, 8);
  }
  if (at < end) {
    // Fewer than 24 bytes left: free space, or a tail UEFITool shows as non-empty padding.
    const view = bytes.subarray(at, end);
    const offset = abs === null ? null : abs + at;
    if (isErased(bytes, at, end, erased)) {
      addFreeSpace(ctx, node, view, offset);
    } else {
      ctx.add(
        'padding',
        { parent: node, type: 'Padding', subtype: 'Non-empty', name: 'Padding', offset, bytes: view },
        { empty: false },
      );
    }
  }
}

function walkFile(
  ctx: WalkContext,
  parent: VolumeNode,
  volumeBytes: Uint8Array,
  at: number,
  header: FfsFileHeader,
  volumeAbs: number | null,
  depth: number,
): void {
  const abs = volumeAbs === null ? null : volumeAbs + at;
  ctx.checkDepth(depth, 'file', abs);
  ctx.files++;
  const bytes = volumeBytes.subarray(at, at + header.sizeInBytes);
  const body = bytes.subarray(header.headerSize, header.sizeInBytes - header.tailSize);
  const pad = header.type === EFI_FV_FILETYPE_FFS_PAD;
  const node = ctx.add(
    'file',
    {
      parent,
      type: 'File',
      subtype: header.typeName,
      name: pad ? 'Padding file' : header.guid,
      offset: abs,
      sizeInBytes: header.sizeInBytes,
      bytes,
      body,
    },
    { file: header, guid: header.guid, uiName: null },
  );
  const bodyAbs = abs === null ? null : abs + header.headerSize;
  try {
    if (fileTypeHasSections(header.type)) {
      walkSections(ctx, node, body, bodyAbs, `file ${header.guid}`, depth + 1);
      node.uiName = findUiName(node);
      node.text = node.uiName;
    } else if (header.type === EFI_FV_FILETYPE_RAW) {
      // Raw files may carry whole volumes (UEFITool parses them as raw areas).
      walkArea(ctx, node, body, bodyAbs, depth + 1, false);
    }
  } catch (error) {
    ctx.fail(node, error, abs);
  }
}
