// Which piece of an unpacked package to take the GOP and VBT from, and the chain that says
// how it was reached: the package layers (unpack-package.ts), then the layers inside the
// UEFI image down to the GOP (capsule, flash descriptor, region, FV, compression), e.g.
// "zip > capsule > flash descriptor > BIOS region > FV > LZMA > GOP".
import { NotFoundError, OvmfBuildError } from '../core/errors.js';
import type { FirmwareNode, FirmwareTree } from '../formats/firmware-node.js';
import { parseFirmware } from '../formats/firmware-tree.js';
import { classifyGopDriver } from '../formats/gop.js';
import { locateGopAndVbt, type LocateResult } from '../formats/locate.js';
import { extractFromOptionRom } from '../formats/option-rom-extract.js';
import { describeSteps, formatChain, type PackageLeaf, type UnpackedPackage } from './unpack-package.js';

const IMAGE_FORMAT_LABELS: Readonly<Record<string, string | null>> = {
  'intel-descriptor': 'flash descriptor',
  bpdt: 'IFWI (BPDT)',
  uefi: null,
  capsule: null,
};

/** The layers inside a parsed image from its root down to `node` (the GOP's PE32 section). */
export function imageChain(node: FirmwareNode): string[] {
  const out: string[] = [];
  for (let n: FirmwareNode | null = node.parent; n !== null; n = n.parent) {
    if (n.kind === 'image') {
      const label = IMAGE_FORMAT_LABELS[n.format];
      if (label !== null && label !== undefined) out.push(label);
    } else if (n.kind === 'capsule') out.push(n.name);
    else if (n.kind === 'region') out.push(n.name);
    else if (n.kind === 'partition') out.push(`${n.name} partition`);
    else if (n.kind === 'volume') out.push('FV');
    else if (n.kind === 'section' && n.compression !== null && n.compression.decoded) {
      if (n.compression.algorithm !== 'None' && n.compression.algorithm !== 'CRC32')
        out.push(n.compression.algorithm);
    }
  }
  return out.reverse();
}

/** What one piece of the package turned out to hold. */
export interface PieceOutcome {
  /** "zip > 7z", the package layers around the piece. */
  readonly chain: string;
  /** "zip:BIOS/X.cap > 7z:x.bin", with entry names. */
  readonly path: string;
  readonly sizeInBytes: number;
  readonly outcome: string;
}

export interface PackageChoice {
  /** The piece to extract from. */
  readonly leaf: PackageLeaf;
  /** The whole chain down to the GOP, outside-in; ends in "GOP", or in the image when it has none. */
  readonly chain: readonly string[];
  readonly pieces: readonly PieceOutcome[];
}

function outcomeOf(
  leaf: PackageLeaf,
  signal: AbortSignal | undefined,
): { outcome: string; hasGop: boolean; inner: string[] | null } {
  if (leaf.kind === 'option-rom') {
    try {
      const rom = extractFromOptionRom(leaf.bytes, signal === undefined ? {} : { signal });
      return rom.gop === null
        ? { outcome: 'a PCI option ROM without an Intel GOP driver', hasGop: false, inner: ['option ROM'] }
        : {
            outcome: 'a PCI option ROM with an Intel GOP driver',
            hasGop: true,
            inner: ['option ROM', 'GOP'],
          };
    } catch (error) {
      if (error instanceof OvmfBuildError && error.code === 'E_ABORTED') throw error;
      return { outcome: `a damaged PCI option ROM: ${(error as Error).message}`, hasGop: false, inner: null };
    }
  }
  if (leaf.kind === 'pe') {
    const gop = classifyGopDriver(leaf.bytes);
    if (gop.isGop)
      return { outcome: 'an Intel GOP driver on its own (give it to --gop)', hasGop: false, inner: null };
  }
  let tree: FirmwareTree;
  let located: LocateResult;
  try {
    tree = parseFirmware(leaf.bytes, {
      verifyChecksums: false,
      summarizePe: false,
      ...(signal === undefined ? {} : { signal }),
    });
    located = locateGopAndVbt(tree);
  } catch (error) {
    // An interruption is no property of the piece.
    if (error instanceof OvmfBuildError && error.code === 'E_ABORTED') throw error;
    if (error instanceof OvmfBuildError && error.code === 'E_NOT_FIRMWARE') {
      return {
        outcome: leaf.kind === 'pe' ? 'a program (PE) with no firmware volume' : 'no firmware volume',
        hasGop: false,
        inner: null,
      };
    }
    return {
      outcome: `firmware that does not parse: ${(error as Error).message}`,
      hasGop: false,
      inner: null,
    };
  }
  const root = tree.format === 'uefi' ? 'UEFI image' : (IMAGE_FORMAT_LABELS[tree.format] ?? tree.format);
  if (located.gop === null) {
    return {
      outcome: `a ${root} without an Intel GOP driver (${tree.stats.volumes} volume(s), ${tree.stats.files} file(s)${located.vbt === null ? '' : ', a VBT'})`,
      hasGop: false,
      inner: [root],
    };
  }
  return {
    outcome: `a ${root} with an Intel GOP driver`,
    hasGop: true,
    inner: [...imageChain(located.gop.section), 'GOP'],
  };
}

/**
 * Picks the first piece (package order) that holds an Intel GOP driver; failing that, the
 * first that is a firmware image (extract then reports its VBT and the missing GOP). Throws
 * E_PACKAGE_NO_GOP, naming every piece and what it was, when no piece is firmware at all.
 */
export function choosePackagePiece(
  unpacked: UnpackedPackage,
  name: string,
  /** Checked between the parser's steps (the pieces are parsed synchronously). */
  signal?: AbortSignal,
): PackageChoice {
  const pieces: PieceOutcome[] = unpacked.skipped.map((s) => ({
    chain: formatChain(s.steps),
    path: describeSteps(s.steps),
    sizeInBytes: s.sizeInBytes,
    outcome: s.reason,
  }));
  let withGop: PackageChoice | null = null;
  let firmware: PackageChoice | null = null;
  for (const leaf of unpacked.leaves) {
    const { outcome, hasGop, inner } = outcomeOf(leaf, signal);
    pieces.push({
      chain: formatChain(leaf.steps),
      path: describeSteps(leaf.steps),
      sizeInBytes: leaf.bytes.length,
      outcome,
    });
    if (inner === null) continue;
    const choice = { leaf, chain: [...leaf.steps.map((s) => s.format), ...inner], pieces };
    if (hasGop && withGop === null) withGop = choice;
    if (firmware === null) firmware = choice;
  }
  const chosen = withGop ?? firmware;
  if (chosen !== null) return chosen;
  const listing = pieces.map((p) => `${p.path}: ${p.outcome}`).join('; ');
  throw new NotFoundError(
    'E_PACKAGE_NO_GOP',
    `${name} is a vendor package with no Intel GOP driver and no firmware image inside: ${listing}`,
    {
      path: name,
      pieces,
    },
  );
}
