import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseOptionRom, optionRomPeBytes } from '../formats/option-rom.js';
import { parseDeviceId, prepareRom, validateIgdRom } from './rom.js';

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
});

describe('prepareRom', () => {
  it('generates an EFI ROM for the device that carries the GOP byte for byte', () => {
    const gop = read('gop/cometlake-mrchromebox-cml.efi');
    const rom = prepareRom({ kind: 'generated', gop, deviceId: 0x9b41 });
    const info = parseOptionRom(rom.bytes);
    expect(
      info.images.map((i) => [i.vendorId, i.deviceId, i.classCode, i.codeType, i.lastImage, i.efi?.machine]),
    ).toEqual([[0x8086, 0x9b41, 0x03_0000, 3, true, 0x8664]]);
    expect(Buffer.compare(optionRomPeBytes(rom.bytes, info.images[0]!), gop)).toBe(0);
    const defaultDevice = prepareRom({ kind: 'generated', gop });
    expect(parseOptionRom(defaultDevice.bytes).images[0]?.deviceId).toBe(0xffff);
    expect(defaultDevice.keyInput).not.toBe(rom.keyInput);
  });

  it('parses device ids', () => {
    expect(parseDeviceId('8086:9B41')).toBe(0x9b41);
    expect(codeOf(() => parseDeviceId('10de:1234'))).toBe('E_USAGE');
    expect(codeOf(() => parseDeviceId('8086-9b41'))).toBe('E_USAGE');
  });
});
