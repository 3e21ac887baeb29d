import { describe, expect, it } from 'vitest';
import { FormatError } from '../core/errors.js';
import { concat, FFS2, FFS3, le64, volume } from '../../test/ffs-builder.js';
import { findVolumeCandidates, looksLikeVolumeHeader, parseFirmwareVolumeHeader } from './firmware-volume.js';

const NAME = '7CB8BDC9-F8EB-4F34-AAEA-3EE4AF6516A1';

describe('EFI_FIRMWARE_VOLUME_HEADER', () => {
  it('reads every field, at a non-zero base offset', () => {
    const fv = volume([], { lengthInBytes: 0x1000, fvName: NAME });
    const prefix = new Uint8Array(0x30).fill(0xff);
    const image = concat(prefix, fv);
    // A view that does not start at the buffer start: the DataView must honour byteOffset.
    const view = image.subarray(0x10);
    const header = parseFirmwareVolumeHeader(view, 0x20);
    expect(header).toEqual({
      fileSystemGuid: FFS2,
      ffsVersion: 2,
      subtypeName: 'FFSv2',
      lengthInBytes: 0x1000,
      attributes: 0x0004_feff,
      erasePolarity: 1,
      alignmentInBytes: 16,
      headerLength: 0x48,
      checksum: { stored: header.checksum.stored, valid: true },
      extHeaderOffset: 0x48,
      revision: 2,
      blockMap: [{ numBlocks: 0x200, blockLength: 8 }],
      fvName: NAME,
      extHeaderSize: 20,
      filesOffset: 0x60,
      displayName: NAME,
    });
    expect(findVolumeCandidates(image)).toEqual([0x30]);
  });

  it('names FFSv3 volumes and reports a bad checksum without failing', () => {
    const fv = volume([], { lengthInBytes: 0x100, fileSystemGuid: FFS3 });
    fv[0x32] = (fv[0x32] as number) ^ 0x01;
    const header = parseFirmwareVolumeHeader(fv, 0);
    expect(header.ffsVersion).toBe(3);
    expect(header.checksum.valid).toBe(false);
    expect(header.displayName).toBe(FFS3);
    // Aligned, known file system: still a candidate while scanning.
    expect(looksLikeVolumeHeader(fv, 0)).toBe(true);
  });

  it('rejects a volume that claims more bytes than remain, naming both sizes', () => {
    const fv = volume([], { lengthInBytes: 0x100 });
    fv.set(le64(0xff_ffff), 0x20);
    let caught: unknown;
    try {
      parseFirmwareVolumeHeader(fv, 0);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(FormatError);
    expect((caught as FormatError).toJSON()).toEqual({
      code: 'E_FV_BAD_LENGTH',
      message: 'volume at 0x0 claims 0xffffff bytes, only 0x100 remain in image',
      details: { offset: 0, claimed: '16777215', remaining: 0x100 },
    });
  });

  it('rejects a block map without terminator and a hostile header length', () => {
    const fv = volume([], { lengthInBytes: 0x100 });
    fv.fill(0x11, 0x40, 0x48);
    expect(() => parseFirmwareVolumeHeader(fv, 0)).toThrow(/block map has no \{0,0\} terminator/);
    const fv2 = volume([], { lengthInBytes: 0x100 });
    fv2[0x30] = 0xff;
    fv2[0x31] = 0xff;
    expect(() => parseFirmwareVolumeHeader(fv2, 0)).toThrow(/claims a header of 0xffff bytes/);
  });

  it('does not take code bytes that contain _FVH for a volume', () => {
    const noise = new Uint8Array(0x200);
    noise.set([0x5f, 0x46, 0x56, 0x48], 0x83);
    expect(findVolumeCandidates(noise)).toEqual([]);
  });
});
