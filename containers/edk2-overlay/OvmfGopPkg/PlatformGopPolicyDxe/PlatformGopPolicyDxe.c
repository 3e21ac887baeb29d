/** @file
  Platform GOP policy for OVMF: installs PLATFORM_GOP_POLICY_PROTOCOL so the
  Intel GOP driver, when it finds an Intel iGPU passed through to the virtual
  machine, learns the lid state and gets the VBT of the machine it came from.

  GetVbtData serves, in this order:
  1. the VBT of the IGD OpRegion that ASLS (config 0xFC) of 00:02.0 points to
     when it is called (IgdAssignmentDxe copied the host's OpRegion there): the
     raw VBT at RVDA/RVDS (OpRegion 2.0+) or mailbox 4, the way i915 looks for
     it, so the GOP and the OS driver read the same live VBT of the host;
  2. without a valid OpRegion, the VBT built into the firmware: the body of the
     RAW section of the freeform file gOvmfGopVbtFileGuid in a firmware volume,
     handed out whole, as it was given to the build.

  Works linked into OVMF and from an option ROM under a stock OVMF: it reads
  PCI config through PciIo (no PciLib, whose OVMF instance reads dynamic PCDs).

  SPDX-License-Identifier: BSD-2-Clause-Patent
**/

#include <PiDxe.h>

#include <Library/BaseLib.h>
#include <Library/DebugLib.h>
#include <Library/DxeServicesLib.h>
#include <Library/DxeServicesTableLib.h>
#include <Library/UefiBootServicesTableLib.h>

#include <Protocol/PciIo.h>
#include <Protocol/PlatformGopPolicy.h>

#include <IgdAssignmentLogic.h>

//
// The VBT header starts with a 20-byte signature, "$VBT" and a platform name
// padded with spaces (Intel VBT specification, VBT header).
//
#define VBT_SIGNATURE_LENGTH  20

STATIC EFI_PHYSICAL_ADDRESS  mVbtAddress = 0;
STATIC UINT32                mVbtSize    = 0;
STATIC VOID                  *mPciIoRegistration;
STATIC BOOLEAN               mOpRegionReported;

/**
  A virtual machine has no lid: report it open so the GOP drives every panel
  the VBT describes.

  @param[out] CurrentLidStatus  Set to LidOpen.

  @retval EFI_SUCCESS            CurrentLidStatus is set.
  @retval EFI_INVALID_PARAMETER  CurrentLidStatus is NULL.
**/
STATIC
EFI_STATUS
EFIAPI
OvmfGopGetPlatformLidStatus (
  OUT LID_STATUS  *CurrentLidStatus
  )
{
  if (CurrentLidStatus == NULL) {
    return EFI_INVALID_PARAMETER;
  }

  *CurrentLidStatus = LidOpen;
  return EFI_SUCCESS;
}

/**
  True when [Address, Address + Length) is memory (system memory in the GCD
  map), so reading it cannot touch MMIO whatever ASLS or RVDA hold.
**/
STATIC
BOOLEAN
OvmfGopIsMemory (
  IN EFI_PHYSICAL_ADDRESS  Address,
  IN UINT64                Length
  )
{
  EFI_STATUS                       Status;
  EFI_GCD_MEMORY_SPACE_DESCRIPTOR  Descriptor;
  EFI_PHYSICAL_ADDRESS             End;

  if ((Length == 0) || (Address > MAX_UINT64 - Length)) {
    return FALSE;
  }

  End = Address + Length;
  while (Address < End) {
    Status = gDS->GetMemorySpaceDescriptor (Address, &Descriptor);
    if (EFI_ERROR (Status) || (Descriptor.GcdMemoryType != EfiGcdMemoryTypeSystemMemory) || (Descriptor.Length == 0)) {
      return FALSE;
    }

    Address = Descriptor.BaseAddress + Descriptor.Length;
  }

  return TRUE;
}

