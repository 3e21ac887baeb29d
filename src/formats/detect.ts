// What kind of file is this? Decided from the bytes, cheapest test first.
import { capsuleKindOf } from './capsule.js';
import { nextVolumeCandidate } from './firmware-volume.js';
import { findFlashDescriptorSignature } from './flash-descriptor.js';
import { looksLikeBpdt } from './ifwi.js';
import { looksLikeOptionRom } from './option-rom.js';
import { looksLikePe } from './pe-coff.js';
import { findDellPfsSections, isDellPfsVolume } from './pfs.js';
import { looksLikeVbt } from './vbt.js';

export type FileKind = 'capsule' | 'dell-pfs' | 'image' | 'option-rom' | 'pe' | 'vbt' | 'unknown';

/**
 * Detects the kind of a file: a capsule (a known GUID, or an EFI_CAPSULE_HEADER whose sizes fit
 * the file), a Dell PFS volume ("PFS.HDR."), a PCI option ROM (0x55AA + PCIR), a PE/TE image,
 * a VBT ("$VBT"), an Intel flash descriptor or BPDT image, any bytes that hold a firmware
 * volume, or bytes holding Dell PFS zlib sections. Never throws. Whether a PE is a GOP driver
 * is for classifyGopDriver; a PE that carries PFS sections (Dell's updater .exe) stays 'pe'.
 */
export function detectFileKind(bytes: Uint8Array): FileKind {
  if (capsuleKindOf(bytes) !== null) return 'capsule';
  if (isDellPfsVolume(bytes)) return 'dell-pfs';
  if (looksLikeOptionRom(bytes)) return 'option-rom';
  if (looksLikePe(bytes)) return 'pe';
  if (looksLikeVbt(bytes)) return 'vbt';
  if (findFlashDescriptorSignature(bytes) >= 0 || looksLikeBpdt(bytes, 0)) return 'image';
  if (nextVolumeCandidate(bytes) >= 0) return 'image';
  if (findDellPfsSections(bytes, 1).length > 0) return 'dell-pfs';
  return 'unknown';
}
