import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { OvmfBuildError } from '../core/errors.js';
import { classifyGopDriver } from './gop.js';
import { looksLikeOptionRom, MAX_ROM_IMAGES, optionRomPeBytes, parseOptionRom } from './option-rom.js';
import { parsePeImage } from './pe-coff.js';
import { parseVbt } from './vbt.js';
import { CORPUS_DIR as corpus, loadManifest } from '../../test/corpus.js';
import { errorCodeOf } from '../../test/bytes-helpers.js';
import { cpuNow } from '../../test/cpu-time.js';

interface ImageTruth {
  offset: number;
  size_field_bytes?: number;
  vendor: string;
  device: string;
  code_type: string;
  image_length: number;
  last_image: boolean;
  pcir_revision: number;
  sha256: string;
  efi_signature?: string;
  init_size_bytes?: number;
  efi_subsystem?: string;
  efi_machine?: string;
  efi_compressed?: boolean;
  efi_image_offset?: number;
  pe?: { format: string; machine: string; subsystem: string; timestamp: number };
  pe_bytes_sha256?: string;
  pe_bytes_len?: number;
  contains_intel_gop_driver?: boolean;
  gop_build?: string | null;
  vbt_offset_in_image?: number;
  vbt_signature?: string;
}
interface Entry {
  path: string;
  kind: string;
  sha256: string;
  size: number;
  ground_truth: { images: ImageTruth[]; image_count: number };
}
const manifest = loadManifest() as unknown as { entries: Entry[] };
const roms = manifest.entries.filter((e) => e.kind === 'rom');
const read = (p: string): Uint8Array => new Uint8Array(readFileSync(path.join(corpus, p)));
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const hex4 = (n: number): string => n.toString(16).padStart(4, '0');

/** What the manifest states for one image, recomputed from our parse. */
function describeImage(
  rom: Uint8Array,
  image: ReturnType<typeof parseOptionRom>['images'][number],
  truth: ImageTruth,
): ImageTruth {
  const out: ImageTruth = {
    offset: image.offset,
    vendor: hex4(image.vendorId),
    device: hex4(image.deviceId),
    code_type: image.codeType === 0 ? 'x86 legacy (PC-AT)' : image.codeTypeName,
    image_length: image.imageLengthInBytes,
    last_image: image.lastImage,
    pcir_revision: image.pcirRevision,
    sha256: image.sha256,
  };
  if (image.legacy !== null) {
    out.size_field_bytes = image.legacy.sizeInBytes;
    if (truth.vbt_offset_in_image !== undefined && image.legacy.vbtOffset !== null) {
      out.vbt_offset_in_image = image.legacy.vbtOffset;
      out.vbt_signature = parseVbt(
        rom.subarray(image.offset + image.legacy.vbtOffset, image.offset + image.imageLengthInBytes),
      ).signature;
    }
  }
  if (image.efi !== null) {
    const pe = optionRomPeBytes(rom, image);
    const summary = parsePeImage(pe);
    const gop = classifyGopDriver(pe);
    Object.assign(out, {
      efi_signature: '0xef1',
      init_size_bytes: image.efi.initSizeInBytes,
      efi_subsystem: image.efi.subsystem === 11 ? 'boot service driver' : String(image.efi.subsystem),
      efi_machine: image.efi.machine === 0x8664 ? 'x64' : String(image.efi.machine),
      efi_compressed: image.efi.compressed,
      efi_image_offset: image.efi.imageOffset,
      pe: {
        format: summary.format,
        machine: summary.machineName,
        subsystem: summary.subsystemName,
        timestamp: summary.timestamp,
      },
      pe_bytes_sha256: sha(pe),
      pe_bytes_len: pe.length,
      contains_intel_gop_driver: gop.isGop,
    });
    if (gop.isGop) out.gop_build = gop.info.build;
  }
  return out;
}

