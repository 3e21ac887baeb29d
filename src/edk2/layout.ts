// Where our overlay package and the user's binaries sit inside the EDK2 workspace,
// and the GUIDs the verification looks for. Paths are relative to the workspace root.

export const OVERLAY_PACKAGE = 'OvmfGopPkg';

/** Binary INF of the Intel GOP driver; the user's .efi goes next to it. */
export const GOP_INF = 'OvmfGopPkg/IntelGopDriver/IntelGopDriver.inf';
export const GOP_EFI = 'OvmfGopPkg/IntelGopDriver/IntelGopDriver.efi';
/** The VBT bytes, referenced by the FDF FILE FREEFORM statement. */
export const VBT_BIN = 'OvmfGopPkg/Vbt/Vbt.bin';
export const POLICY_INF = 'OvmfGopPkg/PlatformGopPolicyDxe/PlatformGopPolicyDxe.inf';
/** Our IGD assignment driver (OpRegion, stolen memory), linked into OVMF and put in ROMs. */
export const IGD_ASSIGNMENT_INF = 'OvmfGopPkg/IgdAssignmentDxe/IgdAssignmentDxe.inf';
/** Hands the IGD volume (GOP and VBT, outside the compressed DXE volume) to the DXE dispatcher. */
export const IGD_VOLUME_DXE_INF = 'OvmfGopPkg/IgdVolumeDxe/IgdVolumeDxe.inf';
/** The FDF name and FvNameGuid (gOvmfGopIgdVolumeGuid) of the volume holding the GOP driver and the VBT. */
export const IGD_VOLUME_FV = 'IGDVOL';
export const IGD_VOLUME_GUID = '2A7B5C3D-9E1F-4A60-8B2C-6D4E3F1A0B9C';
/**
 * Per flash size (FD_SIZE_IN_KB): the IGD volume's region, at the start of the code (offset
 * VARS_SIZE of OVMF.fd, 0 of OVMF_CODE.fd), and FVMAIN_COMPACT's, which loses that much at its
 * start (OvmfPkgDefines.fdf.inc: VARS_SIZE 0x84000 and FVMAIN_SIZE 0x348000 at 4 MiB, 0x20000
 * and 0x1AC000 at 2 MiB). 512 KiB and 192 KiB; the largest GOP driver in the corpus is 162 KiB.
 */
export const IGD_VOLUME_SIZES = {
  4096: { varsSize: 0x84000, igdVolume: 0x80000, fvMainOffset: 0x104000, fvMain: 0x2c8000 },
  2048: { varsSize: 0x20000, igdVolume: 0x30000, fvMainOffset: 0x50000, fvMain: 0x17c000 },
} as const;
/** IGD_VOLUME_SIZES of a flash size. */
export function igdVolumeSizes(fdSize: '2MB' | '4MB'): (typeof IGD_VOLUME_SIZES)[2048 | 4096] {
  return IGD_VOLUME_SIZES[fdSize === '2MB' ? 2048 : 4096];
}
/**
 * The bytes GenFv fills at the start of the IGD volume for a GOP driver and a VBT of these sizes;
 * the rest of the volume is free space. The layout, read off a real IGDVOL.Fv (test/build.int
 * checks this sum against the volume it builds): the volume header with one block-map entry and
 * its terminator (0x48); a pad file (FFS header 24 + EFI_FIRMWARE_VOLUME_EXT_HEADER 20) that
 * holds the FvNameGuid; then each file at an 8-byte boundary. The GOP's file: FFS header 24, the
 * PE32 section (header 4 + driver), the UI section (header 4 + UTF-16 GOP_UI_NAME and its NUL)
 * and the version section (header 4, build number 2, UTF-16 "1.0" and its NUL, from the INF's
 * VERSION_STRING), each section at a 4-byte boundary. The VBT's: FFS header 24, RAW section
 * header 4 + VBT. Files under 16 MiB only (larger ones take 8 more header bytes and never fit).
 */
export function igdVolumeBytesUsed(gopBytes: number, vbtBytes: number): number {
  const align = (n: number, to: number): number => Math.ceil(n / to) * to;
  const header = 0x48;
  const nameFile = 24 + 20;
  const ui = 4 + 2 * (GOP_UI_NAME.length + 1);
  const version = 4 + 2 + 2 * ('1.0'.length + 1);
  const gopFile = 24 + align(4 + gopBytes, 4) + align(ui, 4) + version;
  const vbtFile = 24 + 4 + vbtBytes;
  return align(align(header + nameFile, 8) + gopFile, 8) + vbtFile;
}
/** Generated from containers/igd-devices.json when the overlay is staged (src/edk2/igd-device-header.ts). */
export const IGD_DEVICE_TABLE_HEADER = 'OvmfGopPkg/Include/IgdDeviceTable.h';

/** Intel's file GUIDs for the GOP driver and the VBT file, as in vendor images. */
export const GOP_FILE_GUID = '1647B4F3-3E8A-4FDD-81C8-328ED647AB1A';
export const VBT_FILE_GUID = '1647B4F3-3E8A-4FEF-81C8-328ED647AB1A';
/** FILE_GUID of our PlatformGopPolicyDxe (containers/edk2-overlay/.../PlatformGopPolicyDxe.inf). */
export const POLICY_FILE_GUID = '6FE0ECC8-FDFF-490E-A0C6-B60B3A8E98A2';
/** FILE_GUID of our IgdAssignmentDxe (containers/edk2-overlay/.../IgdAssignmentDxe.inf). */
export const IGD_ASSIGNMENT_FILE_GUID = '283B2335-ABD8-4B75-A8AA-004177A20A4B';
export const PLATFORM_GOP_POLICY_PROTOCOL_GUID = 'EC2E931B-3281-48A5-8107-DF8A8BED3C5D';
/** UI section names the FDF rules give the two drivers (MODULE_NAME = BASE_NAME). */
export const GOP_UI_NAME = 'IntelGopDriver';
export const POLICY_UI_NAME = 'PlatformGopPolicyDxe';
export const IGD_ASSIGNMENT_UI_NAME = 'IgdAssignmentDxe';
/**
 * Printed by PlatformGopPolicyDxe's GetVbtData (DEBUG builds): the VBT handed to the GOP came from
 * the IGD OpRegion (`... (mailbox 4|RVDA), <size> bytes at 0x<addr>`) or, without a valid OpRegion,
 * from the firmware volume (`... firmware volume, <size> bytes at 0x<addr>`).
 */
export const VBT_FROM_OPREGION_MARKER = 'OvmfGopPkg: VBT from OpRegion ';
export const VBT_FROM_FV_MARKER = 'OvmfGopPkg: VBT from firmware volume, ';
/** Every line IgdAssignmentDxe prints starts with this. */
export const IGD_ASSIGNMENT_MARKER = 'IgdAssignmentDxe: ';

/**
 * The helper drivers' .efi files as `build` writes them under Build/OvmfX64/<target>_GCC5/X64/
 * (the exact PE32 images GenFds puts in the firmware volume); exported next to the .fd files.
 */
export const IGD_ASSIGNMENT_EFI = 'IgdAssignmentDxe.efi';
export const POLICY_EFI = 'PlatformGopPolicyDxe.efi';

export const DSC_PATH = 'OvmfPkg/OvmfPkgX64.dsc';
export const FDF_PATH = 'OvmfPkg/OvmfPkgX64.fdf';
