// PCI option ROM generation: a TypeScript equivalent of EDK2's EfiRom
// (BaseTools/Source/C/EfiRom/EfiRom.c, ProcessEfiFile), byte for byte. Per EFI image:
//   EFI_PCI_EXPANSION_ROM_HEADER (26 bytes) + 2 zero bytes so the PCIR is 4-byte aligned,
//   PCI_3_0_DATA_STRUCTURE (28 bytes; PCI_DATA_STRUCTURE, 24 bytes, with pci23),
//   the device id list + 0 terminator when more than one device id is given,
//   then the PE image. The image is padded with 0xFF to a multiple of 512 bytes: before
//   an uncompressed PE (so EfiImageHeaderOffset moves and the PE ends with the image),
//   after a compressed one. EfiRom writes no checksum byte for EFI images (only for
//   legacy binaries, -b), so neither does this.
import { FormatError, OvmfBuildError } from '../core/errors.js';
import { hex } from '../core/hex.js';
import { compressEfi } from './compression/index.js';
import { EFI_ROM_HEADER_SIZE, PCIR_3_0_LENGTH, PCIR_MIN_LENGTH, ROM_BLOCK_SIZE } from './option-rom.js';
import { parsePeImage } from './pe-coff.js';

export interface OptionRomImageInput {
  /** The PE32/PE32+ EFI driver (TE images are not accepted, as in EfiRom's CheckPE32File). */
  readonly pe: Uint8Array;
  readonly vendorId: number;
  /** PCIR DeviceId (EfiRom: the first -i value). */
  readonly deviceId: number;
  /**
   * Every device id the image supports (EfiRom: all -i values). With more than one, the
   * PCI 3.0 device list after the PCIR holds all of them; the first must equal deviceId.
   * @default [deviceId]
   */
  readonly deviceIds?: readonly number[];
  /**
   * 24-bit PCI class code (EfiRom -l), e.g. 0x030000 for a VGA controller.
   * @default 0
   */
  readonly classCode?: number;
  /**
   * Compress the PE with EFI 1.1 compression (EfiRom -ec).
   * @default false
   */
  readonly compress?: boolean;
  /**
   * The EFI 1.1-compressed form of `pe`, when it was compressed elsewhere (for instance
   * taken from an EfiRom -ec image); used instead of running compressEfi. Only with
   * `compress: true`; its header (CompSize, OrigSize) must describe `pe`.
   */
  readonly compressedPe?: Uint8Array;
  /**
   * PCIR CodeRevision (EfiRom -r).
   * @default 0
   */
  readonly revision?: number;
}

export interface BuildOptionRomOptions {
  readonly images: readonly OptionRomImageInput[];
  /**
   * Write the PCI 2.3 data structure (24 bytes, revision 0) instead of PCI 3.0 (EfiRom -p).
   * @default false
   */
  readonly pci23?: boolean;
  /**
   * Leave the last-image indicator clear on the final image (EfiRom -n), for ROMs that
   * are concatenated with more images later.
   * @default false
   */
  readonly noLast?: boolean;
}

/** EfiRom MAX_OPTION_ROM_SIZE: 16 MiB per image and in total. */
export const MAX_OPTION_ROM_SIZE = 16 * 1024 * 1024;

function checkInteger(name: string, value: unknown, max: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
    throw new TypeError(`Expected \`${name}\` to be an integer in 0..${hex(max)}, got \`${String(value)}\``);
  }
}

/** EFI 1.1 compressed data starts with CompSize u32 and OrigSize u32 (UEFI spec 19.2). */
function checkCompressed(input: OptionRomImageInput, index: number): Uint8Array {
  const data = input.compressedPe as Uint8Array;
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const compSize = data.length >= 8 ? dv.getUint32(0, true) : -1;
  const origSize = data.length >= 8 ? dv.getUint32(4, true) : -1;
  if (compSize < 0 || compSize + 8 > data.length || origSize !== input.pe.length) {
    throw new FormatError(
      'E_INPUT_BAD_COMPRESSED_PE',
      `image ${index}: compressedPe header claims CompSize ${compSize} and OrigSize ${origSize}; expected CompSize + 8 <= ${data.length} and OrigSize ${input.pe.length}`,
      { index, compSize, origSize, sizeInBytes: data.length },
    );
  }
  return data.subarray(0, compSize + 8);
}

