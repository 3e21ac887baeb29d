/** @file
  IgdVolumeDxe: hands the IGD volume to the DXE dispatcher.

  ovmf-build keeps the Intel GOP driver and the VBT in a firmware volume of
  their own (OvmfPkgX64.fdf [FV.IGDVOL]), stored uncompressed in a flash region
  below FVMAIN_COMPACT, instead of inside the LZMA-compressed DXE volume. So a
  firmware that differs only in GOP or VBT differs only in that region, and a
  variant build regenerates the small volume instead of compressing the DXE
  volume again.

  The DXE core learns of volumes from HOBs, and PlatformPei publishes only the
  decompressed PEI and DXE volumes, so this driver processes the IGD volume
  itself: it checks the header at PcdOvmfGopIgdVolumeBase (signature, length
  within the region, header checksum, the volume name in the extended header)
  and calls ProcessFirmwareVolume, after which the dispatcher loads the GOP
  driver from it. PlatformGopPolicyDxe is dispatched right after this driver
  (its depex is AFTER this file), so its search for the VBT file sees the volume.

  SPDX-License-Identifier: BSD-2-Clause-Patent
**/

#include <PiDxe.h>
#include <Guid/FirmwareFileSystem2.h>
#include <Library/BaseLib.h>
#include <Library/BaseMemoryLib.h>
#include <Library/DebugLib.h>
#include <Library/DxeServicesTableLib.h>

extern EFI_GUID  gOvmfGopIgdVolumeGuid;

/**
  TRUE when the volume at Fv, in a region of RegionSize bytes, is the IGD volume.
**/
STATIC
BOOLEAN
IsIgdVolume (
  IN CONST EFI_FIRMWARE_VOLUME_HEADER  *Fv,
  IN UINT64                            RegionSize
  )
{
  CONST EFI_FIRMWARE_VOLUME_EXT_HEADER  *Ext;

  if ((Fv->Signature != EFI_FVH_SIGNATURE) || (Fv->FvLength == 0) || (Fv->FvLength > RegionSize)) {
    return FALSE;
  }

  if ((Fv->HeaderLength < sizeof (EFI_FIRMWARE_VOLUME_HEADER)) || (Fv->HeaderLength > Fv->FvLength) ||
      ((Fv->HeaderLength & 1) != 0) || (CalculateSum16 ((CONST UINT16 *)Fv, Fv->HeaderLength) != 0))
  {
    return FALSE;
  }

  if (!CompareGuid (&Fv->FileSystemGuid, &gEfiFirmwareFileSystem2Guid) || (Fv->ExtHeaderOffset == 0) ||
      ((UINT64)Fv->ExtHeaderOffset + sizeof (EFI_FIRMWARE_VOLUME_EXT_HEADER) > Fv->FvLength))
  {
    return FALSE;
  }

  Ext = (CONST EFI_FIRMWARE_VOLUME_EXT_HEADER *)((CONST UINT8 *)Fv + Fv->ExtHeaderOffset);
  return CompareGuid (&Ext->FvName, &gOvmfGopIgdVolumeGuid);
}

EFI_STATUS
EFIAPI
IgdVolumeDxeEntryPoint (
  IN EFI_HANDLE        ImageHandle,
  IN EFI_SYSTEM_TABLE  *SystemTable
  )
{
  EFI_FIRMWARE_VOLUME_HEADER  *Fv;
  EFI_HANDLE                  FvHandle;
  EFI_STATUS                  Status;

  Fv = (EFI_FIRMWARE_VOLUME_HEADER *)(UINTN)FixedPcdGet32 (PcdOvmfGopIgdVolumeBase);
  if (!IsIgdVolume (Fv, FixedPcdGet32 (PcdOvmfGopIgdVolumeSize))) {
    DEBUG ((DEBUG_ERROR, "IgdVolumeDxe: no IGD volume at 0x%p\n", Fv));
    return EFI_NOT_FOUND;
  }

  FvHandle = NULL;
  Status   = gDS->ProcessFirmwareVolume (Fv, (UINTN)Fv->FvLength, &FvHandle);
  DEBUG ((
    Status == EFI_SUCCESS ? DEBUG_INFO : DEBUG_ERROR,
    "IgdVolumeDxe: IGD volume at 0x%p, %Lu bytes: %r\n",
    Fv,
    Fv->FvLength,
    Status
    ));
  return Status;
}