/**
  The VBT of the OpRegion at Asls (IgdOpRegionFindVbt), logged with its source.

  @retval EFI_SUCCESS    VbtAddress and VbtSize are set.
  @retval EFI_NOT_FOUND  No OpRegion, or no valid VBT in it (the reason is logged).
**/
STATIC
EFI_STATUS
OvmfGopOpRegionVbtAt (
  IN  UINT32                Asls,
  OUT EFI_PHYSICAL_ADDRESS  *VbtAddress,
  OUT UINT32                *VbtSize
  )
{
  UINT64            Extent;
  IGD_VBT_LOCATION  Location;

  if ((Asls == 0) || (Asls == MAX_UINT32)) {
    DEBUG ((DEBUG_INFO, "OvmfGopPkg: no OpRegion (ASLS of 00:02.0 is 0x%x)\n", Asls));
    return EFI_NOT_FOUND;
  }

  if (!OvmfGopIsMemory (Asls, IGD_OPREGION_SIZE)) {
    DEBUG ((DEBUG_WARN, "OvmfGopPkg: ASLS 0x%x does not point to memory, OpRegion ignored\n", Asls));
    return EFI_NOT_FOUND;
  }

  Extent = IgdOpRegionExtent ((CONST UINT8 *)(UINTN)Asls, Asls);
  if ((Extent > IGD_OPREGION_SIZE) && !OvmfGopIsMemory (Asls, Extent)) {
    Extent = IGD_OPREGION_SIZE;
  }

  if (!IgdOpRegionFindVbt ((CONST UINT8 *)(UINTN)Asls, Extent, Asls, &Location)) {
    DEBUG ((DEBUG_WARN, "OvmfGopPkg: no valid OpRegion VBT at ASLS 0x%x\n", Asls));
    return EFI_NOT_FOUND;
  }

  *VbtAddress = (EFI_PHYSICAL_ADDRESS)Asls + Location.Offset;
  *VbtSize    = Location.Size;
  DEBUG ((
    DEBUG_INFO,
    "OvmfGopPkg: VBT from OpRegion (%a), %u bytes at 0x%lx\n",
    (Location.Source == IgdVbtSourceRvda) ? "RVDA" : "mailbox 4",
    *VbtSize,
    *VbtAddress
    ));
  return EFI_SUCCESS;
}

/**
  True when PciIo is the function at 00:02.0 (segment 0).
**/
STATIC
BOOLEAN
OvmfGopIsIgdSlot (
  IN EFI_PCI_IO_PROTOCOL  *PciIo
  )
{
  EFI_STATUS  Status;
  UINTN       Segment;
  UINTN       Bus;
  UINTN       Device;
  UINTN       Function;

  Status = PciIo->GetLocation (PciIo, &Segment, &Bus, &Device, &Function);
  return (BOOLEAN)(!EFI_ERROR (Status) && (Segment == 0) && (Bus == IGD_PCI_BUS) &&
                   (Device == IGD_PCI_DEVICE) && (Function == IGD_PCI_FUNCTION));
}

/**
  ASLS of the function at 00:02.0, read through its PciIo.

  @retval 0  No PciIo at 00:02.0 or reading failed.
**/
STATIC
UINT32
OvmfGopIgdAsls (
  VOID
  )
{
  EFI_STATUS           Status;
  EFI_HANDLE           *Handles;
  UINTN                Count;
  UINTN                Index;
  EFI_PCI_IO_PROTOCOL  *PciIo;
  UINT32               Asls;

  Asls   = 0;
  Status = gBS->LocateHandleBuffer (ByProtocol, &gEfiPciIoProtocolGuid, NULL, &Count, &Handles);
  if (EFI_ERROR (Status)) {
    return 0;
  }

  for (Index = 0; Index < Count; Index++) {
    Status = gBS->HandleProtocol (Handles[Index], &gEfiPciIoProtocolGuid, (VOID **)&PciIo);
    if (EFI_ERROR (Status) || !OvmfGopIsIgdSlot (PciIo)) {
      continue;
    }

    Status = PciIo->Pci.Read (PciIo, EfiPciIoWidthUint32, IGD_PCI_ASLS_OFFSET, 1, &Asls);
    if (EFI_ERROR (Status)) {
      Asls = 0;
    }

    break;
  }

  gBS->FreePool (Handles);
  return Asls;
}

