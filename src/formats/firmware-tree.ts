// The firmware image walker: turns an image (Intel flash descriptor image, IFWI/BPDT image,
// bare UEFI image, capsule) into a tree of regions, volumes, FFS files and sections, the way
// UEFITool/UEFIExtract presents it. Takes bytes, returns values; no I/O.
//
// Every buffer a node points at is a view into the input or into one decompressed output:
// nothing is copied. Offsets are absolute (from the start of the input) where the bytes are
// in the input, and null inside decompressed data, as UEFIExtract prints "N/A".
import { FormatError, OvmfBuildError, throwIfAborted } from '../core/errors.js';
import { hex } from '../core/hex.js';
import {
  crc32,
  decompressBrotli,
  decompressLzma,
  decompressLzmaF86,
  decompressStandard,
  decompressTiano,
  DEFAULT_MAX_OUTPUT_BYTES,
  NATIVE_LZMA_MAX_OUTPUT_BYTES,
  type StandardCompressionVariant,
} from './compression/index.js';
import { parseCapsuleHeader, capsuleKindOf, type CapsuleHeader, type FmpPayload } from './capsule.js';
import {
  EFI_FV_FILETYPE_FFS_PAD,
  EFI_FV_FILETYPE_RAW,
  FFS_FILE_HEADER_SIZE,
  fileTypeHasSections,
  isErasedHeader,
  parseFfsFileHeader,
  type FfsFileHeader,
} from './ffs-file.js';
import {
  nextVolumeCandidate,
  parseFirmwareVolumeHeader,
  type FirmwareVolumeHeader,
} from './firmware-volume.js';
import { findFlashDescriptorSignature, parseFlashDescriptor, type FlashRegion } from './flash-descriptor.js';
import { BPDT_TYPE_SECONDARY, looksLikeBpdt, parseBpdt, type BpdtEntry } from './ifwi.js';
import { identifyNvramStores, type NvramStore } from './nvram.js';
import { parsePeImage, type PeImageSummary } from './pe-coff.js';
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

/** Bounds of one walk. Every count and size read from the input passes one of these. */
export interface ParseLimits {
  /**
   * Containers inside containers; each volume, file, section stream and scanned area is one
   * level, so a volume inside a compressed section of a file of a volume is about 6 levels.
   * @default 64
   */
  readonly maximumNestingDepth?: number;
  /**
   * Largest output of one decompression, in bytes (passed to the decompressors).
   * @default 268_435_456 (256 MiB, DEFAULT_MAX_OUTPUT_BYTES)
   */
  readonly maximumDecompressedSize?: number;
  /**
   * Sum of all decompressed outputs of one walk, in bytes (nested compression bombs).
   * @default 536_870_912 (512 MiB)
   */
  readonly maximumTotalDecompressedSize?: number;
  /** @default 65_536 */
  readonly maximumFilesPerVolume?: number;
  /** @default 4_096 */
  readonly maximumSectionsPerFile?: number;
  /** Volumes found by scanning one area. @default 1_024 */
  readonly maximumVolumesPerArea?: number;
  /** All nodes of the tree. @default 1_000_000 */
  readonly maximumNodes?: number;
}

export interface ParseOptions extends ParseLimits {
  /**
   * Throw the first FormatError instead of recording it on the node and carrying on.
   * @default false
   */
  readonly strict?: boolean;
  /**
   * Verify FFS file data checksums (a pass over every file's bytes).
   * @default true
   */
  readonly verifyChecksums?: boolean;
  /**
   * Attach a PE/TE header summary (parsePeImage) to every PE32/TE section.
   * @default true
   */
  readonly summarizePe?: boolean;
  /**
   * Ends the walk with E_ABORTED (AbortError) when it fires: checked every 4,096 nodes and
   * every 4 MiB of large LZMA output, so a long parse stops within a fraction of a second.
   */
  readonly signal?: AbortSignal;
}

export const DEFAULT_LIMITS = {
  maximumNestingDepth: 64,
  maximumDecompressedSize: DEFAULT_MAX_OUTPUT_BYTES,
  maximumTotalDecompressedSize: 512 * 1024 * 1024,
  maximumFilesPerVolume: 65_536,
  maximumSectionsPerFile: 4_096,
  maximumVolumesPerArea: 1_024,
  maximumNodes: 1_000_000,
} as const;

/**
 * Native LZMA output allowed per walk: real images decompress 10-30 MiB in all, which the
 * native decoder does about twice as fast; past this, sections are decoded in JS into buffers
 * of exactly their size, so a bomb's peak memory stays near maximumTotalDecompressedSize.
 */
