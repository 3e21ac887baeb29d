// spliceIgdVolume against an IGD volume laid out by the test's own FFS builder (test/ffs-builder.ts,
// written from the PI spec, not from igd-volume.ts): a variant made over a template of inputs A
// equals the builder's volume of inputs B, the rest of both images untouched; and every template
// that does not prove its volume is refused with a reason. That GenFv itself writes these bytes
// is checked on real builds in test/reproducible.int.test.ts (a variant over clean build 1
// equals clean build 2 byte for byte).
import { describe, expect, it } from 'vitest';
import {
  concat,
  ffsFile,
  type FileOptions,
  le16,
  le32,
  section,
  sections,
  u8,
  utf16z,
  volume,
} from '../../test/ffs-builder.js';
import { guidToBytes } from '../core/guid.js';
import { readCorpus } from '../../test/corpus.js';
import { sha256 } from '../core/digest.js';
import { assembleIgdVolume, parseIgdVolume, spliceIgdVolume, type IgdVolumeTemplate } from './igd-volume.js';
import { GOP_FILE_GUID, GOP_UI_NAME, IGD_VOLUME_GUID, igdVolumeSizes, VBT_FILE_GUID } from './layout.js';

const SIZES = igdVolumeSizes('4MB');
const gopA = readCorpus('gop/cometlake-mrchromebox-cml.efi');
const vbtA = readCorpus('vbt/cometlake-intel-nuc10i5fnh.vbt');
const gopB = readCorpus('gop/tigerlake-mrchromebox-tgl.efi');
const vbtB = readCorpus('vbt/tigerlake-starlabs-starbook.vbt');

/** The pad file GenFv puts first, holding EFI_FIRMWARE_VOLUME_EXT_HEADER (FvName, size 20). */
const nameFile = ffsFile(
  '00000000-0000-0000-0000-000000000000',
  0xf0,
  concat(guidToBytes(IGD_VOLUME_GUID), le32(20)),
);
/** Volume header 0x48, the name file 24 + 20, then the GOP's file at the next 8-byte boundary. */
const GOP_FILE_AT = 0x78;

/** The GOP's file as GenFfs lays it out: PE32, UI and version sections. */
function gopFileOf(gop: Uint8Array, options: FileOptions = {}): Uint8Array {
  return ffsFile(
    GOP_FILE_GUID,
    0x07,
    sections(
      section(0x10, gop),
      section(0x15, utf16z(GOP_UI_NAME)),
      section(0x14, concat(le16(0), utf16z('1.0'))),
    ),
    options,
  );
}

function igdVolume(gop: Uint8Array, vbt: Uint8Array, extra: readonly Uint8Array[] = []): Uint8Array {
  const gopFile = gopFileOf(gop);
  const vbtFile = ffsFile(VBT_FILE_GUID, 0x02, section(0x19, vbt));
  return volume([nameFile, gopFile, vbtFile, ...extra], { lengthInBytes: SIZES.igdVolume });
}

/** OVMF_CODE.fd-like bytes: the volume, then other bytes; OVMF.fd: VARS-like bytes, then the code. */
function images(volumeBytes: Uint8Array): IgdVolumeTemplate {
  const rest = new Uint8Array(0x3000).map((_, i) => (i * 7 + 3) & 0xff);
  const code = concat(volumeBytes, rest);
  const vars = new Uint8Array(SIZES.varsSize).map((_, i) => (i * 13) & 0xff);
  return { code, combined: concat(vars, code), gop: gopA, vbt: vbtA };
}

