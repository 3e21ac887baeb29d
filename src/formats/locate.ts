// Finds the Intel GOP driver and the VBT(s) in a parsed firmware tree.
//
// GOP: candidates are PE32 sections of files with a known GOP file GUID, a GOP-like UI name,
// a known non-GOP GUID (so that it is reported as such), and every PE32 body that contains
// the UTF-16 driver name. The bytes decide (classifyGopDriver): names are never trusted.
// VBT: raw and freeform-subtype-GUID section bodies (and raw file bodies) that start with
// "$VBT", validated with parseVbt; known VBT GUIDs and UI names only order and annotate them.
import { NotFoundError } from '../core/errors.js';
import {
  listFiles,
  nodePath,
  type FileNode,
  type FirmwareNode,
  type FirmwareTree,
  type SectionNode,
} from './firmware-tree.js';
import { EFI_FV_FILETYPE_RAW } from './ffs-file.js';
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
  /** The raw (or freeform) section body as stored, padding included (UEFITool "extract body"). */
  readonly body: Uint8Array;
  readonly info: VbtInfo;
  readonly sectionType: 'raw' | 'freeform' | 'raw-file';
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

  for (const file of files) {
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
        if (!looksLikeVbt(section.body)) continue;
        sawVbtBody = true;
        const foundBy: VbtFoundBy[] = vbtFileHint.length > 0 ? [...vbtFileHint] : ['signature'];
        try {
          vbts.push({
            guid: file.guid,
            uiName: file.uiName,
            body: section.body,
            info: parseVbt(section.body),
            sectionType: type === EFI_SECTION_RAW ? 'raw' : 'freeform',
            path: nodePath(section),
            offset: section.offset === null ? null : section.offset + section.section.dataOffset,
            foundBy,
            file,
          });
        } catch (error) {
          rejectedVbts.push({
            guid: file.guid,
            uiName: file.uiName,
            path: nodePath(section),
            reason: `starts with $VBT but does not parse: ${(error as Error).message}`,
          });
        }
      }
    }
    if (file.file.type === EFI_FV_FILETYPE_RAW) {
      rawBodiesScanned++;
      if (looksLikeVbt(file.body)) {
        sawVbtBody = true;
        try {
          vbts.push({
            guid: file.guid,
            uiName: file.uiName,
            body: file.body,
            info: parseVbt(file.body),
            sectionType: 'raw-file',
            path: nodePath(file),
            offset: file.offset === null ? null : file.offset + file.file.headerSize,
            foundBy: vbtFileHint.length > 0 ? [...vbtFileHint] : ['signature'],
            file,
          });
        } catch (error) {
          rejectedVbts.push({
            guid: file.guid,
            uiName: file.uiName,
            path: nodePath(file),
            reason: `starts with $VBT but does not parse: ${(error as Error).message}`,
          });
        }
      }
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

/** The NotFoundError for a result without a GOP (E_GOP_NOT_FOUND), with what was searched. */
export function gopNotFoundError(result: LocateResult): NotFoundError {
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

/** The NotFoundError for a result without a VBT (E_VBT_NOT_FOUND), with what was searched. */
export function vbtNotFoundError(result: LocateResult): NotFoundError {
  const rejected =
    result.rejectedVbts.length > 0
      ? `; rejected: ${result.rejectedVbts.map((r) => `${r.uiName ?? r.guid} (${r.reason})`).join('; ')}`
      : '';
  return new NotFoundError(
    'E_VBT_NOT_FOUND',
    `this image ships no VBT: ${searchedText(result.searched)} and ${result.searched.rawBodiesScanned} raw/freeform bodies for the "$VBT" signature, file GUIDs ${result.searched.vbtGuidsTried.join(', ')} and UI names ${result.searched.vbtUiNamesTried.join(', ')}${rejected}`,
    { searched: result.searched, rejected: result.rejectedVbts },
  );
}

/** The GOP driver of the tree; throws NotFoundError E_GOP_NOT_FOUND naming what was searched. */
export function locateGop(tree: FirmwareTree): LocatedGop {
  const result = locateGopAndVbt(tree);
  if (result.gop === null) throw gopNotFoundError(result);
  return result.gop;
}

/** The primary VBT of the tree; throws NotFoundError E_VBT_NOT_FOUND naming what was searched. */
export function locateVbt(tree: FirmwareTree): LocatedVbt {
  const result = locateGopAndVbt(tree);
  if (result.vbt === null) throw vbtNotFoundError(result);
  return result.vbt;
}
