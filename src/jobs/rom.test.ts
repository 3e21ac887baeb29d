import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseOptionRom, optionRomPeBytes } from '../formats/option-rom.js';
import { buildIgdRom, parseDeviceId, prepareRom, validateIgdRom, type HelperDrivers } from './rom.js';

const CORPUS = path.resolve(import.meta.dirname, '../../../shared/corpus');
const read = (file: string): Uint8Array => new Uint8Array(readFileSync(path.join(CORPUS, file)));

function codeOf(run: () => unknown): string | null {
  try {
    run();
    return null;
  } catch (error) {
    return (error as { code: string }).code;
  }
}

/** VfioIgdPkg's IgdAssignmentDxe and PlatformGopPolicy, taken out of the N150 chain: real helpers. */
function corpusHelpers(): HelperDrivers {
  const rom = read('roms/alderlake-n-n150-vfio-igd.rom');
  const [, igd, policy] = parseOptionRom(rom).images.map((image) => optionRomPeBytes(rom, image));
  return { igdAssignment: igd!, gopPolicy: policy! };
}

describe('validateIgdRom', () => {
  it('accepts the Intel EFI GOP ROMs of the corpus and refuses the others', () => {
    const verdicts = Object.fromEntries(
      [
        'alderlake-n-n150-vfio-igd.rom',
        'gen12-gop-gangqizai.rom',
        'raptorlake-s-2in1-gangqizai.rom',
        'skylake-i915ovmf.rom',
        'gvt-vbios-gvt-uefi.rom',
        'haswell-devid-0406-legacy-vbios.rom',
        'ipxe-efi-e1000.rom',
        'seabios-vgabios-stdvga.bin',
      ].map((file) => [file, codeOf(() => validateIgdRom(read(`roms/${file}`)))]),
    );
    expect(verdicts).toEqual({
      'alderlake-n-n150-vfio-igd.rom': null,
      'gen12-gop-gangqizai.rom': null,
      'raptorlake-s-2in1-gangqizai.rom': null,
      'skylake-i915ovmf.rom': null,
      'gvt-vbios-gvt-uefi.rom': 'E_INPUT_BAD_ROM',
      'haswell-devid-0406-legacy-vbios.rom': 'E_INPUT_BAD_ROM',
      'ipxe-efi-e1000.rom': 'E_INPUT_BAD_ROM',
      'seabios-vgabios-stdvga.bin': 'E_INPUT_BAD_ROM',
    });
    expect(codeOf(() => validateIgdRom(new Uint8Array(512)))).toBe('E_INPUT_BAD_ROM');
  });

  it('warns when neither the firmware nor the ROM carries IGD assignment', () => {
    const gopOnly = read('roms/gen12-gop-gangqizai.rom');
    const chain = read('roms/alderlake-n-n150-vfio-igd.rom');
    expect({
      gopOnlyStock: validateIgdRom(gopOnly, { firmwareHasIgdAssignment: false }).warnings,
      gopOnlyUnknown: validateIgdRom(gopOnly).warnings,
      gopOnlyOurs: validateIgdRom(gopOnly, { firmwareHasIgdAssignment: true }).warnings,
      chainStock: validateIgdRom(chain, { firmwareHasIgdAssignment: false }).warnings,
      i915ovmf: validateIgdRom(read('roms/skylake-i915ovmf.rom'), { firmwareHasIgdAssignment: true })
        .warnings,
    }).toEqual({
      gopOnlyStock: [
        'neither the firmware nor the ROM carries IGD assignment: nothing will copy the OpRegion (etc/igd-opregion) or program ASLS/BDSM, and the GOP will likely show nothing',
      ],
      gopOnlyUnknown: [
        'the ROM carries no IGD assignment image: it works only with an OVMF that does IGD assignment itself (ovmf-build embedded mode), not with a stock OVMF',
      ],
      gopOnlyOurs: [],
      chainStock: [],
      i915ovmf: ['the ROM carries no Intel GOP driver (no image has the "Intel(R) GOP Driver" name)'],
    });
  });
});