describe('spliceIgdVolume', () => {
  it('makes the volume of inputs B over a template of inputs A, and nothing else', () => {
    const template = images(igdVolume(gopA, vbtA));
    const made = spliceIgdVolume(template, '4MB', gopB, vbtB);
    expect(made.ok).toBe(true);
    if (!made.ok) return;
    const expected = images(igdVolume(gopB, vbtB));
    expect(sha256(made.value.code)).toBe(sha256(expected.code));
    expect(sha256(made.value.combined)).toBe(sha256(expected.combined));
    // The template is not written to.
    expect(sha256(template.code)).toBe(sha256(images(igdVolume(gopA, vbtA)).code));
  });

  it('pads a GOP whose length is not a multiple of 4 as GenFfs does (zeros), and places the VBT after it', () => {
    const template = images(igdVolume(gopA, vbtA));
    for (const cut of [1, 2, 3]) {
      const gop = gopB.subarray(0, gopB.length - cut);
      const vbt = vbtB.subarray(0, vbtB.length - cut);
      const made = spliceIgdVolume(template, '4MB', gop, vbt);
      expect(made.ok && sha256(made.value.code)).toBe(sha256(images(igdVolume(gop, vbt)).code));
    }
  });

  it('gives back the template for its own inputs, and reads its parts', () => {
    const bytes = igdVolume(gopA, vbtA);
    const layout = parseIgdVolume(bytes);
    expect(layout.ok).toBe(true);
    if (!layout.ok) return;
    expect(sha256(layout.value.gop)).toBe(sha256(gopA));
    expect(sha256(layout.value.vbt)).toBe(sha256(vbtA));
    expect(layout.value.eraseByte).toBe(0xff);
    expect(layout.value.gopFileOffset).toBe(GOP_FILE_AT);
    const again = assembleIgdVolume(bytes, layout.value, gopA, vbtA);
    expect(again.ok && sha256(again.value)).toBe(sha256(bytes));
  });

  it('refuses templates that do not prove their volume, with the reason', () => {
    const good = igdVolume(gopA, vbtA);
    const reason = (template: IgdVolumeTemplate, gop = gopB, vbt = vbtB): string | null => {
      const made = spliceIgdVolume(template, '4MB', gop, vbt);
      return made.ok ? null : made.reason;
    };
    // Another GOP than the one the template says it was built from.
    expect(reason({ ...images(good), gop: gopB })).toBe(
      'the IGD volume does not hold the GOP and VBT the template was built from, as given',
    );
    // A third file after the VBT's.
    expect(
      reason(images(igdVolume(gopA, vbtA, [ffsFile(IGD_VOLUME_GUID, 0x02, section(0x19, u8(1, 2, 3)))]))),
    ).toMatch(/^the volume holds more after the VBT file \(at 0x[0-9a-f]+\)$/);
    // The files in the other order.
    const swapped = volume(
      [
        nameFile,
        ffsFile(VBT_FILE_GUID, 0x02, section(0x19, vbtA)),
        ffsFile(GOP_FILE_GUID, 0x07, section(0x10, gopA)),
      ],
      { lengthInBytes: SIZES.igdVolume },
    );
    expect(reason(images(swapped))).toMatch(
      /^expected the file 1647B4F3-3E8A-4FDD-81C8-328ED647AB1A at 0x[0-9a-f]+, found 1647B4F3-3E8A-4FEF/,
    );
    // A GOP file with a data checksum (FFS_ATTRIB_CHECKSUM): its file checksum would change too.
    const checksummed = volume(
      [nameFile, gopFileOf(gopA, { attributes: 0x40 }), ffsFile(VBT_FILE_GUID, 0x02, section(0x19, vbtA))],
      { lengthInBytes: SIZES.igdVolume },
    );
    expect(reason(images(checksummed))).toBe(
      `file ${GOP_FILE_GUID} has attributes 0x40 (a large file or a data checksum)`,
    );
    // A corrupt header checksum.
    const corrupt = good.slice();
    const at = GOP_FILE_AT;
    corrupt[at + 16] = ((corrupt[at + 16] as number) + 1) & 0xff;
    expect(reason(images(corrupt))).toBe(`file ${GOP_FILE_GUID} has a bad header checksum`);
    // OVMF.fd's copy of the volume differs from OVMF_CODE.fd's.
    const template = images(good);
    const combined = template.combined.slice();
    combined[SIZES.varsSize + SIZES.igdVolume - 1] = 0;
    expect(reason({ ...template, combined })).toBe(
      'the IGD volume of OVMF.fd differs from that of OVMF_CODE.fd',
    );
    // Not a volume; or of another flash size.
    expect(reason(images(new Uint8Array(SIZES.igdVolume).fill(0xff)))).toBe('no _FVH volume header');
    expect(spliceIgdVolume(template, '2MB', gopB, vbtB)).toEqual({
      ok: false,
      reason: 'the template images do not have this flash size',
    });
    // Inputs that do not fit the volume.
    const huge = new Uint8Array(SIZES.igdVolume);
    expect(reason(template, huge)).toMatch(
      /^the GOP driver and the VBT need 0x[0-9a-f]+ bytes of the IGD volume's 0x80000$/,
    );
  });
});
