// VBTs inside legacy video option ROMs, and the "$VBT" trap (issue 12 item 3). The ROM is the
// corpus's real Intel legacy VBIOS (roms/haswell-devid-0406-legacy-vbios.rom; manifest: one
// x86 image, "$VBT COFFEELAKE" at 2768). The trap is a real PE from the corpus
// (gop/not-a-gop-asrock-b85pro4-IntelGopDriver.efi, a 4800-byte GOP policy driver) followed by
// the text "$VBT HASWELL" and zero bytes: a string in a driver, as vendor images carry one,
// built here from real parts and the text, not a vendor's bytes. The firmware volumes around
// them are built with test/ffs-builder.ts (computed checksums).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../../test/cli-harness.js';
import { sha256 } from '../core/digest.js';
import { readCorpus } from '../../test/corpus.js';
import { concat, ffsFile, guidedSection, le32, section, sections, volume } from '../../test/ffs-builder.js';
import { crc32 } from './compression/crc32.js';
import { parseFirmware } from './firmware-tree.js';
import { vbtInLegacyRom } from './legacy-rom-vbt.js';
import { locateGopAndVbt, locateVbt } from './locate.js';
import { extractFromOptionRom } from './option-rom-extract.js';
import { CRC32_GUID } from './section.js';
import { scanForVbt } from './vbt.js';

const ROM = readCorpus('roms/haswell-devid-0406-legacy-vbios.rom');
const NO_VBT_ROM = readCorpus('roms/seabios-vgabios-stdvga.bin');
const PE = readCorpus('gop/not-a-gop-asrock-b85pro4-IntelGopDriver.efi');
const TEXT = new Uint8Array(Buffer.from('$VBT HASWELL        ', 'latin1'));
/** The real PE, then "$VBT HASWELL" padded to the 20-byte signature field, then 48 zero bytes. */
const PE_WITH_TEXT = concat(PE, TEXT, new Uint8Array(48));

/** Measured with intel_vbt_decode (intel-gpu-tools 1.27) on the 4300 bytes at 2768: BDB 209. */
const ROM_VBT = {
  offset: 2768,
  vbtSize: 4300,
  signature: '$VBT COFFEELAKE',
  bdbVersion: 209,
  sha256: '33072153420f64288e851adaadf352fda4d13d3d3da229ab9113219d71897899',
};

/** Test-only GUIDs (no vendor's): a freeform VBIOS file and a DXE driver file. */
const VBIOS_FILE = 'A5D6A1F0-0000-4000-8000-00000000B105';
const DRIVER_FILE = 'A5D6A1F0-0000-4000-8000-00000000D41E';
const EFI_FV_FILETYPE_FREEFORM = 0x02;
const EFI_FV_FILETYPE_DRIVER = 0x07;
const EFI_SECTION_PE32 = 0x10;
const EFI_SECTION_RAW = 0x19;

function withText(bytes: Uint8Array, at: number, text: string): Uint8Array {
  const copy = Uint8Array.from(bytes);
  copy.set(Buffer.from(text, 'latin1'), at);
  return copy;
}

/** A freeform file whose CRC32 GUID-defined section holds a raw section with the ROM. */
function vbiosFile(rom: Uint8Array): Uint8Array {
  const inner = sections(section(EFI_SECTION_RAW, rom));
  return ffsFile(
    VBIOS_FILE,
    EFI_FV_FILETYPE_FREEFORM,
    guidedSection(CRC32_GUID, inner, 0x02, le32(crc32(inner))),
  );
}

const trapDriver = (): Uint8Array =>
  ffsFile(DRIVER_FILE, EFI_FV_FILETYPE_DRIVER, sections(section(EFI_SECTION_PE32, PE_WITH_TEXT)));