describe('buildIgdRom', () => {
  it('chains IgdAssignmentDxe, PlatformGopPolicy and the GOP, last-image bit only on the GOP', () => {
    const gop = read('gop/alderlake-n-twinlake-tianbei-n1pro.efi');
    const helpers = corpusHelpers();
    const { bytes, chain } = buildIgdRom({ gop, helpers, deviceId: 0x46d4 });
    expect(
      chain.images.map((i) => [
        i.role,
        i.image.offset,
        i.image.vendorId,
        i.image.deviceId,
        i.image.classCode,
        i.image.lastImage,
        i.image.efi?.compressed,
      ]),
    ).toEqual([
      ['igd-assignment', 0, 0x8086, 0x46d4, 0x03_0000, false, false],
      ['gop-policy', 17_920, 0x8086, 0x46d4, 0x03_0000, false, false],
      ['gop', 17_920 + 7168, 0x8086, 0x46d4, 0x03_0000, true, false],
    ]);
    expect(Buffer.compare(optionRomPeBytes(bytes, chain.images[2]!.image), gop)).toBe(0);
    expect(bytes.length).toBe(17_920 + 7168 + 166_400);
  });

  it('refuses helpers given in the wrong places (E_INPUT_BAD_HELPER)', () => {
    const gop = read('gop/alderlake-n-twinlake-tianbei-n1pro.efi');
    const { igdAssignment, gopPolicy } = corpusHelpers();
    expect(
      codeOf(() =>
        buildIgdRom({
          gop,
          helpers: { igdAssignment: gopPolicy, gopPolicy: igdAssignment },
          deviceId: 0x46d4,
        }),
      ),
    ).toBe('E_INPUT_BAD_HELPER');
    expect(
      codeOf(() => buildIgdRom({ gop: igdAssignment, helpers: { igdAssignment, gopPolicy }, deviceId: 1 })),
    ).toBe('E_INPUT_BAD_HELPER');
  });
});

describe('prepareRom', () => {
  it('generates the ROM-mode chain for the device, carrying the GOP byte for byte', () => {
    const gop = read('gop/cometlake-mrchromebox-cml.efi');
    const helpers = corpusHelpers();
    const rom = prepareRom({ kind: 'generated', gop, helpers, deviceId: 0x9b41 });
    const info = parseOptionRom(rom.bytes);
    expect(
      info.images.map((i) => [i.vendorId, i.deviceId, i.classCode, i.codeType, i.lastImage, i.efi?.machine]),
    ).toEqual([
      [0x8086, 0x9b41, 0x03_0000, 3, false, 0x8664],
      [0x8086, 0x9b41, 0x03_0000, 3, false, 0x8664],
      [0x8086, 0x9b41, 0x03_0000, 3, true, 0x8664],
    ]);
    expect(rom.roles).toEqual(['igd-assignment', 'gop-policy', 'gop']);
    expect(rom.warnings).toEqual([]);
    expect(Buffer.compare(optionRomPeBytes(rom.bytes, info.images[2]!), gop)).toBe(0);
    const defaultDevice = prepareRom({ kind: 'generated', gop, helpers });
    expect(parseOptionRom(defaultDevice.bytes).images[0]?.deviceId).toBe(0xffff);
    expect(defaultDevice.keyInput).not.toBe(rom.keyInput);
  });

  it('parses device ids', () => {
    expect(parseDeviceId('8086:9B41')).toBe(0x9b41);
    expect(parseDeviceId('46d4')).toBe(0x46d4);
    expect(codeOf(() => parseDeviceId('10de:1234'))).toBe('E_USAGE');
    expect(codeOf(() => parseDeviceId('8086-9b41'))).toBe('E_USAGE');
  });
});
