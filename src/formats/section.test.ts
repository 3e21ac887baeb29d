import { describe, expect, it } from 'vitest';
import { concat, guidedSection, le16, le32, section, u8, utf16z } from '../../test/ffs-builder.js';
import { parseSectionHeader, readUtf16z, sectionTypeName } from './section.js';

describe('EFI_COMMON_SECTION_HEADER and typed section headers', () => {
  it('reads compression, GUID-defined, version and freeform headers at a non-zero offset', () => {
    const compression = section(0x01, u8(9, 9), concat(le32(0x1234), u8(1)));
    const guided = guidedSection('EE4E5898-3914-4259-9D6E-DC7BD79403CF', u8(1, 2, 3), 0x01);
    const version = section(0x14, utf16z('1.0'), le16(42));
    const freeform = section(0x18, u8(7), concat(new Uint8Array(16).fill(0x11)));
    const stream = concat(new Uint8Array(3), compression, guided, version, freeform);
    const view = stream.subarray(1);
    let at = 2;
    expect(parseSectionHeader(view, at, view.length, 'file F')).toEqual({
      type: 0x01,
      typeName: 'Compressed',
      sizeInBytes: 11,
      headerSize: 9,
      large: false,
      dataOffset: 9,
      compression: { uncompressedLength: 0x1234, type: 1 },
    });
    at += compression.length;
    expect(parseSectionHeader(view, at, view.length, 'file F')).toEqual({
      type: 0x02,
      typeName: 'GUID defined',
      sizeInBytes: 27,
      headerSize: 24,
      large: false,
      dataOffset: 24,
      guided: { guid: 'EE4E5898-3914-4259-9D6E-DC7BD79403CF', attributes: 1 },
    });
    at += guided.length;
    expect(parseSectionHeader(view, at, view.length, 'file F')).toMatchObject({
      typeName: 'Version',
      buildNumber: 42,
      dataOffset: 6,
    });
    at += version.length;
    expect(parseSectionHeader(view, at, view.length, 'file F')).toMatchObject({
      typeName: 'Freeform subtype GUID',
      subtypeGuid: '11111111-1111-1111-1111-111111111111',
      dataOffset: 20,
    });
  });

  it('reads the 0xFFFFFF large form and decodes UTF-16 names', () => {
    const large = section(0x15, utf16z('IntelGopDriver'), undefined, true);
    const header = parseSectionHeader(large, 0, large.length, 'file F');
    expect([header.large, header.headerSize, header.sizeInBytes]).toEqual([true, 8, 8 + 30]);
    expect(readUtf16z(large, 8, large.length)).toBe('IntelGopDriver');
    expect(sectionTypeName(0x1c)).toBe('MM dependency');
    expect(sectionTypeName(0x42)).toBe('Unknown 0x42');
  });

  it('rejects hostile sizes and data offsets with what, where and why', () => {
    const s = section(0x19, new Uint8Array(12));
    s.set([0xff, 0xff, 0x00], 0);
    expect(() => parseSectionHeader(s, 0, s.length, 'file 7C04A583-0000-0000-0000-000000000000')).toThrow(
      expect.objectContaining({
        code: 'E_SECTION_BAD_SIZE',
        message:
          'section at 0x0 claims 0xffff bytes, only 0x10 remain in file 7C04A583-0000-0000-0000-000000000000',
      }),
    );
    const g = guidedSection('EE4E5898-3914-4259-9D6E-DC7BD79403CF', u8(1));
    g.set(le16(0x400), 20);
    expect(() => parseSectionHeader(g, 0, g.length, 'file F')).toThrow(
      /has DataOffset 0x400, outside 0x18\.\.0x19 in file F/,
    );
    expect(() => parseSectionHeader(u8(1, 0), 0, 2, 'file F')).toThrow(
      expect.objectContaining({ code: 'E_SECTION_TRUNCATED' }),
    );
    expect(() => parseSectionHeader(section(0x01, u8()), 0, 4, 'file F')).toThrow(
      /less than its 0x9-byte header/,
    );
  });
});
