// EDK2 Brotli sections (GUID 3D532050-5CDA-4FD0-879E-0F7F630D5AFB). BaseTools
// BrotliCompress writes a 16-byte header before the RFC 7932 stream: the 8-byte LE
// decompressed size and the 8-byte LE scratch size the decoder needs in firmware
// (BrotliCustomDecompressLib: BROTLI_DECODE_MAX 8, BROTLI_SCRATCH_MAX 16).
import {
  boundedOutputSize,
  headerView,
  nativeDecode,
  resolveMaxOutputBytes,
  type DecompressLimits,
} from './limits.js';

export const BROTLI_HEADER_SIZE = 16;

export function decompressBrotli(data: Uint8Array, limits: DecompressLimits = {}): Uint8Array {
  const maxOutputBytes = resolveMaxOutputBytes(limits);
  const declared = headerView(data, BROTLI_HEADER_SIZE, 'brotli').getBigUint64(0, true);
  const expectedBytes = boundedOutputSize('brotli', declared, maxOutputBytes);
  // One byte of slack so that a stream longer than declared fails here instead of
  // being cut silently; zlib throws once the output would pass the bound.
  // zlib is loaded on the first Brotli section only (most images have none).
  return nativeDecode('brotli', data, BROTLI_HEADER_SIZE, expectedBytes, () =>
    process
      .getBuiltinModule('node:zlib')
      .brotliDecompressSync(data.subarray(BROTLI_HEADER_SIZE), { maxOutputLength: expectedBytes + 1 }),
  );
}