function buildImage(input: OptionRomImageInput, index: number, last: boolean, pci23: boolean): Uint8Array {
  checkInteger(`images[${index}].vendorId`, input.vendorId, 0xffff);
  checkInteger(`images[${index}].deviceId`, input.deviceId, 0xffff);
  const classCode = input.classCode ?? 0;
  const revision = input.revision ?? 0;
  checkInteger(`images[${index}].classCode`, classCode, 0xff_ffff);
  checkInteger(`images[${index}].revision`, revision, 0xffff);
  const deviceIds = input.deviceIds ?? [input.deviceId];
  deviceIds.forEach((id, i) => checkInteger(`images[${index}].deviceIds[${i}]`, id, 0xffff));
  if (deviceIds[0] !== input.deviceId) {
    throw new TypeError(
      `Expected \`images[${index}].deviceIds[0]\` to equal deviceId ${hex(input.deviceId)}, got \`${String(deviceIds[0])}\``,
    );
  }
  if (deviceIds.length > 1 && pci23) {
    // EfiRom: "PCI 2.3 does not support device ID list".
    throw new TypeError(`Expected one device id with \`pci23\`, got ${deviceIds.length}`);
  }
  if (deviceIds.length > 1 && deviceIds.includes(0)) {
    throw new TypeError(`Expected no 0 in \`images[${index}].deviceIds\` (0 ends the PCI 3.0 device list)`);
  }

  let pe;
  try {
    pe = parsePeImage(input.pe);
  } catch (error) {
    throw new FormatError(
      'E_INPUT_NOT_PE',
      `image ${index}: the EFI driver is not a PE/COFF image`,
      { index },
      { cause: error },
    );
  }
  if (pe.format === 'TE') {
    throw new FormatError(
      'E_INPUT_NOT_PE',
      `image ${index}: a TE image cannot go into an option ROM; give the PE32 driver`,
      {
        index,
      },
    );
  }

  const compress = input.compress ?? false;
  const payload = compress
    ? input.compressedPe === undefined
      ? compressEfi(input.pe)
      : checkCompressed(input, index)
    : input.pe;
  if (!compress && input.compressedPe !== undefined) {
    throw new TypeError(`Expected \`images[${index}].compress\` to be true when \`compressedPe\` is given`);
  }
  if (compress && payload.length > input.pe.length) {
    // EfiRom compresses into a buffer the size of the input and fails when it does not fit.
    throw new OvmfBuildError(
      'E_INPUT_COMPRESSION_GREW',
      `image ${index}: EFI compression made the ${input.pe.length}-byte driver larger (${payload.length} bytes); build it uncompressed`,
      { index, sizeInBytes: input.pe.length, compressedSizeInBytes: payload.length },
    );
  }
  const headerPad = (4 - (EFI_ROM_HEADER_SIZE & 3)) & 3;
  const pcirOffset = EFI_ROM_HEADER_SIZE + headerPad;
  const pcirLength = pci23 ? PCIR_MIN_LENGTH : PCIR_3_0_LENGTH;
  const deviceListSize = deviceIds.length > 1 ? (deviceIds.length + 1) * 2 : 0;
  const headerSize = pcirLength + headerPad + deviceListSize + EFI_ROM_HEADER_SIZE;
  const unpadded = payload.length + headerSize;
  const total = Math.ceil(unpadded / ROM_BLOCK_SIZE) * ROM_BLOCK_SIZE;
  if (total > MAX_OPTION_ROM_SIZE) {
    throw new OvmfBuildError(
      'E_INPUT_ROM_TOO_LARGE',
      `image ${index} would be ${hex(total)} bytes, more than the ${hex(MAX_OPTION_ROM_SIZE)}-byte option ROM limit`,
      { index, sizeInBytes: total },
    );
  }
  const padBefore = compress ? 0 : total - unpadded;

  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  // EFI_PCI_EXPANSION_ROM_HEADER (UEFI spec 14.4.2, EfiPci.h).
  dv.setUint16(0, 0xaa55, true);
  dv.setUint16(2, total / ROM_BLOCK_SIZE, true);
  dv.setUint32(4, 0x0ef1, true);
  dv.setUint16(8, pe.subsystem, true);
  dv.setUint16(10, pe.machine, true);
  dv.setUint16(12, compress ? 1 : 0, true);
  dv.setUint16(22, headerSize + padBefore, true);
  dv.setUint16(24, pcirOffset, true);
  // PCI_DATA_STRUCTURE / PCI_3_0_DATA_STRUCTURE (PCI Firmware spec 3.0, 5.1.2).
  const p = pcirOffset;
  dv.setUint32(p, 0x5249_4350, true); // "PCIR"
  dv.setUint16(p + 4, input.vendorId, true);
  dv.setUint16(p + 6, input.deviceId, true);
  if (!pci23 && deviceIds.length > 1) dv.setUint16(p + 8, PCIR_3_0_LENGTH, true);
  dv.setUint16(p + 10, pcirLength, true);
  out[p + 12] = pci23 ? 0 : 3;
  out[p + 13] = classCode & 0xff;
  out[p + 14] = (classCode >> 8) & 0xff;
  out[p + 15] = (classCode >> 16) & 0xff;
  dv.setUint16(p + 16, total / ROM_BLOCK_SIZE, true);
  dv.setUint16(p + 18, revision, true);
  out[p + 20] = 3; // PCI_CODE_TYPE_EFI_IMAGE
  out[p + 21] = last ? 0x80 : 0;
  if (deviceListSize > 0) {
    deviceIds.forEach((id, i) => dv.setUint16(p + pcirLength + i * 2, id, true));
  }
  // 0xFF padding: before an uncompressed image, after a compressed one (EfiRom's "Workaround").
  out.fill(0xff, headerSize, headerSize + padBefore);
  out.set(payload, headerSize + padBefore);
  out.fill(0xff, headerSize + padBefore + payload.length);
  return out;
}

