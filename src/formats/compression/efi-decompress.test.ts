import { describe, expect, it } from 'vitest';
import { expectFormatError, sha256 } from '../../../test/bytes-helpers.js';
import { corpusAvailable, readCorpus } from '../../../test/corpus.js';
import { decodeEfiVariant, decompressEfi, decompressStandard, decompressTiano } from './efi-decompress.js';
import { cpuNow } from '../../../test/cpu-time.js';

/** Writes an EFI/Tiano stream by hand: fields MSB first, as the UEFI spec's bit order. */
class BitWriter {
  readonly #bytes: number[] = [];
  #bitCount = 0;

  put(value: number, width: number): this {
    for (let bit = width - 1; bit >= 0; bit--) {
      if (this.#bitCount % 8 === 0) {
        this.#bytes.push(0);
      }
      if ((value >>> bit) & 1) {
        this.#bytes[this.#bytes.length - 1]! |= 0x80 >>> (this.#bitCount % 8);
      }
      this.#bitCount++;
    }
    return this;
  }

  /** The 8-byte header (compressed size = bytes written) and the stream. */
  stream(originalSize: number, compressedSize = this.#bytes.length): Uint8Array {
    const out = new Uint8Array(8 + this.#bytes.length);
    const view = new DataView(out.buffer);
    view.setUint32(0, compressedSize, true);
    view.setUint32(4, originalSize, true);
    out.set(this.#bytes, 8);
    return out;
  }
}

/** A block header whose three codes each hold a single symbol (zero bits per symbol). */
const singleSymbolBlock = (blockSize: number, cSymbol: number, pSymbol: number, pBits = 4): BitWriter =>
  new BitWriter()
    .put(blockSize, 16)
    .put(0, 5)
    .put(0, 5)
    .put(0, 9)
    .put(cSymbol, 9)
    .put(0, pBits)
    .put(pSymbol, pBits);

/**
 * The T and C codes of the hand-made blocks below: T has 4 lengths of 2 bits (symbols 0..3,
 * symbol 3 is the C length "1"); C gives 0x78 'x' and 257 length 1 each, through runs of zeros
 * (T symbol 2, 20 + 9 bits). The count is the number of lengths written (up to symbol 257), not
 * of T symbols.
 */
function putXAnd257Codes(writer: BitWriter): BitWriter {
  return writer
    .put(4, 5)
    .put(2, 3)
    .put(2, 3)
    .put(2, 3)
    .put(0, 2)
    .put(2, 3)
    .put(258, 9)
    .put(0b10, 2)
    .put(0x78 - 20, 9)
    .put(0b11, 2)
    .put(0b10, 2)
    .put(257 - 0x79 - 20, 9)
    .put(0b11, 2);
}

describe('decompressEfi on hand-written streams', () => {
  it('decodes single-symbol codes that cost zero bits per symbol', () => {
    // Block size 0 stands for 65536 symbols (EDK2's UINT16 decrement); 100 are used.
    const output = decompressEfi(singleSymbolBlock(0, 0x41, 0).stream(100));
    expect(new TextDecoder().decode(output)).toBe('A'.repeat(100));
  });

  it('repeats a pattern through an overlapping match', () => {
    // Literal 'x', then match symbol 256 + 4 - 3 = 257 (length 4) at distance 0 (the byte before).
    const stream = putXAnd257Codes(new BitWriter().put(2, 16))
      // P code: single symbol 0 (distance 1).
      .put(0, 4)
      .put(0, 4)
      // Symbols: 'x' = code 0, 257 = code 1.
      .put(0, 1)
      .put(1, 1);
    expect(new TextDecoder().decode(decompressEfi(stream.stream(5)))).toBe('xxxxx');
  });

  it('rejects a back-reference before the start of the output, with offsets', () => {
    const error = expectFormatError(
      () => decompressEfi(singleSymbolBlock(1, 256, 0).stream(10)),
      'E_DECOMPRESS_CORRUPT',
    );
    expect(error.message).toBe(
      'efi stream is corrupt at 0xe: back-reference 1 bytes back from output offset 0 points before the start',
    );
    expect(error.details).toEqual({
      format: 'efi',
      offset: 14,
      reason: 'back-reference 1 bytes back from output offset 0 points before the start',
      outputOffset: 0,
    });
  });

  it('rejects a stream that needs bits past its declared compressed size', () => {
    // One literal per block: the second block header lies past the 7 stream bytes.
    const error = expectFormatError(
      () => decompressEfi(singleSymbolBlock(1, 0x41, 0).stream(2)),
      'E_DECOMPRESS_CORRUPT',
    );
    expect(error.details['reason']).toBe('stream needs more than the 7 compressed bytes the header declares');
    expect(error.details['outputOffset']).toBe(1);
  });

  it('rejects single-symbol codes outside their alphabet', () => {
    expect(
      expectFormatError(() => decompressEfi(singleSymbolBlock(1, 510, 0).stream(1)), 'E_DECOMPRESS_CORRUPT')
        .details['reason'],
    ).toBe('single-symbol code names symbol 510, alphabet has 510');
    const badT = new BitWriter().put(1, 16).put(0, 5).put(19, 5).stream(1);
    expect(expectFormatError(() => decompressEfi(badT), 'E_DECOMPRESS_CORRUPT').details['reason']).toBe(
      'single-symbol code names symbol 19, alphabet has 19',
    );
  });

  it('rejects over-subscribed, incomplete and over-long codes', () => {
    const overlap = new BitWriter().put(1, 16).put(3, 5).put(1, 3).put(1, 3).put(1, 3).put(0, 2).stream(1);
    expect(expectFormatError(() => decompressEfi(overlap), 'E_DECOMPRESS_CORRUPT').details['reason']).toBe(
      'code lengths overlap (Kraft sum 98304/65536)',
    );
    const incomplete = new BitWriter().put(1, 16).put(2, 5).put(1, 3).put(2, 3).stream(1);
    expect(expectFormatError(() => decompressEfi(incomplete), 'E_DECOMPRESS_CORRUPT').details['reason']).toBe(
      'code lengths leave codes unused (Kraft sum 49152/65536)',
    );
    // 7 followed by eleven 1-bits and a 0: length 18.
    const tooLong = new BitWriter().put(1, 16).put(1, 5).put(7, 3).put(0b1111_1111_1110, 12).stream(1);
    expect(expectFormatError(() => decompressEfi(tooLong), 'E_DECOMPRESS_CORRUPT').details['reason']).toBe(
      'code length 18 is above 16',
    );
  });

  it('rejects a symbol read from an empty code (all lengths zero) in each table, with offsets', () => {
    const emptyCode = (stream: BitWriter, size: number): Record<string, unknown> =>
      expectFormatError(() => decompressEfi(stream.stream(size)), 'E_DECOMPRESS_CORRUPT').details;
    const reason = 'symbol read from an empty Huffman code';
    // T: three zero lengths, then the zero-run field after the third; the first C length needs T.
    const t = new BitWriter().put(1, 16).put(3, 5).put(0, 3).put(0, 3).put(0, 3).put(0, 2).put(1, 9);
    expect(emptyCode(t, 1)).toEqual({ format: 'efi', offset: 13, reason, outputOffset: 0 });
    // C: single-symbol T code 0 (one zero length, zero bits) read five times.
    const c = new BitWriter().put(1, 16).put(0, 5).put(0, 5).put(5, 9).put(0, 4).put(0, 4);
    expect(emptyCode(c, 1)).toEqual({ format: 'efi', offset: 13, reason, outputOffset: 0 });
    // P: C is the single match symbol 256, P three zero lengths.
    const pEmpty = new BitWriter().put(1, 16).put(0, 5).put(0, 5).put(0, 9).put(256, 9);
    pEmpty.put(3, 4).put(0, 3).put(0, 3).put(0, 3);
    expect(emptyCode(pEmpty, 4)).toEqual({ format: 'efi', offset: 15, reason, outputOffset: 0 });
    // P again after two literals: the offset is where the block's tables end, as before this
    // decoder dropped its tree walk (the T and C codes are those of the overlapping-match test).
    const later = putXAnd257Codes(new BitWriter().put(3, 16))
      .put(3, 4)
      .put(0, 3)
      .put(0, 3)
      .put(0, 3)
      .put(0, 1)
      .put(0, 1)
      .put(1, 1);
    expect(emptyCode(later, 8)).toEqual({ format: 'efi', offset: 18, reason, outputOffset: 2 });
  });

  it('checks the header: short, compressed size past the input, original size above the limit', () => {
    expect(expectFormatError(() => decompressEfi(new Uint8Array(7)), 'E_DECOMPRESS_CORRUPT').message).toBe(
      'efi stream is corrupt at 0x0: header needs 8 bytes, only 7 present',
    );
    const stream = singleSymbolBlock(0, 0x41, 0).stream(100, 8);
    expect(expectFormatError(() => decompressTiano(stream), 'E_DECOMPRESS_CORRUPT').details).toEqual({
      format: 'tiano',
      offset: 0,
      reason: 'header declares 8 compressed bytes, only 7 follow the header',
      compressedSizeInBytes: 8,
      availableBytes: 7,
    });
    expect(
      expectFormatError(
        () => decompressEfi(singleSymbolBlock(0, 0x41, 0).stream(100), { maxOutputBytes: 99 }),
        'E_DECOMPRESS_TOO_LARGE',
      ).details,
    ).toEqual({ format: 'efi', offset: 0, declaredBytes: 100, maxOutputBytes: 99 });
  });

  it('returns an empty output for original size 0 without reading the stream', () => {
    expect(decompressEfi(new Uint8Array(8)).length).toBe(0);
  });

  it('fails fast on garbage that declares 200 MiB', () => {
    const garbage = new Uint8Array(4096).map((_, index) => (index * 2_654_435_761) >>> 24);
    new DataView(garbage.buffer).setUint32(0, 4088, true);
    new DataView(garbage.buffer).setUint32(4, 200 * 1024 * 1024, true);
    const started = cpuNow();
    expectFormatError(() => decompressStandard(garbage), 'E_DECOMPRESS_CORRUPT');
    expect(cpuNow() - started).toBeLessThan(1000);
  });
});

describe('decompressStandard', () => {
  it('prefers EFI 1.1 when both variants decode up to the end of the stream', () => {
    // A Tiano P count of five zero bits reads as an EFI count of 0 plus one bit of the
    // symbol; with zero-bit codes both decodes succeed and agree.
    for (const pBits of [4, 5]) {
      const result = decompressStandard(singleSymbolBlock(0, 0x42, 0, pBits).stream(3));
      expect(result.variant).toBe('efi');
      expect([...result.output]).toEqual([0x42, 0x42, 0x42]);
    }
  });

  it('reports both reasons when neither variant decodes', () => {
    const error = expectFormatError(
      () => decompressStandard(singleSymbolBlock(1, 256, 0).stream(10)),
      'E_DECOMPRESS_CORRUPT',
    );
    expect(error.details['reason']).toBe('neither variant decodes');
    expect(error.details['efi']).toMatchObject({ format: 'efi', outputOffset: 0 });
    expect(error.details['tiano']).toMatchObject({ format: 'tiano' });
  });

  it('passes header errors through unchanged', () => {
    expectFormatError(() => decompressStandard(new Uint8Array(3)), 'E_DECOMPRESS_CORRUPT');
    expectFormatError(
      () => decompressStandard(singleSymbolBlock(0, 0x41, 0).stream(100), { maxOutputBytes: 1 }),
      'E_DECOMPRESS_TOO_LARGE',
    );
  });
});

// EFI_SECTION_COMPRESSION bodies in real firmware. Expected digests are the output of
// EDK2's reference decoder (BaseTools TianoCompress -d --uefi) on the same bytes.
const CORPUS_SECTIONS: readonly { file: string; sectionOffset: number; sha256: string; size: number }[] = [
  {
    file: 'images/geminilake-protectli-vp2410-ifwi.bin',
    sectionOffset: 0x14_4c7c,
    size: 65_450,
    sha256: '1df170857f059090705051565df9293ea153588d482e4db1e45502ebf56569ec',
  },
  {
    file: 'images/geminilake-protectli-vp2410-ifwi.bin',
    sectionOffset: 0x14_ba78,
    size: 30_438,
    sha256: 'e0cecdd7c4fb507c4a21e55502b5392cb82648b29dbd29ba5f1868edc9599144',
  },
  {
    file: 'images/geminilake-protectli-vp2410-ifwi.bin',
    sectionOffset: 0x14_f630,
    size: 2858,
    sha256: '6b26aa4c0514d97778a33b9f2ba23f6aca7c598b21706e15f03a820e37f13db6',
  },
  {
    file: 'images/geminilake-protectli-vp2410-ifwi.bin',
    sectionOffset: 0x14_fe14,
    size: 14_670,
    sha256: 'dbf125bacceb447dbd6ef87c076a77948dd59273bd45388c8de23b0cc6b7e9f6',
  },
  {
    file: 'images/geminilake-protectli-vp2410-ifwi.bin',
    sectionOffset: 0x17_7518,
    size: 61_252,
    sha256: 'f54bf56c2fc544c9005e6c36352222ed3db7f3ac5e8ea2fcc0c599b29ad112a8',
  },
  {
    file: 'images/coffeelake-intel-fsp.fd',
    sectionOffset: 0x20b8,
    size: 19_750,
    sha256: 'ed5b47752c4a4b01a11dea1f90f11252489503e86c0c686f5f67997fe166bfa9',
  },
  {
    file: 'images/coffeelake-intel-fsp.fd',
    sectionOffset: 0x511c,
    size: 20_170,
    sha256: 'd5389724c642a25f7eeb08319772808a133d9f8c353dde50fbb97246da162145',
  },
  {
    file: 'images/coffeelake-intel-fsp.fd',
    sectionOffset: 0x841c,
    size: 221_830,
    sha256: 'f3fc638ed26ad6ba58724a4bea3948b7b4dbd8ed6d5846073b780d096970ae92',
  },
  {
    file: 'images/coffeelake-intel-fsp.fd',
    sectionOffset: 0x2_2948,
    size: 1450,
    sha256: '73371c61e305cfeb98975f1f11fa26d7f293117d929df66da869e96c3723faa4',
  },
  {
    file: 'images/coffeelake-intel-fsp.fd',
    sectionOffset: 0x2_2ca0,
    size: 3726,
    sha256: '6a4b7b4ffed3a81c5cd16684b2af1ad235fe8de8004cb846e178500f65fb7dc0',
  },
  {
    file: 'images/coffeelake-intel-fsp.fd',
    sectionOffset: 0x2_3668,
    size: 7434,
    sha256: '901c1f3a367f4b680358f09fd1ce43bc288df1c1020f920eb335de45c9af3302',
  },
  {
    file: 'images/coffeelake-intel-fsp.fd',
    sectionOffset: 0x2_4a30,
    size: 1822,
    sha256: 'e3a6c1779850b4e61f2d2eec3a941d3ab12b1f66b59b72027eaf3c332b075fa5',
  },
  {
    file: 'images/coffeelake-intel-fsp.fd',
    sectionOffset: 0x2_5938,
    size: 1998,
    sha256: 'a92149d76cc15ab92a9df55fa88a4c2e094cd4064eb0acabb503887a2e55a457',
  },
  {
    file: 'images/coffeelake-intel-fsp.fd',
    sectionOffset: 0x2_5dd8,
    size: 48_084,
    sha256: '3490a7c59dd17b4ac1d6289b917cf57ce25df8ee65b536ac060ea9301944b836',
  },
];

/** The body of the EFI_COMPRESSION_SECTION at `offset` (PI spec vol. 3, 3.2.5.2: 9-byte header). */
function compressionSectionBody(image: Uint8Array, offset: number): Uint8Array {
  const size = image[offset]! | (image[offset + 1]! << 8) | (image[offset + 2]! << 16);
  expect(image[offset + 3]).toBe(0x01);
  expect(image[offset + 8]).toBe(0x01);
  return image.subarray(offset + 9, offset + size);
}

describe.skipIf(!corpusAvailable())('EFI 1.1 sections from the corpus', () => {
  const images = new Map<string, Uint8Array>();
  const image = (file: string): Uint8Array => {
    let data = images.get(file);
    if (data === undefined) {
      data = readCorpus(file);
      images.set(file, data);
    }
    return data;
  };

  it.each(CORPUS_SECTIONS)('$file section at $sectionOffset decodes as EDK2 does', (entry) => {
    const body = compressionSectionBody(image(entry.file), entry.sectionOffset);
    const result = decompressStandard(body);
    expect(result.variant).toBe('efi');
    expect(result.output.length).toBe(entry.size);
    expect(sha256(result.output)).toBe(entry.sha256);
    // Decoding as Tiano fails for all of them, so the variant choice is not a guess.
    expectFormatError(() => decodeEfiVariant(body, 'tiano', 1 << 30), 'E_DECOMPRESS_CORRUPT');
  });
});
