import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { OvmfBuildError } from '../core/errors.js';
import { parseFirmware, walkNodes } from './firmware-tree.js';
import { looksLikePe, MAX_SECTIONS, parsePeImage, TE_HEADER_SIZE } from './pe-coff.js';
import { loadManifest, readCorpus } from '../../test/corpus.js';
import { atOffset, errorCodeOf } from '../../test/bytes-helpers.js';
import { cpuNow } from '../../test/cpu-time.js';

interface ManifestEntry {
  path: string;
  kind: string;
  ground_truth: { pe?: { format: string; machine: string; subsystem: string; timestamp: number } };
}
const manifest = loadManifest() as unknown as {
  entries: ManifestEntry[];
};
const gops = manifest.entries.filter((e) => e.kind === 'gop');

/*
 * typedef struct { UINT16 e_magic; ... UINT32 e_lfanew; } EFI_IMAGE_DOS_HEADER;   // 64 bytes, e_lfanew at 0x3c
 * typedef struct {
 *   UINT16 Machine; UINT16 NumberOfSections; UINT32 TimeDateStamp;
 *   UINT32 PointerToSymbolTable; UINT32 NumberOfSymbols;
 *   UINT16 SizeOfOptionalHeader; UINT16 Characteristics;
 * } EFI_IMAGE_FILE_HEADER;                                                        // 20 bytes
 * typedef struct {
 *   UINT16 Magic; UINT8 MajorLinkerVersion; UINT8 MinorLinkerVersion;
 *   UINT32 SizeOfCode; UINT32 SizeOfInitializedData; UINT32 SizeOfUninitializedData;
 *   UINT32 AddressOfEntryPoint; UINT32 BaseOfCode; UINT32 BaseOfData; UINT32 ImageBase;
 *   UINT32 SectionAlignment; UINT32 FileAlignment; UINT16 MajorOperatingSystemVersion; ...
 *   UINT32 SizeOfImage;  (offset 56) UINT32 SizeOfHeaders; (60) UINT32 CheckSum; (64)
 *   UINT16 Subsystem; (68) UINT16 DllCharacteristics; ... UINT32 NumberOfRvaAndSizes; (92)
 *   EFI_IMAGE_DATA_DIRECTORY DataDirectory[16];
 * } EFI_IMAGE_OPTIONAL_HEADER32;                                                  // 224 bytes
 * typedef struct {
 *   UINT8 Name[8]; UINT32 VirtualSize; UINT32 VirtualAddress; UINT32 SizeOfRawData;
 *   UINT32 PointerToRawData; UINT32 PointerToRelocations; UINT32 PointerToLinenumbers;
 *   UINT16 NumberOfRelocations; UINT16 NumberOfLinenumbers; UINT32 Characteristics;
 * } EFI_IMAGE_SECTION_HEADER;                                                     // 40 bytes
 */
function buildPe32(): Uint8Array {
  const bytes = new Uint8Array(0x400);
  const dv = new DataView(bytes.buffer);
  dv.setUint16(0, 0x5a4d, true);
  dv.setUint32(0x3c, 0x80, true);
  dv.setUint32(0x80, 0x4550, true);
  const coff = 0x84;
  dv.setUint16(coff, 0x014c, true); // IA32
  dv.setUint16(coff + 2, 2, true);
  dv.setUint32(coff + 4, 0x5f5e_1000, true);
  dv.setUint16(coff + 16, 0xe0, true);
  dv.setUint16(coff + 18, 0x0102, true);
  const opt = coff + 20;
  dv.setUint16(opt, 0x10b, true);
  dv.setUint32(opt + 16, 0x1234, true); // AddressOfEntryPoint
  dv.setUint32(opt + 28, 0x0040_0000, true); // ImageBase (PE32)
  dv.setUint32(opt + 56, 0x3000, true); // SizeOfImage
  dv.setUint32(opt + 60, 0x200, true); // SizeOfHeaders
  dv.setUint16(opt + 68, 10, true); // EFI_APPLICATION
  const sec = opt + 0xe0;
  bytes.set(new TextEncoder().encode('.text'), sec);
  dv.setUint32(sec + 8, 0x180, true);
  dv.setUint32(sec + 12, 0x1000, true);
  dv.setUint32(sec + 16, 0x200, true);
  dv.setUint32(sec + 20, 0x200, true);
  dv.setUint32(sec + 36, 0x6000_0020, true);
  bytes.set(new TextEncoder().encode('.reloc12'), sec + 40); // a full 8-byte name has no NUL
  dv.setUint32(sec + 40 + 8, 0x10, true);
  dv.setUint32(sec + 40 + 12, 0x2000, true);
  dv.setUint32(sec + 40 + 16, 0, true);
  dv.setUint32(sec + 40 + 20, 0, true);
  dv.setUint32(sec + 40 + 36, 0x4200_0040, true);
  return bytes;
}

