import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { classifyGopDriver } from './gop.js';
import { buildOptionRom } from './option-rom-builder.js';
import { optionRomPeBytes, parseOptionRom } from './option-rom.js';
import { CORPUS_DIR as corpus } from '../../test/corpus.js';
import { errorCodeOf } from '../../test/bytes-helpers.js';

const read = (p: string): Uint8Array => new Uint8Array(readFileSync(path.join(corpus, p)));
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const gopFiles = readdirSync(path.join(corpus, 'gop'))
  .filter((f) => !f.startsWith('not-a-gop'))
  .sort();

describe('buildOptionRom reproduces the corpus ROMs that EfiRom made', () => {
  // These five were built with EDK2 EfiRom (uncompressed): rebuilding them from the PE
  // bytes they carry, with their PCIR ids, must give the same file byte for byte.
  for (const file of [
    'roms/gen12-gop-gangqizai.rom',
    'roms/alderlake-n-n150-vfio-igd.rom',
    'roms/raptorlake-s-2in1-gangqizai.rom',
    'roms/skylake-i915ovmf.rom',
    'roms/gvt-vbios-gvt-uefi.rom',
  ]) {
    it(file, () => {
      const rom = read(file);
      const images = parseOptionRom(rom).images.map((image) => ({
        pe: optionRomPeBytes(rom, image),
        vendorId: image.vendorId,
        deviceId: image.deviceId,
        classCode: image.classCode,
        revision: image.codeRevision,
      }));
      const built = buildOptionRom({ images });
      expect(built.length).toBe(rom.length);
      expect(sha(built)).toBe(sha(rom));
    });
  }
});

describe('buildOptionRom round-trips every corpus GOP through parseOptionRom', () => {
  for (const file of gopFiles) {
    it(file, () => {
      const pe = read(`gop/${file}`);
      const rom = buildOptionRom({
        images: [{ pe, vendorId: 0x8086, deviceId: 0x3e9b, classCode: 0x03_0000 }],
      });
      const info = parseOptionRom(rom);
      expect(info.images.length).toBe(1);
      const image = info.images[0]!;
      const headerSize = 56; // 26-byte EFI ROM header + 2 pad + 28-byte PCIR 3.0
      const total = Math.ceil((pe.length + headerSize) / 512) * 512;
      expect({
        vendorId: image.vendorId,
        deviceId: image.deviceId,
        classCode: image.classCode,
        codeType: image.codeType,
        lastImage: image.lastImage,
        pcirRevision: image.pcirRevision,
        imageLengthInBytes: image.imageLengthInBytes,
        efi: image.efi,
      }).toEqual({
        vendorId: 0x8086,
        deviceId: 0x3e9b,
        classCode: 0x03_0000,
        codeType: 3,
        lastImage: true,
        pcirRevision: 3,
        imageLengthInBytes: total,
        efi: {
          subsystem: 11,
          machine: 0x8664,
          compressed: false,
          imageOffset: total - pe.length,
          initSizeInBytes: total,
        },
      });
      expect(rom.length).toBe(total);
      expect(sha(optionRomPeBytes(rom, image))).toBe(sha(pe));
      // 0xFF padding sits between the headers and the PE (EfiRom's layout for uncompressed images).
      expect(rom.subarray(headerSize, total - pe.length).every((b) => b === 0xff)).toBe(true);
      expect(classifyGopDriver(optionRomPeBytes(rom, image)).isGop).toBe(true);
    });
  }
});

