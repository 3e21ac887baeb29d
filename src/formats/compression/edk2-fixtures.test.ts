// Every decompressor against streams made by EDK2's own BaseTools (test/fixtures/edk2,
// produced by scripts/make-edk2-fixtures.sh): outputs must hash to the recorded inputs.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  crc32,
  decompressBrotli,
  decompressEfi,
  decompressLzma,
  decompressLzmaF86,
  decompressStandard,
  decompressTiano,
} from './index.js';

const FIXTURES = path.resolve(import.meta.dirname, '../../../test/fixtures/edk2');

interface FixtureEntry {
  readonly file: string;
  readonly kind: string;
  readonly command: string;
  readonly inputs: readonly { file: string; size: number; sha256: string }[];
  readonly sha256: string;
  readonly size: number;
  readonly expect?: Record<string, unknown>;
}

const index = JSON.parse(readFileSync(path.join(FIXTURES, 'index.json'), 'utf8')) as {
  fixtures: FixtureEntry[];
};
const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');
const read = (file: string): Uint8Array => new Uint8Array(readFileSync(path.join(FIXTURES, file)));

/** sha256 of any file a fixture was made from or is, by name. */
const digests = new Map<string, string>();
for (const entry of index.fixtures) {
  digests.set(entry.file, entry.sha256);
  for (const input of entry.inputs) {
    digests.set(input.file, input.sha256);
  }
}
const digestOf = (file: string): string => {
  const digest = digests.get(file);
  expect(digest, `index.json knows ${file}`).toBeDefined();
  return digest!;
};

const DECOMPRESSORS: Record<string, (data: Uint8Array) => Uint8Array> = {
  efi: decompressEfi,
  tiano: decompressTiano,
  lzma: decompressLzma,
  'lzma-f86': decompressLzmaF86,
  brotli: decompressBrotli,
};

const compressed = index.fixtures.filter((entry) => entry.kind === 'compressed');

describe('EDK2 fixtures', () => {
  it('index.json matches the files on disk', () => {
    expect(index.fixtures.length).toBe(29);
    for (const entry of index.fixtures) {
      const data = read(entry.file);
      expect({ file: entry.file, size: data.length, sha256: sha256(data) }).toEqual({
        file: entry.file,
        size: entry.size,
        sha256: entry.sha256,
      });
    }
  });

  it('covers every decompressor', () => {
    expect(new Set(compressed.map((entry) => entry.expect?.['algorithm']))).toEqual(
      new Set(['efi', 'tiano', 'lzma', 'lzma-f86', 'brotli']),
    );
  });

  it.each(compressed)('$file ($command) decompresses to its input', (entry) => {
    const algorithm = entry.expect!['algorithm'] as string;
    const target = entry.expect!['decompressesTo'] as string;
    const output = DECOMPRESSORS[algorithm]!(read(entry.file));
    expect(sha256(output)).toBe(digestOf(target));
  });

  it('decompressStandard names the variant TianoCompress used', () => {
    for (const [file, variant] of [
      ['payload.bin.efi', 'efi'],
      ['payload.bin.tiano', 'tiano'],
      ['app.efi.efi', 'efi'],
      ['app.efi.tiano', 'tiano'],
    ] as const) {
      const result = decompressStandard(read(file));
      expect({ file, variant: result.variant, sha256: sha256(result.output) }).toEqual({
        file,
        variant,
        sha256: digestOf(file.replace(/\.(efi|tiano)$/, '')),
      });
    }
  });

  it('the x86 BCJ filter matters: LZMA alone does not restore app.efi', () => {
    const withoutFilter = decompressLzma(read('app.efi.lzmaf86'));
    const withFilter = decompressLzmaF86(read('app.efi.lzmaf86'));
    expect(withoutFilter.length).toBe(withFilter.length);
    const changed = withoutFilter.reduce(
      (count, byte, offset) => count + (byte === withFilter[offset] ? 0 : 1),
      0,
    );
    expect(changed).toBeGreaterThan(100);
    expect(sha256(withFilter)).toBe(digestOf('app.efi'));
  });
});

