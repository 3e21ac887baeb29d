// The exact-size JS LZMA decoder against the native one (@napi-rs/lzma) on every LZMA section
// of the corpus images and the EDK2 fixtures: byte-identical output. And its bounds: one
// allocation of the declared size, coded errors for streams that lie.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import type * as NapiLzma from '@napi-rs/lzma';
import { describe, expect, it } from 'vitest';
import { sha256 } from '../../core/digest.js';
import { parseFirmware, walkNodes } from '../firmware-tree.js';
import { decompressLzma, readLzmaHeader } from './lzma.js';
import { readCorpus } from '../../../test/corpus.js';
import { lzmaEncode, lzmaRun } from '../../../test/lzma-zeros.js';
import { errorCodeOf } from '../../../test/bytes-helpers.js';

const native = (createRequire(import.meta.url)('@napi-rs/lzma') as typeof NapiLzma).lzma;
const js = (data: Uint8Array): Uint8Array => decompressLzma(data, { nativeMaxOutputBytes: 0 });
const FIXTURES = path.resolve(import.meta.dirname, '../../../test/fixtures/edk2');

describe('JS LZMA decoder = native decoder', () => {
  it.each(['payload.bin.lzma', 'app.efi.lzmaf86'])('EDK2 fixture %s', (file) => {
    const data = new Uint8Array(readFileSync(path.join(FIXTURES, file)));
    expect(sha256(js(data))).toBe(sha256(native.decompressSync(data)));
  });

  it.each([
    'images/geminilake-ovmf-with-gop-vbt-gk41.fd',
    'ovmf/OVMF_CODE_4M.fd',
    'kabylake-platform-clevo-p870km-modded-spi.rom',
  ])('every LZMA section of %s', (file) => {
    const image = readCorpus(file.includes('/') ? file : `images/${file}`);
    const tree = parseFirmware(image, { verifyChecksums: false, summarizePe: false });
    let count = 0;
    for (const node of walkNodes(tree.root)) {
      if (node.kind !== 'section' || node.compression?.algorithm !== 'LZMA') continue;
      const data = node.bytes.subarray(node.section.dataOffset);
      const decoded = js(data);
      expect(decoded.length).toBe(readLzmaHeader(data, 2 ** 31).uncompressedSizeInBytes);
      expect(sha256(decoded)).toBe(sha256(node.body));
      count++;
    }
    expect(count).toBeGreaterThan(0);
  });

  it('decodes runs made by the test encoder like the native decoder', () => {
    for (const size of [0, 1, 2, 3, 274, 275, 70_000]) {
      const data = lzmaEncode(Uint8Array.from([1, 2, 3, 4]), size, 0xa5);
      expect(sha256(js(data))).toBe(sha256(native.decompressSync(data)));
    }
  });
});

describe('JS LZMA decoder bounds', () => {
  it('allocates exactly the declared size: a 64 MiB run is one 64 MiB buffer', () => {
    const out = decompressLzma(lzmaRun(64 * 1024 * 1024), { maxOutputBytes: 64 * 1024 * 1024 });
    expect(out.byteLength).toBe(64 * 1024 * 1024);
    expect(out.buffer.byteLength).toBe(64 * 1024 * 1024);
    expect(out.every((b) => b === 0)).toBe(true);
  });

  it('refuses a declared size above the limit before decoding', () => {
    expect(errorCodeOf(() => decompressLzma(lzmaRun(1000), { maxOutputBytes: 999 }))).toBe(
      'E_DECOMPRESS_TOO_LARGE',
    );
  });

  it('a stream that declares more than it holds is E_DECOMPRESS_CORRUPT, not a short buffer', () => {
    const data = lzmaRun(1000);
    new DataView(data.buffer).setBigUint64(5, 5000n, true);
    expect(errorCodeOf(() => js(data))).toBe('E_DECOMPRESS_CORRUPT');
  });

  it('a range coder that does not start with 0 is E_DECOMPRESS_CORRUPT', () => {
    const data = lzmaRun(1000);
    data[13] = 1;
    expect(errorCodeOf(() => js(data))).toBe('E_DECOMPRESS_CORRUPT');
  });

  it('a range coder whose code equals its range is E_DECOMPRESS_CORRUPT', () => {
    const data = lzmaRun(1000);
    data.fill(0xff, 14, 18);
    expect(() => js(data)).toThrow(
      'lzma stream is corrupt at 0xd: the range coder starts in an impossible state',
    );
  });

  it('a first symbol that is a repeated match (nothing to repeat yet) is E_DECOMPRESS_CORRUPT', () => {
    // lc=3 lp=0 pb=2, no literal first: code just above the IsMatch and IsRep bounds.
    const data = lzmaRun(1000);
    data.set([0x00, 0xf0, 0x00, 0x00, 0x00], 13);
    expect(() => js(data)).toThrow(
      /lzma stream is corrupt at 0x[0-9a-f]+: a repeated match before any output/,
    );
  });
});

describe('abort', () => {
  it('a parse given an aborted signal stops with E_ABORTED, also inside a large LZMA section', () => {
    const controller = new AbortController();
    controller.abort(new Error('SIGINT'));
    expect(() =>
      parseFirmware(readCorpus('images/geminilake-ovmf-with-gop-vbt-gk41.fd'), { signal: controller.signal }),
    ).toThrow(expect.objectContaining({ code: 'E_ABORTED' }));
    expect(() =>
      decompressLzma(lzmaRun(32 * 1024 * 1024), { nativeMaxOutputBytes: 0, signal: controller.signal }),
    ).toThrow(expect.objectContaining({ code: 'E_ABORTED' }));
  });
});