const NATIVE_LZMA_ALLOWANCE_BYTES = 32 * 1024 * 1024;

export type ImageFormat = 'intel-descriptor' | 'bpdt' | 'uefi' | 'capsule';

/** A FormatError (or decompressor failure) recorded on a node in non-strict mode. */
export interface FirmwareProblem {
  readonly code: string;
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

type Limits = { -readonly [K in keyof typeof DEFAULT_LIMITS]: number };

/** Names the place of a node for messages and JSON: "BIOS region/4F1C52D3-.../GopDebugDxe/PE32 image section". */
export function nodePath(node: FirmwareNode): string {
  const parts: string[] = [];
  for (let n: FirmwareNode | null = node; n !== null && n.kind !== 'image'; n = n.parent) {
    parts.push(n.kind === 'file' && n.uiName !== null ? n.uiName : n.name);
  }
  return parts.reverse().join('/');
}

/** Depth-first, pre-order walk of every node under (and including) `node`. */
export function* walkNodes(node: FirmwareNode): Generator<FirmwareNode> {
  const stack: FirmwareNode[] = [node];
  while (stack.length > 0) {
    const current = stack.pop() as FirmwareNode;
    yield current;
    for (let i = current.children.length - 1; i >= 0; i--) stack.push(current.children[i] as FirmwareNode);
  }
}

/** Every FFS file in the tree, in image order. */
export function listFiles(tree: FirmwareTree | FirmwareNode): FileNode[] {
  const start = 'root' in tree ? tree.root : tree;
  const files: FileNode[] = [];
  for (const n of walkNodes(start)) if (n.kind === 'file') files.push(n);
  return files;
}

const ERASED_CHUNK_SIZE = 0x1_0000;
const ERASED_CHUNKS: Readonly<Record<number, Buffer>> = {
  0x00: Buffer.alloc(ERASED_CHUNK_SIZE, 0x00),
  0xff: Buffer.alloc(ERASED_CHUNK_SIZE, 0xff),
};

/**
 * Offset of the first byte in [from, to) that is not `value` (0x00 or 0xFF), or `to`.
 * Free space is most of a big volume: compare 64 KiB at a time (memcmp), bytes only at the end.
 */
function firstNotErased(bytes: Uint8Array, from: number, to: number, value: number): number {
  const chunk = ERASED_CHUNKS[value];
  let at = from;
  if (chunk !== undefined) {
    const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    while (
      to - at >= ERASED_CHUNK_SIZE &&
      buffer.compare(chunk, 0, ERASED_CHUNK_SIZE, at, at + ERASED_CHUNK_SIZE) === 0
    ) {
      at += ERASED_CHUNK_SIZE;
    }
  }
  while (at < to && bytes[at] === value) at++;
  return at;
}

// Offsets can pass 2^31 in big inputs: no 32-bit bitwise alignment.
function alignUp(value: number, alignment: number): number {
  return Math.ceil(value / alignment) * alignment;
}
function alignDown(value: number, alignment: number): number {
  return Math.floor(value / alignment) * alignment;
}

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

class Walker {
  readonly #limits: Limits;
  readonly #strict: boolean;
  readonly #verifyChecksums: boolean;
  readonly #summarizePe: boolean;
  readonly #signal: AbortSignal | undefined;
  readonly problems: FirmwareProblem[] = [];
  nodes = 0;
  volumes = 0;
  files = 0;
  sections = 0;
  decompressedSections = 0;
  decompressedBytes = 0;
  /** LZMA output decoded natively so far (it costs more memory than its size, see below). */
  nativeLzmaBytes = 0;

  constructor(options: ParseOptions) {
    this.#limits = { ...DEFAULT_LIMITS };
    for (const key of Object.keys(DEFAULT_LIMITS) as (keyof Limits)[]) {
      const value = options[key];
      if (value !== undefined) {
        if (!Number.isSafeInteger(value) || value < 1) {
          throw new TypeError(`Expected \`${key}\` to be a positive integer, got \`${String(value)}\``);
        }
        this.#limits[key] = value;
      }
    }
    this.#strict = options.strict ?? false;
    this.#verifyChecksums = options.verifyChecksums ?? true;
    this.#summarizePe = options.summarizePe ?? true;
    this.#signal = options.signal;
    throwIfAborted(this.#signal);
  }

  #count(): void {
    this.nodes++;
    if (this.nodes % 4096 === 0) throwIfAborted(this.#signal);
    if (this.nodes > this.#limits.maximumNodes) {
      throw new FormatError(
        'E_FW_TOO_MANY_NODES',
        `image has more than ${this.#limits.maximumNodes} nodes (maximumNodes)`,
        {
          limit: this.#limits.maximumNodes,
        },
      );
    }
  }

  #add<T extends FirmwareNode>(parent: FirmwareNode | null, node: T): T {
    this.#count();
    parent?.children.push(node);
    return node;
  }

