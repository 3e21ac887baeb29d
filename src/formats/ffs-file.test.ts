import { describe, expect, it } from 'vitest';
import { concat, ffsFile, le24, le64 } from '../../test/ffs-builder.js';
import {
  FFS_FILE_HEADER_SIZE,
  fileTypeHasSections,
  fileTypeName,
  isErasedHeader,
  parseFfsFileHeader,
} from './ffs-file.js';

const GUID = '1647B4F3-3E8A-4FDD-81C8-328ED647AB1A';
const V2 = { ffsVersion: 2, erasePolarity: 1, revision: 2, where: 'volume X' } as const;

describe('EFI_FFS_FILE_HEADER', () => {
  it('reads every field, at a non-zero base offset inside a view', () => {
    const file = ffsFile(GUID, 0x07, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]), { attributes: 0x40 | 0x08 });
    const buffer = concat(new Uint8Array(0x40).fill(0xee), file, new Uint8Array(8).fill(0xff));
    const view = buffer.subarray(0x10);
    expect(parseFfsFileHeader(view, 0x30, view.length, V2)).toEqual({
      guid: GUID,
      type: 0x07,
      typeName: 'DXE driver',
      attributes: 0x48,
      sizeInBytes: 32,
      headerSize: FFS_FILE_HEADER_SIZE,
      large: false,
      // State 0xF8 with erase polarity 1 is HEADER_CONSTRUCTION | HEADER_VALID | DATA_VALID.
      state: 0x07,
      deleted: false,
      dataAlignmentInBytes: 16,
      headerChecksum: { stored: file[0x10], valid: true },
      dataChecksum: { stored: file[0x11], valid: true },
      tailSize: 0,
    });
  });

  it('reads the FFSv3 extended size and reports broken checksums', () => {
    const file = ffsFile(GUID, 0x01, new Uint8Array(100), { large: true });
    const parsed = parseFfsFileHeader(file, 0, file.length, { ...V2, ffsVersion: 3 });
    expect([parsed.large, parsed.headerSize, parsed.sizeInBytes]).toEqual([true, 32, 132]);
    file[0x10] = (file[0x10] as number) ^ 0xff;
    file[0x11] = 0x00;
    const broken = parseFfsFileHeader(file, 0, file.length, { ...V2, ffsVersion: 3 });
    expect(broken.headerChecksum.valid).toBe(false);
    expect(broken.dataChecksum.valid).toBe(false);
    expect(
      parseFfsFileHeader(file, 0, file.length, { ...V2, ffsVersion: 3, verifyDataChecksum: false })
        .dataChecksum.valid,
    ).toBeNull();
  });

  it('rejects sizes beyond the volume and below the header, naming the file', () => {
    const file = ffsFile(GUID, 0x07, new Uint8Array(8));
    file.set(le24(0x1000), 0x14);
    expect(() => parseFfsFileHeader(file, 0, file.length, V2)).toThrow(
      expect.objectContaining({
        code: 'E_FFS_BAD_SIZE',
        message: `file ${GUID} at 0x0 claims 0x1000 bytes, only 0x20 remain in volume X`,
      }),
    );
    file.set(le24(4), 0x14);
    expect(() => parseFfsFileHeader(file, 0, file.length, V2)).toThrow(
      /claims 0x4 bytes, less than its 0x18-byte header/,
    );
    const large = ffsFile(GUID, 0x01, new Uint8Array(8), { large: true });
    large.set(le64(2 ** 40), 0x18);
    expect(() => parseFfsFileHeader(large, 0, large.length, { ...V2, ffsVersion: 3 })).toThrow(
      /claims 0x10000000000 bytes \(extended size\)/,
    );
  });

  it('names file types as UEFIExtract and knows erased headers', () => {
    expect(
      [0x01, 0x02, 0x03, 0x06, 0x07, 0x09, 0x0a, 0x0b, 0xf0, 0xc5, 0xe1, 0x10].map(fileTypeName),
    ).toEqual([
      'Raw',
      'Freeform',
      'SEC core',
      'PEI module',
      'DXE driver',
      'Application',
      'SMM module',
      'Volume image',
      'Pad',
      'OEM 0xc5',
      'Debug 0xe1',
      'Unknown 0x10',
    ]);
    expect([0x01, 0x02, 0x07, 0xf0].map(fileTypeHasSections)).toEqual([false, true, true, false]);
    expect(isErasedHeader(new Uint8Array(24).fill(0xff), 0, 1)).toBe(true);
    expect(isErasedHeader(new Uint8Array(24).fill(0xff), 0, 0)).toBe(false);
  });
});
