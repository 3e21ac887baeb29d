// Intel Video BIOS Table (VBT): the VBT header and the BDB (BIOS Data Block) header
// as laid out in Linux drivers/gpu/drm/i915/display/intel_vbt_defs.h (struct
// vbt_header, struct bdb_header), then a bounded walk over the BDB blocks.
import { FormatError, isOvmfBuildError } from '../core/errors.js';
import { sha256 } from '../core/digest.js';
import { hex } from '../core/hex.js';

export interface VbtBlock {
  readonly id: number;
  /** Offset of the block's 3-byte header (id u8, size u16) from the start of the VBT. */
  readonly offset: number;
  /** Size of the block data after its header. */
  readonly sizeInBytes: number;
}

export interface VbtInfo {
  /** Trimmed signature, e.g. "$VBT SKYLAKE". */
  readonly signature: string;
  readonly version: number;
  readonly headerSize: number;
  /** Bytes covered by the VBT (vbt_size field); the rest of a file is padding. */
  readonly vbtSize: number;
  readonly bdbOffset: number;
  readonly bdbVersion: number;
  readonly bdbHeaderSize: number;
  readonly bdbSize: number;
  /**
   * vbt_checksum as stored and whether the first vbtSize bytes sum to 0 mod 256. An
   * invalid checksum is a warning, not an error: a third of real VBTs (coreboot data.vbt
   * files edited with tools that do not update it, one of the two VBTs of a shipping
   * Gemini Lake IFWI, the VBT inside a legacy VBIOS) carry a stale one, and i915 and the
   * GOP ignore it.
   */
  readonly checksum: { readonly stored: number; readonly computed: number; readonly valid: boolean };
  readonly trailingBytes: number;
  /** sha256 of the first vbtSize bytes. */
  readonly sha256: string;
  /** The BDB blocks within bdb_size, in order (bounded walk). */
  readonly blocks: readonly VbtBlock[];
  /** Non-fatal findings: stale checksum, last block ending past bdb_size. */
  readonly warnings: readonly string[];
}

/** sizeof(struct vbt_header): signature[20], version, header_size, vbt_size, checksum, reserved0, bdb_offset, aim_offset[4]. */
export const VBT_HEADER_SIZE = 48;
/** sizeof(struct bdb_header): signature[16], version, header_size, bdb_size. */
export const BDB_HEADER_SIZE = 22;
/** VBT sizes are u16; headers larger than this are not sane. */
export const MAX_VBT_HEADER_SIZE = 0x100;
/** Each block has at least a 3-byte header, so a u16-sized BDB cannot hold more. */
export const MAX_BDB_BLOCKS = 0x1_0000 / 3;

const VBT_MAGIC = '$VBT';
const BDB_SIGNATURE = 'BIOS_DATA_BLOCK ';
/** BDB_MIPI_SEQUENCE: from sequence version 3 on its real size is a u32 after the version byte (i915 get_blocksize). */
const BDB_MIPI_SEQUENCE = 53;

function ascii(bytes: Uint8Array, offset: number, length: number): string {
  let text = '';
  for (let i = 0; i < length; i++) text += String.fromCharCode(bytes[offset + i] as number);
  return text;
}

function fail(code: string, message: string, details: Record<string, unknown>): never {
  throw new FormatError(code, message, details);
}

/**
 * Walks the BDB blocks that lie within bdb_size, as i915 (find_raw_section) and
 * intel_vbt_decode do. Intel's tools write a bdb_size one byte short in many real VBTs
 * (every Coffee Lake..Alder Lake FSP and coreboot VBT in the corpus whose vbt_size is
 * bdb_offset + bdb_size + 1), so their last block ends one byte past bdb_size, within
 * vbt_size: readers ignore that block, and so do we, with a warning. A block that runs
 * past vbt_size as well is an error.
 */
