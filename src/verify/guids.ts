// FILE_GUIDs of what ovmf-build puts into OVMF (containers/edk2-overlay/README.md). The GOP
// and VBT GUIDs are the ones Intel reference firmware uses.

/** IntelGopDriver binary module (EFI_FV_FILETYPE_DRIVER with a PE32 section). */
export const DEFAULT_GOP_FILE_GUID = '1647B4F3-3E8A-4FDD-81C8-328ED647AB1A';
/** Freeform file whose RAW section is the VBT. */
export const DEFAULT_VBT_FILE_GUID = '1647B4F3-3E8A-4FEF-81C8-328ED647AB1A';
/** OvmfGopPkg PlatformGopPolicyDxe (installs PLATFORM_GOP_POLICY_PROTOCOL). */
export const DEFAULT_POLICY_FILE_GUID = '6FE0ECC8-FDFF-490E-A0C6-B60B3A8E98A2';
/** OvmfGopPkg IgdAssignmentDxe (OpRegion and stolen memory for IGD assignment). */
export const DEFAULT_IGD_ASSIGNMENT_FILE_GUID = '283B2335-ABD8-4B75-A8AA-004177A20A4B';