/**
  Says once which VBT GetVbtData will serve, as soon as 00:02.0 has an OpRegion:
  the GOP only asks when it drives an Intel device, and the log should tell also
  when it does not (a test device at 00:02.0, a GOP that refuses the device).
  IgdAssignmentDxe writes ASLS from its own PciIo notify, registered before ours
  (it is dispatched first, from the FV and from the ROM alike), so ASLS is set
  by the time this runs for 00:02.0.
**/
STATIC
VOID
OvmfGopReportOpRegionVbt (
  IN EFI_HANDLE  Handle
  )
{
  EFI_STATUS            Status;
  EFI_PCI_IO_PROTOCOL   *PciIo;
  UINT32                Asls;
  EFI_PHYSICAL_ADDRESS  VbtAddress;
  UINT32                VbtSize;

  if (mOpRegionReported) {
    return;
  }

  Status = gBS->HandleProtocol (Handle, &gEfiPciIoProtocolGuid, (VOID **)&PciIo);
  if (EFI_ERROR (Status) || !OvmfGopIsIgdSlot (PciIo)) {
    return;
  }

  Asls   = 0;
  Status = PciIo->Pci.Read (PciIo, EfiPciIoWidthUint32, IGD_PCI_ASLS_OFFSET, 1, &Asls);
  if (EFI_ERROR (Status) || (Asls == 0)) {
    return;
  }

  mOpRegionReported = TRUE;
  OvmfGopOpRegionVbtAt (Asls, &VbtAddress, &VbtSize);
}

/**
  PciIo installation notify for OvmfGopReportOpRegionVbt.
**/
STATIC
VOID
EFIAPI
OvmfGopPciIoNotify (
  IN EFI_EVENT  Event,
  IN VOID       *Context
  )
{
  EFI_STATUS  Status;
  UINTN       Size;
  EFI_HANDLE  Handle;

  for ( ; ;) {
    Size   = sizeof Handle;
    Status = gBS->LocateHandle (ByRegisterNotify, NULL, mPciIoRegistration, &Size, &Handle);
    if (EFI_ERROR (Status)) {
      break;
    }

    OvmfGopReportOpRegionVbt (Handle);
  }
}

/**
  Hands out the VBT of the IGD OpRegion, or else the VBT found in the firmware
  volume at driver start.

  @param[out] VbtAddress  Address of the VBT.
  @param[out] VbtSize     Size of the VBT in bytes.

  @retval EFI_SUCCESS            Both outputs are set.
  @retval EFI_INVALID_PARAMETER  An output pointer is NULL.
  @retval EFI_NOT_FOUND          Neither an OpRegion nor the firmware volume holds a VBT.
**/
STATIC
EFI_STATUS
EFIAPI
OvmfGopGetVbtData (
  OUT EFI_PHYSICAL_ADDRESS  *VbtAddress,
  OUT UINT32                *VbtSize
  )
{
  if ((VbtAddress == NULL) || (VbtSize == NULL)) {
    return EFI_INVALID_PARAMETER;
  }

  if (!EFI_ERROR (OvmfGopOpRegionVbtAt (OvmfGopIgdAsls (), VbtAddress, VbtSize))) {
    return EFI_SUCCESS;
  }

  if (mVbtSize == 0) {
    DEBUG ((DEBUG_ERROR, "OvmfGopPkg: no VBT for the GOP: no OpRegion VBT and no VBT file\n"));
    return EFI_NOT_FOUND;
  }

  *VbtAddress = mVbtAddress;
  *VbtSize    = mVbtSize;
  DEBUG ((DEBUG_INFO, "OvmfGopPkg: VBT from firmware volume, %u bytes at 0x%lx\n", mVbtSize, mVbtAddress));
  return EFI_SUCCESS;
}

STATIC PLATFORM_GOP_POLICY_PROTOCOL  mPlatformGopPolicy = {
  PLATFORM_GOP_POLICY_PROTOCOL_REVISION_01,
  OvmfGopGetPlatformLidStatus,
  OvmfGopGetVbtData
};

