// Intel GOP driver recognition. Owned by the GOP/VBT/ROM work; this file fixes the API.
import { OvmfBuildError } from '../core/errors.js';
import type { PeImageSummary } from './pe-coff.js';

export interface GopDriverInfo {
  /** The digits stored (UTF-16) after the "Intel(R) GOP Driver" string, e.g. "1034". */
  readonly build: string | null;
  readonly sha256: string;
  readonly sizeInBytes: number;
  readonly pe: PeImageSummary;
}

export type GopClassification =
  | { readonly isGop: true; readonly info: GopDriverInfo }
  | { readonly isGop: false; readonly reason: string; readonly pe: PeImageSummary | null };

/**
 * A real Intel GOP is an x64 EFI boot-service driver carrying the UTF-16 string
 * "Intel(R) GOP Driver". Never throws.
 */
export function classifyGopDriver(_bytes: Uint8Array): GopClassification {
  return { isGop: false, reason: 'not implemented yet', pe: null };
}

/** Like classifyGopDriver but throws FormatError E_INPUT_NOT_GOP with the reason. */
export function assertGopDriver(_bytes: Uint8Array): GopDriverInfo {
  throw new OvmfBuildError('E_NOT_IMPLEMENTED', 'assertGopDriver is not implemented yet');
}
