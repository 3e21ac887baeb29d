// The firmware parser against structures made by EDK2's own BaseTools (test/fixtures/edk2,
// see its README and index.json): GenSec sections, GenFfs files, GenFv volumes, GenFv and
// GenerateCapsule.py capsules.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { sha256 } from '../src/core/digest.js';
import { decompressLzma } from '../src/formats/compression/index.js';
import type { CapsuleNode, FileNode, FirmwareNode, SectionNode } from '../src/formats/firmware-node.js';
import { listFiles, parseFirmware, parseFirmwareVolume, walkNodes } from '../src/formats/firmware-tree.js';
import { ffsFile, volume } from './ffs-builder.js';

const DIR = path.resolve(import.meta.dirname, 'fixtures/edk2');

interface Fixture {
  readonly file: string;
  readonly kind: string;
  readonly sha256: string;
  readonly inputs?: readonly { readonly file: string; readonly sha256: string; readonly size: number }[];
  readonly expect?: Record<string, unknown> | null;
}
const index = JSON.parse(readFileSync(path.join(DIR, 'index.json'), 'utf8')) as { fixtures: Fixture[] };
const fixture = (name: string): Fixture => index.fixtures.find((f) => f.file === name) as Fixture;
const read = (name: string): Uint8Array => {
  const bytes = new Uint8Array(readFileSync(path.join(DIR, name)));
  expect(sha256(bytes), `${name} is the fixture index.json describes`).toBe(fixture(name).sha256);
  return bytes;
};
const inputSha = (name: string, input: string): string =>
  fixture(name).inputs?.find((i) => i.file === input)?.sha256 as string;

function sectionTypes(node: FirmwareNode): number[] {
  return node.children.filter((c): c is SectionNode => c.kind === 'section').map((s) => s.section.type);
}

const APP_EFI = fixture('app.efi').sha256;
const LEAF_TYPES = [0x10, 0x15, 0x14];

describe('EDK2 fixtures: GenFv volume', () => {
  it('fixture.fv: FvName, five files, their sections, compression and alignment', () => {
    const tree = parseFirmwareVolume(read('fixture.fv'), { strict: true });
    const [fv] = tree.root.children;
    // index.json names an FvNameGuid, but GenFv wrote no extended header (ExtHeaderOffset at
    // 0x34 is 0), so there is no FvName in the bytes: the volume is named by its file system.
    expect(fv?.kind === 'volume' && fv.volume.extHeaderOffset).toBe(0);
    expect(fv?.kind === 'volume' && fv.volume.fvName).toBeNull();
    expect(fv?.name).toBe('8C8CE578-8A3D-4F1C-9935-896185C32DD3');
    expect(fv?.kind === 'volume' && fv.volume.checksum.valid).toBe(true);
    expect(fv?.kind === 'volume' && fv.volume.erasePolarity).toBe(1);
    const files = listFiles(tree);
    const expected = (
      fixture('fixture.fv').expect as {
        files: { guid: string; type: number; sections?: number[]; inner?: number[]; guid_section?: string }[];
      }
    ).files;
    expect(files.map((f) => [f.guid, f.file.type])).toEqual(expected.map((f) => [f.guid, f.type]));
    for (const [i, want] of expected.entries()) {
      const file = files[i] as FileNode;
      expect(file.file.headerChecksum.valid).toBe(true);
      expect(file.file.dataChecksum.valid).toBe(true);
      if (want.sections !== undefined) expect(sectionTypes(file)).toEqual(want.sections);
      if (want.inner !== undefined) {
        const outer = file.children[0] as SectionNode;
        expect(outer.compression?.decoded).toBe(true);
        expect(sectionTypes(outer)).toEqual(want.inner);
        if (want.guid_section !== undefined) expect(outer.section.guided?.guid).toBe(want.guid_section);
      }
      if (want.type === 7 || want.inner !== undefined) {
        expect(file.uiName).toBe('FixtureDriver');
        const pe = [...walkNodes(file)].find(
          (n): n is SectionNode => n.kind === 'section' && n.section.type === 0x10,
        );
        expect(sha256(pe?.body as Uint8Array)).toBe(APP_EFI);
        expect(pe?.pe).toMatchObject({
          format: 'PE32+',
          machineName: 'x64',
          subsystemName: 'EFI_BOOT_SERVICE_DRIVER',
        });
      }
    }
    const algorithms = files.map(
      (f) => (f.children[0] as SectionNode | undefined)?.compression?.algorithm ?? null,
    );
    expect(algorithms).toEqual([null, 'EFI 1.1', 'LZMA', 'Brotli', null]);
    const raw = files[4] as FileNode;
    // Data of an aligned file starts on its alignment from the volume start.
    expect(raw.file.dataAlignmentInBytes).toBe(16);
    expect(((raw.offset as number) + raw.file.headerSize) % 16).toBe(0);
    expect(raw.body).toEqual(read('app.ui.sec'));
  });

  it('ffs3-large.fv.lzma: FFSv3 volume with an EFI_FFS_FILE_HEADER2 large file', () => {
    const fv = decompressLzma(read('ffs3-large.fv.lzma'));
    expect(sha256(fv)).toBe(inputSha('ffs3-large.fv.lzma', 'ffs3-large.fv'));
    const tree = parseFirmwareVolume(fv, { strict: true });
    const [v] = tree.root.children;
    expect(v?.subtype).toBe('FFSv3');
    // As for fixture.fv: no extended header in the bytes, whatever index.json says.
    expect(v?.kind === 'volume' && v.volume.fvName).toBeNull();
    const [small, large] = listFiles(tree);
    expect(small?.guid).toBe('C4C0E0A1-6F2B-4B1E-9D3A-0F1E2D3C4B05');
    expect(large?.guid).toBe('C4C0E0A1-6F2B-4B1E-9D3A-0F1E2D3C4B06');
    expect(large?.file.large).toBe(true);
    expect(large?.file.headerSize).toBe(32);
    expect(large?.body.length).toBe(16_777_192);
    expect(sha256(large?.body as Uint8Array)).toBe(inputSha('ffs3-large.fv.lzma', 'large.bin'));
  });
});

