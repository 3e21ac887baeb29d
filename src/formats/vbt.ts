// Intel Video BIOS Table (VBT) header and BDB header validation. Owned by the
// GOP/VBT/ROM work; this file fixes the API others call.
import { OvmfBuildError } from '../core/errors.js';

export interface VbtInfo {
  /** Trimmed signature, e.g. "$VBT SKYLAKE". */
  readonly signature: string;
  readonly version: number;
  readonly headerSize: number;
  /** Bytes covered by the VBT (vbt_size field); the rest of a file is padding. */
  readonly vbtSize: number;
  readonly bdbOffset: number;
  readonly bdbVersion: number;
  readonly bdbHeaderSize: number;
  readonly bdbSize: number;
  readonly checksum: { readonly stored: number; readonly valid: boolean };
  readonly trailingBytes: number;
  /** sha256 of the first vbtSize bytes. */
  readonly sha256: string;
}

/** Parses and validates a VBT that starts at offset 0; throws FormatError (E_VBT_*). */
export function parseVbt(_bytes: Uint8Array): VbtInfo {
  throw new OvmfBuildError('E_NOT_IMPLEMENTED', 'parseVbt is not implemented yet');
}

/** Like parseVbt but throws FormatError E_INPUT_NOT_VBT (a user-supplied input that is not a VBT). */
export function assertVbt(_bytes: Uint8Array): VbtInfo {
  throw new OvmfBuildError('E_NOT_IMPLEMENTED', 'assertVbt is not implemented yet');
}

/** True when the bytes start with "$VBT". Never throws. */
export function looksLikeVbt(bytes: Uint8Array): boolean {
  return (
    bytes.length >= 4 && bytes[0] === 0x24 && bytes[1] === 0x56 && bytes[2] === 0x42 && bytes[3] === 0x54
  );
}
