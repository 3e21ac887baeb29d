import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compressEfi } from './efi-compress.js';
import { decompressEfi, decompressStandard } from './efi-decompress.js';

const FIXTURES = path.resolve(import.meta.dirname, '../../../test/fixtures/edk2');
const read = (file: string): Uint8Array => new Uint8Array(readFileSync(path.join(FIXTURES, file)));
const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

describe('compressEfi', () => {
  it.each([
    ['payload.bin', 'payload.bin.efi'],
    ['app.efi', 'app.efi.efi'],
  ])('is byte-identical to TianoCompress --uefi for %s', (input, reference) => {
    expect(sha256(compressEfi(read(input)))).toBe(sha256(read(reference)));
  });

  it('is byte-identical to the image EfiRom -ec stored in app-ec.rom', () => {
    const rom = read('app-ec.rom');
    const imageOffset = new DataView(rom.buffer, rom.byteOffset).getUint16(0x16, true);
    const compressed = compressEfi(read('app.efi'));
    expect(sha256(rom.subarray(imageOffset, imageOffset + compressed.length))).toBe(sha256(compressed));
  });

  it('writes the EDK2 stream for an empty input (header, empty block, terminating zero)', () => {
    expect([...compressEfi(new Uint8Array(0))]).toEqual([...read('empty.bin.efi')]);
  });

  it('round-trips through decompressEfi for any input (property)', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 3000 }),
          // Low-entropy data: long matches, window slides and repeated patterns.
          fc
            .tuple(fc.uint8Array({ minLength: 1, maxLength: 40 }), fc.integer({ min: 1, max: 1200 }))
            .map(([pattern, repeat]) =>
              Uint8Array.from({ length: pattern.length * repeat }, (_, i) => pattern[i % pattern.length]!),
            ),
          fc
            .array(fc.constantFrom(0, 1, 0xff, 0x41), { maxLength: 20_000 })
            .map((values) => Uint8Array.from(values)),
        ),
        (input) => {
          const compressed = compressEfi(input);
          expect(sha256(decompressEfi(compressed))).toBe(sha256(input));
          expect(decompressStandard(compressed).variant).toBe('efi');
        },
      ),
      { numRuns: 300 },
    );
  });

  it('round-trips inputs larger than the 8 KiB window and the 16 KiB block buffer', () => {
    const large = new Uint8Array(200_000);
    let state = 7;
    for (let index = 0; index < large.length; index++) {
      state = (state * 1_103_515_245 + 12_345) >>> 0;
      // Mostly a small alphabet with runs, so matches reach back across window slides.
      large[index] = index % 5000 < 2500 ? (state >>> 29) + 0x30 : large[index - 2500]!;
    }
    const compressed = compressEfi(large);
    expect(compressed.length).toBeLessThan(large.length / 2);
    expect(sha256(decompressEfi(compressed))).toBe(sha256(large));
  });
});
