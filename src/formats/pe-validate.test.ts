// validatePeImage and the GOP check against header-mutated real drivers: a "GOP" with 0
// sections, SizeOfImage or AddressOfEntryPoint 0xFFFFFFFF, or Characteristics 0 used to pass
// classifyGopDriver (and so `rom --gop` and the main job). Every mutation below makes the image
// unloadable; each must be refused with the E_PE_* code that names the field.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FormatError } from '../core/errors.js';
import { assertGopDriver, classifyGopDriver } from './gop.js';
import { optionRomPeBytes, parseOptionRom } from './option-rom.js';
import { parsePeImage, validatePeImage } from './pe-coff.js';
import { CORPUS_DIR, loadManifest } from '../../test/corpus.js';
import { errorCodeOf } from '../../test/bytes-helpers.js';

const realGops = loadManifest()
  .entries.filter((e) => e.kind === 'gop' && !e.path.includes('not-a-gop'))
  .map((e) => e.path);
const read = (p: string): Uint8Array => new Uint8Array(readFileSync(path.join(CORPUS_DIR, p)));

interface Layout {
  readonly coff: number;
  readonly optional: number;
  readonly table: number;
  readonly sections: number;
}

function layoutOf(bytes: Uint8Array): Layout {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const coff = dv.getUint32(0x3c, true) + 4;
  const optional = coff + 20;
  return {
    coff,
    optional,
    table: optional + dv.getUint16(coff + 16, true),
    sections: dv.getUint16(coff + 2, true),
  };
}

type Mutation = readonly [name: string, code: string, edit: (dv: DataView, l: Layout, b: Uint8Array) => void];

const MUTATIONS: readonly Mutation[] = [
  ['NumberOfSections 0', 'E_PE_NO_SECTIONS', (dv, l) => dv.setUint16(l.coff + 2, 0, true)],
  ['NumberOfSections 97', 'E_PE_TOO_MANY_SECTIONS', (dv, l) => dv.setUint16(l.coff + 2, 97, true)],
  ['Characteristics 0', 'E_PE_NOT_EXECUTABLE', (dv, l) => dv.setUint16(l.coff + 18, 0, true)],
  [
    'Characteristics without EXECUTABLE_IMAGE',
    'E_PE_NOT_EXECUTABLE',
    (dv, l) => dv.setUint16(l.coff + 18, 0x2020, true),
  ],
  [
    'SizeOfImage 0xFFFFFFFF',
    'E_PE_BAD_SIZE_OF_IMAGE',
    (dv, l) => dv.setUint32(l.optional + 56, 0xffff_ffff, true),
  ],
  ['SizeOfImage 0', 'E_PE_BAD_SIZE_OF_IMAGE', (dv, l) => dv.setUint32(l.optional + 56, 0, true)],
  [
    'SizeOfImage one page too big',
    'E_PE_BAD_SIZE_OF_IMAGE',
    (dv, l) => dv.setUint32(l.optional + 56, dv.getUint32(l.optional + 56, true) + 0x1_0000, true),
  ],
  [
    'SizeOfImage cuts the last section',
    'E_PE_BAD_SIZE_OF_IMAGE',
    (dv, l) => dv.setUint32(l.optional + 56, dv.getUint32(l.table + (l.sections - 1) * 40 + 12, true), true),
  ],
  [
    'AddressOfEntryPoint 0xFFFFFFFF',
    'E_PE_BAD_ENTRY_POINT',
    (dv, l) => dv.setUint32(l.optional + 16, 0xffff_ffff, true),
  ],
  ['AddressOfEntryPoint 0', 'E_PE_BAD_ENTRY_POINT', (dv, l) => dv.setUint32(l.optional + 16, 0, true)],
  [
    'AddressOfEntryPoint = SizeOfImage',
    'E_PE_BAD_ENTRY_POINT',
    (dv, l) => dv.setUint32(l.optional + 16, dv.getUint32(l.optional + 56, true), true),
  ],
  [
    'AddressOfEntryPoint in the last (data) section',
    'E_PE_BAD_ENTRY_POINT',
    (dv, l) => dv.setUint32(l.optional + 16, dv.getUint32(l.table + (l.sections - 1) * 40 + 12, true), true),
  ],
  ['SizeOfHeaders 0', 'E_PE_BAD_SIZE_OF_HEADERS', (dv, l) => dv.setUint32(l.optional + 60, 0, true)],
  [
    'SizeOfHeaders 0xFFFFFFFF',
    'E_PE_BAD_SIZE_OF_HEADERS',
    (dv, l) => dv.setUint32(l.optional + 60, 0xffff_ffff, true),
  ],
  ['SectionAlignment 0', 'E_PE_BAD_ALIGNMENT', (dv, l) => dv.setUint32(l.optional + 32, 0, true)],
  ['SectionAlignment 0x30', 'E_PE_BAD_ALIGNMENT', (dv, l) => dv.setUint32(l.optional + 32, 0x30, true)],
  ['FileAlignment 0', 'E_PE_BAD_ALIGNMENT', (dv, l) => dv.setUint32(l.optional + 36, 0, true)],
  [
    'FileAlignment 0x8000_0000',
    'E_PE_BAD_ALIGNMENT',
    (dv, l) => dv.setUint32(l.optional + 36, 0x8000_0000, true),
  ],
  [
    'NumberOfRvaAndSizes 0xFFFFFFFF',
    'E_PE_BAD_DATA_DIRECTORIES',
    (dv, l) => dv.setUint32(l.optional + 108, 0xffff_ffff, true),
  ],
  [
    'first section VirtualSize 0xFFFFF000',
    'E_PE_BAD_SECTION',
    (dv, l) => dv.setUint32(l.table + 8, 0xffff_f000, true),
  ],
  ['first section VirtualAddress 0', 'E_PE_BAD_SECTION', (dv, l) => dv.setUint32(l.table + 12, 0, true)],
  [
    'last section VirtualAddress 0xFFFFF000',
    'E_PE_BAD_SIZE_OF_IMAGE',
    (dv, l) => dv.setUint32(l.table + (l.sections - 1) * 40 + 12, 0xffff_f000, true),
  ],
  [
    'first section PointerToRawData 0xFFFFFF00',
    'E_PE_SECTION_OUT_OF_BOUNDS',
    (dv, l) => dv.setUint32(l.table + 20, 0xffff_ff00, true),
  ],
  [
    'first section SizeOfRawData 0x7FFFFFFF',
    'E_PE_SECTION_OUT_OF_BOUNDS',
    (dv, l) => dv.setUint32(l.table + 16, 0x7fff_ffff, true),
  ],
  [
    'second section starts inside the first',
    'E_PE_BAD_SECTION',
    (dv, l) => dv.setUint32(l.table + 40 + 12, dv.getUint32(l.table + 12, true) + 0x10, true),
  ],
  ['e_lfanew 0xFFFFFFFF', 'E_PE_BAD_LFANEW', (dv) => dv.setUint32(0x3c, 0xffff_ffff, true)],
  [
    'optional header magic PE32',
    'E_PE_BAD_DATA_DIRECTORIES',
    (dv, l) => dv.setUint16(l.optional, 0x10b, true),
  ],
];

