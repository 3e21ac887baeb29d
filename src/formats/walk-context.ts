// The state one firmware walk carries down the tree: its limits and options, the counters
// every limit is checked against (nodes, volumes, files, sections, bytes inflated), the
// problems recorded in non-strict mode, and the decompression budget. One object passed to
// every walker instead of a parameter each.
import { FormatError, OvmfBuildError, throwIfAborted } from '../core/errors.js';
import { hex } from '../core/hex.js';
import { DEFAULT_MAX_OUTPUT_BYTES, NATIVE_LZMA_MAX_OUTPUT_BYTES } from './compression/limits.js';
import {
  createNode,
  nodePath,
  type FirmwareNode,
  type FirmwareProblem,
  type NodeOf,
  type NodePlace,
  type NodeSpecifics,
} from './firmware-node.js';

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

type Limits = { -readonly [K in keyof typeof DEFAULT_LIMITS]: number };

type FormatErrorCode = ConstructorParameters<typeof FormatError>[0];

/** Limits on how many of one thing a container may hold. */
type CountLimit = 'maximumFilesPerVolume' | 'maximumSectionsPerFile' | 'maximumVolumesPerArea';

/** The decompressor's view of the budget: what one call may produce. */
export interface DecompressBudget {
  maxOutputBytes: number;
  nativeMaxOutputBytes: number;
}

/**
 * Scans an area for firmware volumes and walks each (walk-volumes.ts); sections call it for
 * volume-image and raw sections. Passed in so sections need not import volumes, which import
 * sections. Returns the number of volumes found.
 */
export type AreaWalker = (
  ctx: WalkContext,
  parent: FirmwareNode,
  bytes: Uint8Array,
  base: number | null,
  depth: number,
  withPadding: boolean,
) => number;

/** Names an offset in a message: absolute in the input, or inside decompressed data. */
export function describeOffset(offset: number | null): string {
  return offset === null ? 'a decompressed offset' : hex(offset);
}

// Offsets can pass 2^31 in big inputs: no 32-bit bitwise alignment.
export function alignUp(value: number, alignment: number): number {
  return Math.ceil(value / alignment) * alignment;
}
export function alignDown(value: number, alignment: number): number {
  return Math.floor(value / alignment) * alignment;
}

export class WalkContext {
  readonly limits: Readonly<Limits>;
  readonly strict: boolean;
  readonly verifyChecksums: boolean;
  readonly summarizePe: boolean;
  readonly signal: AbortSignal | undefined;
  readonly walkArea: AreaWalker;
  readonly problems: FirmwareProblem[] = [];
  nodes = 0;
  volumes = 0;
  files = 0;
  sections = 0;
  decompressedSections = 0;
  decompressedBytes = 0;
  /** LZMA output decoded natively so far (it costs more memory than its size, see below). */
  nativeLzmaBytes = 0;

  constructor(options: ParseOptions, walkArea: AreaWalker) {
    const limits: Limits = { ...DEFAULT_LIMITS };
    for (const key of Object.keys(DEFAULT_LIMITS) as (keyof Limits)[]) {
      const value = options[key];
      if (value !== undefined) {
        if (!Number.isSafeInteger(value) || value < 1) {
          throw new TypeError(`Expected \`${key}\` to be a positive integer, got \`${String(value)}\``);
        }
        limits[key] = value;
      }
    }
    this.limits = limits;
    this.strict = options.strict ?? false;
    this.verifyChecksums = options.verifyChecksums ?? true;
    this.summarizePe = options.summarizePe ?? true;
    this.signal = options.signal;
    this.walkArea = walkArea;
    throwIfAborted(this.signal);
  }

  /** Creates a node, counts it against maximumNodes and links it under its parent. */
  add<K extends FirmwareNode['kind']>(kind: K, place: NodePlace, specifics: NodeSpecifics<K>): NodeOf<K> {
    this.nodes++;
    if (this.nodes % 4096 === 0) throwIfAborted(this.signal);
    if (this.nodes > this.limits.maximumNodes) {
      throw new FormatError(
        'E_FW_TOO_MANY_NODES',
        `image has more than ${this.limits.maximumNodes} nodes (maximumNodes)`,
        {
          limit: this.limits.maximumNodes,
        },
      );
    }
    const node = createNode(kind, place, specifics);
    place.parent?.children.push(node);
    return node;
  }

  /** Records (or, in strict mode, throws) a failure inside `node`; the walk goes on elsewhere. */
  fail(node: FirmwareNode, error: unknown, offset: number | null): void {
    if (!(error instanceof OvmfBuildError)) throw error;
    // Limits are global: carrying on after one would only hit it again.
    if (
      this.strict ||
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

  checkDepth(depth: number, what: string, offset: number | null): void {
    if (depth > this.limits.maximumNestingDepth) {
      throw new FormatError(
        'E_FW_TOO_DEEP',
        `${what} at ${describeOffset(offset)} is nested ${depth} levels deep (maximumNestingDepth ${this.limits.maximumNestingDepth})`,
        { depth, limit: this.limits.maximumNestingDepth },
      );
    }
  }

  /** Throws `code` when `holder` (e.g. "volume X") holds more than the limit of `things`. */
  checkCount(count: number, limit: CountLimit, code: FormatErrorCode, holder: string, things: string): void {
    if (count > this.limits[limit]) {
      throw new FormatError(code, `${holder} holds more than ${this.limits[limit]} ${things} (${limit})`, {
        limit: this.limits[limit],
      });
    }
  }

  #decompressed(output: Uint8Array): Uint8Array {
    this.decompressedSections++;
    this.decompressedBytes += output.length;
    if (this.decompressedBytes > this.limits.maximumTotalDecompressedSize) {
      throw new FormatError(
        'E_FW_DECOMPRESSED_TOO_LARGE',
        `decompressed data exceeds ${hex(this.limits.maximumTotalDecompressedSize)} bytes in total (maximumTotalDecompressedSize)`,
        { limit: this.limits.maximumTotalDecompressedSize },
      );
    }
    return output;
  }

  #decompressLimits(): DecompressBudget & { signal?: AbortSignal } {
    throwIfAborted(this.signal);
    const left = this.limits.maximumTotalDecompressedSize - this.decompressedBytes;
    return {
      ...(this.signal === undefined ? {} : { signal: this.signal }),
      maxOutputBytes: Math.max(0, Math.min(this.limits.maximumDecompressedSize, left)),
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
  runDecompressor(
    algorithm: string,
    fn: (d: Uint8Array, l: DecompressBudget) => Uint8Array,
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
        declared <= this.limits.maximumDecompressedSize
      ) {
        const left = this.limits.maximumTotalDecompressedSize - this.decompressedBytes;
        throw new FormatError(
          'E_FW_DECOMPRESSED_TOO_LARGE',
          `a ${algorithm} section declares ${hex(declared)} bytes, more than the ${hex(Number(error.details['maxOutputBytes']))} it may take of the ${hex(left)} left of the ${hex(this.limits.maximumTotalDecompressedSize)}-byte total decompression budget (maximumTotalDecompressedSize) after ${this.decompressedSections} sections: a decompression bomb or an image far larger than any firmware`,
          {
            limit: this.limits.maximumTotalDecompressedSize,
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
}
