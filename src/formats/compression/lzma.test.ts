import { lzma } from '@napi-rs/lzma';
import { describe, expect, it } from 'vitest';
import { atOffset, expectFormatError, pseudoRandomBytes, sha256 } from '../../../test/bytes-helpers.js';
import { decodeBcjX86InPlace } from './bcj-x86.js';
import { decompressLzma, decompressLzmaF86, readLzmaHeader } from './lzma.js';
import { cpuNow } from '../../../test/cpu-time.js';

/** An LZMA stream with the EDK2 header: the package writes "unknown size", EDK2 the real one. */
function edk2Lzma(payload: Uint8Array): Uint8Array {
  const stream = new Uint8Array(lzma.compressSync(payload));
  new DataView(stream.buffer, stream.byteOffset).setBigUint64(5, BigInt(payload.length), true);
  return stream;
}

const text = new TextEncoder().encode('EFI_FIRMWARE_VOLUME_HEADER '.repeat(400));

describe('readLzmaHeader', () => {
  it('decodes lc/lp/pb, dictionary and size', () => {
    const header = Uint8Array.from([0x5d, 0x00, 0x00, 0x00, 0x01, 0x10, 0x32, 0x54, 0x00, 0, 0, 0, 0]);
    expect(readLzmaHeader(header, 1 << 30)).toEqual({
      lc: 3,
      lp: 0,
      pb: 2,
      dictionarySizeInBytes: 0x100_0000,
      uncompressedSizeInBytes: 0x54_3210,
    });
  });

  it('rejects a properties byte of 225 and a short header', () => {
    const bad = Uint8Array.from([225, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect(expectFormatError(() => readLzmaHeader(bad, 100), 'E_DECOMPRESS_CORRUPT').details).toMatchObject({
      format: 'lzma',
      offset: 0,
      properties: 225,
    });
    const error = expectFormatError(() => decompressLzma(bad.subarray(0, 12)), 'E_DECOMPRESS_CORRUPT');
    expect(error.message).toBe('lzma stream is corrupt at 0x0: header needs 13 bytes, only 12 present');
  });
});

describe('decompressLzma', () => {
  it('round-trips a stream with the EDK2 header, also at a non-zero byteOffset', () => {
    const output = decompressLzma(atOffset(edk2Lzma(text)));
    expect(output).toBeInstanceOf(Uint8Array);
    expect(sha256(output)).toBe(sha256(text));
  });

  it('rejects a declared size above the limit before decoding', () => {
    const error = expectFormatError(
      () => decompressLzma(edk2Lzma(text), { maxOutputBytes: text.length - 1 }),
      'E_DECOMPRESS_TOO_LARGE',
    );
    expect(error.details).toEqual({
      format: 'lzma',
      offset: 0,
      declaredBytes: text.length,
      maxOutputBytes: text.length - 1,
    });
    expect(error.message).toBe(
      `lzma stream declares ${text.length} (0x${text.length.toString(16)}) output bytes, more than the limit of ` +
        `${text.length - 1} (0x${(text.length - 1).toString(16)})`,
    );
  });

  it('accepts a declared size equal to the limit', () => {
    expect(decompressLzma(edk2Lzma(text), { maxOutputBytes: text.length }).length).toBe(text.length);
  });

  it('rejects the unknown-size header that EDK2 does not support', () => {
    const error = expectFormatError(
      () => decompressLzma(lzma.compressSync(text)),
      'E_DECOMPRESS_UNSUPPORTED',
    );
    expect(error.details).toEqual({ format: 'lzma', offset: 5 });
  });

  it('rejects a stream shorter than its declared size', () => {
    const stream = edk2Lzma(text);
    new DataView(stream.buffer).setBigUint64(5, BigInt(text.length + 1), true);
    expect(expectFormatError(() => decompressLzma(stream), 'E_DECOMPRESS_CORRUPT').details).toMatchObject({
      format: 'lzma',
      uncompressedSizeInBytes: text.length + 1,
    });
  });

  it('rejects a truncated stream with the native error as cause', () => {
    const stream = edk2Lzma(pseudoRandomBytes(5000));
    const error = expectFormatError(() => decompressLzma(stream.subarray(0, 200)), 'E_DECOMPRESS_CORRUPT');
    expect(error.cause).toBeInstanceOf(Error);
    expect(error.details['offset']).toBe(13);
  });

  it('fails fast on garbage declaring 200 MiB', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const stream = pseudoRandomBytes(100_000, seed);
      stream.set([0x5d, 0x00, 0x00, 0x80, 0x00]);
      new DataView(stream.buffer).setBigUint64(5, 200n * 1024n * 1024n, true);
      const started = cpuNow();
      expectFormatError(() => decompressLzma(stream), 'E_DECOMPRESS_CORRUPT');
      expect(cpuNow() - started).toBeLessThan(1000);
    }
  });

  it('rejects bad limits with a TypeError', () => {
    expect(() => decompressLzma(edk2Lzma(text), { maxOutputBytes: -1 })).toThrow(
      new TypeError('Expected `maxOutputBytes` to be a non-negative safe integer, got `-1`'),
    );
  });
});

describe('decodeBcjX86InPlace', () => {
  it('turns absolute CALL/JMP targets back into relative ones', () => {
    // E8 at 0 with absolute target 0x105 (encoded as relative 0x100 + next ip 5).
    const data = Uint8Array.from([0xe8, 0x05, 0x01, 0x00, 0x00, 0x90, 0x90, 0x90, 0x90, 0x90]);
    expect([...decodeBcjX86InPlace(data)]).toEqual([
      0xe8, 0x00, 0x01, 0x00, 0x00, 0x90, 0x90, 0x90, 0x90, 0x90,
    ]);
  });

  it('leaves operands whose top byte is not 00/FF and the last four bytes alone', () => {
    const data = Uint8Array.from([0xe9, 1, 2, 3, 4, 0x90, 0xe8, 0, 0, 0]);
    expect([...decodeBcjX86InPlace(data.slice())]).toEqual([...data]);
  });

  it('produces negative targets with an FF top byte', () => {
    // Absolute 0 at ip 10 -> relative -15 (0xFFFFFFF1).
    const data = Uint8Array.from([
      0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0xe8, 0, 0, 0, 0, 0,
    ]);
    expect([...decodeBcjX86InPlace(data).subarray(10, 15)]).toEqual([0xe8, 0xf1, 0xff, 0xff, 0xff]);
  });
});

describe('decompressLzmaF86', () => {
  it('equals plain LZMA when the payload has no E8/E9 bytes', () => {
    expect(sha256(decompressLzmaF86(edk2Lzma(text)))).toBe(sha256(text));
  });

  it('names its format in errors', () => {
    expect(
      expectFormatError(() => decompressLzmaF86(new Uint8Array(3)), 'E_DECOMPRESS_CORRUPT').details['format'],
    ).toBe('lzma-f86');
  });
});