function walkBlocks(
  bytes: Uint8Array,
  dv: DataView,
  start: number,
  bdbEnd: number,
  vbtEnd: number,
  warnings: string[],
): VbtBlock[] {
  const blocks: VbtBlock[] = [];
  let at = start;
  // i915 find_raw_section: a block header needs 3 bytes; fewer trailing bytes are padding.
  while (at + 3 <= bdbEnd) {
    if (blocks.length >= MAX_BDB_BLOCKS) {
      fail('E_VBT_TOO_MANY_BLOCKS', `BDB at ${hex(start)} holds more than ${MAX_BDB_BLOCKS} blocks`, {
        offset: at,
      });
    }
    const id = bytes[at] as number;
    let size = dv.getUint16(at + 1, true);
    if (id === BDB_MIPI_SEQUENCE && at + 8 <= vbtEnd && (bytes[at + 3] as number) >= 3) {
      size = dv.getUint32(at + 4, true) + 5;
    }
    const end = at + 3 + size;
    if (end > vbtEnd) {
      fail(
        'E_VBT_BLOCK_OVERFLOW',
        `BDB block ${id} at ${hex(at)} claims ${hex(size)} bytes, ending at ${hex(end)} past vbt_size ${hex(vbtEnd)}`,
        { offset: at, id, size, vbtSize: vbtEnd },
      );
    }
    if (end > bdbEnd) {
      warnings.push(
        `BDB block ${id} at ${hex(at)} ends at ${hex(end)}, ${end - bdbEnd} byte(s) past bdb_size (within vbt_size); i915 ignores it`,
      );
      break;
    }
    blocks.push({ id, offset: at, sizeInBytes: size });
    at = end;
  }
  return blocks;
}

