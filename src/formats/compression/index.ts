// Decompressors for UEFI sections (PI spec vol. 3, 2.1.5 / 3.2.5). Every function is
// bounded: the declared output size is checked against `limits.maxOutputBytes` before
// any work, and output never grows past it. Failures are FormatError with code
// E_DECOMPRESS_CORRUPT, E_DECOMPRESS_TOO_LARGE or E_DECOMPRESS_UNSUPPORTED and
// `details` { format, offset, reason, ... }.

export { DEFAULT_MAX_OUTPUT_BYTES, NATIVE_LZMA_MAX_OUTPUT_BYTES, type DecompressLimits } from './limits.js';
export { decompressLzma, decompressLzmaF86 } from './lzma.js';
export { decompressBrotli } from './brotli.js';
export { crc32 } from './crc32.js';

export {
  decompressEfi,
  decompressTiano,
  decompressStandard,
  type EfiVariant as StandardCompressionVariant,
} from './efi-decompress.js';

export { compressEfi } from './efi-compress.js';