/*
 * typedef struct {
 *   UINT16 Signature;            // 'VZ'
 *   UINT16 Machine;
 *   UINT8  NumberOfSections;
 *   UINT8  Subsystem;
 *   UINT16 StrippedSize;
 *   UINT32 AddressOfEntryPoint;
 *   UINT32 BaseOfCode;
 *   UINT64 ImageBase;
 *   EFI_IMAGE_DATA_DIRECTORY DataDirectory[2];
 * } EFI_TE_IMAGE_HEADER;         // PI spec vol. 1, 15.2: 40 bytes, section headers follow
 */
function buildTe(): Uint8Array {
  const bytes = new Uint8Array(0x200);
  const dv = new DataView(bytes.buffer);
  dv.setUint16(0, 0x5a56, true);
  dv.setUint16(2, 0xaa64, true);
  bytes[4] = 1;
  bytes[5] = 12; // EFI_RUNTIME_DRIVER
  dv.setUint16(6, 0x1b8, true); // StrippedSize
  dv.setUint32(8, 0x2a0, true);
  dv.setUint32(12, 0x240, true);
  dv.setBigUint64(16, 0xffff_8000_0000_0000n, true);
  const sec = TE_HEADER_SIZE;
  bytes.set(new TextEncoder().encode('.text'), sec);
  dv.setUint32(sec + 8, 0x300, true);
  dv.setUint32(sec + 12, 0x240, true);
  dv.setUint32(sec + 16, 0x100, true);
  dv.setUint32(sec + 20, 0x1b8 + 0x40, true); // PointerToRawData in the original PE: lands at 0x68 here
  dv.setUint32(sec + 36, 0x6000_0020, true);
  return bytes;
}

/** `base` (a fresh PE32 by default) after `fn` has edited it. */
function mutate(fn: (dv: DataView, bytes: Uint8Array) => void, base = buildPe32()): Uint8Array {
  fn(new DataView(base.buffer), base);
  return base;
}

const PE32_EXPECTED = {
  format: 'PE32',
  machine: 0x014c,
  machineName: 'ia32',
  subsystem: 10,
  subsystemName: 'EFI_APPLICATION',
  timestamp: 0x5f5e_1000,
  sizeOfImage: 0x3000,
  entryPoint: 0x1234,
  imageBase: 0x0040_0000n,
  peHeaderOffset: 0x80,
  characteristics: 0x0102,
  sizeOfHeaders: 0x200,
  strippedSize: 0,
  sections: [
    {
      name: '.text',
      virtualSize: 0x180,
      virtualAddress: 0x1000,
      rawSize: 0x200,
      rawOffset: 0x200,
      characteristics: 0x6000_0020,
    },
    {
      name: '.reloc12',
      virtualSize: 0x10,
      virtualAddress: 0x2000,
      rawSize: 0,
      rawOffset: 0,
      characteristics: 0x4200_0040,
    },
  ],
};

const TE_EXPECTED = {
  format: 'TE',
  machine: 0xaa64,
  machineName: 'aarch64',
  subsystem: 12,
  subsystemName: 'EFI_RUNTIME_DRIVER',
  timestamp: 0,
  sizeOfImage: 0x540,
  entryPoint: 0x2a0,
  imageBase: 0xffff_8000_0000_0000n,
  peHeaderOffset: 0,
  characteristics: 0,
  sizeOfHeaders: 80,
  strippedSize: 0x1b8,
  sections: [
    {
      name: '.text',
      virtualSize: 0x300,
      virtualAddress: 0x240,
      rawSize: 0x100,
      rawOffset: 0x1f8,
      characteristics: 0x6000_0020,
    },
  ],
};