describe('parseOptionRom on every corpus roms/ file (manifest ground truth)', () => {
  it('covers the 10 roms/ files of the manifest', () => {
    expect(roms.length).toBe(10);
  });
  for (const entry of roms) {
    it(entry.path, () => {
      const rom = read(entry.path);
      expect(sha(rom)).toBe(entry.sha256);
      const info = parseOptionRom(rom);
      expect(info.images.length).toBe(entry.ground_truth.image_count);
      expect(info.sizeInBytes).toBe(entry.size);
      expect(info.trailingBytes).toBe(0);
      expect(looksLikeOptionRom(rom)).toBe(true);
      info.images.forEach((image, i) => {
        const truth = entry.ground_truth.images[i] as ImageTruth;
        expect(describeImage(rom, image, truth)).toEqual(truth);
      });
    });
  }

  it('reads the PCI 3.0 device list of the legacy Intel VBIOS and the iPXE ROM', () => {
    const vbios = parseOptionRom(read('roms/haswell-devid-0406-legacy-vbios.rom')).images[0];
    expect(vbios?.deviceList.slice(0, 3)).toEqual([0x3e90, 0x3e91, 0x3e92]);
    expect(vbios?.deviceList.length).toBe(20);
    expect(vbios?.classCode).toBe(0x03_0000);
    const ipxe = parseOptionRom(read('roms/ipxe-efi-e1000.rom')).images[0];
    expect(ipxe?.deviceList).toEqual([0x100e]);
  });

  it('parses at a non-zero byteOffset', () => {
    const rom = read('roms/raptorlake-s-2in1-gangqizai.rom');
    const big = new Uint8Array(rom.length + 0x203);
    big.set(rom, 0x203);
    const view = big.subarray(0x203);
    expect(parseOptionRom(view)).toEqual(parseOptionRom(rom));
    const image = parseOptionRom(view).images[1];
    expect(image && sha(optionRomPeBytes(view, image))).toBe(
      'ed99b106f34e5875d1605bb8dfc3bde5df9e94a6948b684b616ceed0c2274f75',
    );
  });

  it('classifies the helper drivers of the Alder Lake-N chain as non-GOPs', () => {
    const rom = read('roms/alderlake-n-n150-vfio-igd.rom');
    const [, igd, policy] = parseOptionRom(rom).images;
    for (const image of [igd, policy]) {
      const result = classifyGopDriver(optionRomPeBytes(rom, image!));
      expect(result.isGop).toBe(false);
      expect(result.isGop ? '' : result.reason).toMatch(
        /^x64 EFI boot-service driver of \d+ bytes without the UTF-16LE "Intel\(R\) GOP Driver" string/,
      );
    }
  });

  it('refuses PE bytes of a legacy image', () => {
    const rom = read('roms/seabios-vgabios-qxl.bin');
    const image = parseOptionRom(rom).images[0]!;
    expect(errorCodeOf(() => optionRomPeBytes(rom, image))).toBe('E_ROM_NOT_EFI');
  });
});

