// Intel Video BIOS Table (VBT): the VBT header and the BDB (BIOS Data Block) header
// as laid out in Linux drivers/gpu/drm/i915/display/intel_vbt_defs.h (struct
// vbt_header, struct bdb_header), then a bounded walk over the BDB blocks.
import { FormatError, isOvmfBuildError } from '../core/errors.js';
import { sha256 } from '../core/digest.js';
import { hex } from '../core/hex.js';
import { fail } from './fail.js';

export interface VbtBlock {
  readonly id: number;
  /** Offset of the block's 3-byte header (id u8, size u16) from the start of the VBT. */
  readonly offset: number;
  /**
   * Size of the block data after its 3-byte header, as i915 copies it: the u16 size, or for a
   * MIPI sequence block v3+ its u32 size plus the 5 bytes of version and u32 (init_bdb_block).
   * The walk bounds only the u32 size by bdb_size, so such a block can end up to 5 bytes past
   * bdb_size (and vbt_size); i915 copies those bytes all the same.
   */
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
  /** The BDB blocks i915 finds, in order: its block walk within bdb_size (find_raw_section). */
  readonly blocks: readonly VbtBlock[];
  /**
   * What i915 tolerates but a careful tool should show: a stale checksum, a block walk that
   * stops early (a block claiming more than bdb_size leaves), odd header fields.
   */
  readonly warnings: readonly string[];
}

/** sizeof(struct vbt_header): signature[20], version, header_size, vbt_size, checksum, reserved0, bdb_offset, aim_offset[4]. */
export const VBT_HEADER_SIZE = 48;
/** sizeof(struct bdb_header): signature[16], version, header_size, bdb_size. */
export const BDB_HEADER_SIZE = 22;
/** VBT sizes are u16; a header_size beyond this is not sane (a warning: i915 never reads it). */
export const MAX_VBT_HEADER_SIZE = 0x100;

const VBT_MAGIC = '$VBT';
const BDB_SIGNATURE = 'BIOS_DATA_BLOCK ';
/** BDB_MIPI_SEQUENCE: from sequence version 3 on its size is a u32 after the version byte (i915 _get_blocksize). */
const BDB_MIPI_SEQUENCE = 53;
/** The MIPI sequence block v3+ version byte and u32 size, which i915 counts as header (init_bdb_block). */
const MIPI_SEQUENCE_V3_HEADER_SIZE = 5;

function ascii(bytes: Uint8Array, offset: number, length: number): string {
  let text = '';
  for (let i = 0; i < length; i++) text += String.fromCharCode(bytes[offset + i] as number);
  return text;
}

/**
 * The BDB blocks as i915 finds them (intel_bios.c find_raw_section, same in intel_vbt_decode):
 * starting header_size bytes into the BDB, while a block header starts more than 3 bytes
 * before bdb_size, read id and size (for a MIPI sequence block v3+ the u32 after its version
 * byte, _get_blocksize) and step over 3 + size bytes. A block that would end past bdb_size
 * ends the walk: i915 finds neither it nor any block after it, and loads the VBT all the
 * same, so this is a warning, never an error. Real cases: Intel's tools write a bdb_size one
 * byte short in many VBTs, so their last block ends 1 byte past it; coreboot's Gemini Lake
 * (starlabs/lite glk) and Skylake (purism/librem_skl) data.vbt files carry a block whose size
 * field runs thousands of bytes past the VBT.
 *
 * The MIPI sequence quirk is kept as i915 has it: the walk steps over such a block by its u32
 * size only, 5 bytes short of its data, so a block after it is read from inside it.
 */
