// Finds the Intel GOP driver and the VBT(s) in a parsed firmware tree.
//
// GOP: candidates are PE32 sections of files with a known GOP file GUID, a GOP-like UI name,
// a known non-GOP GUID (so that it is reported as such), and every PE32 body that contains
// the UTF-16 driver name. The bytes decide (classifyGopDriver): names are never trusted.
// VBT: raw and freeform-subtype-GUID section bodies (and raw file bodies) that start with
// "$VBT", validated with parseVbt, or that are a legacy video option ROM with a VBT inside
// (legacy-rom-vbt.ts); known VBT GUIDs and UI names only order and annotate them. "$VBT" text
// anywhere else (a string in a PE driver) is never looked at.
import { FormatError, NotFoundError } from '../core/errors.js';
import { hex } from '../core/hex.js';
import type { ErrorCode } from '../core/error-codes.js';
import {
  nodePath,
  type FileNode,
  type FirmwareNode,
  type FirmwareTree,
  type SectionNode,
} from './firmware-node.js';
import { listFiles, walkNodes } from './firmware-tree.js';
import { EFI_FV_FILETYPE_FIRMWARE_VOLUME_IMAGE, EFI_FV_FILETYPE_RAW } from './ffs-file.js';
import { classifyGopDriver, INTEL_GOP_DRIVER_NAME, type GopDriverInfo } from './gop.js';
import {
  GOP_UI_NAMES,
  KNOWN_GOP_FILE_GUIDS,
  KNOWN_VBT_FILE_GUIDS,
  VBT_UI_NAMES,
  knownGopFile,
  knownNonGopFile,
  knownVbtFile,
} from './known-guids.js';
import { EFI_SECTION_FREEFORM_SUBTYPE_GUID, EFI_SECTION_PE32, EFI_SECTION_RAW } from './section.js';
import { vbtInLegacyRom } from './legacy-rom-vbt.js';
import { looksLikeVbt, parseVbt, type VbtInfo } from './vbt.js';

/** Why a file was looked at as a GOP. */
export type GopCandidateReason = 'known-guid' | 'ui-name' | 'gop-named' | 'driver-name-string';

export interface LocatedGop {
  readonly guid: string;
  readonly uiName: string | null;
  /** The PE32 section body (what UEFITool's "extract body" writes). */
  readonly body: Uint8Array;
  readonly info: GopDriverInfo;
  /** Tree path, e.g. "48DB5E17-.../9E21FD93-.../EE4E5898-.../Volume image section/7CB8BDC9-.../IntelGopDriver/PE32 image section". */
  readonly path: string;
  /** Absolute offset of the PE32 section body, or null inside decompressed data. */
  readonly offset: number | null;
  readonly foundBy: readonly GopCandidateReason[];
  readonly file: FileNode;
  readonly section: SectionNode;
}

export interface RejectedGop {
  readonly guid: string;
  readonly uiName: string | null;
  readonly path: string;
  readonly sizeInBytes: number;
  readonly foundBy: readonly GopCandidateReason[];
  readonly reason: string;
}

export type VbtFoundBy = 'known-guid' | 'ui-name' | 'signature';

export interface LocatedVbt {
  readonly guid: string;
  readonly uiName: string | null;
  /**
   * The raw (or freeform) section body as stored, padding included (UEFITool "extract body");
   * for a VBT inside a legacy option ROM, exactly its vbt_size bytes.
   */
  readonly body: Uint8Array;
  readonly info: VbtInfo;
  /** 'option-rom': inside a legacy video option ROM held by a raw/freeform section or raw file. */
  readonly sectionType: 'raw' | 'freeform' | 'raw-file' | 'option-rom';
  readonly path: string;
  readonly offset: number | null;
  readonly foundBy: readonly VbtFoundBy[];
  readonly file: FileNode;
}

