// The WebAssembly EFI/Tiano decoder (wasm/efi-decompress.c) against the JS decoder: on every
// stream both return the same bytes and the same count of consumed bits, or both fail; and
// the embedded module is exactly what scripts/build-wasm.sh makes from the C source.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { corpusAvailable, readCorpus, REPO_ROOT } from '../../../test/corpus.js';
import { mutateStream, streamMutation } from '../../../test/stream-mutation.js';
import { sha256 } from '../../core/digest.js';
import { FormatError } from '../../core/errors.js';
import { EFI_DECOMPRESS_WASM_BASE64 } from './efi-decompress-wasm.generated.js';
import { decodeEfiJs, decodeEfiVariant, readEfiHeader, type EfiVariant } from './efi-decompress.js';
import { decodeEfiWasm } from './efi-decompress-wasm.js';
import { EFI_HEADER_SIZE } from './efi-format.js';

const MAX_OUTPUT_BYTES = 16 * 1024 * 1024;
const FIXTURES = path.join(REPO_ROOT, 'test/fixtures/edk2');
const fixture = (file: string): Uint8Array => new Uint8Array(readFileSync(path.join(FIXTURES, file)));

type Outcome =
  | { readonly kind: 'decoded'; readonly output: Uint8Array; readonly consumedBits: number }
  | { readonly kind: 'failed'; readonly code: string; readonly message: string; readonly details: unknown };

function outcomeOf(decode: () => { output: Uint8Array; consumedBits: number }): Outcome {
  try {
    const { output, consumedBits } = decode();
    return { kind: 'decoded', output, consumedBits };
  } catch (error) {
    if (!(error instanceof FormatError)) {
      throw error;
    }
    return { kind: 'failed', code: error.code, message: error.message, details: error.details };
  }
}

/**
 * The differential oracle: the WebAssembly decoder succeeds exactly when the JS decoder does,
 * with the same bytes and consumed bits, and decodeEfiVariant (WebAssembly first) gives the JS
 * decoder's result or its very error. Returns whether the stream decoded.
 */
function checkSame(data: Uint8Array, variant: EfiVariant): boolean {
  const js = outcomeOf(() => decodeEfiJs(data, variant, readEfiHeader(data, MAX_OUTPUT_BYTES, variant)));
  const front = outcomeOf(() => decodeEfiVariant(data, variant, MAX_OUTPUT_BYTES));
  expect(front).toEqual(js);
  let header;
  try {
    header = readEfiHeader(data, MAX_OUTPUT_BYTES, variant);
  } catch {
    // A header refused before decoding (too large, truncated) never reaches either decoder.
    return false;
  }
  const wasm = decodeEfiWasm(
    data.subarray(EFI_HEADER_SIZE, EFI_HEADER_SIZE + header.compressedSizeInBytes),
    header.originalSizeInBytes,
    variant,
  );
  if (js.kind === 'failed') {
    expect(wasm).toBeUndefined();
    return false;
  }
  expect(wasm).toBeDefined();
  expect(wasm!.consumedBits).toBe(js.consumedBits);
  expect(Buffer.compare(wasm!.output, js.output)).toBe(0);
  return true;
}

interface Stream {
  readonly name: string;
  readonly variant: EfiVariant;
  readonly data: Uint8Array;
}

const EDK2_STREAMS: readonly Stream[] = [
  { name: 'payload.bin.efi', variant: 'efi', data: fixture('payload.bin.efi') },
  { name: 'payload.bin.tiano', variant: 'tiano', data: fixture('payload.bin.tiano') },
  { name: 'app.efi.efi', variant: 'efi', data: fixture('app.efi.efi') },
  { name: 'app.efi.tiano', variant: 'tiano', data: fixture('app.efi.tiano') },
  { name: 'empty.bin.efi', variant: 'efi', data: fixture('empty.bin.efi') },
];

/** EFI 1.1 compression sections of the Coffee Lake FSP (offsets of the section headers). */
const COFFEE_LAKE_SECTIONS = [
  0x20b8, 0x511c, 0x841c, 0x2_2948, 0x2_2ca0, 0x2_3668, 0x2_4a30, 0x2_5938, 0x2_5dd8,
];

function coffeeLakeStreams(): Stream[] {
  const image = readCorpus('images/coffeelake-intel-fsp.fd');
  return COFFEE_LAKE_SECTIONS.map((offset) => {
    const size = image[offset]! | (image[offset + 1]! << 8) | (image[offset + 2]! << 16);
    return {
      name: `coffeelake-intel-fsp.fd section @${offset.toString(16)}`,
      variant: 'efi' as const,
      data: image.subarray(offset + 9, offset + size),
    };
  });
}

