// The vBIOS ROM's part of the cache key, without loading the ROM parser or builder (a
// warm run needs only this).
import { sha256 } from '../core/digest.js';

/**
 * Bumped when the way a ROM is generated from a GOP changes (part of the cache key).
 * 2: the ROM is the chain [IgdAssignmentDxe, PlatformGopPolicyDxe, GOP] (ROM mode).
 */
export const ROM_GENERATOR_VERSION = '2';
/**
 * Device id of a generated ROM when neither --device nor a recipe gives one. 0xFFFF is
 * what the corpus ROM alderlake-n-n150-vfio-igd.rom (a GOP ROM used for IGD passthrough in
 * practice) carries; a ROM passed with vfio-pci's romfile= is the device's ROM whatever its
 * PCIR device id. Give --device 8086:XXXX (lspci -n -s 00:02.0) to match the host IGD.
 */
export const DEFAULT_DEVICE_ID = 0xffff;
export const INTEL_VENDOR_ID = 0x8086;

/** The cache-key input of a user ROM. */
export function userRomKeyInput(romSha256: string): string {
  return sha256(`user-rom:${romSha256}`);
}

/** The images of a generated ROM, in chain order. */
export const GENERATED_ROM_CHAIN = ['igd-assignment', 'gop-policy', 'gop'] as const;

/**
 * The cache-key input of a generated ROM: its generator inputs. The GOP is a key input of its
 * own; the two helper drivers are outputs of the same EDK2 build, so they are functions of the
 * key's source, overlay, builder-image and flags inputs (test/reproducible.int.test.ts shows
 * the build is byte-reproducible) and a change to any of them changes the key.
 */
export function generatedRomKeyInput(deviceId: number): string {
  return sha256(
    `generated-rom:vendor=8086,device=${deviceId.toString(16).padStart(4, '0')},chain=${GENERATED_ROM_CHAIN.join('+')},generator=${ROM_GENERATOR_VERSION}`,
  );
}
