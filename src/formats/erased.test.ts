// firstNotErased skips erased runs in native compares of shrinking blocks; these cases put the
// first non-erased byte on and around every block boundary, and at a non-zero base offset.
import { describe, expect, it } from 'vitest';
import { firstNotErased } from './erased.js';

function erasedThen(length: number, value: number, at: number): Uint8Array {
  const bytes = new Uint8Array(length).fill(value);
  if (at < length) bytes[at] = value ^ 0x5a;
  return bytes;
}

describe('firstNotErased', () => {
  const positions = [0, 1, 0xf, 0x10, 0x11, 0xff, 0x100, 0xfff, 0x1000, 0x1_0000, 0x1_0001, 0x2_3456];
  for (const value of [0xff, 0x00]) {
    it(`finds the first byte that is not ${value === 0xff ? '0xFF' : '0x00'}`, () => {
      expect(
        positions.map((at) => firstNotErased(erasedThen(0x3_0000, value, at), 0, 0x3_0000, value)),
      ).toEqual(positions);
    });
  }

  it('returns `to` for an erased range, and stops at `to` even when erased bytes follow', () => {
    const bytes = new Uint8Array(0x2_0010).fill(0xff);
    expect(firstNotErased(bytes, 3, bytes.length, 0xff)).toBe(bytes.length);
    expect(firstNotErased(bytes, 3, 0x1_2345, 0xff)).toBe(0x1_2345);
    expect(firstNotErased(bytes, 5, 5, 0xff)).toBe(5);
  });

  it('works on a view at an odd offset of a larger buffer', () => {
    const backing = new Uint8Array(0x1_1000).fill(0xff);
    backing[0x1_0abc] = 0;
    const view = backing.subarray(7);
    expect(firstNotErased(view, 0, view.length, 0xff)).toBe(0x1_0abc - 7);
  });

  it('compares bytes one by one for a value without a block (neither 0x00 nor 0xFF)', () => {
    expect(firstNotErased(erasedThen(100, 0x42, 77), 0, 100, 0x42)).toBe(77);
  });
});