export interface RejectedVbt {
  readonly guid: string;
  readonly uiName: string | null;
  readonly path: string;
  readonly reason: string;
}

export interface SearchSummary {
  readonly volumes: number;
  readonly files: number;
  readonly pe32Sections: number;
  readonly rawBodiesScanned: number;
  readonly gopGuidsTried: readonly string[];
  readonly gopUiNamesTried: readonly string[];
  readonly vbtGuidsTried: readonly string[];
  readonly vbtUiNamesTried: readonly string[];
  /** Sections whose contents could not be decoded (unknown or failed compression). */
  readonly undecodedSections: number;
}

export interface LocateResult {
  /** The Intel GOP driver: the first real one in flash order. */
  readonly gop: LocatedGop | null;
  readonly otherGops: readonly LocatedGop[];
  /** Files that looked like a GOP (GUID, name) but are not one, with the reason. */
  readonly rejectedGops: readonly RejectedGop[];
  /**
   * The primary VBT: the first valid VBT (flash order) in a file with a known VBT GUID or VBT
   * UI name, else the first valid VBT found by signature. On the Gemini Lake IFWI that is
   * IntelGopVbt1, the table the platform uses unless a board-specific policy selects another.
   */
  readonly vbt: LocatedVbt | null;
  /** Every valid VBT, primary first, then flash order. */
  readonly vbts: readonly LocatedVbt[];
  readonly rejectedVbts: readonly RejectedVbt[];
  readonly searched: SearchSummary;
  /**
   * Every place of the tree that failed to parse or decompress, or whose checksum does not
   * match, in walk order. A GOP or VBT inside a damaged decompressed output (or a damaged
   * file) is not reported as found: its bytes cannot be trusted.
   */
  readonly damage: readonly Damage[];
}

/** A damaged place of the image: a recorded parse failure or a checksum that does not match. */
export interface Damage {
  readonly code: ErrorCode;
  readonly message: string;
  /** Absolute offset of the damaged node, or of the nearest ancestor stored in the input. */
  readonly offset: number | null;
  /** True when `offset` is the damaged node's own; false when it is the enclosing compressed section's. */
  readonly exactOffset: boolean;
  readonly path: string;
  /** GUID of the nearest enclosing volume (its FileSystemGuid name or FvName), or null. */
  readonly volume: string | null;
  /** GUID of the nearest enclosing GUID-defined section (the compressed data), or null. */
  readonly section: string | null;
  readonly node: FirmwareNode;
}

const DRIVER_NAME_UTF16 = Buffer.from(INTEL_GOP_DRIVER_NAME, 'utf16le');
const GOP_NAME_PATTERN = /gop/i;

