// Fuzzing every decompressor (STYLE.md, "undici fuzzes its parsers"): random bytes,
// random bytes behind plausible headers, and mutated or truncated real streams (EDK2
// fixtures and, when the corpus is present, sections of real firmware read in place).
// Each call must return bytes within the limit or throw our FormatError with an
// E_DECOMPRESS_* code, and finish within a second.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { corpusAvailable, readCorpus } from './corpus.js';
import { mutateStream, streamMutation } from './stream-mutation.js';
import { FormatError } from '../src/core/errors.js';
import {
  decompressBrotli,
  decompressEfi,
  decompressLzma,
  decompressLzmaF86,
  decompressStandard,
  decompressTiano,
  type DecompressLimits,
} from '../src/formats/compression/index.js';
import { cpuNow } from './cpu-time.js';

const MAX_OUTPUT_BYTES = 16 * 1024 * 1024;
const LIMITS: DecompressLimits = { maxOutputBytes: MAX_OUTPUT_BYTES };
const CALL_BUDGET_MS = 1000;

type Decompressor = (data: Uint8Array, limits?: DecompressLimits) => Uint8Array;
const DECOMPRESSORS: Record<string, Decompressor> = {
  efi: decompressEfi,
  tiano: decompressTiano,
  standard: (data, limits) => decompressStandard(data, limits).output,
  lzma: decompressLzma,
  'lzma-f86': decompressLzmaF86,
  // The exact-size JS decoder that takes sections above nativeMaxOutputBytes.
  'lzma-js': (data, limits) => decompressLzma(data, { ...limits, nativeMaxOutputBytes: 0 }),
  brotli: decompressBrotli,
};

let calls = 0;

/** The fuzz oracle: bytes within the limit, or our error; never anything else, never slow. */
function checkOne(name: string, data: Uint8Array): void {
  const started = cpuNow();
  let outcome: 'ok' | 'error' = 'ok';
  try {
    const output = DECOMPRESSORS[name]!(data, LIMITS);
    expect(output).toBeInstanceOf(Uint8Array);
    expect(output.length).toBeLessThanOrEqual(MAX_OUTPUT_BYTES);
  } catch (error) {
    outcome = 'error';
    if (!(error instanceof FormatError) || !error.code.startsWith('E_DECOMPRESS_')) {
      throw new Error(`${name} threw a foreign error on ${data.length} bytes: ${String(error)}`, {
        cause: error,
      });
    }
    expect(error.details['format']).toBeTypeOf('string');
    expect(error.details['offset']).toBeTypeOf('number');
  }
  const elapsedMs = cpuNow() - started;
  expect(elapsedMs, `${name} took ${elapsedMs.toFixed(0)} ms (${outcome})`).toBeLessThan(CALL_BUDGET_MS);
  calls++;
}

const FIXTURES = path.resolve(import.meta.dirname, 'fixtures/edk2');
const fixture = (file: string): Uint8Array => new Uint8Array(readFileSync(path.join(FIXTURES, file)));

/** Real streams to mutate, with the decompressor that understands each. */
const seeds: { name: string; decompressor: string; data: Uint8Array }[] = [
  { name: 'payload.bin.efi', decompressor: 'efi', data: fixture('payload.bin.efi') },
  { name: 'payload.bin.tiano', decompressor: 'tiano', data: fixture('payload.bin.tiano') },
  { name: 'app.efi.efi', decompressor: 'standard', data: fixture('app.efi.efi') },
  { name: 'payload.bin.lzma', decompressor: 'lzma', data: fixture('payload.bin.lzma') },
  { name: 'app.efi.lzmaf86', decompressor: 'lzma-f86', data: fixture('app.efi.lzmaf86') },
  { name: 'payload.bin.lzma (JS decoder)', decompressor: 'lzma-js', data: fixture('payload.bin.lzma') },
  { name: 'payload.bin.brotli', decompressor: 'brotli', data: fixture('payload.bin.brotli') },
];

const LZMA_SECTION_GUID = Uint8Array.from([
  0x98, 0x58, 0x4e, 0xee, 0x14, 0x39, 0x59, 0x42, 0x9d, 0x6e, 0xdc, 0x7b, 0xd7, 0x94, 0x03, 0xcf,
]);

