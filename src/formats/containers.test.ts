// Capsule headers, Intel flash descriptor, BPDT and NVRAM store identification.
import { describe, expect, it } from 'vitest';
import { guidToBytes } from '../core/guid.js';
import { firmwareEntries, readCorpus } from '../../test/corpus.js';
import { concat, le16, le32, volume } from '../../test/ffs-builder.js';
import { capsuleKindOf, parseCapsuleHeader } from './capsule.js';
import { parseFirmware, walkNodes } from './firmware-tree.js';
import { findFlashDescriptorSignature, parseFlashDescriptor } from './flash-descriptor.js';
import { looksLikeBpdt, parseBpdt } from './ifwi.js';
import { identifyNvramStores } from './nvram.js';

describe('capsule headers', () => {
  const body = new Uint8Array(64).fill(0x5a);
  it('EFI_CAPSULE_HEADER: header size, flags, image size', () => {
    const cap = concat(
      guidToBytes('3B6686BD-0D76-4030-B70E-B5519E2FC5A0'),
      le32(0x20),
      le32(0x0005_0000),
      le32(0x20 + 64),
      new Uint8Array(4),
      body,
    );
    expect(parseCapsuleHeader(cap)).toEqual({
      kind: 'UEFI',
      guid: '3B6686BD-0D76-4030-B70E-B5519E2FC5A0',
      headerSize: 0x20,
      flags: 0x0005_0000,
      capsuleSizeInBytes: 0x60,
      bodyOffset: 0x20,
      bodySizeInBytes: 64,
      fmp: null,
    });
  });

  it('AMI Aptio: the image starts at RomImageOffset; Toshiba: HeaderSize/FullSize/Flags', () => {
    const aptio = concat(
      guidToBytes('4A3CA68B-7723-48FB-803D-578CC1FEC44D'),
      le32(0x1c),
      le32(1),
      le32(0x40 + 64),
      le16(0x40),
      le16(0x30),
      new Uint8Array(0x20),
      body,
    );
    expect(parseCapsuleHeader(aptio)).toMatchObject({
      kind: 'AMI Aptio signed',
      bodyOffset: 0x40,
      bodySizeInBytes: 64,
    });
    const toshiba = concat(
      guidToBytes('3BE07062-1D51-45D2-832B-F093257ED461'),
      le32(0x1c),
      le32(0x1c + 64),
      le32(7),
      body,
    );
    expect(parseCapsuleHeader(toshiba)).toMatchObject({
      kind: 'Toshiba',
      flags: 7,
      bodyOffset: 0x1c,
      bodySizeInBytes: 64,
    });
    expect(capsuleKindOf(guidToBytes('14EEBB90-890A-43DB-AED1-5D3C4588A418'))).toBeNull(); // shorter than a header
  });

  it('rejects a capsule that claims more bytes than the file has', () => {
    const cap = concat(
      guidToBytes('3B6686BD-0D76-4030-B70E-B5519E2FC5A0'),
      le32(0x1c),
      le32(0),
      le32(0x10_0000),
      body,
    );
    expect(() => parseCapsuleHeader(cap)).toThrow(
      expect.objectContaining({
        code: 'E_CAPSULE_BAD_SIZE',
        message: 'UEFI capsule claims 0x100000 bytes, file has 0x5c (minimum 0x1c)',
      }),
    );
  });
});

