// PCI expansion ROM images (PCI Firmware spec 3.0, 5.1; UEFI spec 14.4.2 for EFI images).
// Owned by the GOP/VBT/ROM work; this file fixes the API others call.
import { OvmfBuildError } from '../core/errors.js';

export interface OptionRomImage {
  readonly offset: number;
  readonly vendorId: number;
  readonly deviceId: number;
  readonly classCode: number;
  /** 0 = x86 PC-AT, 1 = Open Firmware, 2 = PA-RISC, 3 = EFI */
  readonly codeType: number;
  readonly codeTypeName: string;
  readonly imageLengthInBytes: number;
  readonly lastImage: boolean;
  readonly pcirRevision: number;
  readonly sha256: string;
  /** Present for EFI images. */
  readonly efi: {
    readonly subsystem: number;
    readonly machine: number;
    readonly compressed: boolean;
    readonly imageOffset: number;
    readonly initSizeInBytes: number;
  } | null;
}

export interface OptionRomInfo {
  readonly images: readonly OptionRomImage[];
  readonly sizeInBytes: number;
}

/** True when the bytes start with 0x55AA and a PCIR structure. Never throws. */
export function looksLikeOptionRom(bytes: Uint8Array): boolean {
  return bytes.length >= 0x1c && bytes[0] === 0x55 && bytes[1] === 0xaa;
}

/** Parses the image chain; throws FormatError (E_ROM_*). */
export function parseOptionRom(_bytes: Uint8Array): OptionRomInfo {
  throw new OvmfBuildError('E_NOT_IMPLEMENTED', 'parseOptionRom is not implemented yet');
}