function walkBlocks(
  bytes: Uint8Array,
  dv: DataView,
  bdbOffset: number,
  bdbHeaderSize: number,
  bdbSize: number,
  warnings: string[],
): VbtBlock[] {
  const blocks: VbtBlock[] = [];
  const bdbEnd = bdbOffset + bdbSize;
  let index = bdbHeaderSize;
  // Each step consumes at least 3 of at most 0xffff bytes, so the walk is bounded.
  while (index + 3 < bdbSize) {
    const at = bdbOffset + index;
    const id = bytes[at] as number;
    let size = dv.getUint16(at + 1, true);
    let dataSize = size;
    const mipiV3 = id === BDB_MIPI_SEQUENCE && (bytes[at + 3] as number) >= 3;
    if (mipiV3) {
      if (at + 8 > bytes.length) {
        // i915 would read the u32 past the end of the buffer; nothing sane lies there.
        warnings.push(
          `BDB block ${id} at ${hex(at)} (MIPI sequence v3+) has no room for its u32 size before the end of the data; the block walk stops there`,
        );
        break;
      }
      size = dv.getUint32(at + 4, true);
      dataSize = size + MIPI_SEQUENCE_V3_HEADER_SIZE;
    }
    index += 3;
    if (index + size > bdbSize) {
      const end = at + 3 + size;
      warnings.push(
        `BDB block ${id} at ${hex(at)} claims ${hex(size)} bytes, ending at ${hex(end)}, ${end - bdbEnd} byte(s) past bdb_size; i915 ignores it and any block after it`,
      );
      break;
    }
    blocks.push({ id, offset: at, sizeInBytes: dataSize });
    index += size;
    if (mipiV3 && index + 3 < bdbSize) {
      warnings.push(
        `BDB block ${id} at ${hex(at)} is a MIPI sequence block v${bytes[at + 3] as number}: i915 steps over it by its u32 size, ${MIPI_SEQUENCE_V3_HEADER_SIZE} bytes short of its end, and reads the next block header from inside it at ${hex(bdbOffset + index)}`,
      );
    }
  }
  return blocks;
}

/**
 * Parses a VBT that starts at offset 0 and judges it as Linux i915 does
 * (intel_bios.c intel_bios_is_valid_vbt): only a header that does not fit, a missing "$VBT",
 * a vbt_size past the data, and a BDB header or bdb_size past vbt_size are errors (FormatError
 * E_VBT_*). What i915 tolerates (odd header sizes, a wrong BDB signature, a block walk that
 * stops early, a stale checksum) is a warning in `warnings`.
 */
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
  // i915 intel_bios_is_valid_vbt: "BDB header incomplete" (range_overflows(bdb_offset, sizeof(bdb_header), vbt_size)).
  if (bdbOffset + BDB_HEADER_SIZE > vbtSize) {
    fail(
      'E_VBT_BAD_BDB_OFFSET',
      `VBT bdb_offset at 0x1c is ${hex(bdbOffset)}; the ${hex(BDB_HEADER_SIZE)}-byte BDB header must end within vbt_size ${hex(vbtSize)}`,
      { offset: 0x1c, bdbOffset, vbtSize, headerSize },
    );
  }
  const bdbVersion = dv.getUint16(bdbOffset + 16, true);
  const bdbHeaderSize = dv.getUint16(bdbOffset + 18, true);
  const bdbSize = dv.getUint16(bdbOffset + 20, true);
  // i915 intel_bios_is_valid_vbt: "BDB incomplete".
  if (bdbOffset + bdbSize > vbtSize) {
    fail(
      'E_VBT_BDB_OVERFLOW',
      `BDB at ${hex(bdbOffset)} claims bdb_size ${hex(bdbSize)}, ending at ${hex(bdbOffset + bdbSize)} past vbt_size ${hex(vbtSize)}`,
      { offset: bdbOffset + 20, bdbOffset, bdbSize, vbtSize },
    );
  }
  const warnings: string[] = [];
  if (headerSize < VBT_HEADER_SIZE || headerSize > MAX_VBT_HEADER_SIZE) {
    warnings.push(
      `VBT header_size at 0x16 is ${hex(headerSize)}, expected ${hex(VBT_HEADER_SIZE)}..${hex(MAX_VBT_HEADER_SIZE)}; i915 does not read it`,
    );
  }
  if (bdbOffset < VBT_HEADER_SIZE) {
    warnings.push(
      `VBT bdb_offset at 0x1c is ${hex(bdbOffset)}, inside the ${hex(VBT_HEADER_SIZE)}-byte VBT header`,
    );
  }
  const bdbSignature = ascii(bytes, bdbOffset, 16);
  if (bdbSignature !== BDB_SIGNATURE) {
    warnings.push(
      `no "${BDB_SIGNATURE}" signature at ${hex(bdbOffset)} (found ${JSON.stringify(bdbSignature)}); i915 does not check it`,
    );
  }
  if (bdbHeaderSize < BDB_HEADER_SIZE || bdbHeaderSize > bdbSize) {
    warnings.push(
      `BDB header_size at ${hex(bdbOffset + 18)} is ${hex(bdbHeaderSize)}, expected ${hex(BDB_HEADER_SIZE)}..bdb_size ${hex(bdbSize)}; i915 starts its block walk there all the same`,
    );
  }
  const blocks = walkBlocks(bytes, dv, bdbOffset, bdbHeaderSize, bdbSize, warnings);
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