describe('parsePeImage on synthetic headers (every field)', () => {
  for (const base of [0, 3, 0x1001]) {
    it(`PE32 at byteOffset ${base}`, () => {
      expect(parsePeImage(atOffset(buildPe32(), base))).toEqual(PE32_EXPECTED);
    });
    it(`TE at byteOffset ${base}`, () => {
      expect(parsePeImage(atOffset(buildTe(), base))).toEqual(TE_EXPECTED);
    });
  }

  it('names every machine and subsystem the brief lists', () => {
    const cases: [number, string][] = [
      [0x8664, 'x64'],
      [0x14c, 'ia32'],
      [0xaa64, 'aarch64'],
      [0x1c2, 'arm'],
      [0x1c4, 'arm'],
      [0xebc, 'ebc'],
      [0x5064, 'riscv64'],
      [0x1234, 'unknown(0x1234)'],
    ];
    for (const [machine, name] of cases) {
      expect(parsePeImage(mutate((dv) => dv.setUint16(0x84, machine, true))).machineName).toBe(name);
    }
    const subsystems: [number, string][] = [
      [10, 'EFI_APPLICATION'],
      [11, 'EFI_BOOT_SERVICE_DRIVER'],
      [12, 'EFI_RUNTIME_DRIVER'],
      [13, 'EFI_ROM'],
      [99, 'unknown(99)'],
    ];
    for (const [subsystem, name] of subsystems) {
      expect(parsePeImage(mutate((dv) => dv.setUint16(0x98 + 68, subsystem, true))).subsystemName).toBe(name);
    }
  });
});

describe('parsePeImage on corpus GOP drivers (manifest ground_truth.pe)', () => {
  for (const entry of gops) {
    it(entry.path, () => {
      const bytes = readCorpus(entry.path);
      const truth = entry.ground_truth.pe;
      expect(truth).toBeDefined();
      for (const view of [new Uint8Array(bytes), atOffset(bytes, 0x777)]) {
        const pe = parsePeImage(view);
        expect({
          format: pe.format,
          machine: pe.machineName,
          subsystem: pe.subsystemName,
          timestamp: pe.timestamp,
        }).toEqual(truth);
        expect(pe.machine).toBe(0x8664);
        expect(pe.subsystem).toBe(11);
        expect(pe.sections.length).toBeGreaterThan(0);
        expect(looksLikePe(view)).toBe(true);
      }
    });
  }

  it('reads the exact headers of the Haswell Chromebook GOP', () => {
    const pe = parsePeImage(readCorpus('gop/haswell-broadwell-mrchromebox-hsw.efi'));
    expect({ ...pe, sections: pe.sections.map((s) => s.name) }).toEqual({
      format: 'PE32+',
      machine: 0x8664,
      machineName: 'x64',
      subsystem: 11,
      subsystemName: 'EFI_BOOT_SERVICE_DRIVER',
      timestamp: 0,
      sizeOfImage: 54_432,
      entryPoint: 0xd70,
      imageBase: 0n,
      peHeaderOffset: pe.peHeaderOffset,
      characteristics: pe.characteristics,
      sizeOfHeaders: pe.sizeOfHeaders,
      strippedSize: 0,
      sections: ['.text', '', '.reloc'],
    });
  });
});