  /** Records (or, in strict mode, throws) a failure inside `node`; the walk goes on elsewhere. */
  #fail(node: FirmwareNode, error: unknown, offset: number | null): void {
    if (!(error instanceof OvmfBuildError)) throw error;
    // Limits are global: carrying on after one would only hit it again.
    if (
      this.#strict ||
      error.code === 'E_FW_TOO_MANY_NODES' ||
      error.code === 'E_FW_DECOMPRESSED_TOO_LARGE' ||
      error.code === 'E_ABORTED'
    ) {
      throw error;
    }
    const problem: FirmwareProblem = {
      code: error.code,
      message: error.message,
      offset,
      path: nodePath(node),
    };
    node.problems.push(problem);
    this.problems.push(problem);
  }

  #checkDepth(depth: number, what: string, offset: number | null): void {
    if (depth > this.#limits.maximumNestingDepth) {
      throw new FormatError(
        'E_FW_TOO_DEEP',
        `${what} at ${offset === null ? 'a decompressed offset' : hex(offset)} is nested ${depth} levels deep (maximumNestingDepth ${this.#limits.maximumNestingDepth})`,
        { depth, limit: this.#limits.maximumNestingDepth },
      );
    }
  }

  // ---- top level -------------------------------------------------------------------------

  parse(bytes: Uint8Array): FirmwareTree {
    let format: ImageFormat;
    let subtype: string;
    if (capsuleKindOf(bytes) !== null) {
      format = 'capsule';
      subtype = 'Capsule';
    } else if (findFlashDescriptorSignature(bytes) >= 0) {
      format = 'intel-descriptor';
      subtype = 'Intel';
    } else if (looksLikeBpdt(bytes, 0)) {
      format = 'bpdt';
      subtype = 'UEFI';
    } else {
      format = 'uefi';
      subtype = 'UEFI';
    }
    const root: ImageNode = this.#add(null, {
      kind: 'image',
      format,
      parent: null,
      children: [],
      type: 'Image',
      subtype,
      name: `${subtype} image`,
      text: null,
      offset: 0,
      sizeInBytes: bytes.length,
      bytes,
      body: bytes,
      problems: [],
    });
    this.#parseImageInto(root, bytes, 0, format, 0);
    if (this.volumes === 0 && format === 'uefi') {
      throw new FormatError(
        'E_NOT_FIRMWARE',
        `no firmware structure found: no capsule header, flash descriptor or firmware volume (_FVH) in ${hex(bytes.length)} bytes`,
        { sizeInBytes: bytes.length, format },
      );
    }
    return {
      root,
      format,
      problems: this.problems,
      stats: {
        volumes: this.volumes,
        files: this.files,
        sections: this.sections,
        decompressedSections: this.decompressedSections,
        decompressedBytes: this.decompressedBytes,
      },
    };
  }

  #parseImageInto(
    parent: FirmwareNode,
    bytes: Uint8Array,
    base: number,
    format: ImageFormat,
    depth: number,
  ): void {
    switch (format) {
      case 'capsule':
        this.#parseCapsule(parent, bytes, base, depth);
        return;
      case 'intel-descriptor':
        this.#parseDescriptorImage(parent, bytes, base, depth);
        return;
      case 'bpdt':
        this.#parseBpdtImage(parent, bytes, base, depth);
        return;
      case 'uefi':
        this.#parseRawArea(parent, bytes, base, depth, true);
    }
  }

  #formatOf(bytes: Uint8Array): ImageFormat {
    if (capsuleKindOf(bytes) !== null) return 'capsule';
    if (findFlashDescriptorSignature(bytes) >= 0) return 'intel-descriptor';
    if (looksLikeBpdt(bytes, 0)) return 'bpdt';
    return 'uefi';
  }

  #parseCapsule(parent: FirmwareNode, bytes: Uint8Array, base: number, depth: number): void {
    this.#checkDepth(depth, 'capsule', base);
    const capsule = parseCapsuleHeader(bytes);
    const node: CapsuleNode = this.#add(parent, {
      kind: 'capsule',
      capsule,
      payload: null,
      parent,
      children: [],
      type: 'Capsule',
      subtype: capsule.kind,
      name: `${capsule.kind} capsule`,
      text: capsule.guid,
      offset: base,
      sizeInBytes: capsule.capsuleSizeInBytes,
      bytes: bytes.subarray(0, capsule.capsuleSizeInBytes),
      body: bytes.subarray(capsule.bodyOffset, capsule.bodyOffset + capsule.bodySizeInBytes),
      problems: [],
    });
    if (capsule.fmp === null) {
      const body = node.body;
      try {
        this.#parseImageInto(node, body, base + capsule.bodyOffset, this.#formatOf(body), depth + 1);
      } catch (error) {
        this.#fail(node, error, base + capsule.bodyOffset);
      }
      return;
    }
    for (const payload of capsule.fmp.payloads) {
      const body = bytes.subarray(payload.payloadOffset, payload.payloadOffset + payload.payloadSizeInBytes);
      const child: CapsuleNode = this.#add(node, {
        kind: 'capsule',
        capsule,
        payload,
        parent: node,
        children: [],
        type: 'Capsule',
        subtype: 'FMP payload',
        name: `FMP payload ${payload.index}`,
        text: payload.updateImageTypeId,
        offset: base + payload.offset,
        sizeInBytes: payload.headerSize + payload.imageSizeInBytes + payload.vendorCodeSizeInBytes,
        bytes: bytes.subarray(
          payload.offset,
          payload.offset + payload.headerSize + payload.imageSizeInBytes + payload.vendorCodeSizeInBytes,
        ),
        body,
        problems: [],
      });
      try {
        this.#parseImageInto(child, body, base + payload.payloadOffset, this.#formatOf(body), depth + 1);
      } catch (error) {
        this.#fail(child, error, base + payload.payloadOffset);
      }
    }
  }

  #parseDescriptorImage(parent: FirmwareNode, bytes: Uint8Array, base: number, depth: number): void {
    let descriptor: ReturnType<typeof parseFlashDescriptor>;
    try {
      descriptor = parseFlashDescriptor(bytes);
    } catch (error) {
      // A damaged region table: record it and still find the volumes by scanning.
      this.#fail(parent, error, base);
      this.#parseRawArea(parent, bytes, base, depth + 1, true);
      return;
    }
    let cursor = 0;
    for (const region of descriptor.regions) {
      if (region.offset > cursor) this.#addPadding(parent, bytes, cursor, region.offset, base);
      const regionBytes = bytes.subarray(region.offset, region.offset + region.sizeInBytes);
      const node: RegionNode = this.#add(parent, {
        kind: 'region',
        region,
        parent,
        children: [],
        type: 'Region',
        subtype: region.name,
        name: `${region.name} region`,
        text: null,
        offset: base + region.offset,
        sizeInBytes: region.sizeInBytes,
        bytes: regionBytes,
        body: regionBytes,
        problems: [],
      });
      // The BIOS region holds the UEFI volumes; others (ME, GbE, EC...) are listed, not parsed.
      if (region.name === 'BIOS' || region.name === 'BIOS2') {
        try {
          this.#parseRawArea(node, regionBytes, base + region.offset, depth + 1, true);
        } catch (error) {
          this.#fail(node, error, base + region.offset);
        }
      }
      cursor = region.offset + region.sizeInBytes;
    }
    if (cursor < bytes.length) this.#addPadding(parent, bytes, cursor, bytes.length, base);
  }

  #parseBpdtImage(parent: FirmwareNode, bytes: Uint8Array, base: number, depth: number): void {
    const partitions: PartitionNode[] = [];
    const addPartitions = (into: FirmwareNode, entries: readonly BpdtEntry[], level: number): void => {
      for (const entry of [...entries].sort((a, b) => a.offset - b.offset)) {
        if (entry.sizeInBytes === 0) continue;
        const partBytes = bytes.subarray(entry.offset, entry.offset + entry.sizeInBytes);
        const node: PartitionNode = this.#add(into, {
          kind: 'partition',
          partition: entry,
          parent: into,
          children: [],
          type: 'BPDT partition',
          subtype: '',
          name: entry.name,
          text: null,
          offset: base + entry.offset,
          sizeInBytes: entry.sizeInBytes,
          bytes: partBytes,
          body: partBytes,
          problems: [],
        });
        partitions.push(node);
        // A secondary BPDT (S-BPDT) lists more partitions; offsets are from the IFWI start.
        if (entry.type === BPDT_TYPE_SECONDARY && level < 2 && looksLikeBpdt(bytes, entry.offset)) {
          try {
            addPartitions(node, parseBpdt(bytes, entry.offset, 0).entries, level + 1);
          } catch (error) {
            this.#fail(node, error, base + entry.offset);
          }
        }
      }
    };
    try {
      addPartitions(parent, parseBpdt(bytes, 0, 0).entries, 0);
    } catch (error) {
      // A damaged table (e.g. a truncated IFWI) still leaves volumes to find by scanning.
      this.#fail(parent, error, base);
    }
    // Volumes are found by scanning the whole image (every UEFI volume lives in IBB/OBB
    // partitions' directory entries, which are not parsed), then hung under the smallest
    // partition that contains them.
    const holder = (start: number, end: number): FirmwareNode => {
      let best: FirmwareNode = parent;
      let bestSize = Infinity;
      for (const p of partitions) {
        const ps = p.partition.offset;
        if (start >= ps && end <= ps + p.partition.sizeInBytes && p.partition.sizeInBytes < bestSize) {
          best = p;
          bestSize = p.partition.sizeInBytes;
        }
      }
      return best;
    };
    this.#scanVolumes(bytes, base, depth, holder);
  }

  #addPadding(parent: FirmwareNode, bytes: Uint8Array, from: number, to: number, base: number | null): void {
    const empty = isErased(bytes, from, to, 0xff);
    const view = bytes.subarray(from, to);
    this.#add(parent, {
      kind: 'padding',
      empty,
      parent,
      children: [],
      type: 'Padding',
      subtype: empty ? 'Empty (0xFF)' : 'Non-empty',
      name: 'Padding',
      text: null,
      offset: base === null ? null : base + from,
      sizeInBytes: to - from,
      bytes: view,
      body: view,
      problems: [],
    });
  }

  /**
   * Finds volumes in an area by their `_FVH` signature and parses each; gaps become padding
   * when `withPadding`. Returns the number of volumes found.
   */
  #parseRawArea(
    parent: FirmwareNode,
    bytes: Uint8Array,
    base: number | null,
    depth: number,
    withPadding: boolean,
  ): number {
    const gap = withPadding
      ? (from: number, to: number): void => {
          if (to > from) this.#addPadding(parent, bytes, from, to, base);
        }
      : undefined;
    return this.#scanVolumes(bytes, base, depth, () => parent, gap);
  }

  #scanVolumes(
    bytes: Uint8Array,
    base: number | null,
    depth: number,
    holder: (start: number, end: number) => FirmwareNode,
    gap?: (from: number, to: number) => void,
  ): number {
    this.#checkDepth(depth, 'area', base);
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
        this.#fail(owner, error, base === null ? null : base + start);
        continue;
      }
      found++;
      if (found > this.#limits.maximumVolumesPerArea) {
        throw new FormatError(
          'E_FW_TOO_MANY_VOLUMES',
          `area at ${base === null ? 'a decompressed offset' : hex(base)} holds more than ${this.#limits.maximumVolumesPerArea} volumes (maximumVolumesPerArea)`,
          { limit: this.#limits.maximumVolumesPerArea },
        );
      }
      gap?.(cursor, start);
      const end = start + header.lengthInBytes;
      this.#parseVolume(holder(start, end), bytes, start, header, base, depth + 1);
      cursor = end;
    }
    gap?.(cursor, bytes.length);
    return found;
  }

  // ---- volumes and files -----------------------------------------------------------------

  #parseVolume(
    parent: FirmwareNode,
    area: Uint8Array,
    start: number,
    volume: FirmwareVolumeHeader,
    base: number | null,
    depth: number,
  ): VolumeNode {
    const abs = base === null ? null : base + start;
    this.#checkDepth(depth, 'volume', abs);
    this.volumes++;
    const bytes = area.subarray(start, start + volume.lengthInBytes);
    const node: VolumeNode = this.#add(parent, {
      kind: 'volume',
      volume,
      nvram: volume.subtypeName === 'NVRAM' ? identifyNvramStores(bytes.subarray(volume.headerLength)) : null,
      parent,
      children: [],
      type: 'Volume',
      subtype: volume.subtypeName,
      name: volume.displayName,
      text: null,
      offset: abs,
      sizeInBytes: volume.lengthInBytes,
      bytes,
      body: bytes.subarray(volume.filesOffset),
      problems: [],
    });
    if (volume.ffsVersion === null) return node;
    try {
      this.#parseFiles(node, bytes, volume, abs, depth);
    } catch (error) {
      this.#fail(node, error, abs);
    }
    return node;
  }

  #parseFiles(
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
        const view = bytes.subarray(at, resume);
        this.#add(node, {
          kind: 'free-space',
          parent: node,
          children: [],
          type: 'Free space',
          subtype: '',
          name: 'Volume free space',
          text: null,
          offset: abs === null ? null : abs + at,
          sizeInBytes: resume - at,
          bytes: view,
          body: view,
          problems: [],
        });
        at = resume;
        continue;
      }
      count++;
      if (count > this.#limits.maximumFilesPerVolume) {
        throw new FormatError(
          'E_FW_TOO_MANY_FILES',
          `${where} holds more than ${this.#limits.maximumFilesPerVolume} files (maximumFilesPerVolume)`,
          { limit: this.#limits.maximumFilesPerVolume },
        );
      }
      const header = parseFfsFileHeader(bytes, at, end, {
        ffsVersion: volume.ffsVersion as 2 | 3,
        erasePolarity: volume.erasePolarity,
        revision: volume.revision,
        where: `${where} at ${abs === null ? 'a decompressed offset' : hex(abs)}`,
        verifyDataChecksum: this.#verifyChecksums,
      });
      this.#parseFile(node, bytes, at, header, abs, depth + 1);
      at = alignUp(at + header.sizeInBytes, 8);
    }
    if (at < end) {
      // Fewer than 24 bytes left: free space, or a tail UEFITool shows as non-empty padding.
      const view = bytes.subarray(at, end);
      const offset = abs === null ? null : abs + at;
      const common = {
        parent: node,
        children: [],
        text: null,
        offset,
        sizeInBytes: end - at,
        bytes: view,
        body: view,
        problems: [],
      };
      if (isErased(bytes, at, end, erased)) {
        this.#add(node, {
          ...common,
          kind: 'free-space',
          type: 'Free space',
          subtype: '',
          name: 'Volume free space',
        });
      } else {
        this.#add(node, {
          ...common,
          kind: 'padding',
          empty: false,
          type: 'Padding',
          subtype: 'Non-empty',
          name: 'Padding',
        });
      }
    }
  }

  #parseFile(
    parent: VolumeNode,
    volumeBytes: Uint8Array,
    at: number,
    header: FfsFileHeader,
    volumeAbs: number | null,
    depth: number,
  ): void {
    const abs = volumeAbs === null ? null : volumeAbs + at;
    this.#checkDepth(depth, 'file', abs);
    this.files++;
    const bytes = volumeBytes.subarray(at, at + header.sizeInBytes);
    const body = bytes.subarray(header.headerSize, header.sizeInBytes - header.tailSize);
    const pad = header.type === EFI_FV_FILETYPE_FFS_PAD;
    const node: FileNode = this.#add(parent, {
      kind: 'file',
      file: header,
      guid: header.guid,
      uiName: null,
      parent,
      children: [],
      type: 'File',
      subtype: header.typeName,
      name: pad ? 'Padding file' : header.guid,
      text: null,
      offset: abs,
      sizeInBytes: header.sizeInBytes,
      bytes,
      body,
      problems: [],
    });
    const bodyAbs = abs === null ? null : abs + header.headerSize;
    try {
      if (fileTypeHasSections(header.type)) {
        this.#parseSections(node, body, bodyAbs, `file ${header.guid}`, depth + 1);
        node.uiName = findUiName(node);
        node.text = node.uiName;
      } else if (header.type === EFI_FV_FILETYPE_RAW) {
        // Raw files may carry whole volumes (UEFITool parses them as raw areas).
        this.#parseRawArea(node, body, bodyAbs, depth + 1, false);
      }
    } catch (error) {
      this.#fail(node, error, abs);
    }
  }

  // ---- sections --------------------------------------------------------------------------

  #parseSections(
    parent: FileNode | SectionNode,
    bytes: Uint8Array,
    base: number | null,
    where: string,
    depth: number,
  ): void {
    this.#checkDepth(depth, 'section', base);
    let at = 0;
    let count = 0;
    while (at < bytes.length) {
      // Section headers are 4-byte aligned from the start of the section stream (PI vol. 3, 2.2.4).
      at = alignUp(at, 4);
      if (at >= bytes.length) break;
      count++;
      if (count > this.#limits.maximumSectionsPerFile) {
        throw new FormatError(
          'E_FW_TOO_MANY_SECTIONS',
          `${where} holds more than ${this.#limits.maximumSectionsPerFile} sections (maximumSectionsPerFile)`,
          { limit: this.#limits.maximumSectionsPerFile },
        );
      }
      const header = parseSectionHeader(bytes, at, bytes.length, where);
      this.#parseSection(parent, bytes, at, header, base, where, depth);
      at += header.sizeInBytes;
    }
  }

  #parseSection(
    parent: FileNode | SectionNode,
    stream: Uint8Array,
    at: number,
    header: SectionHeader,
    base: number | null,
    where: string,
    depth: number,
  ): void {
    this.sections++;
    const abs = base === null ? null : base + at;
    const bytes = stream.subarray(at, at + header.sizeInBytes);
    const data = bytes.subarray(header.dataOffset);
    const node: SectionNode = this.#add(parent, {
      kind: 'section',
      section: header,
      compression: null,
      uiName: null,
      version: null,
      crc32: null,
      pe: null,
      parent,
      children: [],
      type: 'Section',
      subtype: header.typeName,
      name: header.guided !== undefined ? header.guided.guid : `${header.typeName} section`,
      text: null,
      offset: abs,
      sizeInBytes: header.sizeInBytes,
      bytes,
      body: data,
      problems: [],
    });
    const dataAbs = abs === null ? null : abs + header.dataOffset;
    try {
      switch (header.type) {
        case EFI_SECTION_COMPRESSION:
          this.#parseCompressed(node, data, dataAbs, where, depth);
          break;
        case EFI_SECTION_GUID_DEFINED:
          this.#parseGuided(node, bytes, data, dataAbs, where, depth);
          break;
        case EFI_SECTION_DISPOSABLE:
          break;
        case EFI_SECTION_FIRMWARE_VOLUME_IMAGE:
          if (this.#parseRawArea(node, data, dataAbs, depth + 1, false) === 0) {
            throw new FormatError(
              'E_SECTION_NO_VOLUME',
              `volume image section at ${abs === null ? 'a decompressed offset' : hex(abs)} holds no firmware volume (${hex(data.length)} bytes) in ${where}`,
              { sizeInBytes: data.length },
            );
          }
          break;
        case EFI_SECTION_RAW:
          // Raw sections may carry volumes (UEFITool parses them as raw areas); the scan is one indexOf.
          this.#parseRawArea(node, data, dataAbs, depth + 1, false);
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
          if (this.#summarizePe) {
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
      this.#fail(node, error, abs);
    }
  }

  #decompressed(output: Uint8Array): Uint8Array {
    this.decompressedSections++;
    this.decompressedBytes += output.length;
    if (this.decompressedBytes > this.#limits.maximumTotalDecompressedSize) {
      throw new FormatError(
        'E_FW_DECOMPRESSED_TOO_LARGE',
        `decompressed data exceeds ${hex(this.#limits.maximumTotalDecompressedSize)} bytes in total (maximumTotalDecompressedSize)`,
        { limit: this.#limits.maximumTotalDecompressedSize },
      );
    }
    return output;
  }

  #decompressLimits(): { maxOutputBytes: number; nativeMaxOutputBytes: number; signal?: AbortSignal } {
    throwIfAborted(this.#signal);
    const left = this.#limits.maximumTotalDecompressedSize - this.decompressedBytes;
    return {
      ...(this.#signal === undefined ? {} : { signal: this.#signal }),
      maxOutputBytes: Math.max(0, Math.min(this.#limits.maximumDecompressedSize, left)),
      nativeMaxOutputBytes: Math.max(
        0,
        Math.min(NATIVE_LZMA_MAX_OUTPUT_BYTES, NATIVE_LZMA_ALLOWANCE_BYTES - this.nativeLzmaBytes),
      ),
    };
  }

  /**
   * Runs one decompressor with the walk's remaining budget. A section that declares more
   * than the total budget has left ends the walk (E_FW_DECOMPRESSED_TOO_LARGE) before
   * anything is allocated: nested bombs are stopped at the first section past the budget.
   */
  #runDecompressor(
    algorithm: string,
    fn: (d: Uint8Array, l: { maxOutputBytes: number; nativeMaxOutputBytes: number }) => Uint8Array,
    data: Uint8Array,
  ): Uint8Array {
    const limits = this.#decompressLimits();
    let output: Uint8Array;
    try {
      output = fn(data, limits);
    } catch (error) {
      const declared = error instanceof FormatError ? Number(error.details['declaredBytes']) : NaN;
      // A size the per-section limit allows but the budget left does not: the walk stops here.
      if (
        error instanceof FormatError &&
        error.code === 'E_DECOMPRESS_TOO_LARGE' &&
        declared <= this.#limits.maximumDecompressedSize
      ) {
        const left = this.#limits.maximumTotalDecompressedSize - this.decompressedBytes;
        throw new FormatError(
          'E_FW_DECOMPRESSED_TOO_LARGE',
          `a ${algorithm} section declares ${hex(declared)} bytes, more than the ${hex(Number(error.details['maxOutputBytes']))} it may take of the ${hex(left)} left of the ${hex(this.#limits.maximumTotalDecompressedSize)}-byte total decompression budget (maximumTotalDecompressedSize) after ${this.decompressedSections} sections: a decompression bomb or an image far larger than any firmware`,
          {
            limit: this.#limits.maximumTotalDecompressedSize,
            declaredBytes: declared,
            leftBytes: left,
            decompressedSections: this.decompressedSections,
          },
          { cause: error },
        );
      }
      throw error;
    }
    if ((algorithm === 'LZMA' || algorithm === 'LZMAF86') && output.length <= limits.nativeMaxOutputBytes) {
      this.nativeLzmaBytes += output.length;
    }
    return this.#decompressed(output);
  }

  #parseCompressed(
    node: SectionNode,
    data: Uint8Array,
    dataAbs: number | null,
    where: string,
    depth: number,
  ): void {
    const compression = node.section.compression as NonNullable<SectionHeader['compression']>;
    if (compression.type === EFI_NOT_COMPRESSED) {
      node.compression = { algorithm: 'None', decoded: true, compressedSize: data.length };
      this.#parseSections(node, data, dataAbs, where, depth + 1);
      return;
    }
    if (compression.type !== EFI_STANDARD_COMPRESSION) {
      node.compression = { algorithm: 'Unknown', decoded: false, compressedSize: data.length };
      throw new FormatError(
        'E_SECTION_BAD_COMPRESSION',
        `compression section at ${dataAbs === null ? 'a decompressed offset' : hex(dataAbs)} has compression type ${compression.type}, expected 0 or 1 in ${where}`,
        { compressionType: compression.type },
      );
    }
    node.compression = { algorithm: 'EFI 1.1', decoded: false, compressedSize: data.length };
    let variant: StandardCompressionVariant = 'efi';
    node.body = this.#runDecompressor(
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
    this.#parseSections(node, node.body, null, where, depth + 1);
  }

  #parseGuided(
    node: SectionNode,
    bytes: Uint8Array,
    data: Uint8Array,
    dataAbs: number | null,
    where: string,
    depth: number,
  ): void {
    const guided = node.section.guided as NonNullable<SectionHeader['guided']>;
    const decode = (
      algorithm: string,
      fn: (d: Uint8Array, l: { maxOutputBytes: number; nativeMaxOutputBytes: number }) => Uint8Array,
    ): void => {
      node.compression = { algorithm, decoded: false, compressedSize: data.length };
      node.body = this.#runDecompressor(algorithm, fn, data);
      node.compression = { algorithm, decoded: true, compressedSize: data.length };
      this.#parseSections(node, node.body, null, where, depth + 1);
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
            `CRC32 section at ${dataAbs === null ? 'a decompressed offset' : hex(dataAbs - node.section.dataOffset)} has DataOffset ${hex(node.section.dataOffset)}, too small for the CRC field in ${where}`,
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
        this.#parseSections(node, data, dataAbs, where, depth + 1);
        return;
      }
      default:
        if ((guided.attributes & EFI_GUIDED_SECTION_PROCESSING_REQUIRED) === 0) {
          // The data is plain sections that a reader may use without the GUID's decoder.
          node.compression = { algorithm: 'None', decoded: true, compressedSize: data.length };
          this.#parseSections(node, data, dataAbs, where, depth + 1);
        } else {
          node.compression = { algorithm: 'Unknown', decoded: false, compressedSize: data.length };
        }
    }
  }
}

/**
 * Parses a firmware image, capsule or bare volume set into a tree.
 * Throws FormatError E_NOT_FIRMWARE when the input has no firmware structure at all; in
 * strict mode any structural problem throws, otherwise it is recorded on the node
 * (`node.problems`, `tree.problems`) and the walk goes on with the rest of the image.
 */
export function parseFirmware(bytes: Uint8Array, options: ParseOptions = {}): FirmwareTree {
  if (!(bytes instanceof Uint8Array)) {
    throw new TypeError(`Expected \`bytes\` to be a Uint8Array, got \`${typeof bytes}\``);
  }
  return new Walker(options).parse(bytes);
}

/**
 * Parses one firmware volume that starts at offset 0 of `bytes` (e.g. a single FV file or a
 * volume image section body).
 */
export function parseFirmwareVolume(bytes: Uint8Array, options: ParseOptions = {}): FirmwareTree {
  parseFirmwareVolumeHeader(bytes, 0, 'input');
  return parseFirmware(bytes, options);
}