/** Most "$VBT" occurrences one scan tries before it gives up (a hostile blob could hold thousands). */
export const MAX_VBT_SCAN_CANDIDATES = 64;

/** A "$VBT" occurrence that a scan found not to be a VBT, and why. */
export interface VbtScanRejection {
  /** Absolute offset of the "$VBT" text in the scanned bytes. */
  readonly offset: number;
  readonly reason: string;
}

export interface VbtScanResult {
  /** The first occurrence that is a VBT: absolute offset, its parse, and its vbt_size bytes. */
  readonly found: { readonly offset: number; readonly info: VbtInfo; readonly bytes: Uint8Array } | null;
  /** Occurrences before it (or all of them, when none is a VBT) that are text, not a VBT. */
  readonly rejected: readonly VbtScanRejection[];
}

/**
 * Finds a VBT inside a larger blob (a legacy video option ROM keeps it somewhere in its
 * image, at no fixed offset). The text "$VBT" alone proves nothing: drivers and ROM code
 * carry it as a string. An occurrence is a VBT only when parseVbt accepts the bytes from there
 * to `end` (header in range, vbt_size within the blob, BDB header and bdb_size within
 * vbt_size) and the BDB at bdb_offset carries the "BIOS_DATA_BLOCK " signature, which i915
 * does not check in a VBT it was handed but which is the only sign that random bytes after
 * the text are not a header. Tries at most MAX_VBT_SCAN_CANDIDATES occurrences. Never throws.
 */
export function scanForVbt(bytes: Uint8Array, start = 0, end = bytes.length): VbtScanResult {
  const rejected: VbtScanRejection[] = [];
  const haystack = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(end, bytes.length));
  let from = start;
  while (rejected.length < MAX_VBT_SCAN_CANDIDATES) {
    const at = haystack.indexOf(VBT_MAGIC, from, 'latin1');
    if (at < 0) break;
    from = at + 1;
    const candidate = bytes.subarray(at, end);
    let info: VbtInfo;
    try {
      info = parseVbt(candidate);
    } catch (error) {
      if (!isOvmfBuildError(error)) throw error;
      rejected.push({
        offset: at,
        reason: `"$VBT" text without a VBT header: ${error.message} [${error.code}]`,
      });
      continue;
    }
    const bdbSignature = ascii(candidate, info.bdbOffset, 16);
    if (bdbSignature !== BDB_SIGNATURE) {
      rejected.push({
        offset: at,
        reason: `"$VBT" text without a BDB: no "${BDB_SIGNATURE}" signature at bdb_offset ${hex(info.bdbOffset)} (found ${JSON.stringify(bdbSignature)})`,
      });
      continue;
    }
    return { found: { offset: at, info, bytes: candidate.subarray(0, info.vbtSize) }, rejected };
  }
  return { found: null, rejected };
}