describe('the embedded WebAssembly module', () => {
  const bytes = Buffer.from(EFI_DECOMPRESS_WASM_BASE64, 'base64');

  it('imports nothing and exports the decoder, its memory and two accessors', () => {
    // The lib is ES2023 without DOM and @types/node declares no WebAssembly globals.
    interface ModuleApi {
      new (bytes: Uint8Array): object;
      imports(module: object): unknown[];
      exports(module: object): { kind: string; name: string }[];
    }
    const Module = (globalThis as unknown as { WebAssembly: { Module: ModuleApi } }).WebAssembly.Module;
    const module = new Module(bytes);
    expect(Module.imports(module)).toEqual([]);
    expect(
      Module.exports(module)
        .map((entry) => `${entry.kind} ${entry.name}`)
        .sort(),
    ).toEqual(['function consumed_bits', 'function decode', 'function heap_base', 'memory memory']);
  });

  const tools = spawnSync('sh', ['-c', 'command -v clang-14 && command -v wasm-ld-14'], { encoding: 'utf8' });
  const haveToolchain = tools.status === 0;
  it.skipIf(!haveToolchain)(
    'is what scripts/build-wasm.sh makes from wasm/efi-decompress.c, twice alike' +
      (haveToolchain
        ? ''
        : ' (skipped: clang-14 and wasm-ld-14 are not on PATH; apt-get install clang-14 lld-14)'),
    () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'build-wasm-'));
      try {
        const built: string[] = [];
        for (const name of ['first.ts', 'second.ts']) {
          const out = path.join(dir, name);
          const run = spawnSync('bash', [path.join(REPO_ROOT, 'scripts/build-wasm.sh'), out], {
            encoding: 'utf8',
          });
          expect(run.stderr).toBe('');
          expect(run.status).toBe(0);
          built.push(readFileSync(out, 'utf8'));
        }
        expect(built[1]).toBe(built[0]);
        const committed = readFileSync(
          path.join(import.meta.dirname, 'efi-decompress-wasm.generated.ts'),
          'utf8',
        );
        expect(built[0]).toBe(committed);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});

describe('WebAssembly and JS decoders agree', () => {
  it('on the EDK2-made streams, byte-exact against the compressor inputs', () => {
    for (const stream of EDK2_STREAMS) {
      expect(checkSame(stream.data, stream.variant), stream.name).toBe(true);
    }
    const payload = sha256(fixture('payload.bin'));
    for (const name of ['payload.bin.efi', 'payload.bin.tiano'] as const) {
      const stream = EDK2_STREAMS.find((entry) => entry.name === name)!;
      const header = readEfiHeader(stream.data, MAX_OUTPUT_BYTES, stream.variant);
      const wasm = decodeEfiWasm(
        stream.data.subarray(EFI_HEADER_SIZE),
        header.originalSizeInBytes,
        stream.variant,
      );
      expect(sha256(wasm!.output), name).toBe(payload);
    }
  });

  it('on the wrong variant of each EDK2 stream (both fail or both decode alike)', () => {
    for (const stream of EDK2_STREAMS) {
      checkSame(stream.data, stream.variant === 'efi' ? 'tiano' : 'efi');
    }
  });

  it.skipIf(!corpusAvailable())('on the nine EFI 1.1 streams of the Coffee Lake FSP, both variants', () => {
    for (const stream of coffeeLakeStreams()) {
      expect(checkSame(stream.data, 'efi'), stream.name).toBe(true);
      checkSame(stream.data, 'tiano');
    }
  });

  const seeds = (): Stream[] => [
    ...EDK2_STREAMS.filter((stream) => stream.name !== 'empty.bin.efi'),
    ...(corpusAvailable() ? coffeeLakeStreams().filter((stream) => stream.data.length < 16 * 1024) : []),
  ];

  it('on mutated streams, both variants', () => {
    let decoded = 0;
    let failed = 0;
    for (const seed of seeds()) {
      fc.assert(
        fc.property(streamMutation, fc.constantFrom<EfiVariant>('efi', 'tiano'), (change, variant) => {
          // The body only (after the header), so most mutants reach the decoders.
          if (checkSame(mutateStream(seed.data, change, EFI_HEADER_SIZE), variant)) {
            decoded++;
          } else {
            failed++;
          }
        }),
        { numRuns: 150, seed: 20_261_202 },
      );
    }
    // Both outcomes occur, so neither side of the oracle goes untested.
    expect(decoded).toBeGreaterThan(0);
    expect(failed).toBeGreaterThan(0);
  });

  it('on random bytes behind a plausible header', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 512 }),
        fc.integer({ min: 0, max: 64 * 1024 }),
        fc.constantFrom<EfiVariant>('efi', 'tiano'),
        (body, originalSize, variant) => {
          const data = new Uint8Array(EFI_HEADER_SIZE + body.length);
          const view = new DataView(data.buffer);
          view.setUint32(0, body.length, true);
          view.setUint32(4, originalSize, true);
          data.set(body, EFI_HEADER_SIZE);
          checkSame(data, variant);
        },
      ),
      { numRuns: 500, seed: 20_261_202 },
    );
  });

  it('leaves decodes above 16 MiB of input plus output to the JS decoder', () => {
    expect(decodeEfiWasm(new Uint8Array(16), MAX_OUTPUT_BYTES, 'efi')).toBeUndefined();
  });
});
