import { brotliCompressSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { atOffset, expectFormatError, pseudoRandomBytes, sha256 } from '../../../test/bytes-helpers.js';
import { decompressBrotli } from './brotli.js';

function edk2Brotli(payload: Uint8Array, declared = payload.length): Uint8Array {
  const stream = brotliCompressSync(payload);
  const out = new Uint8Array(16 + stream.length);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(declared), true);
  view.setBigUint64(8, 0x11_c1e5n, true);
  out.set(stream, 16);
  return out;
}

const payload = Uint8Array.from([...pseudoRandomBytes(3000), ...new Uint8Array(5000)]);

describe('decompressBrotli', () => {
  it('round-trips the EDK2 layout at a non-zero byteOffset', () => {
    expect(sha256(decompressBrotli(atOffset(edk2Brotli(payload))))).toBe(sha256(payload));
  });

  it('handles an empty payload', () => {
    expect(decompressBrotli(edk2Brotli(new Uint8Array(0))).length).toBe(0);
  });

  it('rejects a declared size above the limit', () => {
    expect(
      expectFormatError(
        () => decompressBrotli(edk2Brotli(payload), { maxOutputBytes: 100 }),
        'E_DECOMPRESS_TOO_LARGE',
      ).details,
    ).toEqual({ format: 'brotli', offset: 0, declaredBytes: payload.length, maxOutputBytes: 100 });
  });

  it('rejects a stream that is longer or shorter than declared', () => {
    expect(
      expectFormatError(
        () => decompressBrotli(edk2Brotli(payload, payload.length - 1)),
        'E_DECOMPRESS_CORRUPT',
      ).details,
    ).toMatchObject({ producedBytes: payload.length, uncompressedSizeInBytes: payload.length - 1 });
    // Far longer than declared: zlib stops at the bound and the native error is the cause.
    const error = expectFormatError(() => decompressBrotli(edk2Brotli(payload, 10)), 'E_DECOMPRESS_CORRUPT');
    expect(error.details['offset']).toBe(16);
    expect(error.cause).toBeInstanceOf(RangeError);
    expect(
      expectFormatError(
        () => decompressBrotli(edk2Brotli(payload, payload.length + 1)),
        'E_DECOMPRESS_CORRUPT',
      ).details,
    ).toMatchObject({ producedBytes: payload.length, uncompressedSizeInBytes: payload.length + 1 });
  });

  it('rejects a short header and a truncated stream', () => {
    expectFormatError(() => decompressBrotli(new Uint8Array(15)), 'E_DECOMPRESS_CORRUPT');
    const stream = edk2Brotli(payload);
    expect(
      expectFormatError(() => decompressBrotli(stream.subarray(0, stream.length - 3)), 'E_DECOMPRESS_CORRUPT')
        .cause,
    ).toBeInstanceOf(Error);
  });
});
