// PE/COFF and TE image summary (Microsoft PE/COFF spec; PI spec vol. 1, 15 for TE).
// Owned by the GOP/VBT/ROM work; this file fixes the API others call.
import { OvmfBuildError } from '../core/errors.js';

export interface PeSectionSummary {
  readonly name: string;
  readonly virtualSize: number;
  readonly virtualAddress: number;
  readonly rawSize: number;
  readonly rawOffset: number;
}

export interface PeImageSummary {
  readonly format: 'PE32' | 'PE32+' | 'TE';
  readonly machine: number;
  /** 'x64' | 'ia32' | 'aarch64' | 'arm' | 'ebc' | 'riscv64' | 'unknown(0x...)' */
  readonly machineName: string;
  readonly subsystem: number;
  /** 'EFI_APPLICATION' | 'EFI_BOOT_SERVICE_DRIVER' | 'EFI_RUNTIME_DRIVER' | 'EFI_ROM' | ... */
  readonly subsystemName: string;
  readonly timestamp: number;
  readonly sizeOfImage: number;
  readonly entryPoint: number;
  readonly sections: readonly PeSectionSummary[];
}

/** True when the bytes start with an MZ/PE or TE header that parses. Never throws. */
export function looksLikePe(_bytes: Uint8Array): boolean {
  return false;
}

/** Parses the headers; throws FormatError (E_PE_*) on malformed input. */
export function parsePeImage(_bytes: Uint8Array): PeImageSummary {
  throw new OvmfBuildError('E_NOT_IMPLEMENTED', 'parsePeImage is not implemented yet');
}