describe('EDK2 fixtures: GenSec sections inside a file', () => {
  const wrap = (name: string): FileNode => {
    const tree = parseFirmware(volume([ffsFile('C4C0E0A1-6F2B-4B1E-9D3A-0F1E2D3C4BFF', 0x07, read(name))]), {
      strict: true,
    });
    return listFiles(tree)[0] as FileNode;
  };
  const leafAll = read('leaf.all');
  for (const [name, algorithm] of [
    ['app.compress.sec', 'EFI 1.1'],
    ['app.compress-none.sec', 'None'],
    ['app.guid-lzma.sec', 'LZMA'],
    ['app.guid-lzmaf86.sec', 'LZMAF86'],
    ['app.guid-brotli.sec', 'Brotli'],
    ['app.guid-tiano.sec', 'Tiano'],
    ['app.guid-crc32.sec', 'CRC32'],
  ] as const) {
    it(`${name}: ${algorithm}, decodes to leaf.all (PE32 + UI + version)`, () => {
      const file = wrap(name);
      const outer = file.children[0] as SectionNode;
      expect(outer.compression).toMatchObject({ algorithm, decoded: true });
      expect(outer.body).toEqual(leafAll);
      expect(sectionTypes(outer)).toEqual(LEAF_TYPES);
      if (algorithm === 'CRC32') expect(outer.crc32?.valid).toBe(true);
      const [pe, ui, version] = outer.children as SectionNode[];
      expect(sha256(pe?.body as Uint8Array)).toBe(APP_EFI);
      expect(ui?.uiName).toBe('FixtureDriver');
      expect(version?.version).toEqual({ buildNumber: 42, text: '1.0' });
      expect(file.uiName).toBe('FixtureDriver');
    });
  }

  it('plain.ffs: GenFfs header and data checksums verify', () => {
    const tree = parseFirmware(volume([read('plain.ffs')]), { strict: true });
    const [file] = listFiles(tree);
    expect(file?.guid).toBe('C4C0E0A1-6F2B-4B1E-9D3A-0F1E2D3C4B01');
    expect(file?.file.headerChecksum.valid).toBe(true);
    expect(file?.file.dataChecksum.valid).toBe(true);
    expect(sectionTypes(file as FileNode)).toEqual(LEAF_TYPES);
  });
});

describe('EDK2 fixtures: capsules', () => {
  it('fixture.cap: EFI_CAPSULE_HEADER of 0x20 bytes, PersistAcrossReset, the volume under it', () => {
    const tree = parseFirmware(read('fixture.cap'), { strict: true });
    expect(tree.format).toBe('capsule');
    const capsule = tree.root.children[0] as CapsuleNode;
    expect(capsule.capsule).toMatchObject({
      kind: 'UEFI',
      guid: '3B6686BD-0D76-4030-B70E-B5519E2FC5A0',
      headerSize: 32,
      flags: 0x1_0000,
      bodyOffset: 32,
    });
    expect(capsule.body).toEqual(read('capsule.fv'));
    const [fv] = capsule.children;
    expect([fv?.kind, fv?.offset]).toEqual(['volume', 32]);
    expect(listFiles(tree).map((f) => f.guid)).toEqual(['C4C0E0A1-6F2B-4B1E-9D3A-0F1E2D3C4B05']);
  });

  it('fmp.cap: FMP header, payload image type, FMP payload header versions, payload bytes', () => {
    const bytes = read('fmp.cap');
    const tree = parseFirmware(bytes, { strict: true });
    const capsule = tree.root.children[0] as CapsuleNode;
    expect(capsule.capsule.kind).toBe('FMP');
    expect(capsule.capsule.flags & 0x1_0000).toBe(0x1_0000);
    expect(capsule.capsule.fmp?.embeddedDriverCount).toBe(0);
    const [payload] = capsule.capsule.fmp?.payloads ?? [];
    expect(payload?.updateImageTypeId).toBe('3A1B8F22-5C7E-4D0B-9A44-6E2F1C3D5B70');
    expect(payload?.fmpPayloadHeader).toEqual({
      fwVersion: 0x0001_0002,
      lowestSupportedVersion: 0x0001_0000,
    });
    const node = capsule.children[0] as CapsuleNode;
    expect(sha256(node.body)).toBe(inputSha('fmp.cap', 'small.bin'));
    // small.bin is not firmware: one non-empty padding node covers it, nothing is recorded.
    expect(node.children.map((c) => [c.type, c.subtype, c.offset, c.sizeInBytes])).toEqual([
      ['Padding', 'Non-empty', node.offset === null ? null : bytes.length - 1024, 1024],
    ]);
    expect(tree.problems).toEqual([]);
  });
});