/**
  Copies the printable part of the VBT signature for the debug log.

  @param[in]  Vbt        First byte of the VBT.
  @param[in]  VbtSize    Bytes available at Vbt.
  @param[out] Signature  Receives a NUL-terminated ASCII string.
**/
STATIC
VOID
OvmfGopVbtSignature (
  IN  CONST UINT8  *Vbt,
  IN  UINTN        VbtSize,
  OUT CHAR8        Signature[VBT_SIGNATURE_LENGTH + 1]
  )
{
  UINTN  Index;
  UINTN  Length;

  Length = 0;
  for (Index = 0; Index < VBT_SIGNATURE_LENGTH && Index < VbtSize; Index++) {
    if ((Vbt[Index] < 0x20) || (Vbt[Index] > 0x7E)) {
      break;
    }

    Signature[Index] = (CHAR8)Vbt[Index];
    if (Vbt[Index] != ' ') {
      Length = Index + 1;
    }
  }

  Signature[Length] = '\0';
}

/**
  Finds the VBT and installs the policy protocol. The protocol is installed
  even without a VBT, so the GOP gets a clear EFI_NOT_FOUND from GetVbtData
  instead of failing to locate its policy.

  @param[in] ImageHandle  Handle of this driver image.
  @param[in] SystemTable  The EFI system table.

  @retval EFI_SUCCESS  The protocol is installed.
  @return              The error of InstallMultipleProtocolInterfaces.
**/
EFI_STATUS
EFIAPI
PlatformGopPolicyDxeEntryPoint (
  IN EFI_HANDLE        ImageHandle,
  IN EFI_SYSTEM_TABLE  *SystemTable
  )
{
  EFI_STATUS  Status;
  VOID        *Vbt;
  UINTN       VbtSize;
  CHAR8       Signature[VBT_SIGNATURE_LENGTH + 1];
  EFI_HANDLE  Handle;
  EFI_EVENT   Event;
  EFI_HANDLE  *Handles;
  UINTN       Count;
  UINTN       Index;

  Vbt     = NULL;
  VbtSize = 0;
  //
  // The section body is copied into boot-services pool memory, which stays
  // valid for the GOP driver until ExitBootServices.
  //
  Status = GetSectionFromAnyFv (&gOvmfGopVbtFileGuid, EFI_SECTION_RAW, 0, &Vbt, &VbtSize);
  if (EFI_ERROR (Status) || (Vbt == NULL) || (VbtSize == 0)) {
    DEBUG ((DEBUG_ERROR, "OvmfGopPkg: VBT file %g not found: %r\n", &gOvmfGopVbtFileGuid, Status));
  } else if (VbtSize > MAX_UINT32) {
    DEBUG ((DEBUG_ERROR, "OvmfGopPkg: VBT of %lu bytes is too large\n", (UINT64)VbtSize));
  } else {
    mVbtAddress = (EFI_PHYSICAL_ADDRESS)(UINTN)Vbt;
    mVbtSize    = (UINT32)VbtSize;
    OvmfGopVbtSignature (Vbt, VbtSize, Signature);
    DEBUG ((
      DEBUG_INFO,
      "OvmfGopPkg: VBT found, %u bytes at 0x%lx, signature \"%a\"\n",
      mVbtSize,
      mVbtAddress,
      Signature
      ));
    if (AsciiStrnCmp (Signature, "$VBT", 4) != 0) {
      DEBUG ((DEBUG_WARN, "OvmfGopPkg: the VBT file does not start with \"$VBT\"\n"));
    }
  }

  //
  // 00:02.0 may already have its PciIo (option-ROM mode) or get it later.
  //
  Status = gBS->CreateEvent (EVT_NOTIFY_SIGNAL, TPL_CALLBACK, OvmfGopPciIoNotify, NULL, &Event);
  if (!EFI_ERROR (Status)) {
    Status = gBS->RegisterProtocolNotify (&gEfiPciIoProtocolGuid, Event, &mPciIoRegistration);
    if (EFI_ERROR (Status)) {
      gBS->CloseEvent (Event);
    }
  }

  Status = gBS->LocateHandleBuffer (ByProtocol, &gEfiPciIoProtocolGuid, NULL, &Count, &Handles);
  if (!EFI_ERROR (Status)) {
    for (Index = 0; Index < Count; Index++) {
      OvmfGopReportOpRegionVbt (Handles[Index]);
    }

    gBS->FreePool (Handles);
  }

  Handle = NULL;
  Status = gBS->InstallMultipleProtocolInterfaces (
                  &Handle,
                  &gPlatformGopPolicyProtocolGuid,
                  &mPlatformGopPolicy,
                  NULL
                  );
  ASSERT_EFI_ERROR (Status);
  return Status;
}