describe('buildOptionRom options', () => {
  const pe = read('gop/haswell-broadwell-anbeen-pc-4-5.efi');

  it('writes a PCI 3.0 device list after the PCIR when several device ids are given', () => {
    const rom = buildOptionRom({
      images: [{ pe, vendorId: 0x8086, deviceId: 0x0412, deviceIds: [0x0412, 0x0416, 0x041e] }],
    });
    const image = parseOptionRom(rom).images[0]!;
    expect(image.deviceList).toEqual([0x0412, 0x0416, 0x041e]);
    expect(image.efi?.imageOffset).toBe(rom.length - pe.length);
    const dv = new DataView(rom.buffer);
    expect(dv.getUint16(0x1c + 8, true)).toBe(0x1c);
    expect([...rom.subarray(0x38, 0x40)]).toEqual([0x12, 0x04, 0x16, 0x04, 0x1e, 0x04, 0, 0]);
  });

  it('writes a PCI 2.3 structure with pci23', () => {
    const rom = buildOptionRom({ pci23: true, images: [{ pe, vendorId: 0x8086, deviceId: 0x0412 }] });
    const image = parseOptionRom(rom).images[0]!;
    expect([image.pcirRevision, image.pcirLength]).toEqual([0, 24]);
    expect(sha(optionRomPeBytes(rom, image))).toBe(sha(pe));
  });

  it('chains images, marks only the last, and honours noLast and revision', () => {
    const policy = read('roms/alderlake-n-n150-vfio-igd.rom').subarray(184_320 + 128);
    const rom = buildOptionRom({
      images: [
        { pe, vendorId: 0x8086, deviceId: 0xffff, revision: 0x0102 },
        { pe: policy, vendorId: 0x8086, deviceId: 0xffff },
      ],
    });
    const info = parseOptionRom(rom);
    expect(info.images.map((i) => [i.lastImage, i.codeRevision])).toEqual([
      [false, 0x0102],
      [true, 0],
    ]);
    const open = buildOptionRom({ noLast: true, images: [{ pe, vendorId: 0x8086, deviceId: 0xffff }] });
    expect(errorCodeOf(() => parseOptionRom(open))).toBe('E_ROM_CHAIN_UNTERMINATED');
  });

  it('property: any valid ids, classes, revisions and chains parse back to the same fields and PE bytes', () => {
    const drivers = [pe, read('roms/alderlake-n-n150-vfio-igd.rom').subarray(184_320 + 128)];
    const imageArb = fc.record({
      driver: fc.nat(drivers.length - 1),
      vendorId: fc.nat(0xffff),
      deviceIds: fc.uniqueArray(fc.integer({ min: 1, max: 0xffff }), { minLength: 1, maxLength: 4 }),
      classCode: fc.nat(0xff_ffff),
      revision: fc.nat(0xffff),
    });
    fc.assert(
      fc.property(fc.array(imageArb, { minLength: 1, maxLength: 3 }), fc.boolean(), (specs, pci23Wanted) => {
        const pci23 = pci23Wanted && specs.every((s) => s.deviceIds.length === 1);
        const images = specs.map((s) => ({
          pe: drivers[s.driver] as Uint8Array,
          vendorId: s.vendorId,
          deviceId: s.deviceIds[0] as number,
          deviceIds: s.deviceIds,
          classCode: s.classCode,
          revision: s.revision,
        }));
        const rom = buildOptionRom({ pci23, images });
        const info = parseOptionRom(rom);
        expect(info.trailingBytes).toBe(0);
        expect(
          info.images.map((image) => ({
            vendorId: image.vendorId,
            deviceId: image.deviceId,
            deviceList: image.deviceList,
            classCode: image.classCode,
            revision: image.codeRevision,
            last: image.lastImage,
            pcirRevision: image.pcirRevision,
            pe: sha(optionRomPeBytes(rom, image)),
          })),
        ).toEqual(
          images.map((input, i) => ({
            vendorId: input.vendorId,
            deviceId: input.deviceId,
            deviceList: input.deviceIds.length > 1 ? input.deviceIds : [],
            classCode: input.classCode,
            revision: input.revision,
            last: i === images.length - 1,
            pcirRevision: pci23 ? 0 : 3,
            pe: sha(input.pe),
          })),
        );
      }),
      { numRuns: 150 },
    );
  });

  it.each([
    ['no images', { images: [] }, 'TypeError'],
    ['vendor id out of range', { images: [{ pe, vendorId: 0x1_0000, deviceId: 1 }] }, 'TypeError'],
    ['fractional device id', { images: [{ pe, vendorId: 0x8086, deviceId: 1.5 }] }, 'TypeError'],
    [
      'class code out of range',
      { images: [{ pe, vendorId: 0x8086, deviceId: 1, classCode: 0x100_0000 }] },
      'TypeError',
    ],
    [
      'device list not starting with deviceId',
      { images: [{ pe, vendorId: 0x8086, deviceId: 1, deviceIds: [2, 1] }] },
      'TypeError',
    ],
    [
      'device list with pci23',
      { pci23: true, images: [{ pe, vendorId: 0x8086, deviceId: 1, deviceIds: [1, 2] }] },
      'TypeError',
    ],
    ['not a PE', { images: [{ pe: new Uint8Array(100), vendorId: 0x8086, deviceId: 1 }] }, 'E_INPUT_NOT_PE'],
    [
      'compressedPe without compress',
      { images: [{ pe, vendorId: 0x8086, deviceId: 1, compressedPe: new Uint8Array(8) }] },
      'TypeError',
    ],
    [
      'compressedPe for another size',
      {
        images: [
          {
            pe,
            vendorId: 0x8086,
            deviceId: 1,
            compress: true,
            compressedPe: new Uint8Array([0, 0, 0, 0, 1, 0, 0, 0]),
          },
        ],
      },
      'E_INPUT_BAD_COMPRESSED_PE',
    ],
    [
      'compressedPe shorter than its CompSize',
      {
        images: [
          {
            pe,
            vendorId: 0x8086,
            deviceId: 1,
            compress: true,
            compressedPe: new Uint8Array([0xff, 0, 0, 0, 0xa0, 0xb4, 0, 0]),
          },
        ],
      },
      'E_INPUT_BAD_COMPRESSED_PE',
    ],
  ])('%s -> %s', (_name, options, code) => {
    expect(errorCodeOf(() => buildOptionRom(options as Parameters<typeof buildOptionRom>[0]))).toBe(code);
  });

  it('compressed images round-trip through compressEfi/decompressEfi', () => {
    const rom = buildOptionRom({ images: [{ pe, vendorId: 0x8086, deviceId: 0x0412, compress: true }] });
    const image = parseOptionRom(rom).images[0]!;
    expect(image.efi?.compressed).toBe(true);
    expect(image.efi?.imageOffset).toBe(56);
    expect(sha(optionRomPeBytes(rom, image))).toBe(sha(pe));
  });
});