/** Sections of a file, through encapsulations but not into nested volumes (their files are visited on their own). */
function fileSections(file: FileNode): SectionNode[] {
  const out: SectionNode[] = [];
  const visit = (node: FirmwareNode): void => {
    for (const child of node.children) {
      if (child.kind === 'section') {
        out.push(child);
        visit(child);
      }
    }
  };
  visit(file);
  return out;
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function hasVolume(node: FirmwareNode): boolean {
  for (const n of walkNodes(node)) if (n.kind === 'volume') return true;
  return false;
}

function damageAt(node: FirmwareNode, code: ErrorCode, message: string): Damage {
  let offset: number | null = null;
  let volume: string | null = null;
  let section: string | null = null;
  for (let n: FirmwareNode | null = node; n !== null; n = n.parent) {
    if (offset === null && n.offset !== null) offset = n.offset;
    if (volume === null && n.kind === 'volume') volume = n.name;
    if (section === null && n.kind === 'section' && n.section.guided !== undefined)
      section = n.section.guided.guid;
  }
  return {
    code,
    message,
    offset,
    exactOffset: node.offset !== null,
    path: nodePath(node),
    volume,
    section,
    node,
  };
}

/** Recorded problems and failed checksums (volume header, file header and data, CRC32 sections). */
export function findDamage(tree: FirmwareTree): Damage[] {
  const damage: Damage[] = [];
  const emptyVolumeFiles: FileNode[] = [];
  for (const node of walkNodes(tree.root)) {
    for (const problem of node.problems) damage.push(damageAt(node, problem.code, problem.message));
    if (node.kind === 'volume' && !node.volume.checksum.valid) {
      damage.push(
        damageAt(
          node,
          'E_FV_BAD_CHECKSUM',
          `volume ${node.name} has a header checksum that does not sum to 0`,
        ),
      );
    } else if (node.kind === 'file') {
      if (node.file.type === EFI_FV_FILETYPE_FIRMWARE_VOLUME_IMAGE && !hasVolume(node)) {
        emptyVolumeFiles.push(node);
      }
      if (!node.file.headerChecksum.valid) {
        damage.push(
          damageAt(node, 'E_FFS_BAD_HEADER_CHECKSUM', `file ${node.guid} has a bad header checksum`),
        );
      }
      if (node.file.dataChecksum.valid === false) {
        damage.push(damageAt(node, 'E_FFS_BAD_DATA_CHECKSUM', `file ${node.guid} has a bad data checksum`));
      }
    } else if (
      node.kind === 'section' &&
      node.compression !== null &&
      !node.compression.decoded &&
      node.problems.length === 0
    ) {
      // A GUID-defined section whose GUID we cannot decode (a damaged GUID looks the same).
      damage.push(
        damageAt(
          node,
          'E_SECTION_UNDECODABLE',
          `GUID-defined section ${node.name} requires processing by a decoder this tool does not have; its ${node.compression.compressedSize} bytes could not be searched`,
        ),
      );
    } else if (node.kind === 'section' && node.crc32 !== null && !node.crc32.valid) {
      damage.push(
        damageAt(
          node,
          'E_SECTION_BAD_CRC32',
          `CRC32 section stores ${hex(node.crc32.stored)}, its data sums to ${hex(node.crc32.computed)}`,
        ),
      );
    }
  }
  // PI spec vol. 3, 2.1.4.1: this file type exists to carry a volume image section. Named only
  // when nothing inside the file says why (a section that failed names the cause itself).
  for (const file of emptyVolumeFiles) {
    if (damage.some((d) => isWithin(d.node, file))) continue;
    damage.push(
      damageAt(file, 'E_FFS_NO_VOLUME', `firmware volume image file ${file.guid} holds no firmware volume`),
    );
  }
  return damage;
}

/**
 * What a damage elsewhere can spoil: the whole output of the nearest decompression (one bad
 * byte in a compressed stream garbles everything decoded after it, and LZMA has no
 * checksum), else only the file itself (uncompressed files do not affect each other).
 */
function trustScope(file: FileNode): FirmwareNode {
  for (let n: FirmwareNode | null = file.parent; n !== null; n = n.parent) {
    if (
      n.kind === 'section' &&
      n.compression !== null &&
      n.compression.algorithm !== 'None' &&
      n.compression.algorithm !== 'CRC32'
    ) {
      return n;
    }
  }
  return file;
}

function isWithin(node: FirmwareNode, scope: FirmwareNode): boolean {
  for (let n: FirmwareNode | null = node; n !== null; n = n.parent) if (n === scope) return true;
  return false;
}

/** Searches the tree for the GOP driver and VBTs; never throws for missing items. */
export function locateGopAndVbt(tree: FirmwareTree): LocateResult {
  const files = listFiles(tree);
  let pe32Sections = 0;
  let rawBodiesScanned = 0;
  let undecodedSections = 0;
  const gops: LocatedGop[] = [];
  const rejectedGops: RejectedGop[] = [];
  const vbts: LocatedVbt[] = [];
  const rejectedVbts: RejectedVbt[] = [];
  const damage = findDamage(tree);

  for (const file of files) {
    const scope = trustScope(file);
    const spoiledBy = damage.find((d) => isWithin(d.node, scope));
    if (spoiledBy !== undefined) {
      // Whatever this file holds was decoded from damaged data: neither found nor absent.
      continue;
    }
    const sections = fileSections(file);
    const reasons: GopCandidateReason[] = [];
    if (knownGopFile(file.guid) !== undefined) reasons.push('known-guid');
    if (file.uiName !== null && GOP_UI_NAMES.includes(file.uiName)) reasons.push('ui-name');
    else if (
      (file.uiName !== null && GOP_NAME_PATTERN.test(file.uiName)) ||
      knownNonGopFile(file.guid) !== undefined
    ) {
      reasons.push('gop-named');
    }
    const vbtFileHint: VbtFoundBy[] = [];
    if (knownVbtFile(file.guid) !== undefined) vbtFileHint.push('known-guid');
    if (file.uiName !== null && VBT_UI_NAMES.includes(file.uiName)) vbtFileHint.push('ui-name');
    let sawVbtBody = false;
    const vbtFoundBy = (): VbtFoundBy[] => (vbtFileHint.length > 0 ? [...vbtFileHint] : ['signature']);
    // A body that starts with $VBT (a raw or freeform section, or a raw file): a VBT, or rejected.
    const bodyVbt = (
      node: FirmwareNode,
      body: Uint8Array,
      sectionType: LocatedVbt['sectionType'],
      bodyOffset: number | null,
    ): void => {
      sawVbtBody = true;
      try {
        vbts.push({
          guid: file.guid,
          uiName: file.uiName,
          body,
          info: parseVbt(body),
          sectionType,
          path: nodePath(node),
          offset: bodyOffset,
          foundBy: vbtFoundBy(),
          file,
        });
      } catch (error) {
        rejectedVbts.push({
          guid: file.guid,
          uiName: file.uiName,
          path: nodePath(node),
          reason: `starts with $VBT but does not parse: ${(error as Error).message}`,
        });
      }
    };
    // A body that is a legacy video option ROM: its VBT is inside, at no fixed offset.
    const romVbt = (node: FirmwareNode, body: Uint8Array, bodyOffset: number | null): void => {
      const rom = vbtInLegacyRom(body);
      if (rom === null) return;
      const where = { guid: file.guid, uiName: file.uiName };
      if (rom.vbt === null) {
        if (rom.reason !== null) rejectedVbts.push({ ...where, path: nodePath(node), reason: rom.reason });
        return;
      }
      sawVbtBody = true;
      vbts.push({
        ...where,
        body: rom.vbt.bytes,
        info: rom.vbt.info,
        sectionType: 'option-rom',
        path: `${nodePath(node)}/option ROM image ${rom.vbt.imageIndex}/$VBT at ${hex(rom.vbt.offset)}`,
        offset: bodyOffset === null ? null : bodyOffset + rom.vbt.offset,
        foundBy: vbtFoundBy(),
        file,
      });
    };

    for (const section of sections) {
      if (section.compression !== null && !section.compression.decoded) undecodedSections++;
      const type = section.section.type;
      if (type === EFI_SECTION_PE32) {
        pe32Sections++;
        const body = section.body;
        const sectionReasons = [...reasons];
        if (asBuffer(body).indexOf(DRIVER_NAME_UTF16) >= 0) sectionReasons.push('driver-name-string');
        if (sectionReasons.length === 0) continue;
        const result = classifyGopDriver(body);
        if (result.isGop) {
          gops.push({
            guid: file.guid,
            uiName: file.uiName,
            body,
            info: result.info,
            path: nodePath(section),
            offset: section.offset === null ? null : section.offset + section.section.dataOffset,
            foundBy: sectionReasons,
            file,
            section,
          });
        } else if (sectionReasons.includes('driver-name-string') && result.malformed) {
          // The Intel driver name in an image that is not a loadable driver: a damaged GOP.
          damage.push(
            damageAt(
              section,
              'E_GOP_CORRUPT',
              `PE32 section with the "${INTEL_GOP_DRIVER_NAME}" string is not a valid driver: ${result.reason}`,
            ),
          );
        } else {
          rejectedGops.push({
            guid: file.guid,
            uiName: file.uiName,
            path: nodePath(section),
            sizeInBytes: body.length,
            foundBy: sectionReasons,
            reason: result.reason,
          });
        }
      } else if (type === EFI_SECTION_RAW || type === EFI_SECTION_FREEFORM_SUBTYPE_GUID) {
        rawBodiesScanned++;
        const bodyOffset = section.offset === null ? null : section.offset + section.section.dataOffset;
        if (looksLikeVbt(section.body)) {
          bodyVbt(section, section.body, type === EFI_SECTION_RAW ? 'raw' : 'freeform', bodyOffset);
        } else {
          romVbt(section, section.body, bodyOffset);
        }
      }
    }
    if (file.file.type === EFI_FV_FILETYPE_RAW) {
      rawBodiesScanned++;
      const bodyOffset = file.offset === null ? null : file.offset + file.file.headerSize;
      romVbt(file, file.body, bodyOffset);
      if (looksLikeVbt(file.body)) bodyVbt(file, file.body, 'raw-file', bodyOffset);
    }
    if (vbtFileHint.length > 0 && !sawVbtBody) {
      rejectedVbts.push({
        guid: file.guid,
        uiName: file.uiName,
        path: nodePath(file),
        reason: `file has a VBT ${vbtFileHint.join('/')} but no raw or freeform section body starting with $VBT`,
      });
    }
  }

  const primaryIndex = vbts.findIndex((v) => !v.foundBy.includes('signature'));
  const orderedVbts =
    primaryIndex > 0
      ? [vbts[primaryIndex] as LocatedVbt, ...vbts.filter((_, i) => i !== primaryIndex)]
      : vbts;
  const volumes = tree.stats.volumes;
  return {
    gop: gops[0] ?? null,
    otherGops: gops.slice(1),
    rejectedGops,
    vbt: orderedVbts[0] ?? null,
    vbts: orderedVbts,
    rejectedVbts,
    damage,
    searched: {
      volumes,
      files: files.length,
      pe32Sections,
      rawBodiesScanned,
      gopGuidsTried: KNOWN_GOP_FILE_GUIDS.map((g) => g.guid),
      gopUiNamesTried: GOP_UI_NAMES,
      vbtGuidsTried: KNOWN_VBT_FILE_GUIDS.map((g) => g.guid),
      vbtUiNamesTried: VBT_UI_NAMES,
      undecodedSections,
    },
  };
}

function searchedText(s: SearchSummary): string {
  return `searched ${s.volumes} volumes, ${s.files} files, ${s.pe32Sections} PE32 sections${s.undecodedSections > 0 ? ` (${s.undecodedSections} sections could not be decoded)` : ''}`;
}

function whereText(d: Damage): string {
  const at =
    d.offset === null
      ? 'in decompressed data'
      : d.exactOffset
        ? `at ${hex(d.offset)}`
        : `in the decompressed data of the section at ${hex(d.offset)}`;
  const within = [
    d.section === null ? null : `section ${d.section}`,
    d.volume === null ? null : `volume ${d.volume}`,
  ].filter((x) => x !== null);
  return `${at}${within.length > 0 ? ` (${within.join(', ')})` : ''}`;
}

/** At most this many damaged places are listed in an error's details. */
const MAX_DAMAGE_DETAILS = 16;

/**
 * FormatError E_INPUT_CORRUPT (exit 6): `what` may be in a part of the image that failed to
 * parse, decompress or checksum, so "absent" cannot be said. Names the first damaged place.
 */
export function corruptImageError(result: LocateResult, what: string): FormatError {
  const [first] = result.damage;
  if (first === undefined) throw new TypeError('Expected `result.damage` to be non-empty, got `[]`');
  const more = result.damage.length - 1;
  return new FormatError(
    'E_INPUT_CORRUPT',
    `the image is corrupt, so it cannot be said whether it ships ${what}: ${first.message} ${whereText(first)} [${first.code}]${more > 0 ? `; ${more} more damaged place${more === 1 ? '' : 's'}` : ''}`,
    {
      offset: first.offset,
      volume: first.volume,
      section: first.section,
      path: first.path,
      damageCode: first.code,
      damage: result.damage
        .slice(0, MAX_DAMAGE_DETAILS)
        .map(({ code, message, offset, exactOffset, path, volume, section }) => ({
          code,
          message,
          offset,
          exactOffset,
          path,
          volume,
          section,
        })),
      damagedPlaces: result.damage.length,
      searched: result.searched,
    },
  );
}

/**
 * The error for a result without a GOP: E_INPUT_CORRUPT when some part of the image is
 * damaged (the GOP could be there), else NotFoundError E_GOP_NOT_FOUND with what was searched.
 */
export function gopNotFoundError(result: LocateResult): NotFoundError | FormatError {
  if (result.damage.length > 0) return corruptImageError(result, 'an Intel GOP driver');
  const rejected =
    result.rejectedGops.length > 0
      ? `; GOP-named files that are not an Intel GOP driver: ${result.rejectedGops.map((r) => `${r.uiName ?? r.guid} (${r.guid}: ${r.reason})`).join('; ')}`
      : '';
  return new NotFoundError(
    'E_GOP_NOT_FOUND',
    `this image ships no Intel GOP driver: ${searchedText(result.searched)} for the UTF-16 "${INTEL_GOP_DRIVER_NAME}" string, file GUIDs ${result.searched.gopGuidsTried.join(', ')} and UI names ${result.searched.gopUiNamesTried.join(', ')}${rejected}`,
    {
      searched: result.searched,
      rejected: result.rejectedGops.map(({ guid, uiName, path, reason }) => ({ guid, uiName, path, reason })),
    },
  );
}

/** Like gopNotFoundError, for the VBT: E_INPUT_CORRUPT or NotFoundError E_VBT_NOT_FOUND. */
export function vbtNotFoundError(result: LocateResult): NotFoundError | FormatError {
  if (result.damage.length > 0) return corruptImageError(result, 'a VBT');
  const rejected =
    result.rejectedVbts.length > 0
      ? `; rejected: ${result.rejectedVbts.map((r) => `${r.uiName ?? r.guid} (${r.reason})`).join('; ')}`
      : '';
  return new NotFoundError(
    'E_VBT_NOT_FOUND',
    `this image ships no VBT: ${searchedText(result.searched)} and ${result.searched.rawBodiesScanned} raw/freeform bodies for the "$VBT" signature or a legacy option ROM holding a VBT, file GUIDs ${result.searched.vbtGuidsTried.join(', ')} and UI names ${result.searched.vbtUiNamesTried.join(', ')}${rejected}`,
    { searched: result.searched, rejected: result.rejectedVbts },
  );
}

/** The GOP driver of the tree; throws E_GOP_NOT_FOUND naming what was searched, or E_INPUT_CORRUPT. */
export function locateGop(tree: FirmwareTree): LocatedGop {
  const result = locateGopAndVbt(tree);
  if (result.gop === null) throw gopNotFoundError(result);
  return result.gop;
}

/** The primary VBT of the tree; throws E_VBT_NOT_FOUND naming what was searched, or E_INPUT_CORRUPT. */
export function locateVbt(tree: FirmwareTree): LocatedVbt {
  const result = locateGopAndVbt(tree);
  if (result.vbt === null) throw vbtNotFoundError(result);
  return result.vbt;
}