describe('Intel flash descriptor', () => {
  it('lists the Clevo regions as UEFIExtract does (Descriptor, ME, BIOS)', () => {
    const image = readCorpus('images/kabylake-platform-clevo-p870km-modded-spi.rom');
    expect(findFlashDescriptorSignature(image)).toBe(0x10);
    const descriptor = parseFlashDescriptor(image);
    expect(descriptor.regions).toEqual([
      { index: 0, name: 'Descriptor', offset: 0, sizeInBytes: 0x1000 },
      { index: 2, name: 'ME', offset: 0x1000, sizeInBytes: 0x1f_f000 },
      { index: 1, name: 'BIOS', offset: 0x20_0000, sizeInBytes: 0x60_0000 },
    ]);
    expect(descriptor.regionBaseOffset).toBe(0x40);
  });

  it('rejects overlapping regions', () => {
    const image = readCorpus('images/kabylake-platform-clevo-p870km-modded-spi.rom').slice(0, 0x80_0000);
    image.set(le32(0x07ff_0100), 0x44); // BIOS from 0x100000: overlaps ME
    expect(() => parseFlashDescriptor(image)).toThrow(
      expect.objectContaining({ code: 'E_DESCRIPTOR_BAD_REGIONS' }),
    );
    expect(() => parseFirmware(image, { strict: true })).toThrow(
      expect.objectContaining({ code: 'E_DESCRIPTOR_BAD_REGIONS' }),
    );
    // Not strict: the problem is recorded and the volumes are still found by scanning.
    const tree = parseFirmware(image, { summarizePe: false });
    expect(tree.problems.map((p) => p.code)).toEqual(['E_DESCRIPTOR_BAD_REGIONS']);
    expect(tree.stats.volumes).toBeGreaterThanOrEqual(6);
  });
});

describe('BPDT', () => {
  it('reads the Gemini Lake IFWI partition table and its S-BPDT', () => {
    const ifwi = readCorpus('images/geminilake-protectli-vp2410-ifwi.bin');
    expect(looksLikeBpdt(ifwi)).toBe(true);
    const table = parseBpdt(ifwi);
    expect(table.entries.map((e) => [e.name, e.offset, e.sizeInBytes])).toEqual([
      ['CSE IDLM', 0, 0],
      ['IFP Override', 0x200, 0x10],
      ['S-BPDT', 0x1d_8000, 0x10_5000],
      ['CSE RBE', 0x3000, 0xb000],
      ['USF Phy Config', 0, 0],
      ['USF GPP LUN ID', 0, 0],
      ['CSE BUP', 0x1_d000, 0x6_1000],
      ['UEP', 0x210, 0x108],
      ['OEM SMIP', 0x1000, 0x2000],
      ['PMC', 0xe000, 0xf000],
      ['uCode', 0x7_e000, 0x2_6000],
      ['IBB', 0xa_4000, 0x13_2000],
      ['Debug Tokens', 0x1d_6000, 0x2000],
    ]);
    // UEFIExtract: "BPDT store | 00000000 | 002DD000 | BPDT region"
    expect(table.endOffset).toBe(0x2d_d000);
    expect(parseBpdt(ifwi, 0x1d_8000).entries.map((e) => e.name)).toEqual(['CSE Main']);
    const tree = parseFirmware(ifwi, { strict: true });
    const ibb = tree.root.children.find((n) => n.name === 'IBB');
    expect(ibb?.children.map((n) => [n.kind, n.offset])).toEqual([
      ['volume', 0xa_5000],
      ['volume', 0xa_6000],
      ['volume', 0x12_6000],
    ]);
  });
});

describe('NVRAM stores', () => {
  it('identifies the VSS2 and FTW stores of every OVMF variable volume', () => {
    for (const entry of firmwareEntries().filter(
      (e) => e.path.includes('VARS') || e.path.endsWith('/OVMF.fd'),
    )) {
      const tree = parseFirmware(readCorpus(entry.path), { strict: true });
      const nvram = [...walkNodes(tree.root)].find((n) => n.kind === 'volume' && n.subtype === 'NVRAM');
      const stores = nvram?.kind === 'volume' ? nvram.nvram : null;
      expect(
        stores?.map((s) => s.format),
        entry.path,
      ).toEqual(['VSS2', 'FTW']);
      // UEFIExtract: "VSS2 store | | 00000048 | <size>" (the first store starts after the 0x48-byte header).
      const line = entry.truth.uefiextract.report_top_lines[2] as string;
      expect(stores?.[0]?.sizeInBytes).toBe(parseInt(line.split('|')[3] as string, 16));
    }
  });

  it('stops at unknown data and never reads past the end', () => {
    expect(identifyNvramStores(new Uint8Array(100))).toEqual([]);
    expect(
      identifyNvramStores(concat(guidToBytes('9E58292B-7C68-497D-A0CE-6500FD9F1B95'), new Uint8Array(12))),
    ).toEqual([]);
    expect(parseFirmware(volume([]), { strict: true }).stats.volumes).toBe(1);
  });
});