/** Parses and validates a VBT that starts at offset 0; throws FormatError (E_VBT_*). */
export function parseVbt(bytes: Uint8Array): VbtInfo {
  if (bytes.length < VBT_HEADER_SIZE) {
    fail('E_VBT_TRUNCATED', `${bytes.length} bytes cannot hold the ${VBT_HEADER_SIZE}-byte VBT header`, {
      offset: 0,
      length: bytes.length,
    });
  }
  if (!looksLikeVbt(bytes)) {
    fail('E_VBT_BAD_SIGNATURE', `no "$VBT" signature at 0x0 (found ${JSON.stringify(ascii(bytes, 0, 4))})`, {
      offset: 0,
    });
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const signature = ascii(bytes, 0, 20).replace(/[\0 ]+$/, '');
  const version = dv.getUint16(20, true);
  const headerSize = dv.getUint16(22, true);
  const vbtSize = dv.getUint16(24, true);
  const stored = bytes[26] as number;
  const bdbOffset = dv.getUint32(28, true);
  if (headerSize < VBT_HEADER_SIZE || headerSize > MAX_VBT_HEADER_SIZE) {
    fail(
      'E_VBT_BAD_HEADER_SIZE',
      `VBT header_size at 0x16 is ${hex(headerSize)}, expected ${hex(VBT_HEADER_SIZE)}..${hex(MAX_VBT_HEADER_SIZE)}`,
      { offset: 0x16, headerSize },
    );
  }
  if (vbtSize > bytes.length) {
    fail(
      'E_VBT_TRUNCATED',
      `VBT vbt_size at 0x18 claims ${hex(vbtSize)} bytes, only ${hex(bytes.length)} present`,
      {
        offset: 0x18,
        vbtSize,
        length: bytes.length,
      },
    );
  }
  if (vbtSize < headerSize + BDB_HEADER_SIZE) {
    fail(
      'E_VBT_BAD_SIZE',
      `VBT vbt_size at 0x18 is ${hex(vbtSize)}, too small for the ${hex(headerSize)}-byte header and a BDB header`,
      { offset: 0x18, vbtSize, headerSize },
    );
  }
  // i915 intel_bios_is_valid_vbt: the BDB header must lie inside vbt_size.
  if (bdbOffset < headerSize || bdbOffset > vbtSize - BDB_HEADER_SIZE) {
    fail(
      'E_VBT_BAD_BDB_OFFSET',
      `VBT bdb_offset at 0x1c is ${hex(bdbOffset)}; the BDB header must start after the ${hex(headerSize)}-byte VBT header and end within vbt_size ${hex(vbtSize)}`,
      { offset: 0x1c, bdbOffset, vbtSize, headerSize },
    );
  }
  const bdbSignature = ascii(bytes, bdbOffset, 16);
  if (bdbSignature !== BDB_SIGNATURE) {
    fail(
      'E_VBT_BAD_BDB_SIGNATURE',
      `no "${BDB_SIGNATURE}" signature at ${hex(bdbOffset)} (found ${JSON.stringify(bdbSignature)})`,
      { offset: bdbOffset },
    );
  }
  const bdbVersion = dv.getUint16(bdbOffset + 16, true);
  const bdbHeaderSize = dv.getUint16(bdbOffset + 18, true);
  const bdbSize = dv.getUint16(bdbOffset + 20, true);
  if (bdbOffset + bdbSize > vbtSize) {
    fail(
      'E_VBT_BDB_OVERFLOW',
      `BDB at ${hex(bdbOffset)} claims bdb_size ${hex(bdbSize)}, ending at ${hex(bdbOffset + bdbSize)} past vbt_size ${hex(vbtSize)}`,
      { offset: bdbOffset + 20, bdbOffset, bdbSize, vbtSize },
    );
  }
  if (bdbHeaderSize < BDB_HEADER_SIZE || bdbHeaderSize > bdbSize) {
    fail(
      'E_VBT_BAD_BDB_HEADER_SIZE',
      `BDB header_size at ${hex(bdbOffset + 18)} is ${hex(bdbHeaderSize)}, expected ${hex(BDB_HEADER_SIZE)}..bdb_size ${hex(bdbSize)}`,
      { offset: bdbOffset + 18, bdbHeaderSize, bdbSize },
    );
  }
  const warnings: string[] = [];
  const blocks = walkBlocks(bytes, dv, bdbOffset + bdbHeaderSize, bdbOffset + bdbSize, vbtSize, warnings);
  let sum = 0;
  for (let i = 0; i < vbtSize; i++) sum += bytes[i] as number;
  // The checksum byte is chosen so the vbt_size bytes sum to 0; "computed" is the byte that would do that.
  const valid = (sum & 0xff) === 0;
  const computed = (stored - sum) & 0xff;
  if (!valid) {
    warnings.push(
      `VBT checksum byte at 0x1a is ${hex(stored)} but the ${vbtSize} bytes sum to ${hex(sum & 0xff)}; the correct byte is ${hex(computed)}`,
    );
  }
  return {
    signature,
    version,
    headerSize,
    vbtSize,
    bdbOffset,
    bdbVersion,
    bdbHeaderSize,
    bdbSize,
    checksum: { stored, computed, valid },
    trailingBytes: bytes.length - vbtSize,
    sha256: sha256(bytes.subarray(0, vbtSize)),
    blocks,
    warnings,
  };
}

/** Like parseVbt but throws FormatError E_INPUT_NOT_VBT (a user-supplied input that is not a VBT). */
export function assertVbt(bytes: Uint8Array): VbtInfo {
  try {
    return parseVbt(bytes);
  } catch (error) {
    if (!isOvmfBuildError(error)) throw error;
    throw new FormatError('E_INPUT_NOT_VBT', `not a valid VBT: ${error.message}`, {
      reason: error.message,
      vbtErrorCode: error.code,
      ...error.details,
    });
  }
}

/** True when the bytes start with "$VBT". Never throws. */
export function looksLikeVbt(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && ascii(bytes, 0, 4) === VBT_MAGIC;
}
