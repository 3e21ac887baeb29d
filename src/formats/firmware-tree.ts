// The firmware image walker: turns an image (Intel flash descriptor image, IFWI/BPDT image,
// bare UEFI image, capsule) into a tree of regions, volumes, FFS files and sections, the way
// UEFITool/UEFIExtract presents it, and walks the tree. Takes bytes, returns values; no I/O.
// The node model is firmware-node.ts; the walkers are walk-images.ts (containers),
// walk-volumes.ts (volumes and files) and walk-sections.ts, sharing one WalkContext.
//
// Every buffer a node points at is a view into the input or into one decompressed output:
// nothing is copied. Offsets are absolute (from the start of the input) where the bytes are
// in the input, and null inside decompressed data, as UEFIExtract prints "N/A".
import { FormatError } from '../core/errors.js';
import { hex } from '../core/hex.js';
import type { FileNode, FirmwareNode, FirmwareTree, ImageFormat } from './firmware-node.js';
import { parseFirmwareVolumeHeader } from './firmware-volume.js';
import { WalkContext, type ParseOptions } from './walk-context.js';
import { imageFormatOf, walkImage } from './walk-images.js';
import { walkArea } from './walk-volumes.js';

/** UEFIExtract's Subtype of the root node for each image format. */
const IMAGE_SUBTYPES: Readonly<Record<ImageFormat, string>> = {
  capsule: 'Capsule',
  'intel-descriptor': 'Intel',
  bpdt: 'UEFI',
  uefi: 'UEFI',
};

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
  const ctx = new WalkContext(options, walkArea);
  const format = imageFormatOf(bytes);
  const subtype = IMAGE_SUBTYPES[format];
  const root = ctx.add(
    'image',
    { parent: null, type: 'Image', subtype, name: `${subtype} image`, offset: 0, bytes },
    { format },
  );
  walkImage(ctx, root, bytes, 0, format, 0);
  if (ctx.volumes === 0 && format === 'uefi') {
    throw new FormatError(
      'E_NOT_FIRMWARE',
      `no firmware structure found: no capsule header, flash descriptor or firmware volume (_FVH) in ${hex(bytes.length)} bytes`,
      { sizeInBytes: bytes.length, format },
    );
  }
  return {
    root,
    format,
    problems: ctx.problems,
    stats: {
      volumes: ctx.volumes,
      files: ctx.files,
      sections: ctx.sections,
      decompressedSections: ctx.decompressedSections,
      decompressedBytes: ctx.decompressedBytes,
    },
  };
}

/**
 * Parses one firmware volume that starts at offset 0 of `bytes` (e.g. a single FV file or a
 * volume image section body).
 */
export function parseFirmwareVolume(bytes: Uint8Array, options: ParseOptions = {}): FirmwareTree {
  parseFirmwareVolumeHeader(bytes, 0, 'input');
  return parseFirmware(bytes, options);
}
