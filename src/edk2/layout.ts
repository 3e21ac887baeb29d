// Where our overlay package and the user's binaries sit inside the EDK2 workspace,
// and the GUIDs the verification looks for. Paths are relative to the workspace root.

export const OVERLAY_PACKAGE = 'OvmfGopPkg';

/** Binary INF of the Intel GOP driver; the user's .efi goes next to it. */
export const GOP_INF = 'OvmfGopPkg/IntelGopDriver/IntelGopDriver.inf';
export const GOP_EFI = 'OvmfGopPkg/IntelGopDriver/IntelGopDriver.efi';
/** The VBT bytes, referenced by the FDF FILE FREEFORM statement. */
export const VBT_BIN = 'OvmfGopPkg/Vbt/Vbt.bin';
export const POLICY_INF = 'OvmfGopPkg/PlatformGopPolicyDxe/PlatformGopPolicyDxe.inf';

/** Intel's file GUIDs for the GOP driver and the VBT file, as in vendor images. */
export const GOP_FILE_GUID = '1647B4F3-3E8A-4FDD-81C8-328ED647AB1A';
export const VBT_FILE_GUID = '1647B4F3-3E8A-4FEF-81C8-328ED647AB1A';
/** FILE_GUID of our PlatformGopPolicyDxe (containers/edk2-overlay/.../PlatformGopPolicyDxe.inf). */
export const POLICY_FILE_GUID = '6FE0ECC8-FDFF-490E-A0C6-B60B3A8E98A2';
export const PLATFORM_GOP_POLICY_PROTOCOL_GUID = 'EC2E931B-3281-48A5-8107-DF8A8BED3C5D';
/** UI section names the FDF rules give the two drivers (MODULE_NAME = BASE_NAME). */
export const GOP_UI_NAME = 'IntelGopDriver';
export const POLICY_UI_NAME = 'PlatformGopPolicyDxe';
/** Printed by PlatformGopPolicyDxe on a DEBUG build when it found the VBT. */
export const VBT_FOUND_MARKER = 'OvmfGopPkg: VBT found, ';

export const DSC_PATH = 'OvmfPkg/OvmfPkgX64.dsc';
export const FDF_PATH = 'OvmfPkg/OvmfPkgX64.fdf';
