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
/**
 * FvNameGuid of the IGD volume (OvmfPkgX64.fdf [FV.IGDVOL], platform-patch.ts): the GOP driver and
 * the VBT, stored uncompressed outside the DXE volume. Images built before it hold both in the DXE volume.
 */
export const IGD_VOLUME_NAME_GUID = '2A7B5C3D-9E1F-4A60-8B2C-6D4E3F1A0B9C';
/** OvmfGopPkg IgdVolumeDxe (hands the IGD volume to the DXE dispatcher). */
export const IGD_VOLUME_DXE_FILE_GUID = '5C0B1E4A-7D2F-4E61-9A53-2F6C8B1D0E7A';