describe('scanForVbt: "$VBT" text is a VBT only with a VBT header and a BDB after it', () => {
  it('finds the real legacy VBIOS VBT (exact vbt_size bytes)', () => {
    const { found, rejected } = scanForVbt(ROM);
    expect(rejected).toEqual([]);
    expect({
      offset: found?.offset,
      vbtSize: found?.info.vbtSize,
      signature: found?.info.signature,
      bdbVersion: found?.info.bdbVersion,
      sha256: sha256(found?.bytes ?? new Uint8Array(0)),
    }).toEqual(ROM_VBT);
  });

  it('refuses the text in the PE (no VBT header), naming why', () => {
    expect(Buffer.from(PE_WITH_TEXT).indexOf('$VBT')).toBe(PE.length);
    expect(scanForVbt(PE_WITH_TEXT)).toEqual({
      found: null,
      rejected: [
        {
          offset: PE.length,
          reason:
            '"$VBT" text without a VBT header: VBT bdb_offset at 0x1c is 0x0; the 0x16-byte BDB header must end within vbt_size 0x0 [E_VBT_BAD_BDB_OFFSET]',
        },
      ],
    });
  });

  it('refuses text followed by header fields that parse but no BDB signature', () => {
    // vbt_size 0x100 and bdb_offset 0x30 are in range; the BDB at 0x30 is zeros.
    const fake = concat(
      TEXT,
      new Uint8Array([0x64, 0, 0x30, 0, 0, 1, 0, 0, 0x30, 0, 0, 0]),
      new Uint8Array(0x100),
    );
    expect(scanForVbt(fake)).toEqual({
      found: null,
      rejected: [
        {
          offset: 0,
          reason: `"$VBT" text without a BDB: no "BIOS_DATA_BLOCK " signature at bdb_offset 0x30 (found ${JSON.stringify('\0'.repeat(16))})`,
        },
      ],
    });
  });

  it('skips text before the real VBT in the same ROM image', () => {
    const rom = withText(ROM, 0x100, '$VBT');
    const { found, rejected } = scanForVbt(rom);
    expect(found?.offset).toBe(ROM_VBT.offset);
    expect(sha256(found?.bytes ?? new Uint8Array(0))).toBe(ROM_VBT.sha256);
    expect(rejected.map((r) => r.offset)).toEqual([0x100]);
  });
});

