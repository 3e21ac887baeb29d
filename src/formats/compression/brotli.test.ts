import { createHash } from 'node:crypto';
import { FormatError } from '../../core/errors.js';
import { brotliCompressSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { decompressBrotli } from './brotli.js';

/** The same bytes at a non-zero byteOffset inside a larger buffer. */
function atOffset(data: Uint8Array, offset = 7): Uint8Array {
  const backing = new Uint8Array(data.length + offset + 5).fill(0xa5);
  backing.set(data, offset);
  return backing.subarray(offset, offset + data.length);
}

/** Runs `action`, expects a FormatError with `code`, returns it for further checks. */
function expectFormatError(action: () => unknown, code: string): FormatError {
  let thrown: unknown;
  try {
    action();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(FormatError);
  const error = thrown as FormatError;
  expect(error.code).toBe(code);
  return error;
}

/** Deterministic pseudo-random bytes (xorshift32), so tests do not depend on a seed source. */
function pseudoRandomBytes(length: number, seed = 0x1234_5678): Uint8Array {
  const out = new Uint8Array(length);
  let state = seed >>> 0 || 1;
  for (let index = 0; index < length; index++) {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    out[index] = state & 0xff;
  }
  return out;
}

const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

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
