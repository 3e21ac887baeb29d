// The outside-in loop: what the user downloaded is unpacked layer by layer (zip, 7z, cab,
// self-extracting archive, and the pure parsers of src/formats registered in registry.ts)
// until each piece is a UEFI image (what src/formats parses) or nothing known. Every layer
// is bounded (PackageLimits); every piece remembers the chain of layers it came out of.
import { FormatError, OvmfBuildError } from '../core/errors.js';
import { detectFileKind, type FileKind } from '../formats/detect.js';
import { childBytes } from './limits.js';
import { UNPACKERS } from './registry.js';
import { DEFAULT_PACKAGE_LIMITS, type PackageLimits, type Unpacker } from './unpacker.js';

/** One layer a piece came out of: the package format and the piece's name in it. */
export interface ChainStep {
  readonly format: string;
  readonly entry: string;
}

/** A piece that may hold firmware: a UEFI image, capsule, option ROM, or a PE to try. */
export interface PackageLeaf {
  readonly steps: readonly ChainStep[];
  readonly bytes: Uint8Array;
  readonly kind: FileKind;
}

/** A piece that holds nothing known, or a guessed layer that did not unpack, and why. */
export interface SkippedPiece {
  readonly steps: readonly ChainStep[];
  readonly sizeInBytes: number;
  readonly reason: string;
}

export interface UnpackedPackage {
  /** Package layers unpacked on the longest path; 0 when the input is not a package. */
  readonly layers: number;
  readonly leaves: readonly PackageLeaf[];
  readonly skipped: readonly SkippedPiece[];
  readonly unpackedBytes: number;
}

export interface UnpackPackageOptions {
  /** Shown in messages for the input itself (its file name). */
  readonly name: string;
  readonly limits?: Partial<PackageLimits>;
  readonly unpackers?: readonly Unpacker[];
  readonly signal?: AbortSignal | undefined;
}

/**
 * Kinds a guessed unpacker (confidence below 1) may be tried on. 'image' is in: a stub (PE,
 * ELF) with an archive appended can show an _FVH by chance in its compressed bytes; a guess
 * that fails leaves the piece to the firmware parser. 'dell-pfs' is in: PFS zlib sections
 * after other bytes (not at 0) are only a guess, and nothing but the PFS layer reads them.
 */
const GUESSABLE_KINDS: ReadonlySet<FileKind> = new Set(['unknown', 'pe', 'image', 'dell-pfs']);
/** Kinds src/formats extracts from; 'pe' too (a vendor updater can carry the volumes). */
const FIRMWARE_KINDS: ReadonlySet<FileKind> = new Set(['image', 'capsule', 'option-rom', 'pe']);

/** "zip > 7z" for a list of steps: the formats, outside-in. */
export function formatChain(steps: readonly ChainStep[]): string {
  return steps.map((s) => s.format).join(' > ');
}

/** "zip:BIOS/X.cap > 7z:x.bin": formats with the entry names, for messages. */
export function describeSteps(steps: readonly ChainStep[]): string {
  if (steps.length === 0) return 'the file itself';
  return steps.map((s) => `${s.format}:${s.entry}`).join(' > ');
}

function bestUnpacker(
  bytes: Uint8Array,
  unpackers: readonly Unpacker[],
): { unpacker: Unpacker; confidence: number } | null {
  let best: { unpacker: Unpacker; confidence: number } | null = null;
  for (const unpacker of unpackers) {
    const confidence = unpacker.detect(bytes);
    if (confidence > 0 && (best === null || confidence > best.confidence)) best = { unpacker, confidence };
  }
  return best;
}

function skipReason(kind: FileKind): string {
  return kind === 'vbt' ? 'a VBT on its own (give it to --vbt)' : 'not a UEFI image or a known package';
}