function mutated(gop: Uint8Array, edit: Mutation[2]): Uint8Array {
  const bytes = new Uint8Array(gop);
  edit(new DataView(bytes.buffer), layoutOf(bytes), bytes);
  return bytes;
}

describe('validatePeImage on the real corpus GOPs', () => {
  it('covers 13 real GOP drivers', () => {
    expect(realGops).toHaveLength(13);
  });

  it.each(realGops)('%s is a loadable x64 image and an Intel GOP', (file) => {
    const bytes = read(file);
    expect(validatePeImage(bytes)).toEqual(parsePeImage(bytes));
    expect(classifyGopDriver(bytes).isGop).toBe(true);
  });

  it.each(['roms/ipxe-efi-e1000.rom', 'roms/ipxe-efi-virtio.rom'])(
    'accepts the iPXE EFI driver of %s (sections at unaligned addresses, as EDK2 loads them)',
    (file) => {
      const rom = read(file);
      const efi = parseOptionRom(rom).images.find((i) => i.efi !== null);
      if (efi === undefined) throw new Error('no EFI image');
      expect(validatePeImage(optionRomPeBytes(rom, efi)).sections.map((s) => s.name)).toEqual([
        '.text',
        '.rodata',
        '.pci_dev',
        '.data',
        '.bss',
        '.reloc',
        '.debug',
      ]);
    },
  );

  it('accepts the mis-named ASRock module as a valid PE (it is refused as a GOP for its missing name)', () => {
    const bytes = read('gop/not-a-gop-asrock-b85pro4-IntelGopDriver.efi');
    expect(validatePeImage(bytes).sections).toHaveLength(5);
    expect(classifyGopDriver(bytes)).toMatchObject({ isGop: false, malformed: false });
  });
});

describe(`${MUTATIONS.length} header mutations x 13 GOPs are refused with the field's code`, () => {
  for (const file of realGops) {
    it(file, () => {
      const gop = read(file);
      const outcomes = MUTATIONS.map(([name, , edit]) => {
        const bytes = mutated(gop, edit);
        const result = classifyGopDriver(bytes);
        const peCode = errorCodeOf(() => validatePeImage(bytes));
        const gopCode = errorCodeOf(() => assertGopDriver(bytes));
        return [name, peCode, gopCode, result.isGop ? 'gop' : result.malformed ? 'malformed' : 'other'];
      });
      expect(outcomes).toEqual(
        MUTATIONS.map(([name, code]) => [
          name,
          code,
          'E_INPUT_NOT_GOP',
          code === 'E_PE_BAD_DATA_DIRECTORIES' && name.includes('PE32') ? 'other' : 'malformed',
        ]),
      );
    });
  }

  it('names the field and offset in the message and details', () => {
    const gop = read('gop/cometlake-mrchromebox-cml.efi');
    const l = layoutOf(gop);
    const bytes = mutated(gop, (dv) => dv.setUint32(l.optional + 56, 0xffff_ffff, true));
    try {
      validatePeImage(bytes);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(FormatError);
      expect((error as FormatError).message).toBe(
        `SizeOfImage at ${'0x' + (l.optional + 56).toString(16)} is 0xffffffff, but the sections end at RVA 0x11e54 (0x11e60 aligned to SectionAlignment)`,
      );
      expect((error as FormatError).details).toEqual({
        offset: l.optional + 56,
        sizeOfImage: 0xffff_ffff,
        sectionsEnd: 0x11e54,
        expected: 0x11e60,
      });
    }
    expect(errorCodeOf(() => assertGopDriver(bytes))).toBe('E_INPUT_NOT_GOP');
    expect(classifyGopDriver(bytes)).toMatchObject({
      isGop: false,
      malformed: true,
      reason: expect.stringMatching(
        /^not a loadable PE\/COFF image \(E_PE_BAD_SIZE_OF_IMAGE: SizeOfImage at /,
      ),
    });
  });
});
