// Shared bounds and error constructors for every decompressor in this folder.
import { FormatError } from '../../core/errors.js';

export interface DecompressLimits {
  /**
   * Largest output accepted, in bytes. A larger declared size is E_DECOMPRESS_TOO_LARGE.
   * @default 268_435_456 (256 MiB)
   */
  readonly maxOutputBytes?: number;
  /**
   * Largest LZMA output left to the native decoder, in bytes. It is about twice as fast as
   * the JS decoder but holds about three times its output while it runs (a growing vector,
   * then a copy), and its freed memory stays with the allocator; larger outputs are decoded
   * into one buffer of exactly the declared size. 0 decodes everything in JS.
   * @default 16_777_216 (16 MiB, NATIVE_LZMA_MAX_OUTPUT_BYTES)
   */
  readonly nativeMaxOutputBytes?: number;
  /** Stops a long decode between blocks (E_ABORTED). */
  readonly signal?: AbortSignal;
}

export const NATIVE_LZMA_MAX_OUTPUT_BYTES = 16 * 1024 * 1024;

export const DEFAULT_MAX_OUTPUT_BYTES = 256 * 1024 * 1024;

/** Names used in messages and in `details.format`. */
export type CompressionFormat = 'lzma' | 'lzma-f86' | 'brotli' | 'efi' | 'tiano';

/** Validates `limits` and returns the output bound in bytes. */
export function resolveMaxOutputBytes(limits: DecompressLimits): number {
  const value = limits.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new TypeError(
      `Expected \`maxOutputBytes\` to be a non-negative safe integer, got \`${String(value)}\``,
    );
  }
  return value;
}

export const hex = (value: number | bigint): string => `0x${value.toString(16)}`;

/** The input is malformed, truncated or hostile (E_DECOMPRESS_CORRUPT). */
export function corruptError(
  format: CompressionFormat,
  offset: number,
  reason: string,
  details: Record<string, unknown> = {},
  cause?: unknown,
): FormatError {
  return new FormatError(
    'E_DECOMPRESS_CORRUPT',
    `${format} stream is corrupt at ${hex(offset)}: ${reason}`,
    { format, offset, reason, ...details },
    cause === undefined ? undefined : { cause },
  );
}

/** The declared output size exceeds the caller's bound (E_DECOMPRESS_TOO_LARGE). */
export function tooLargeError(
  format: CompressionFormat,
  declaredBytes: number | bigint,
  maxOutputBytes: number,
): FormatError {
  return new FormatError(
    'E_DECOMPRESS_TOO_LARGE',
    `${format} stream declares ${String(declaredBytes)} (${hex(declaredBytes)}) output bytes, ` +
      `more than the limit of ${maxOutputBytes} (${hex(maxOutputBytes)})`,
    { format, offset: 0, declaredBytes: Number(declaredBytes), maxOutputBytes },
  );
}

/**
 * `declared`, the output size a header names, as a number once it is within `maxOutputBytes`;
 * else E_DECOMPRESS_TOO_LARGE, before anything of that size is allocated.
 */
export function boundedOutputSize(
  format: CompressionFormat,
  declared: number | bigint,
  maxOutputBytes: number,
): number {
  if (declared > maxOutputBytes) {
    throw tooLargeError(format, declared, maxOutputBytes);
  }
  return Number(declared);
}

/**
 * Runs a native decoder (node:zlib's Brotli, @napi-rs/lzma) over `data` and requires exactly the
 * `expectedBytes` its header declares: a decoder failure is E_DECOMPRESS_CORRUPT at the stream's
 * start (after the `headerSize`-byte header), another length at the end of the input.
 */
export function nativeDecode(
  format: CompressionFormat,
  data: Uint8Array,
  headerSize: number,
  expectedBytes: number,
  decode: () => Uint8Array,
): Uint8Array {
  let output: Uint8Array;
  try {
    output = decode();
  } catch (error) {
    throw corruptError(
      format,
      headerSize,
      `decoder failed: ${error instanceof Error ? error.message : String(error)}`,
      { uncompressedSizeInBytes: expectedBytes },
      error,
    );
  }
  if (output.length !== expectedBytes) {
    throw corruptError(
      format,
      data.length,
      `stream produced ${output.length} bytes, header declares ${expectedBytes}`,
      { uncompressedSizeInBytes: expectedBytes, producedBytes: output.length },
    );
  }
  // A plain Uint8Array over the decoder's Buffer, as every decompressor returns.
  return new Uint8Array(output.buffer, output.byteOffset, output.length);
}

/** A DataView over exactly the bytes of `data`, honouring its byteOffset. */
export function viewOf(data: Uint8Array): DataView {
  return new DataView(data.buffer, data.byteOffset, data.byteLength);
}

/** viewOf(data) once `data` holds at least the `headerSize`-byte header, else E_DECOMPRESS_CORRUPT. */
export function headerView(data: Uint8Array, headerSize: number, format: CompressionFormat): DataView {
  if (data.length < headerSize) {
    throw corruptError(format, 0, `header needs ${headerSize} bytes, only ${data.length} present`);
  }
  return viewOf(data);
}
