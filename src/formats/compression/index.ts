// Decompressors for UEFI sections (PI spec vol. 3, 2.1.5 / 3.2.5). Owned by the
// compression work; this file fixes the API others call. Every function is
// bounded: the declared output size is checked against `limits.maxOutputBytes`
// before any work, and output never grows past it.
import { OvmfBuildError } from '../../core/errors.js';

export interface DecompressLimits {
  /**
   * Largest output accepted, in bytes. A larger declared size is E_DECOMPRESS_TOO_LARGE.
   * @default 268_435_456 (256 MiB)
   */
  readonly maxOutputBytes?: number;
}

export const DEFAULT_MAX_OUTPUT_BYTES = 256 * 1024 * 1024;

const todo = (name: string): never => {
  throw new OvmfBuildError('E_NOT_IMPLEMENTED', `${name} is not implemented yet`);
};

/** EDK2 LZMA (LzmaCompress): 5-byte properties, 8-byte little-endian size, LZMA1 stream. */
export function decompressLzma(_data: Uint8Array, _limits: DecompressLimits = {}): Uint8Array {
  return todo('decompressLzma');
}

/** EDK2 LZMA with the x86 BCJ filter (LzmaF86Compress): LZMA, then the x86 branch converter decoded. */
export function decompressLzmaF86(_data: Uint8Array, _limits: DecompressLimits = {}): Uint8Array {
  return todo('decompressLzmaF86');
}

/** EDK2 Brotli (BrotliCompress): 8-byte output size, 8-byte scratch size, Brotli stream. */
export function decompressBrotli(_data: Uint8Array, _limits: DecompressLimits = {}): Uint8Array {
  return todo('decompressBrotli');
}

/** EFI 1.1 "standard" compression (EFI_STANDARD_COMPRESSION, UEFI spec 19). */
export function decompressEfi(_data: Uint8Array, _limits: DecompressLimits = {}): Uint8Array {
  return todo('decompressEfi');
}

/** Tiano compression (the EFI format with a larger dictionary, EDK TianoCompress). */
export function decompressTiano(_data: Uint8Array, _limits: DecompressLimits = {}): Uint8Array {
  return todo('decompressTiano');
}

export type StandardCompressionVariant = 'efi' | 'tiano';

/**
 * A compression section of type EFI_STANDARD_COMPRESSION may hold either EFI 1.1 or
 * Tiano data (vendors use both under one type byte): try EFI 1.1, then Tiano.
 */
export function decompressStandard(
  _data: Uint8Array,
  _limits: DecompressLimits = {},
): { variant: StandardCompressionVariant; output: Uint8Array } {
  return todo('decompressStandard');
}

/** EFI 1.1 compressor (as EfiRom -ec uses), for option ROM generation. */
export function compressEfi(_data: Uint8Array): Uint8Array {
  return todo('compressEfi');
}

/** CRC-32 (IEEE 802.3) as used by EFI_CRC32_GUIDED_SECTION and capsules. */
export function crc32(_data: Uint8Array): number {
  return todo('crc32');
}
