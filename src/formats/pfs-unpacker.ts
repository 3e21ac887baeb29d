// Dell PFS as one layer of the outside-in package chain (src/vendor/registry.ts lists it): the
// updater .exe (or a raw PFS volume) in, its payloads out, named by their PFS path. The shape is
// src/vendor/unpacker.ts's Unpacker, written structurally so the parsers import nothing from
// the layer above them (STYLE.md: dependencies point one way).
import { FormatError } from '../core/errors.js';
import { hex } from '../core/hex.js';
import { dellPfsConfidence, dellPfsPayloads, parseDellPfs } from './pfs.js';

/** The bounds of the package chain this layer obeys (a subset of src/vendor's PackageLimits). */
export interface PfsLayerLimits {
  readonly maxTotalBytes: number;
  readonly maxEntryBytes: number;
  readonly maxEntries: number;
  readonly maxDepth: number;
}

/** PFS volumes nest at most this deep inside one package layer, whatever the chain allows. */
const MAXIMUM_PFS_NESTING = 4;

export const dellPfsUnpacker = {
  name: 'Dell PFS',
  detect: dellPfsConfidence,
  /**
   * The payload entries of every PFS volume in `bytes`, nested volumes flattened into paths
   * ("Firmware/2 Dell TB16 TI v1.2.11 Port Controller 1 v0.1.2.11"). Throws the parser's
   * E_PFS_* codes; E_PFS_TOO_LARGE when one payload passes maxEntryBytes.
   */
  unpack(
    bytes: Uint8Array,
    context: { readonly limits: PfsLayerLimits; readonly unpackedBytes: number },
  ): { name: string; bytes: Uint8Array }[] {
    const { limits } = context;
    const volumes = parseDellPfs(bytes, {
      maxDepth: Math.max(1, Math.min(MAXIMUM_PFS_NESTING, limits.maxDepth)),
      maxEntries: Math.max(1, limits.maxEntries),
      maxInflatedBytes: Math.max(1, limits.maxTotalBytes - context.unpackedBytes),
    });
    const payloads = dellPfsPayloads(volumes);
    for (const payload of payloads) {
      if (payload.bytes.length > limits.maxEntryBytes) {
        throw new FormatError(
          'E_PFS_TOO_LARGE',
          `Dell PFS payload "${payload.name}" has ${hex(payload.bytes.length)} bytes, more than maxEntryBytes ${hex(limits.maxEntryBytes)}`,
          { name: payload.name, sizeInBytes: payload.bytes.length, limit: limits.maxEntryBytes },
        );
      }
    }
    return payloads.map((p) => ({ name: p.name, bytes: p.bytes }));
  },
};