// Byte-for-byte comparison with EDK2's EfiRom, when EFIROM points to a built binary
// (make -C BaseTools/Source/C Common EfiRom). Skipped otherwise.
const efiRom = process.env['EFIROM'];
describe.skipIf(efiRom === undefined || efiRom === '')(
  'buildOptionRom is byte-identical to EfiRom (skipped: set EFIROM=<path to EfiRom> to run)',
  () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'efirom-compare-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    const run = (args: string[], out: string): Uint8Array => {
      const result = spawnSync(efiRom as string, [...args, '-o', out], { encoding: 'utf8' });
      expect(result.status, result.stderr).toBe(0);
      return new Uint8Array(readFileSync(out));
    };

    for (const file of gopFiles) {
      it(`${file} uncompressed, class 0x030000`, () => {
        const input = path.join(corpus, 'gop', file);
        const theirs = run(
          ['-f', '0x8086', '-i', '0x3e9b', '-l', '0x030000', '-e', input],
          path.join(dir, `${file}.rom`),
        );
        const ours = buildOptionRom({
          images: [{ pe: read(`gop/${file}`), vendorId: 0x8086, deviceId: 0x3e9b, classCode: 0x03_0000 }],
        });
        expect(sha(ours)).toBe(sha(theirs));
      });
      it(`${file} compressed (-ec)`, () => {
        const input = path.join(corpus, 'gop', file);
        const theirs = run(['-f', '0x8086', '-i', '0x3e9b', '-ec', input], path.join(dir, `${file}.ec.rom`));
        const ours = buildOptionRom({
          images: [{ pe: read(`gop/${file}`), vendorId: 0x8086, deviceId: 0x3e9b, compress: true }],
        });
        expect(sha(ours)).toBe(sha(theirs));
      });
    }

    // The compressed layout (pad after the data, CompressionType 1, offset 56), checked with
    // EfiRom's own compressed bytes so it does not depend on our compressor.
    for (const file of gopFiles) {
      it(`${file} -ec layout with EfiRom's compressed bytes`, () => {
        const input = path.join(corpus, 'gop', file);
        const theirs = run(
          ['-f', '0x8086', '-i', '0x3e9b', '-ec', input],
          path.join(dir, `${file}.ec-layout.rom`),
        );
        const compressedPe = theirs.subarray(56);
        const ours = buildOptionRom({
          images: [
            { pe: read(`gop/${file}`), vendorId: 0x8086, deviceId: 0x3e9b, compress: true, compressedPe },
          ],
        });
        expect(sha(ours)).toBe(sha(theirs));
      });
    }

    it('EfiRom -ec images give back the exact driver through optionRomPeBytes', () => {
      for (const file of gopFiles) {
        const theirs = run(
          ['-f', '0x8086', '-i', '0x3e9b', '-ec', path.join(corpus, 'gop', file)],
          path.join(dir, `${file}.dec.rom`),
        );
        const image = parseOptionRom(theirs).images[0]!;
        expect(image.efi?.compressed).toBe(true);
        expect(sha(optionRomPeBytes(theirs, image)), file).toBe(sha(read(`gop/${file}`)));
      }
    });

    it('a three-image chain with a device list and a code revision', () => {
      const gop = path.join(corpus, 'gop/cometlake-mrchromebox-cml.efi');
      const hsw = path.join(corpus, 'gop/haswell-broadwell-mrchromebox-hsw.efi');
      const theirs = run(
        ['-f', '0x8086', '-i', '0x9bc8', '0x9bc5', '-r', '0x0007', '-e', gop, hsw, gop],
        path.join(dir, 'chain.rom'),
      );
      // EfiRom applies -r (and -l) to the next file only, then resets it to 0.
      const image = (p: string, revision: number) => ({
        pe: new Uint8Array(readFileSync(p)),
        vendorId: 0x8086,
        deviceId: 0x9bc8,
        deviceIds: [0x9bc8, 0x9bc5],
        revision,
      });
      const ours = buildOptionRom({ images: [image(gop, 7), image(hsw, 0), image(gop, 0)] });
      expect(sha(ours)).toBe(sha(theirs));
    });

    it('PCI 2.3 layout (-p)', () => {
      const gop = path.join(corpus, 'gop/tigerlake-mrchromebox-tgl.efi');
      const theirs = run(['-p', '-f', '0x8086', '-i', '0x9a49', '-e', gop], path.join(dir, 'pci23.rom'));
      const ours = buildOptionRom({
        pci23: true,
        images: [{ pe: read('gop/tigerlake-mrchromebox-tgl.efi'), vendorId: 0x8086, deviceId: 0x9a49 }],
      });
      expect(sha(ours)).toBe(sha(theirs));
    });
  },
);