/** EFI_GUID_DEFINED_SECTION (PI spec vol. 3, 3.2.5.7): GUID at 4, DataOffset at 20, Attributes at 22. */
function guidedSection(data: Uint8Array): { guid: string; dataOffset: number; attributes: number } {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  expect(view.getUint8(3)).toBe(0x02);
  const hex = (offset: number, length: number, littleEndian: boolean): string => {
    const bytes = [...data.subarray(offset, offset + length)];
    return (littleEndian ? bytes.reverse() : bytes)
      .map((byte) => byte.toString(16).padStart(2, '0'))
      .join('');
  };
  const guid = [hex(4, 4, true), hex(8, 2, true), hex(10, 2, true), hex(12, 2, false), hex(14, 6, false)]
    .join('-')
    .toUpperCase();
  return { guid, dataOffset: view.getUint16(20, true), attributes: view.getUint16(22, true) };
}

describe('EDK2 sections', () => {
  const sections: [string, (data: Uint8Array) => Uint8Array][] = [
    ['app.guid-lzma.sec', decompressLzma],
    ['app.guid-lzmaf86.sec', decompressLzmaF86],
    ['app.guid-brotli.sec', decompressBrotli],
    ['app.guid-tiano.sec', decompressTiano],
  ];

  it.each(sections)('%s body decompresses to the leaf sections', (file, decompress) => {
    const data = read(file);
    const entry = index.fixtures.find((candidate) => candidate.file === file)!;
    const header = guidedSection(data);
    expect(header).toEqual({ guid: entry.expect!['guid'], dataOffset: 24, attributes: 1 });
    expect(sha256(decompress(data.subarray(header.dataOffset)))).toBe(digestOf('leaf.all'));
  });

  it('EFI_SECTION_COMPRESSION PI_STD holds EFI 1.1 data', () => {
    const data = read('app.compress.sec');
    const view = new DataView(data.buffer, data.byteOffset);
    // EFI_COMPRESSION_SECTION: UncompressedLength at 4, CompressionType at 8 (1 = standard).
    expect([view.getUint8(3), view.getUint8(8)]).toEqual([0x01, 0x01]);
    const result = decompressStandard(data.subarray(9));
    expect(result.variant).toBe('efi');
    expect(result.output.length).toBe(view.getUint32(4, true));
    expect(sha256(result.output)).toBe(digestOf('leaf.all'));
  });

  it('CRC32 GUIDed section: our CRC equals the one GenSec stored', () => {
    const data = read('app.guid-crc32.sec');
    const header = guidedSection(data);
    // EFI_GUID_DEFINED_SECTION + UINT32 CRC32 (CRC32_SECTION_HEADER), AUTH_STATUS_VALID.
    expect(header).toEqual({ guid: 'FC1BCDB0-7D31-49AA-936A-A4600D9DD083', dataOffset: 28, attributes: 2 });
    const stored = new DataView(data.buffer, data.byteOffset).getUint32(24, true);
    const body = data.subarray(header.dataOffset);
    expect(sha256(body)).toBe(digestOf('leaf.all'));
    expect(crc32(body)).toBe(stored);
  });
});

describe('EfiRom -ec option ROM', () => {
  it('holds an EFI 1.1 stream of app.efi', () => {
    const rom = read('app-ec.rom');
    const view = new DataView(rom.buffer, rom.byteOffset);
    // EFI_PCI_EXPANSION_ROM_HEADER (PCI firmware spec / UEFI spec 14.4.2): EfiSignature at
    // 4, EfiMachineType at 0x0A, CompressionType at 0x0C, EfiImageHeaderOffset at 0x16.
    expect([view.getUint16(0, true), view.getUint32(4, true), view.getUint16(0x0a, true)]).toEqual([
      0xaa55, 0x0ef1, 0x8664,
    ]);
    expect(view.getUint16(0x0c, true)).toBe(1);
    const imageOffset = view.getUint16(0x16, true);
    expect(sha256(decompressEfi(rom.subarray(imageOffset)))).toBe(digestOf('app.efi'));
  });
});
