import { describe, expect, it } from 'vitest';
import { FormatError } from '../core/errors.js';
import {
  concat,
  ffsFile,
  FFS3,
  guidedSection,
  le32,
  section,
  sections,
  u8,
  utf16z,
  volume,
} from '../../test/ffs-builder.js';
import { firmwareEntries, readCorpus } from '../../test/corpus.js';
import { nodePath, type FileNode, type SectionNode } from './firmware-node.js';
import { listFiles, parseFirmware, walkNodes } from './firmware-tree.js';
import { crc32 } from './compression/index.js';

const FILE_A = '1647B4F3-3E8A-4FDD-81C8-328ED647AB1A';
const FILE_B = 'E08CA6D5-8D02-43AE-ABB1-952CC787C933';
const CRC32_GUID = 'FC1BCDB0-7D31-49AA-936A-A4600D9DD083';
const UNKNOWN_GUID = '11111111-2222-3333-4444-555555555555';

function sectionsOf(file: FileNode): SectionNode[] {
  return [...walkNodes(file)].filter((n): n is SectionNode => n.kind === 'section');
}

describe('parseFirmware on built volumes', () => {
  it('walks files and sections, with UI name, version, raw body views and offsets', () => {
    const pe = new Uint8Array(64).fill(0x4d);
    const file = ffsFile(
      FILE_A,
      0x07,
      sections(
        section(0x10, pe),
        section(0x15, utf16z('IntelGopDriver')),
        section(0x14, utf16z('1.0'), u8(0x34, 0x12)),
      ),
      { attributes: 0x40 },
    );
    const raw = ffsFile(FILE_B, 0x02, sections(section(0x19, u8(1, 2, 3, 4, 5))));
    const fv = volume([file, raw], { lengthInBytes: 0x400 });
    const image = concat(new Uint8Array(0x100).fill(0xff), fv);
    const tree = parseFirmware(image, { strict: true });
    expect(tree.format).toBe('uefi');
    expect(tree.root.children.map((n) => [n.type, n.subtype, n.offset, n.sizeInBytes])).toEqual([
      ['Padding', 'Empty (0xFF)', 0, 0x100],
      ['Volume', 'FFSv2', 0x100, 0x400],
    ]);
    const [a, b] = listFiles(tree);
    expect(a?.guid).toBe(FILE_A);
    expect(a?.offset).toBe(0x148);
    expect(a?.uiName).toBe('IntelGopDriver');
    expect(a?.subtype).toBe('DXE driver');
    expect(a?.file.headerChecksum.valid).toBe(true);
    expect(a?.file.dataChecksum.valid).toBe(true);
    const [peSection, ui, version] = sectionsOf(a as FileNode);
    expect(peSection?.subtype).toBe('PE32 image');
    expect(peSection?.offset).toBe(0x148 + 24);
    expect(peSection?.body).toEqual(pe);
    // A view into the input, not a copy.
    expect(peSection?.body.buffer).toBe(image.buffer);
    expect(ui?.uiName).toBe('IntelGopDriver');
    expect(version?.version).toEqual({ buildNumber: 0x1234, text: '1.0' });
    expect(b?.uiName).toBeNull();
    expect(sectionsOf(b as FileNode)[0]?.body).toEqual(u8(1, 2, 3, 4, 5));
    expect(nodePath(peSection as SectionNode)).toBe(
      `${fv === undefined ? '' : '8C8CE578-8A3D-4F1C-9935-896185C32DD3'}/IntelGopDriver/PE32 image section`,
    );
    const free = tree.root.children[1]?.children.at(-1);
    expect(free?.type).toBe('Free space');
  });

  it('parses FFSv3 large files and large sections, CRC32 and non-processing GUID-defined sections', () => {
    const payload = new Uint8Array(40).fill(7);
    const inner = sections(section(0x19, payload, undefined, true));
    const crcSection = guidedSection(CRC32_GUID, inner, 0x02, le32(crc32(inner)));
    const plainGuided = guidedSection(UNKNOWN_GUID, sections(section(0x19, u8(9))), 0x00);
    const opaque = guidedSection(UNKNOWN_GUID, u8(1, 2, 3), 0x01);
    const file = ffsFile(FILE_A, 0x02, sections(crcSection, plainGuided, opaque), { large: true });
    const tree = parseFirmware(volume([file], { fileSystemGuid: FFS3 }), { strict: true });
    const [f] = listFiles(tree);
    expect(f?.file.large).toBe(true);
    expect(f?.file.headerSize).toBe(32);
    const all = sectionsOf(f as FileNode);
    expect(all.map((s) => [s.subtype, s.compression?.algorithm ?? null, s.section.large])).toEqual([
      ['GUID defined', 'CRC32', false],
      ['Raw', null, true],
      ['GUID defined', 'None', false],
      ['Raw', null, false],
      ['GUID defined', 'Unknown', false],
    ]);
    expect(all[0]?.crc32).toEqual({ stored: crc32(inner) >>> 0, computed: crc32(inner) >>> 0, valid: true });
    expect(all[1]?.body).toEqual(payload);
    expect(all[4]?.children).toEqual([]);
  });

  it('reports a wrong CRC32 without failing', () => {
    const inner = sections(section(0x19, u8(1, 2, 3)));
    const file = ffsFile(FILE_A, 0x02, guidedSection(CRC32_GUID, inner, 0x02, le32(0xdeadbeef)));
    const tree = parseFirmware(volume([file]), { strict: true });
    const crc = sectionsOf(listFiles(tree)[0] as FileNode)[0];
    expect(crc?.crc32?.valid).toBe(false);
    expect(crc?.crc32?.stored).toBe(0xdeadbeef);
  });

  it('names the section, offset and file when a section overruns its file', () => {
    const body = sections(section(0x19, new Uint8Array(16)));
    body[0] = 0xff;
    body[1] = 0xff;
    body[2] = 0x00; // 0xffff bytes claimed
    const fv = volume([ffsFile(FILE_A, 0x07, body)]);
    const image = concat(new Uint8Array(0x1000).fill(0xff), fv);
    expect(() => parseFirmware(image, { strict: true })).toThrow(
      expect.objectContaining({
        code: 'E_SECTION_BAD_SIZE',
        message: `section at 0x0 claims 0xffff bytes, only 0x14 remain in file ${FILE_A}`,
      }),
    );
    const lenient = parseFirmware(image);
    expect(lenient.problems).toEqual([
      {
        code: 'E_SECTION_BAD_SIZE',
        message: `section at 0x0 claims 0xffff bytes, only 0x14 remain in file ${FILE_A}`,
        offset: 0x1000 + 0x48,
        path: `8C8CE578-8A3D-4F1C-9935-896185C32DD3/${FILE_A}`,
      },
    ]);
  });

  it('says when a volume image section holds no volume', () => {
    const fv = volume([ffsFile(FILE_A, 0x0b, section(0x17, new Uint8Array(64).fill(0x11)))]);
    expect(() => parseFirmware(fv, { strict: true })).toThrow(
      expect.objectContaining({
        code: 'E_SECTION_NO_VOLUME',
        message: `volume image section at 0x60 holds no firmware volume (0x40 bytes) in file ${FILE_A}`,
      }),
    );
  });

  it('bounds the nesting depth', () => {
    let fv = volume([ffsFile(FILE_B, 0x02, sections(section(0x19, u8(1))))]);
    for (let i = 0; i < 20; i++) fv = volume([ffsFile(FILE_A, 0x0b, section(0x17, fv))]);
    expect(() => parseFirmware(fv, { strict: true })).toThrow(
      expect.objectContaining({ code: 'E_FW_TOO_DEEP' }),
    );
    expect(parseFirmware(fv, { strict: true, maximumNestingDepth: 100 }).stats.volumes).toBe(21);
  });

  it('says E_NOT_FIRMWARE for bytes with no firmware structure', () => {
    expect(() => parseFirmware(new Uint8Array(4096).fill(0x5a))).toThrow(
      expect.objectContaining({ code: 'E_NOT_FIRMWARE', name: 'FormatError' }),
    );
    expect(() => parseFirmware(new Uint8Array(0))).toThrow(FormatError);
  });
});

