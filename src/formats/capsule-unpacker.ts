// A capsule as one layer of the outside-in package chain (src/vendor/registry.ts lists it), for
// the capsules whose body is not a UEFI image: Dell's LVFS TPM capsule carries a PE updater with
// a Dell PFS inside, others a zip or an option ROM. Their body goes back through the whole
// registry (zip > capsule > PFS > FV ...). A capsule whose every body is a UEFI image is left to
// the image parser (walk-images.ts), which names the capsule, its FMP payloads and what is under
// them in the chain. Written structurally (src/vendor/unpacker.ts's Unpacker) so the parsers
// import nothing from the layer above them (STYLE.md: dependencies point one way).
import { FormatError } from '../core/errors.js';
import { hex } from '../core/hex.js';
import { capsuleKindOf, capsuleLabel, parseCapsuleHeader, type CapsuleHeader } from './capsule.js';
import { detectFileKind } from './detect.js';

/** The bounds of the package chain this layer obeys (a subset of src/vendor's PackageLimits). */
export interface CapsuleLayerLimits {
  readonly maxEntryBytes: number;
  readonly maxEntries: number;
}

/** Capsules inside capsules that detect looks through before it stops and says "a layer". */
const MAXIMUM_DETECT_NESTING = 4;

/** The other unpackers' detections, asked about a capsule's body (the registry passes them). */
export type BodyClaims = () => readonly { detect(bytes: Uint8Array): number }[];

interface CapsuleBody {
  readonly name: string;
  readonly bytes: Uint8Array;
}

function parsed(bytes: Uint8Array): CapsuleHeader | null {
  if (capsuleKindOf(bytes) === null) return null;
  try {
    return parseCapsuleHeader(bytes);
  } catch {
    // A damaged header is the image parser's to report, with its own E_CAPSULE_* code.
    return null;
  }
}

/** The images a capsule carries: its body, or each FMP payload past its authentication. */
function bodiesOf(bytes: Uint8Array, capsule: CapsuleHeader): CapsuleBody[] {
  if (capsule.fmp === null) {
    const end = capsule.bodyOffset + capsule.bodySizeInBytes;
    return [{ name: `image at ${hex(capsule.bodyOffset)}`, bytes: bytes.subarray(capsule.bodyOffset, end) }];
  }
  return capsule.fmp.payloads.map((p) => ({
    name: `FMP payload ${p.index} ${p.updateImageTypeId}`,
    bytes: bytes.subarray(p.payloadOffset, p.payloadOffset + p.payloadSizeInBytes),
  }));
}

/**
 * Whether some body of the capsule in `bytes` is not a UEFI image for the image parser: another
 * kind (a PE, option ROM, VBT, unknown bytes), a package another unpacker is certain of (a
 * stored zip shows the _FVH of what it holds), or a capsule that itself needs this layer.
 */
function needsLayer(bytes: Uint8Array, others: BodyClaims, depth: number): boolean {
  const capsule = parsed(bytes);
  if (capsule === null) return false;
  for (const body of bodiesOf(bytes, capsule)) {
    const kind = detectFileKind(body.bytes);
    if (kind === 'capsule') {
      if (depth >= MAXIMUM_DETECT_NESTING || needsLayer(body.bytes, others, depth + 1)) return true;
      continue;
    }
    if (kind !== 'image') return true;
    if (others().some((u) => u.detect(body.bytes) >= 1)) return true;
  }
  return false;
}

/**
 * The capsule layer. `others` gives the registry's other unpackers (a thunk: the registry lists
 * this layer too). The chain names each child by the capsule's label ("AMI Aptio signed capsule",
 * "unknown capsule GUID <guid>"), as the image parser names the capsule nodes it walks.
 */
export function capsuleUnpacker(others: BodyClaims): {
  readonly name: string;
  detect(bytes: Uint8Array): number;
  unpack(
    bytes: Uint8Array,
    context: { readonly limits: CapsuleLayerLimits; readonly where: string },
  ): { name: string; format: string; bytes: Uint8Array }[];
} {
  return {
    name: 'capsule',
    /** 1 (the header is a signature, or fits the file exactly) when a body needs the chain, else 0. */
    detect: (bytes) => (needsLayer(bytes, others, 0) ? 1 : 0),
    /**
     * The capsule's bodies. Throws the parser's E_CAPSULE_* codes on a damaged header,
     * E_PACKAGE_TOO_LARGE when a body passes maxEntryBytes and E_PACKAGE_TOO_MANY_ENTRIES when
     * the payloads pass maxEntries.
     */
    unpack(bytes, context) {
      const capsule = parseCapsuleHeader(bytes);
      const format = capsuleLabel(capsule);
      const bodies = bodiesOf(bytes, capsule);
      const { maxEntries, maxEntryBytes } = context.limits;
      if (bodies.length > maxEntries) {
        throw new FormatError(
          'E_PACKAGE_TOO_MANY_ENTRIES',
          `${context.where}: the ${format} holds ${bodies.length} payloads, more than the limit of ${maxEntries}`,
          { where: context.where, format, entries: bodies.length, limit: maxEntries },
        );
      }
      for (const body of bodies) {
        if (body.bytes.length > maxEntryBytes) {
          throw new FormatError(
            'E_PACKAGE_TOO_LARGE',
            `${context.where}: ${format} ${body.name} has ${body.bytes.length} bytes, more than the limit of ${maxEntryBytes} bytes per entry`,
            {
              where: context.where,
              format,
              entry: body.name,
              sizeInBytes: body.bytes.length,
              limit: maxEntryBytes,
            },
          );
        }
      }
      return bodies.map((b) => ({ name: b.name, format, bytes: b.bytes }));
    },
  };
}