describe('parseOptionRom rejects malformed chains with exact codes (regression fixtures)', () => {
  const base = (): Uint8Array => new Uint8Array(read('roms/gen12-gop-gangqizai.rom').subarray(0, 0x1000));
  /** A minimal valid single EFI image of 0x400 bytes to mutate. */
  const tiny = (): Uint8Array => {
    const b = base().subarray(0, 0x400);
    const dv = new DataView(b.buffer, b.byteOffset);
    dv.setUint16(2, 2, true);
    dv.setUint16(0x1c + 16, 2, true);
    dv.setUint16(0x16, 0x38, true);
    return b;
  };
  const mutate = (fn: (dv: DataView, b: Uint8Array) => void, b = tiny()): Uint8Array => {
    fn(new DataView(b.buffer, b.byteOffset, b.byteLength), b);
    return b;
  };
  it('the fixture itself parses', () => {
    expect(parseOptionRom(tiny()).images.length).toBe(1);
  });
  it.each([
    ['too short', tiny().subarray(0, 8), 'E_ROM_TRUNCATED'],
    ['no 55AA', mutate((_dv, b) => (b[0] = 0)), 'E_ROM_BAD_SIGNATURE'],
    ['PCIR offset past the end', mutate((dv) => dv.setUint16(0x18, 0xfff0, true)), 'E_ROM_BAD_PCIR_OFFSET'],
    ['PCIR offset inside the header', mutate((dv) => dv.setUint16(0x18, 4, true)), 'E_ROM_BAD_PCIR_OFFSET'],
    ['bad PCIR signature', mutate((_dv, b) => (b[0x1c] = 0x51)), 'E_ROM_BAD_PCIR_SIGNATURE'],
    ['zero image length', mutate((dv) => dv.setUint16(0x1c + 16, 0, true)), 'E_ROM_BAD_IMAGE_LENGTH'],
    [
      'image length past the end',
      mutate((dv) => dv.setUint16(0x1c + 16, 0xffff, true)),
      'E_ROM_BAD_IMAGE_LENGTH',
    ],
    ['PCIR length too small', mutate((dv) => dv.setUint16(0x1c + 10, 4, true)), 'E_ROM_BAD_PCIR_LENGTH'],
    ['bad EFI signature', mutate((dv) => dv.setUint32(4, 0x1234, true)), 'E_ROM_BAD_EFI_SIGNATURE'],
    ['reserved compression type', mutate((dv) => dv.setUint16(0x0c, 7, true)), 'E_ROM_BAD_COMPRESSION_TYPE'],
    [
      'EFI image offset past the image',
      mutate((dv) => dv.setUint16(0x16, 0x400, true)),
      'E_ROM_BAD_EFI_IMAGE_OFFSET',
    ],
    ['init size past the image', mutate((dv) => dv.setUint16(2, 9, true)), 'E_ROM_BAD_INIT_SIZE'],
    [
      'device list without terminator',
      mutate((dv, b) => {
        dv.setUint16(0x1c + 8, 0x1c, true);
        b.fill(0x11, 0x38);
      }),
      'E_ROM_BAD_DEVICE_LIST',
    ],
    ['chain without last image', mutate((_dv, b) => (b[0x1c + 21] = 0)), 'E_ROM_CHAIN_UNTERMINATED'],
  ])('%s -> %s', (_name, bytes, code) => {
    expect(errorCodeOf(() => parseOptionRom(bytes))).toBe(code);
  });

  it('bounds the number of chained images', () => {
    const one = mutate((_dv, b) => (b[0x1c + 21] = 0));
    const chain = new Uint8Array(one.length * (MAX_ROM_IMAGES + 1));
    for (let i = 0; i <= MAX_ROM_IMAGES; i++) chain.set(one, i * one.length);
    expect(errorCodeOf(() => parseOptionRom(chain))).toBe('E_ROM_TOO_MANY_IMAGES');
  });

  it('says what, where and why', () => {
    try {
      parseOptionRom(mutate((dv) => dv.setUint16(0x1c + 16, 0xffff, true)));
      expect.unreachable();
    } catch (error) {
      expect((error as Error).message).toBe(
        'image 0 at 0x0: PCIR ImageLength at 0x2c claims 0x1fffe00 bytes, 0x400 remain in the 0x400-byte ROM',
      );
    }
  });

  it('fuzz: mutated ROM headers parse or throw E_ROM_*, quickly', () => {
    const seed = read('roms/ipxe-efi-e1000.rom');
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(fc.oneof(fc.nat(0x60), fc.integer({ min: 75_264, max: 75_264 + 0x60 })), fc.nat(255)),
          { maxLength: 12 },
        ),
        (edits) => {
          const bytes = new Uint8Array(seed);
          for (const [at, value] of edits) bytes[at] = value;
          const started = cpuNow();
          try {
            parseOptionRom(bytes);
          } catch (error) {
            expect((error as OvmfBuildError).code).toMatch(/^E_ROM_/);
          }
          // Generous: catches runaway loops, not scheduling noise on a shared machine.
          expect(cpuNow() - started).toBeLessThan(500);
        },
      ),
      { numRuns: 300 },
    );
  });
});