/**
 * Unpacks `bytes` outside-in. A signature-certain package (confidence 1) is unpacked even
 * when its bytes also show firmware structure (a stored zip shows the _FVH of what it holds);
 * a guess (below 1) only for GUESSABLE_KINDS (not capsules, option ROMs, VBTs), and a guess that fails
 * is recorded as skipped, not thrown. Throws E_PACKAGE_* on damage or a crossed bound.
 */
export async function unpackPackage(
  bytes: Uint8Array,
  options: UnpackPackageOptions,
): Promise<UnpackedPackage> {
  const limits: PackageLimits = { ...DEFAULT_PACKAGE_LIMITS, ...options.limits };
  const unpackers = options.unpackers ?? UNPACKERS;
  const leaves: PackageLeaf[] = [];
  const skipped: SkippedPiece[] = [];
  let unpackedBytes = 0;
  let layers = 0;
  let pieces = 0;

  const visit = async (piece: Uint8Array, steps: readonly ChainStep[]): Promise<void> => {
    options.signal?.throwIfAborted();
    const where = steps.length === 0 ? options.name : `${options.name} > ${describeSteps(steps)}`;
    const kind = detectFileKind(piece);
    const best = bestUnpacker(piece, unpackers);
    if (best !== null && (best.confidence >= 1 || GUESSABLE_KINDS.has(kind))) {
      if (steps.length >= limits.maxDepth) {
        throw new FormatError(
          'E_PACKAGE_TOO_DEEP',
          `${where}: a ${best.unpacker.name} ${steps.length} packages deep, more than the limit of ${limits.maxDepth}`,
          { where, depth: steps.length + 1, limit: limits.maxDepth },
        );
      }
      let children;
      try {
        children = await best.unpacker.unpack(piece, {
          limits,
          unpackedBytes,
          where,
          signal: options.signal,
        });
      } catch (error) {
        if (best.confidence >= 1 || !(error instanceof OvmfBuildError) || error.code === 'E_ABORTED')
          throw error;
        skipped.push({
          steps,
          sizeInBytes: piece.length,
          reason: `looked like a ${best.unpacker.name} but ${error.message}`,
        });
        if (FIRMWARE_KINDS.has(kind)) leaves.push({ steps, bytes: piece, kind });
        return;
      }
      unpackedBytes += childBytes(children);
      if (unpackedBytes > limits.maxTotalBytes) {
        throw new FormatError(
          'E_PACKAGE_TOO_LARGE',
          `${where}: the package unpacks to more than the limit of ${limits.maxTotalBytes} bytes in all`,
          { where, sizeInBytes: unpackedBytes, limit: limits.maxTotalBytes },
        );
      }
      pieces += children.length;
      if (pieces > limits.maxPieces) {
        throw new FormatError(
          'E_PACKAGE_TOO_MANY_ENTRIES',
          `${where}: the package holds more than the limit of ${limits.maxPieces} pieces in all its layers`,
          { where, entries: pieces, limit: limits.maxPieces },
        );
      }
      layers = Math.max(layers, steps.length + 1);
      if (children.length === 0)
        skipped.push({ steps, sizeInBytes: piece.length, reason: `an empty ${best.unpacker.name}` });
      for (const child of children) {
        await visit(child.bytes, [
          ...steps,
          { format: child.format ?? best.unpacker.name, entry: child.name },
        ]);
      }
      // A guess that unpacked may still have been wrong about the whole (a vendor updater .exe
      // that carries both an unrelated archive and the firmware volumes): the piece is tried too.
      if (best.confidence < 1 && FIRMWARE_KINDS.has(kind)) leaves.push({ steps, bytes: piece, kind });
      return;
    }
    if (FIRMWARE_KINDS.has(kind)) leaves.push({ steps, bytes: piece, kind });
    else skipped.push({ steps, sizeInBytes: piece.length, reason: skipReason(kind) });
  };

  await visit(bytes, []);
  return { layers, leaves, skipped, unpackedBytes };
}
