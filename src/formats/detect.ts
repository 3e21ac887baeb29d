// What kind of file is this? Decided from the bytes, cheapest test first.
import { capsuleKindOf } from './capsule.js';
import { nextVolumeCandidate } from './firmware-volume.js';
import { findFlashDescriptorSignature } from './flash-descriptor.js';
import { looksLikeBpdt } from './ifwi.js';
import { looksLikeOptionRom } from './option-rom.js';
import { looksLikePe } from './pe-coff.js';
import { looksLikeVbt } from './vbt.js';

export type FileKind = 'capsule' | 'image' | 'option-rom' | 'pe' | 'vbt' | 'unknown';

/**
 * Detects the kind of a file: a capsule GUID, a PCI option ROM (0x55AA + PCIR), a PE/TE
 * image, a VBT ("$VBT"), an Intel flash descriptor or BPDT image, or any bytes that hold a
 * firmware volume. Never throws. Whether a PE is a GOP driver is for classifyGopDriver.
 */
export function detectFileKind(bytes: Uint8Array): FileKind {
  if (capsuleKindOf(bytes) !== null) return 'capsule';
  if (looksLikeOptionRom(bytes)) return 'option-rom';
  if (looksLikePe(bytes)) return 'pe';
  if (looksLikeVbt(bytes)) return 'vbt';
  if (findFlashDescriptorSignature(bytes) >= 0 || looksLikeBpdt(bytes, 0)) return 'image';
  if (nextVolumeCandidate(bytes) >= 0) return 'image';
  return 'unknown';
}
