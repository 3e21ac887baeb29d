// Intel IFWI Boot Partition Descriptor Table (BPDT), as used by Apollo/Gemini Lake images
// (layout as UEFITool's bpdt.h; Intel does not publish the spec).
//
//   typedef struct {
//     UINT32 Signature;          // 0x000055AA (green) or 0x00AA55AA (yellow)
//     UINT16 NumEntries;
//     UINT16 HeaderVersion;
//     UINT32 RedundantBlockXorChecksum;
//     UINT32 IfwiVersion;
//     UINT64 FitToolVersion;
//   } BPDT_HEADER;                 // 24 bytes
//   typedef struct { UINT16 Type; UINT16 Flags; UINT32 Offset; UINT32 Size; } BPDT_ENTRY;  // 12 bytes
import { FormatError } from '../core/errors.js';
import { hex } from '../core/hex.js';
import { u32 } from './le-bytes.js';

export const BPDT_GREEN_SIGNATURE = 0x0000_55aa;
export const BPDT_YELLOW_SIGNATURE = 0x00aa_55aa;
export const BPDT_HEADER_SIZE = 24;
export const BPDT_ENTRY_SIZE = 12;
/** More entries than partition types exist is hostile. */
export const MAXIMUM_BPDT_ENTRIES = 64;
/** Entry type 5: a secondary BPDT inside the partition. */
export const BPDT_TYPE_SECONDARY = 5;

const ENTRY_NAMES: readonly string[] = [
  'OEM SMIP',
  'CSE RBE',
  'CSE BUP',
  'uCode',
  'IBB',
  'S-BPDT',
  'OBB',
  'CSE Main',
  'ISH',
  'CSE IDLM',
  'IFP Override',
  'Debug Tokens',
  'USF Phy Config',
  'USF GPP LUN ID',
  'PMC',
  'iUnit',
  'NVM Config',
  'UEP',
  'WLAN uCode',
  'LOCL Sprites',
  'OEM Key Manifest',
  'Defaults',
  'PAVP',
  'TCSS FW IOM',
  'TCSS FW PHY',
  'TBT',
  'USB PHY',
  'PCHC',
  'Sample',
];

export interface BpdtEntry {
  readonly type: number;
  readonly name: string;
  readonly flags: number;
  /** Offset from the start of the image that holds the (primary) BPDT. */
  readonly offset: number;
  readonly sizeInBytes: number;
}

export interface BpdtTable {
  readonly offset: number;
  readonly signature: number;
  readonly version: number;
  readonly entries: readonly BpdtEntry[];
  /** End of the furthest partition: the extent of the BPDT region. */
  readonly endOffset: number;
}

/** True when a BPDT header starts at `offset`. Never throws. */
export function looksLikeBpdt(bytes: Uint8Array, offset = 0): boolean {
  if (offset + BPDT_HEADER_SIZE > bytes.length) return false;
  const signature = u32(bytes, offset);
  return signature === BPDT_GREEN_SIGNATURE || signature === BPDT_YELLOW_SIGNATURE;
}

/**
 * Parses the BPDT at `offset`. Entry offsets are relative to `base` (the start of the
 * IFWI for the primary table and for S-BPDT entries alike, as in UEFITool). Empty entries
 * (size 0) are kept; an entry that runs past the image is a FormatError.
 */
export function parseBpdt(bytes: Uint8Array, offset = 0, base = 0): BpdtTable {
  if (!looksLikeBpdt(bytes, offset)) {
    throw new FormatError('E_BPDT_BAD_SIGNATURE', `no BPDT signature at ${hex(offset)}`, { offset });
  }
  const signature = u32(bytes, offset);
  const count = (bytes[offset + 4] as number) | ((bytes[offset + 5] as number) << 8);
  const version = (bytes[offset + 6] as number) | ((bytes[offset + 7] as number) << 8);
  if (count > MAXIMUM_BPDT_ENTRIES || offset + BPDT_HEADER_SIZE + count * BPDT_ENTRY_SIZE > bytes.length) {
    throw new FormatError(
      'E_BPDT_BAD_COUNT',
      `BPDT at ${hex(offset)} claims ${count} entries (limit ${MAXIMUM_BPDT_ENTRIES}), ${hex(bytes.length - offset - BPDT_HEADER_SIZE)} bytes remain`,
      { offset, count },
    );
  }
  const entries: BpdtEntry[] = [];
  let endOffset = offset + BPDT_HEADER_SIZE + count * BPDT_ENTRY_SIZE;
  for (let i = 0; i < count; i++) {
    const at = offset + BPDT_HEADER_SIZE + i * BPDT_ENTRY_SIZE;
    const type = (bytes[at] as number) | ((bytes[at + 1] as number) << 8);
    const flags = (bytes[at + 2] as number) | ((bytes[at + 3] as number) << 8);
    const entryOffset = base + u32(bytes, at + 4);
    const sizeInBytes = u32(bytes, at + 8);
    if (sizeInBytes !== 0 && entryOffset + sizeInBytes > bytes.length) {
      throw new FormatError(
        'E_BPDT_BAD_ENTRY',
        `BPDT entry ${i} (${ENTRY_NAMES[type] ?? `type ${type}`}) at ${hex(at)} claims ${hex(sizeInBytes)} bytes at ${hex(entryOffset)}, only ${hex(Math.max(bytes.length - entryOffset, 0))} remain`,
        { offset: at, entryOffset, sizeInBytes },
      );
    }
    if (sizeInBytes !== 0) endOffset = Math.max(endOffset, entryOffset + sizeInBytes);
    entries.push({
      type,
      name: ENTRY_NAMES[type] ?? `BPDT type ${type}`,
      flags,
      offset: entryOffset,
      sizeInBytes,
    });
  }
  return { offset, signature, version, entries, endOffset };
}
