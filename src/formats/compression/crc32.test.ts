import { describe, expect, it } from 'vitest';
import { atOffset, pseudoRandomBytes } from '../../../test/bytes-helpers.js';
import { crc32 } from './crc32.js';

/** Bit-at-a-time reference (the definition, without tables). */
function referenceCrc32(data: Uint8Array): number {
  let crc = 0xffff_ffff;
  for (const byte of data) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) {
      crc = crc & 1 ? (crc >>> 1) ^ 0xedb8_8320 : crc >>> 1;
    }
  }
  return ~crc >>> 0;
}

describe('crc32', () => {
  it('matches the standard check value', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf4_3926);
    expect(crc32(new Uint8Array(0))).toBe(0);
  });

  it('matches the bitwise definition for every length 0..40 and at a byteOffset', () => {
    const data = pseudoRandomBytes(1000, 99);
    for (let length = 0; length <= 40; length++) {
      expect(crc32(atOffset(data.subarray(3, 3 + length), 3))).toBe(
        referenceCrc32(data.subarray(3, 3 + length)),
      );
    }
    expect(crc32(data)).toBe(referenceCrc32(data));
  });

  it('continues across pieces', () => {
    const data = pseudoRandomBytes(777, 5);
    expect(crc32(data.subarray(300), crc32(data.subarray(0, 300)))).toBe(crc32(data));
  });
});