/** Body of the first LZMA GUID-defined section (PI spec vol. 3, 3.2.5.7) in `image`. */
function firstLzmaSectionBody(image: Uint8Array): Uint8Array {
  for (let offset = 4; offset + 24 < image.length; offset++) {
    if (image[offset] === 0x98 && LZMA_SECTION_GUID.every((byte, i) => image[offset + i] === byte)) {
      const section = offset - 4;
      const size = image[section]! | (image[section + 1]! << 8) | (image[section + 2]! << 16);
      const dataOffset = image[offset + 16]! | (image[offset + 17]! << 8);
      if (image[section + 3] === 0x02 && size > dataOffset && section + size <= image.length) {
        return image.subarray(section + dataOffset, section + size);
      }
    }
  }
  throw new Error('no LZMA section found');
}

if (corpusAvailable()) {
  // OVMF's DXE volume is one LZMA section (about 1.5 MB in, 13.5 MB out): fuzz its first
  // 16 KiB (header included), which always ends early, so every run stays fast.
  const ovmf = firstLzmaSectionBody(readCorpus('ovmf/OVMF_CODE_4M.fd'));
  seeds.push({
    name: 'OVMF_CODE_4M.fd LZMA prefix',
    decompressor: 'lzma',
    data: ovmf.subarray(0, 16 * 1024),
  });
  seeds.push({
    name: 'OVMF_CODE_4M.fd LZMA prefix (JS decoder)',
    decompressor: 'lzma-js',
    data: ovmf.subarray(0, 16 * 1024),
  });
  const ifwi = readCorpus('images/geminilake-protectli-vp2410-ifwi.bin');
  for (const sectionOffset of [0x14_4c7c, 0x14_f630, 0x17_7518]) {
    const size = ifwi[sectionOffset]! | (ifwi[sectionOffset + 1]! << 8) | (ifwi[sectionOffset + 2]! << 16);
    seeds.push({
      name: `protectli EFI 1.1 section @${sectionOffset.toString(16)}`,
      decompressor: 'standard',
      data: ifwi.subarray(sectionOffset + 9, sectionOffset + size),
    });
  }
}

describe('fuzzing the decompressors', () => {
  it.each(Object.keys(DECOMPRESSORS))('%s: random bytes', (name) => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4096 }), (data) => checkOne(name, data)),
      { numRuns: 250 },
    );
  });

  it.each(Object.keys(DECOMPRESSORS))('%s: random bytes behind a plausible header', (name) => {
    const header = fc.record({
      declared: fc.integer({ min: 0, max: MAX_OUTPUT_BYTES }),
      body: fc.uint8Array({ maxLength: 4096 }),
    });
    fc.assert(
      fc.property(header, ({ declared, body }) => {
        let data: Uint8Array;
        if (name === 'lzma' || name === 'lzma-f86' || name === 'lzma-js') {
          data = new Uint8Array(13 + body.length);
          data.set([0x5d, 0x00, 0x00, 0x80, 0x00]);
          new DataView(data.buffer).setBigUint64(5, BigInt(declared), true);
        } else if (name === 'brotli') {
          data = new Uint8Array(16 + body.length);
          new DataView(data.buffer).setBigUint64(0, BigInt(declared), true);
        } else {
          data = new Uint8Array(8 + body.length);
          new DataView(data.buffer).setUint32(0, body.length, true);
          new DataView(data.buffer).setUint32(4, declared, true);
        }
        data.set(body, data.length - body.length);
        checkOne(name, data);
      }),
      { numRuns: 200 },
    );
  });

  it.each(seeds)('$name: mutated and truncated ($decompressor)', ({ decompressor, data }) => {
    fc.assert(
      fc.property(fc.array(streamMutation, { minLength: 1, maxLength: 3 }), (changes) => {
        checkOne(
          decompressor,
          changes.reduce((bytes, change) => mutateStream(bytes, change), data),
        );
      }),
      { numRuns: 220 },
    );
  });

  it('ran at least 4,000 inputs in total', () => {
    expect(calls).toBeGreaterThanOrEqual(4000);
  });
});
