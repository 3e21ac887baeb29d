import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildOptionRom } from './option-rom-builder.js';
import { optionRomPeBytes, parseOptionRom } from './option-rom.js';
import { classifyRomChain, romImageLabel, type RomChain } from './rom-chain.js';

const CORPUS = path.resolve(import.meta.dirname, '../../../shared/corpus');
const read = (file: string): Uint8Array => new Uint8Array(readFileSync(path.join(CORPUS, file)));

const summary = (chain: RomChain): unknown[] =>
  chain.images.map((i) => [i.offset, i.role, i.gopBuild, i.moduleName, romImageLabel(i)]);

describe('classifyRomChain on the corpus', () => {
  it('names the three images of the Alder Lake-N N150 chain: GOP, IgdAssignmentDxe, PlatformGopPolicy', () => {
    const chain = classifyRomChain(read('roms/alderlake-n-n150-vfio-igd.rom'));
    // Offsets and order: manifest.json ground truth (166400 = 0x28a00, 184320 = 0x2d000).
    expect(summary(chain)).toEqual([
      [0, 'gop', null, null, 'Intel GOP driver, build unknown'],
      [166_400, 'igd-assignment', null, 'IgdAssignmentDxe', 'IGD assignment (IgdAssignmentDxe)'],
      [184_320, 'gop-policy', null, 'PlatformGopPolicy', 'PlatformGopPolicy (PlatformGopPolicy)'],
    ]);
    expect([chain.hasGop, chain.hasIgdAssignment, chain.hasGopPolicy]).toEqual([true, true, true]);
  });

  it('names the Raptor Lake-S 2-in-1 chain: an IGD helper that also serves the policy, then GOP 1077', () => {
    const chain = classifyRomChain(read('roms/raptorlake-s-2in1-gangqizai.rom'));
    expect(summary(chain)).toEqual([
      [
        0,
        'igd-assignment',
        null,
        'IgdLegacyModeDisplay',
        'IGD assignment (IgdLegacyModeDisplay, also GOP policy)',
      ],
      [17_920, 'gop', '1077', null, 'Intel GOP driver, build 1077'],
    ]);
    expect(chain.images[0]?.capabilities).toEqual({ igdAssignment: true, gopPolicyGuid: true });
    expect([chain.hasGop, chain.hasIgdAssignment, chain.hasGopPolicy]).toEqual([true, true, true]);
  });

  it('single-image and foreign ROMs', () => {
    const roles = (file: string): string[] => classifyRomChain(read(file)).images.map((i) => i.role);
    expect({
      gen12: roles('roms/gen12-gop-gangqizai.rom'),
      i915ovmf: roles('roms/skylake-i915ovmf.rom'),
      gvt: roles('roms/gvt-vbios-gvt-uefi.rom'),
      legacy: roles('roms/haswell-devid-0406-legacy-vbios.rom'),
      ipxe: roles('roms/ipxe-efi-e1000.rom'),
      stdvga: roles('roms/seabios-vgabios-stdvga.bin'),
    }).toEqual({
      gen12: ['gop'],
      // i915ovmfPkg and the GVT-g vBIOS read etc/igd-opregion themselves.
      i915ovmf: ['igd-assignment'],
      gvt: ['igd-assignment'],
      legacy: ['other'],
      ipxe: ['other', 'other'],
      stdvga: ['other'],
    });
    expect(classifyRomChain(read('roms/gen12-gop-gangqizai.rom')).hasIgdAssignment).toBe(false);
  });
});

describe('classifyRomChain on EFI-compressed chains', () => {
  it('decompresses each image before naming it (the N150 chain rebuilt with -ec, helpers first)', () => {
    const source = read('roms/alderlake-n-n150-vfio-igd.rom');
    const pes = parseOptionRom(source).images.map((image) => optionRomPeBytes(source, image));
    const [gop, igd, policy] = pes as [Uint8Array, Uint8Array, Uint8Array];
    const rom = buildOptionRom({
      images: [igd, policy, gop].map((pe) => ({ pe, vendorId: 0x8086, deviceId: 0x46d4, compress: true })),
    });
    const chain = classifyRomChain(rom);
    expect(chain.images.map((i) => [i.role, i.image.efi?.compressed, i.image.lastImage])).toEqual([
      ['igd-assignment', true, false],
      ['gop-policy', true, false],
      ['gop', true, true],
    ]);
  });

  it('reports an image whose compressed data is corrupt as other, with the decoder error', () => {
    const gop = read('gop/cometlake-mrchromebox-cml.efi');
    const rom = buildOptionRom({ images: [{ pe: gop, vendorId: 0x8086, deviceId: 0x9b41, compress: true }] });
    const imageOffset = parseOptionRom(rom).images[0]?.efi?.imageOffset ?? 0;
    // OrigSize (EFI compression header, second u32) far beyond the decoder's limit.
    new DataView(rom.buffer).setUint32(imageOffset + 4, 0x7fff_ffff, true);
    const image = classifyRomChain(rom).images[0];
    expect(image?.role).toBe('other');
    expect(image?.problem).toMatch(/^E_/u);
  });
});