describe('vbtInLegacyRom and extractFromOptionRom (a ROM given directly)', () => {
  it('returns the VBT of the real legacy VBIOS', () => {
    const result = vbtInLegacyRom(ROM);
    expect({
      reason: result?.reason,
      imageIndex: result?.vbt?.imageIndex,
      offset: result?.vbt?.offset,
      sha256: sha256(result?.vbt?.bytes ?? new Uint8Array(0)),
    }).toEqual({ reason: null, imageIndex: 0, offset: ROM_VBT.offset, sha256: ROM_VBT.sha256 });
    const extraction = extractFromOptionRom(ROM);
    expect([extraction.vbt?.offset, sha256(extraction.vbt?.body ?? new Uint8Array(0))]).toEqual([
      ROM_VBT.offset,
      ROM_VBT.sha256,
    ]);
  });

  it('a legacy ROM without a VBT is no VBT and no complaint; with "$VBT" text it says why', () => {
    expect(vbtInLegacyRom(NO_VBT_ROM)).toEqual({ vbt: null, reason: null });
    const trapped = withText(NO_VBT_ROM, 0x400, '$VBT');
    const result = vbtInLegacyRom(trapped);
    expect(result?.vbt).toBeNull();
    expect(result?.reason).toMatch(
      /^legacy option ROM whose "\$VBT" text is not a VBT \(at 0x400 in image 0: "\$VBT" text without a VBT header: .+ \[E_VBT_[A-Z_]+\]\)$/,
    );
    const extraction = extractFromOptionRom(trapped);
    expect(extraction.vbt).toBeNull();
    expect(extraction.images[0]?.reason).toMatch(
      /^x86 PC-AT image without a VBT \("\$VBT" at 0x400 is not one: /,
    );
  });

  it('bytes that are not an option ROM are not looked at', () => {
    expect(vbtInLegacyRom(PE_WITH_TEXT)).toBeNull();
  });
});

describe('locateGopAndVbt: a VBT inside a legacy option ROM stored in an FFS file', () => {
  it('finds it in a freeform file (CRC32 section > raw section > ROM) and ignores the text in a PE driver', () => {
    const image = volume([trapDriver(), vbiosFile(ROM)]);
    const tree = parseFirmware(image, { strict: true });
    const result = locateGopAndVbt(tree);
    expect(result.damage).toEqual([]);
    expect(result.rejectedVbts).toEqual([]);
    expect(
      result.vbts.map((v) => ({
        guid: v.guid,
        sectionType: v.sectionType,
        foundBy: v.foundBy,
        path: v.path,
        sha256: sha256(v.body),
        size: v.body.length,
        signature: v.info.signature,
      })),
    ).toEqual([
      {
        guid: VBIOS_FILE,
        sectionType: 'option-rom',
        foundBy: ['signature'],
        path: expect.stringMatching(/\/option ROM image 0\/\$VBT at 0xad0$/),
        sha256: ROM_VBT.sha256,
        size: ROM_VBT.vbtSize,
        signature: ROM_VBT.signature,
      },
    ]);
    // The offset is absolute: the VBT's bytes are at it in the image.
    const offset = result.vbt?.offset as number;
    expect(sha256(image.subarray(offset, offset + ROM_VBT.vbtSize))).toBe(ROM_VBT.sha256);
    // The trap is really there, in a PE32 section the walk decoded.
    expect(Buffer.from(image).indexOf('$VBT HASWELL')).toBeGreaterThan(0);
  });

  it('an image whose only "$VBT" is the text in a PE driver ships no VBT (E_VBT_NOT_FOUND)', () => {
    const tree = parseFirmware(volume([trapDriver()]), { strict: true });
    expect(locateGopAndVbt(tree).vbts).toEqual([]);
    expect(() => locateVbt(tree)).toThrow(expect.objectContaining({ code: 'E_VBT_NOT_FOUND' }));
  });

  it('a ROM in a raw section whose "$VBT" is only text is rejected with the reason, not taken', () => {
    const trapped = withText(NO_VBT_ROM, 0x400, '$VBT');
    const tree = parseFirmware(volume([vbiosFile(trapped)]), { strict: true });
    const result = locateGopAndVbt(tree);
    expect(result.vbts).toEqual([]);
    expect(result.rejectedVbts.map((r) => [r.guid, r.reason])).toEqual([
      [VBIOS_FILE, vbtInLegacyRom(trapped)?.reason],
    ]);
    expect(result.rejectedVbts[0]?.reason).toMatch(
      /^legacy option ROM whose "\$VBT" text is not a VBT \(at 0x400 in image 0: /,
    );
  });
});

describe('ovmf-build extract on an image whose VBT is in a legacy option ROM', () => {
  const work = mkdtempSync(path.join(os.tmpdir(), 'ovmf-build-rom-vbt-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('writes the exact VBT bytes, says where they were, and reports the missing GOP (exit 4)', async () => {
    const image = path.join(work, 'vbios-in-ffs.fd');
    writeFileSync(image, volume([trapDriver(), vbiosFile(ROM)]));
    const out = path.join(work, 'out');
    const result = await runCli(['extract', image, '--out', out, '--json']);
    expect(result.code).toBe(4);
    const json = JSON.parse(result.stdout) as { vbt: Record<string, unknown> | null; gop: unknown };
    expect(json.gop).toBeNull();
    expect({
      section: json.vbt?.['section'],
      sha256: json.vbt?.['sha256'],
      size: json.vbt?.['size'],
      vbtSize: json.vbt?.['vbtSize'],
      signature: json.vbt?.['signature'],
      bdbVersion: json.vbt?.['bdbVersion'],
    }).toEqual({
      section: 'option-rom',
      sha256: ROM_VBT.sha256,
      size: ROM_VBT.vbtSize,
      vbtSize: ROM_VBT.vbtSize,
      signature: ROM_VBT.signature,
      bdbVersion: ROM_VBT.bdbVersion,
    });
    expect(sha256(new Uint8Array(readFileSync(path.join(out, 'Vbt.bin'))))).toBe(ROM_VBT.sha256);
  });
});
