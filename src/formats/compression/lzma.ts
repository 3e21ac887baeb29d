// EDK2 LZMA sections (GUID EE4E5898-3914-4259-9D6E-DC7BD79403CF, LzmaCompress): the
// classic .lzma layout of the LZMA SDK (lzma-specification.txt, "LZMA file format"):
// 1 properties byte (lc + lp * 9 + pb * 45), 4-byte LE dictionary size, 8-byte LE
// uncompressed size, then the range-coded stream.
import { createRequire } from 'node:module';
import type * as NapiLzma from '@napi-rs/lzma';
import { FormatError } from '../../core/errors.js';
import { decodeBcjX86InPlace } from './bcj-x86.js';
import { decodeLzmaInto } from './lzma-decoder.js';
import {
  boundedOutputSize,
  corruptError,
  headerView,
  hex,
  NATIVE_LZMA_MAX_OUTPUT_BYTES,
  nativeDecode,
  resolveMaxOutputBytes,
  type CompressionFormat,
  type DecompressLimits,
} from './limits.js';

export const LZMA_HEADER_SIZE = 13;
/** lc <= 8, lp <= 4, pb <= 4 give at most (4 * 5 + 4) * 9 + 8 = 224 (LzmaDec.c LzmaProps_Decode). */
const MAX_PROPERTIES_BYTE = 9 * 5 * 5 - 1;
const UNKNOWN_SIZE = 0xffff_ffff_ffff_ffffn;

export interface LzmaHeader {
  readonly lc: number;
  readonly lp: number;
  readonly pb: number;
  readonly dictionarySizeInBytes: number;
  readonly uncompressedSizeInBytes: number;
}

/**
 * Reads and bounds the 13-byte header. An "unknown size" header (all ones, for streams
 * ending in an end marker) is rejected: EDK2's LzmaUefiDecompressGetInfo returns
 * RETURN_UNSUPPORTED for any size above 4 GiB, so no EDK2 firmware can contain one.
 */
export function readLzmaHeader(
  data: Uint8Array,
  maxOutputBytes: number,
  format: CompressionFormat = 'lzma',
): LzmaHeader {
  const view = headerView(data, LZMA_HEADER_SIZE, format);
  const properties = view.getUint8(0);
  if (properties > MAX_PROPERTIES_BYTE) {
    throw corruptError(format, 0, `properties byte ${hex(properties)} is above ${hex(MAX_PROPERTIES_BYTE)}`, {
      properties,
    });
  }
  const declared = view.getBigUint64(5, true);
  if (declared === UNKNOWN_SIZE) {
    throw new FormatError(
      'E_DECOMPRESS_UNSUPPORTED',
      `${format} stream at 0x5 declares an unknown size (end-marker stream); EDK2 LZMA sections always store the size`,
      { format, offset: 5 },
    );
  }
  const uncompressedSizeInBytes = boundedOutputSize(format, declared, maxOutputBytes);
  return {
    lc: properties % 9,
    lp: Math.floor(properties / 9) % 5,
    pb: Math.floor(properties / 45),
    dictionarySizeInBytes: view.getUint32(1, true),
    uncompressedSizeInBytes,
  };
}

/** EDK2 LZMA (LzmaCompress): 5-byte properties, 8-byte little-endian size, LZMA1 stream. */
export function decompressLzma(data: Uint8Array, limits: DecompressLimits = {}): Uint8Array {
  return decodeLzma(data, limits, 'lzma');
}

/** EDK2 LZMA with the x86 BCJ filter (LzmaF86Compress): LZMA, then the x86 branch converter decoded. */
export function decompressLzmaF86(data: Uint8Array, limits: DecompressLimits = {}): Uint8Array {
  return decodeBcjX86InPlace(decodeLzma(data, limits, 'lzma-f86'));
}

type LzmaBinding = typeof NapiLzma.lzma;
let binding: LzmaBinding | undefined;

/**
 * The native decoder, loaded on the first LZMA section: loading it costs a dlopen and
 * its JS wrapper (about 15 ms), which images without LZMA sections never need to pay.
 */
function nativeLzma(): LzmaBinding {
  binding ??= (createRequire(import.meta.url)('@napi-rs/lzma') as typeof NapiLzma).lzma;
  return binding;
}

function decodeLzma(data: Uint8Array, limits: DecompressLimits, format: CompressionFormat): Uint8Array {
  const header = readLzmaHeader(data, resolveMaxOutputBytes(limits), format);
  const nativeMax = limits.nativeMaxOutputBytes ?? NATIVE_LZMA_MAX_OUTPUT_BYTES;
  if (header.uncompressedSizeInBytes > nativeMax) {
    // Checked against the budget above, before this one allocation of the declared size.
    return decodeLzmaInto(data, header, LZMA_HEADER_SIZE, format, limits.signal);
  }
  // The native decoder reads the same header and stops after the declared size, so
  // its output (and its time) is bounded by the check above.
  return nativeDecode(format, data, LZMA_HEADER_SIZE, header.uncompressedSizeInBytes, () =>
    nativeLzma().decompressSync(data),
  );
}