describe('parseFirmware on the corpus', () => {
  for (const entry of firmwareEntries()) {
    it(`${entry.path}: parses strictly and matches UEFIExtract's top of report`, () => {
      const bytes = readCorpus(entry.path);
      const tree = parseFirmware(bytes, { strict: true });
      expect(tree.problems).toEqual([]);
      // "Type | Subtype | Base | Size | CRC32 | Name": compare the first lines that we model.
      const ours = [...walkNodes(tree.root)];
      for (const line of entry.truth.uefiextract.report_top_lines) {
        const [type, subtype, base, size, , name] = line.split('|').map((c) => c.trim()) as string[];
        if (type === 'BPDT store' || type === 'VSS2 store') continue;
        const cleanName = (name as string).replace(/^-+ /, '');
        const match = ours.find(
          (n) =>
            n.type === type &&
            n.offset === parseInt(base as string, 16) &&
            n.sizeInBytes === parseInt(size as string, 16) &&
            (n.name === cleanName || n.kind === 'image'),
        );
        expect(match, line).toBeDefined();
        expect(match?.subtype, line).toBe(subtype);
      }
      if (entry.path.includes('VARS') || entry.path.endsWith('OVMF.fd')) {
        const nvram = ours.find((n) => n.kind === 'volume' && n.subtype === 'NVRAM');
        expect(nvram?.kind === 'volume' && nvram.nvram?.[0]?.format).toBe('VSS2');
      }
    });
  }
});