/**
 * Builds a PCI option ROM from EFI drivers, laid out exactly as EDK2's EfiRom does
 * (`EfiRom -f <vendor> -i <device> [-l <class>] [-r <rev>] -e|-ec <driver>...`).
 * Throws TypeError for bad arguments, FormatError E_INPUT_NOT_PE for a driver that
 * is not a PE image, E_INPUT_TOO_LARGE past 16 MiB.
 */
export function buildOptionRom(options: BuildOptionRomOptions): Uint8Array {
  if (!Array.isArray(options.images) || options.images.length === 0) {
    throw new TypeError(`Expected \`images\` to be a non-empty array, got \`${String(options.images)}\``);
  }
  const pci23 = options.pci23 ?? false;
  const noLast = options.noLast ?? false;
  const parts = options.images.map((input, i) =>
    buildImage(input, i, i === options.images.length - 1 && !noLast, pci23),
  );
  const total = parts.reduce((sum, part) => sum + part.length, 0);
  if (total > MAX_OPTION_ROM_SIZE) {
    throw new OvmfBuildError(
      'E_INPUT_ROM_TOO_LARGE',
      `the option ROM would be ${hex(total)} bytes, more than ${hex(MAX_OPTION_ROM_SIZE)}`,
      {
        sizeInBytes: total,
      },
    );
  }
  const rom = new Uint8Array(total);
  let at = 0;
  for (const part of parts) {
    rom.set(part, at);
    at += part.length;
  }
  return rom;
}
