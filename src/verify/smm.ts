// Whether an OVMF code image is an SMM_REQUIRE build (OVMF's secure boot builds are). QEMU must
// boot such a build with smm=on and a secure varstore flash (OvmfPkg/README "SMM support");
// booted without, its PlatformPei stops at an ASSERT before DXE. Such a build carries the SMM
// core (MdeModulePkg/Core/PiSmmCore/PiSmmCore.inf), which no other OVMF does.
import { listFiles, parseFirmware } from '../formats/firmware-tree.js';

export const PI_SMM_CORE_FILE_GUID = 'E94F54CD-81EB-47ED-AEC3-856F5DC157A9';

/** True when the image holds the SMM core; false for any other image, or one that does not parse. */
export function requiresSmm(code: Uint8Array): boolean {
  try {
    return listFiles(parseFirmware(code)).some((file) => file.guid === PI_SMM_CORE_FILE_GUID);
  } catch {
    return false;
  }
}
