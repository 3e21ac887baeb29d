// The node model of a parsed firmware image: the kinds of node (image, capsule, region, BPDT
// partition, volume, file, section, padding, free space) as UEFITool/UEFIExtract presents them,
// the one constructor every walker builds them with, and the path that names a node in
// messages and JSON. Types and values only; the walkers live in walk-*.ts.
import type { ErrorCode } from '../core/error-codes.js';
import type { CapsuleHeader, FmpPayload } from './capsule.js';
import type { FfsFileHeader } from './ffs-file.js';
import type { FirmwareVolumeHeader } from './firmware-volume.js';
import type { FlashRegion } from './flash-descriptor.js';
import type { BpdtEntry } from './ifwi.js';
import type { NvramStore } from './nvram.js';
import type { PeImageSummary } from './pe-coff.js';
import type { SectionHeader } from './section.js';

export type ImageFormat = 'intel-descriptor' | 'bpdt' | 'uefi' | 'capsule';

/** A FormatError (or decompressor failure) recorded on a node in non-strict mode. */
export interface FirmwareProblem {
  readonly code: ErrorCode;
  readonly message: string;
  /** Absolute offset, or null inside decompressed data. */
  readonly offset: number | null;
  readonly path: string;
}

interface NodeCommon {
  readonly parent: FirmwareNode | null;
  readonly children: FirmwareNode[];
  /** UEFIExtract's Type column: Image, Capsule, Region, BPDT partition, Volume, File, Section, Padding, Free space. */
  readonly type: string;
  /** UEFIExtract's Subtype column: FFSv2, DXE driver, PE32 image, Empty (0xFF), ... */
  readonly subtype: string;
  /** UEFIExtract's Name column: a GUID or a descriptive name. */
  readonly name: string;
  /** UEFIExtract's trailing text: a file's UI name, a region name. */
  text: string | null;
  /** Absolute offset of the node's first byte in the input, or null inside decompressed data. */
  readonly offset: number | null;
  readonly sizeInBytes: number;
  /** The whole node (header and body) as a view. */
  readonly bytes: Uint8Array;
  /** The body (data after the header) as a view; decompressed output for compressed sections. */
  body: Uint8Array;
  readonly problems: FirmwareProblem[];
}

export interface ImageNode extends NodeCommon {
  readonly kind: 'image';
  readonly format: ImageFormat;
}
export interface CapsuleNode extends NodeCommon {
  readonly kind: 'capsule';
  readonly capsule: CapsuleHeader;
  /** The FMP payload this node stands for (children of an FMP capsule), else null. */
  readonly payload: FmpPayload | null;
}
export interface RegionNode extends NodeCommon {
  readonly kind: 'region';
  readonly region: FlashRegion;
}
export interface PartitionNode extends NodeCommon {
  readonly kind: 'partition';
  readonly partition: BpdtEntry;
}
export interface VolumeNode extends NodeCommon {
  readonly kind: 'volume';
  readonly volume: FirmwareVolumeHeader;
  /** Variable stores of an NVRAM volume, else null. */
  readonly nvram: readonly NvramStore[] | null;
}
export interface FileNode extends NodeCommon {
  readonly kind: 'file';
  readonly file: FfsFileHeader;
  readonly guid: string;
  /** Name from the file's UI section (searched through compressed sections, not into volumes). */
  uiName: string | null;
}
export interface SectionNode extends NodeCommon {
  readonly kind: 'section';
  readonly section: SectionHeader;
  /**
   * For compression and GUID-defined sections: the algorithm ('LZMA', 'LZMAF86', 'Brotli',
   * 'EFI 1.1', 'Tiano', 'None', 'CRC32', 'Unknown'), whether the data was decoded, and the
   * compressed size. `body` is the decoded output when decoded is true.
   */
  compression: {
    readonly algorithm: string;
    readonly decoded: boolean;
    readonly compressedSize: number;
  } | null;
  /** EFI_SECTION_USER_INTERFACE text. */
  uiName: string | null;
  /** EFI_SECTION_VERSION build number and string. */
  version: { readonly buildNumber: number; readonly text: string } | null;
  /** CRC32 GUID-defined sections: stored and computed value. */
  crc32: { readonly stored: number; readonly computed: number; readonly valid: boolean } | null;
  /** PE32/TE sections when summarizePe is on: the header summary (null if it does not parse). */
  pe: PeImageSummary | null;
}
export interface PaddingNode extends NodeCommon {
  readonly kind: 'padding';
  /** All bytes are the erased value (0xFF or 0x00). */
  readonly empty: boolean;
}
export interface FreeSpaceNode extends NodeCommon {
  readonly kind: 'free-space';
}

export type FirmwareNode =
  | ImageNode
  | CapsuleNode
  | RegionNode
  | PartitionNode
  | VolumeNode
  | FileNode
  | SectionNode
  | PaddingNode
  | FreeSpaceNode;

export interface FirmwareTree {
  readonly root: ImageNode;
  readonly format: ImageFormat;
  /** Every problem recorded in non-strict mode, in walk order (also on the nodes). */
  readonly problems: readonly FirmwareProblem[];
  readonly stats: {
    readonly volumes: number;
    readonly files: number;
    readonly sections: number;
    readonly decompressedSections: number;
    readonly decompressedBytes: number;
  };
}

/** The fields of one node kind beyond those every node has. */
export type NodeOf<K extends FirmwareNode['kind']> = Extract<FirmwareNode, { readonly kind: K }>;
export type NodeSpecifics<K extends FirmwareNode['kind']> = Omit<NodeOf<K>, keyof NodeCommon | 'kind'>;

/** Where a node sits and what UEFIExtract calls it; the fields every node kind shares. */
export interface NodePlace {
  readonly parent: FirmwareNode | null;
  readonly type: string;
  readonly subtype: string;
  readonly name: string;
  /** @default null */
  readonly text?: string | null;
  readonly offset: number | null;
  readonly bytes: Uint8Array;
  /** The size the structure's header declares. @default bytes.length */
  readonly sizeInBytes?: number;
  /** @default bytes */
  readonly body?: Uint8Array;
}

/** The one constructor of nodes: no children, no problems yet; not linked into the parent. */
export function createNode<K extends FirmwareNode['kind']>(
  kind: K,
  place: NodePlace,
  specifics: NodeSpecifics<K>,
): NodeOf<K> {
  return {
    kind,
    ...specifics,
    parent: place.parent,
    children: [],
    type: place.type,
    subtype: place.subtype,
    name: place.name,
    text: place.text ?? null,
    offset: place.offset,
    sizeInBytes: place.sizeInBytes ?? place.bytes.length,
    bytes: place.bytes,
    body: place.body ?? place.bytes,
    problems: [],
  } as unknown as NodeOf<K>;
}

/** Names the place of a node for messages and JSON: "BIOS region/4F1C52D3-.../GopDebugDxe/PE32 image section". */
export function nodePath(node: FirmwareNode): string {
  const parts: string[] = [];
  for (let n: FirmwareNode | null = node; n !== null && n.kind !== 'image'; n = n.parent) {
    parts.push(n.kind === 'file' && n.uiName !== null ? n.uiName : n.name);
  }
  return parts.reverse().join('/');
}