describe('parsePeImage rejects malformed headers with exact codes', () => {
  it.each([
    ['empty', new Uint8Array(0), 'E_PE_TRUNCATED'],
    ['no signature', new Uint8Array(64), 'E_PE_BAD_DOS_SIGNATURE'],
    ['truncated DOS header', buildPe32().subarray(0, 0x30), 'E_PE_TRUNCATED'],
    ['e_lfanew past the end', mutate((dv) => dv.setUint32(0x3c, 0x3f0, true)), 'E_PE_BAD_LFANEW'],
    ['e_lfanew hostile', mutate((dv) => dv.setUint32(0x3c, 0xffff_fff0, true)), 'E_PE_BAD_LFANEW'],
    ['bad PE signature', mutate((dv) => dv.setUint32(0x80, 0x4551, true)), 'E_PE_BAD_SIGNATURE'],
    [
      'too many sections',
      mutate((dv) => dv.setUint16(0x86, MAX_SECTIONS + 1, true)),
      'E_PE_TOO_MANY_SECTIONS',
    ],
    ['section table past the end', mutate((dv) => dv.setUint16(0x86, 40, true)), 'E_PE_TRUNCATED'],
    ['bad optional magic', mutate((dv) => dv.setUint16(0x98, 0x107, true)), 'E_PE_BAD_OPTIONAL_MAGIC'],
    ['optional header too small', mutate((dv) => dv.setUint16(0x94, 0x20, true)), 'E_PE_BAD_OPTIONAL_SIZE'],
    [
      'section raw data past the end',
      mutate((dv) => dv.setUint32(0x178 + 16, 0x1000, true)),
      'E_PE_SECTION_OUT_OF_BOUNDS',
    ],
    ['truncated TE header', buildTe().subarray(0, 20), 'E_PE_TRUNCATED'],
    [
      'TE stripped size too small',
      mutate((dv) => dv.setUint16(6, 8, true), buildTe()),
      'E_PE_BAD_TE_STRIPPED_SIZE',
    ],
    ['TE too many sections', mutate((_dv, b) => (b[4] = 200), buildTe()), 'E_PE_TOO_MANY_SECTIONS'],
  ])('%s -> %s', (_name, bytes, code) => {
    expect(errorCodeOf(() => parsePeImage(bytes))).toBe(code);
    expect(looksLikePe(bytes)).toBe(false);
  });

  it('reports the offset in the error details', () => {
    try {
      parsePeImage(mutate((dv) => dv.setUint32(0x80, 0x4551, true)));
      expect.unreachable();
    } catch (error) {
      expect((error as OvmfBuildError).details).toEqual({ offset: 0x80, found: 0x4551 });
      expect((error as Error).message).toBe('no "PE\\0\\0" signature at 0x80 (found 0x4551)');
    }
  });

  it('fuzz: mutated GOP headers either parse or throw E_PE_*, quickly', () => {
    const seed = readCorpus('gop/haswell-broadwell-mrchromebox-hsw.efi').subarray(0, 0x400);
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(0x3ff), fc.nat(255)), { maxLength: 16 }),
        fc.nat(0x400),
        (edits, cut) => {
          const bytes = new Uint8Array(seed);
          for (const [at, value] of edits) bytes[at] = value;
          const input = bytes.subarray(0, cut);
          const started = cpuNow();
          try {
            parsePeImage(input);
          } catch (error) {
            expect(error).toBeInstanceOf(OvmfBuildError);
            expect((error as OvmfBuildError).code).toMatch(/^E_PE_/);
          }
          // Generous: catches runaway loops, not scheduling noise on a shared machine.
          expect(cpuNow() - started).toBeLessThan(500);
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('parsePeImage on every PE32 and TE section of corpus firmware', () => {
  const count = (image: string): Record<string, number> => {
    const counts: Record<string, number> = {};
    for (const node of walkNodes(parseFirmware(readCorpus(image)).root)) {
      // EFI_SECTION_PE32 (0x10) and EFI_SECTION_TE (0x12), PI spec vol. 3, 2.1.5.
      if (node.kind !== 'section' || (node.section.type !== 0x10 && node.section.type !== 0x12)) continue;
      const pe = parsePeImage(node.body);
      expect(pe.entryPoint).toBeLessThan(pe.sizeOfImage);
      const key = `${pe.format}/${pe.machineName}/${pe.subsystemName}`;
      counts[key] = (counts[key] ?? 0) + 1;
    }
    return counts;
  };
  it('Debian OVMF_CODE_4M.fd (x64 DXE, ia32 PEI)', () => {
    expect(count('ovmf/OVMF_CODE_4M.fd')).toEqual({
      'PE32/ia32/EFI_BOOT_SERVICE_DRIVER': 14,
      'PE32+/x64/EFI_BOOT_SERVICE_DRIVER': 98,
      'PE32+/x64/EFI_RUNTIME_DRIVER': 10,
      'PE32+/x64/EFI_APPLICATION': 2,
    });
  });
  it('Coffee Lake FSP (TE images)', () => {
    expect(count('images/coffeelake-intel-fsp.fd')).toEqual({
      'TE/ia32/EFI_BOOT_SERVICE_DRIVER': 9,
      'PE32/ia32/EFI_BOOT_SERVICE_DRIVER': 9,
    });
  });
});
