// Walks the containers around the firmware volumes: capsules (UEFI spec 23.2, FMP payloads),
// Intel flash descriptor images (regions) and IFWI images (BPDT partitions). Each hands the
// areas that hold UEFI volumes to the volume walker.
import { capsuleKindOf, capsuleLabel, parseCapsuleHeader } from './capsule.js';
import type { FirmwareNode, ImageFormat, PartitionNode } from './firmware-node.js';
import { findFlashDescriptorSignature, parseFlashDescriptor } from './flash-descriptor.js';
import { BPDT_TYPE_SECONDARY, looksLikeBpdt, parseBpdt, type BpdtEntry } from './ifwi.js';
import type { WalkContext } from './walk-context.js';
import { addPadding, scanVolumes, walkArea } from './walk-volumes.js';

/** What kind of image `bytes` is, by the signatures at its start. */
export function imageFormatOf(bytes: Uint8Array): ImageFormat {
  if (capsuleKindOf(bytes) !== null) return 'capsule';
  if (findFlashDescriptorSignature(bytes) >= 0) return 'intel-descriptor';
  if (looksLikeBpdt(bytes, 0)) return 'bpdt';
  return 'uefi';
}

/** Walks an image of a known format into `parent`. */
export function walkImage(
  ctx: WalkContext,
  parent: FirmwareNode,
  bytes: Uint8Array,
  base: number,
  format: ImageFormat,
  depth: number,
): void {
  switch (format) {
    case 'capsule':
      walkCapsule(ctx, parent, bytes, base, depth);
      return;
    case 'intel-descriptor':
      walkDescriptorImage(ctx, parent, bytes, base, depth);
      return;
    case 'bpdt':
      walkBpdtImage(ctx, parent, bytes, base, depth);
      return;
    case 'uefi':
      walkArea(ctx, parent, bytes, base, depth, true);
  }
}

/** Walks the image a capsule (or one FMP payload of it) carries; a failure is recorded on `node`. */
function walkEnclosedImage(
  ctx: WalkContext,
  node: FirmwareNode,
  body: Uint8Array,
  base: number,
  depth: number,
): void {
  try {
    walkImage(ctx, node, body, base, imageFormatOf(body), depth);
  } catch (error) {
    ctx.fail(node, error, base);
  }
}

// Each walker below takes the same (ctx, parent, bytes, base, depth) as the volume and section
// walkers (walk-volumes.ts, walk-sections.ts): one shape per container kind, not a copy.
function walkCapsule(
  ctx: WalkContext,
  parent: FirmwareNode,
  bytes: Uint8Array,
  base: number,
  depth: number,
): void {
  ctx.checkDepth(depth, 'capsule', base);
  const capsule = parseCapsuleHeader(bytes);
  const node = ctx.add(
    'capsule',
    {
      parent,
      type: 'Capsule',
      subtype: capsule.kind,
      name: capsuleLabel(capsule),
      text: capsule.guid,
      offset: base,
      sizeInBytes: capsule.capsuleSizeInBytes,
      bytes: bytes.subarray(0, capsule.capsuleSizeInBytes),
      body: bytes.subarray(capsule.bodyOffset, capsule.bodyOffset + capsule.bodySizeInBytes),
    },
    { capsule, payload: null },
  );
  if (capsule.fmp === null) {
    walkEnclosedImage(ctx, node, node.body, base + capsule.bodyOffset, depth + 1);
    return;
  }
  for (const payload of capsule.fmp.payloads) {
    const body = bytes.subarray(payload.payloadOffset, payload.payloadOffset + payload.payloadSizeInBytes);
    const sizeInBytes = payload.headerSize + payload.imageSizeInBytes + payload.vendorCodeSizeInBytes;
    const child = ctx.add(
      'capsule',
      {
        parent: node,
        type: 'Capsule',
        subtype: 'FMP payload',
        name: `FMP payload ${payload.index}`,
        text: payload.updateImageTypeId,
        offset: base + payload.offset,
        sizeInBytes,
        bytes: bytes.subarray(payload.offset, payload.offset + sizeInBytes),
        body,
      },
      { capsule, payload },
    );
    walkEnclosedImage(ctx, child, body, base + payload.payloadOffset, depth + 1);
  }
}

function walkDescriptorImage(
  ctx: WalkContext,
  parent: FirmwareNode,
  bytes: Uint8Array,
  base: number,
  depth: number,
): void {
  let descriptor: ReturnType<typeof parseFlashDescriptor>;
  try {
    descriptor = parseFlashDescriptor(bytes);
  } catch (error) {
    // A damaged region table: record it and still find the volumes by scanning.
    ctx.fail(parent, error, base);
    walkArea(ctx, parent, bytes, base, depth + 1, true);
    return;
  }
  let cursor = 0;
  for (const region of descriptor.regions) {
    if (region.offset > cursor) addPadding(ctx, parent, bytes, cursor, region.offset, base);
    const regionBytes = bytes.subarray(region.offset, region.offset + region.sizeInBytes);
    const node = ctx.add(
      'region',
      {
        parent,
        type: 'Region',
        subtype: region.name,
        name: `${region.name} region`,
        offset: base + region.offset,
        sizeInBytes: region.sizeInBytes,
        bytes: regionBytes,
      },
      { region },
    );
    // The BIOS region holds the UEFI volumes; others (ME, GbE, EC...) are listed, not parsed.
    if (region.name === 'BIOS' || region.name === 'BIOS2') {
      try {
        walkArea(ctx, node, regionBytes, base + region.offset, depth + 1, true);
      } catch (error) {
        ctx.fail(node, error, base + region.offset);
      }
    }
    cursor = region.offset + region.sizeInBytes;
  }
  if (cursor < bytes.length) addPadding(ctx, parent, bytes, cursor, bytes.length, base);
}

function walkBpdtImage(
  ctx: WalkContext,
  parent: FirmwareNode,
  bytes: Uint8Array,
  base: number,
  depth: number,
): void {
  const partitions: PartitionNode[] = [];
  const addPartitions = (into: FirmwareNode, entries: readonly BpdtEntry[], level: number): void => {
    for (const entry of [...entries].sort((a, b) => a.offset - b.offset)) {
      if (entry.sizeInBytes === 0) continue;
      const node = ctx.add(
        'partition',
        {
          parent: into,
          type: 'BPDT partition',
          subtype: '',
          name: entry.name,
          offset: base + entry.offset,
          sizeInBytes: entry.sizeInBytes,
          bytes: bytes.subarray(entry.offset, entry.offset + entry.sizeInBytes),
        },
        { partition: entry },
      );
      partitions.push(node);
      // A secondary BPDT (S-BPDT) lists more partitions; offsets are from the IFWI start.
      if (entry.type === BPDT_TYPE_SECONDARY && level < 2 && looksLikeBpdt(bytes, entry.offset)) {
        try {
          addPartitions(node, parseBpdt(bytes, entry.offset, 0).entries, level + 1);
        } catch (error) {
          ctx.fail(node, error, base + entry.offset);
        }
      }
    }
  };
  try {
    addPartitions(parent, parseBpdt(bytes, 0, 0).entries, 0);
  } catch (error) {
    // A damaged table (e.g. a truncated IFWI) still leaves volumes to find by scanning.
    ctx.fail(parent, error, base);
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
  scanVolumes(ctx, bytes, base, depth, holder);
}
