/** @file
  IgdAssignmentDxe: the guest firmware's half of QEMU's IGD assignment
  (QEMU docs/igd-assign.txt, "Guest firmware").

  QEMU hands the guest the host's IGD OpRegion as the fw_cfg file
  etc/igd-opregion and the stolen-memory size as etc/igd-bdsm-size, and reads
  ASLS (config 0xFC) and BDSM back as 0 until the firmware has allocated both and
  written their addresses. This driver does that before the GOP driver starts:

  - for every Intel display-class PCI function: copy etc/igd-opregion into
    EfiACPIMemoryNVS below 4 GiB and write its address to ASLS;
  - for 00:02.0: size stolen memory from etc/igd-bdsm-size, else from GMCH's GMS
    field, allocate it as EfiReservedMemoryType below 4 GiB, 1 MiB aligned and
    zeroed, and write its base to BDSM (32-bit at 0x5C or 64-bit at 0xC0/0xC4, or
    nothing from Meteor Lake on), the layout coming from the generated device
    table IgdDeviceTable.h.

  It runs both linked into OVMF and as an image of a PCI option ROM under a stock
  OVMF. In a ROM, PciBus starts the image after it installed the device's PciIo,
  so the driver handles the PciIo instances that exist at entry and, through a
  protocol notify, those installed later. It uses no PCD and no protocol beyond
  PciIo, and reads fw_cfg through the I/O ports itself: OvmfPkg's DXE
  QemuFwCfgLib reads the dynamic PCD PcdConfidentialComputingGuestAttr (through
  MemEncryptSevLib), whose token number is only meaningful inside the platform
  build that made the image, not inside someone else's OVMF.

  Test switch: when the fw_cfg file opt/ovmf-build/igd-device-id holds a device
  ID (text, e.g. "3e9b"), the display-class function at 00:02.0 is treated as
  that Intel device whatever its vendor ID, so the exact firmware can be tested
  in QEMU without an Intel GPU. Without the file only vendor 8086 counts.

  A register that already holds a value (non-zero ASLS or BDSM) is left alone:
  the platform, or another copy of this driver (our OVMF and our ROM together),
  has set it up already.

  SPDX-License-Identifier: BSD-2-Clause-Patent
**/

#include <Uefi.h>

#include <IndustryStandard/Pci22.h>
#include <Library/BaseLib.h>
#include <Library/BaseMemoryLib.h>
#include <Library/DebugLib.h>
#include <Library/IoLib.h>
#include <Library/UefiBootServicesTableLib.h>
#include <Protocol/PciIo.h>

#include <IgdAssignmentLogic.h>
#include <IgdDeviceTable.h>

#define IGD_MAX_HANDLED        16
#define IGD_DEVICE_ID_TEXT_MAX 16

typedef struct {
  BOOLEAN    Present;
  UINT16     Selector;
  UINT32     Size;
} IGD_FW_CFG_FILE;

STATIC IGD_FW_CFG_FILE  mOpRegionFile;
STATIC IGD_FW_CFG_FILE  mBdsmSizeFile;
STATIC IGD_FW_CFG_FILE  mDeviceIdFile;
STATIC BOOLEAN          mDeviceIdOverride;
STATIC UINT16           mDeviceIdOverrideValue;

STATIC EFI_HANDLE  mHandled[IGD_MAX_HANDLED];
STATIC UINTN       mHandledCount;
STATIC VOID        *mPciIoRegistration;

/**
  Selects a fw_cfg item and reads Size bytes of it through the data port. Runs at
  TPL_NOTIFY so no other fw_cfg user can move the selector in the middle.
**/
STATIC
VOID
IgdFwCfgRead (
  IN  UINT16  Selector,
  OUT VOID    *Buffer,
  IN  UINTN   Size
  )
{
  EFI_TPL  OldTpl;
  UINT8    *Bytes;
  UINTN    Index;

  OldTpl = gBS->RaiseTPL (TPL_NOTIFY);
  IoWrite16 (IGD_FW_CFG_PORT_SELECTOR, Selector);
  Bytes = Buffer;
  for (Index = 0; Index < Size; Index++) {
    Bytes[Index] = IoRead8 (IGD_FW_CFG_PORT_DATA);
  }

  gBS->RestoreTPL (OldTpl);
}

/**
  Reads the fw_cfg signature and directory once and records the three files
  this driver uses.

  @retval FALSE  There is no fw_cfg (not QEMU).
**/
STATIC
BOOLEAN
IgdFwCfgScan (
  VOID
  )
{
  UINT8    Signature[4];
  UINT8    CountBytes[4];
  UINT8    Entry[IGD_FW_CFG_FILE_ENTRY_SIZE];
  UINT8    Text[IGD_DEVICE_ID_TEXT_MAX];
  UINT32   Count;
  UINT32   Index;
  EFI_TPL  OldTpl;
  UINTN    Byte;

  IgdFwCfgRead (IGD_FW_CFG_ITEM_SIGNATURE, Signature, sizeof Signature);
  if ((Signature[0] != 'Q') || (Signature[1] != 'E') || (Signature[2] != 'M') || (Signature[3] != 'U')) {
    return FALSE;
  }

  OldTpl = gBS->RaiseTPL (TPL_NOTIFY);
  IoWrite16 (IGD_FW_CFG_PORT_SELECTOR, IGD_FW_CFG_ITEM_FILE_DIR);
  for (Byte = 0; Byte < sizeof CountBytes; Byte++) {
    CountBytes[Byte] = IoRead8 (IGD_FW_CFG_PORT_DATA);
  }

  Count = IgdReadBe32 (CountBytes);
  if (Count > IGD_FW_CFG_MAX_FILES) {
    Count = IGD_FW_CFG_MAX_FILES;
  }

  for (Index = 0; Index < Count; Index++) {
    for (Byte = 0; Byte < sizeof Entry; Byte++) {
      Entry[Byte] = IoRead8 (IGD_FW_CFG_PORT_DATA);
    }

    if (IgdFwCfgEntryNameIs (Entry, IGD_FW_CFG_OPREGION)) {
      mOpRegionFile.Present  = TRUE;
      mOpRegionFile.Size     = IgdReadBe32 (Entry);
      mOpRegionFile.Selector = IgdReadBe16 (Entry + 4);
    } else if (IgdFwCfgEntryNameIs (Entry, IGD_FW_CFG_BDSM_SIZE)) {
      mBdsmSizeFile.Present  = TRUE;
      mBdsmSizeFile.Size     = IgdReadBe32 (Entry);
      mBdsmSizeFile.Selector = IgdReadBe16 (Entry + 4);
    } else if (IgdFwCfgEntryNameIs (Entry, IGD_FW_CFG_DEVICE_ID)) {
      mDeviceIdFile.Present  = TRUE;
      mDeviceIdFile.Size     = IgdReadBe32 (Entry);
      mDeviceIdFile.Selector = IgdReadBe16 (Entry + 4);
    }
  }

  gBS->RestoreTPL (OldTpl);

  //
  // Read after the directory walk: selecting another item ends the walk.
  //
  if (mDeviceIdFile.Present) {
    if (mDeviceIdFile.Size <= sizeof Text) {
      IgdFwCfgRead (mDeviceIdFile.Selector, Text, mDeviceIdFile.Size);
      mDeviceIdOverride = IgdParseDeviceIdText (Text, mDeviceIdFile.Size, &mDeviceIdOverrideValue);
    }

    if (!mDeviceIdOverride) {
      DEBUG ((DEBUG_ERROR, "IgdAssignmentDxe: %a is not 1-4 hex digits (%u bytes), ignored\n", IGD_FW_CFG_DEVICE_ID, mDeviceIdFile.Size));
    }
  }

  return TRUE;
}

/**
  Allocates Pages pages of Type below 4 GiB whose base is a multiple of
  AlignmentPages pages (a power of two): allocates the padding too, then frees
  what lies before and after the aligned block.
**/
STATIC
EFI_STATUS
IgdAllocateBelow4Gb (
  IN  EFI_MEMORY_TYPE       Type,
  IN  UINTN                 Pages,
  IN  UINTN                 AlignmentPages,
  OUT EFI_PHYSICAL_ADDRESS  *Base
  )
{
  EFI_STATUS            Status;
  EFI_PHYSICAL_ADDRESS  Start;
  EFI_PHYSICAL_ADDRESS  Aligned;
  UINTN                 Head;
  UINTN                 Tail;

  if ((Pages == 0) || (AlignmentPages == 0) || ((AlignmentPages & (AlignmentPages - 1)) != 0) ||
      (Pages > MAX_UINTN - AlignmentPages))
  {
    return EFI_INVALID_PARAMETER;
  }

  Start  = BASE_4GB - 1;
  Status = gBS->AllocatePages (AllocateMaxAddress, Type, Pages + AlignmentPages - 1, &Start);
  if (EFI_ERROR (Status)) {
    return Status;
  }

  Aligned = ALIGN_VALUE (Start, (UINT64)EFI_PAGES_TO_SIZE (AlignmentPages));
  Head    = EFI_SIZE_TO_PAGES ((UINTN)(Aligned - Start));
  Tail    = AlignmentPages - 1 - Head;
  if (Head > 0) {
    gBS->FreePages (Start, Head);
  }

  if (Tail > 0) {
    gBS->FreePages (Aligned + EFI_PAGES_TO_SIZE (Pages), Tail);
  }

  *Base = Aligned;
  return EFI_SUCCESS;
}

/**
  Copies etc/igd-opregion into ACPI NVS below 4 GiB and writes its address to
  ASLS, unless ASLS already holds an address.
**/
STATIC
VOID
IgdSetupOpRegion (
  IN EFI_PCI_IO_PROTOCOL  *PciIo
  )
{
  EFI_STATUS            Status;
  UINT32                Asls;
  UINTN                 Pages;
  EFI_PHYSICAL_ADDRESS  Address;

  if (!mOpRegionFile.Present) {
    DEBUG ((DEBUG_INFO, "IgdAssignmentDxe: no %a, ASLS left alone\n", IGD_FW_CFG_OPREGION));
    return;
  }

  if (!IgdOpRegionSizeValid (mOpRegionFile.Size)) {
    DEBUG ((
      DEBUG_ERROR,
      "IgdAssignmentDxe: %a of %u bytes is outside %u..%u, ASLS left alone\n",
      IGD_FW_CFG_OPREGION,
      mOpRegionFile.Size,
      (UINT32)IGD_OPREGION_SIZE,
      (UINT32)IGD_OPREGION_MAX_SIZE
      ));
    return;
  }

  Asls   = 0;
  Status = PciIo->Pci.Read (PciIo, EfiPciIoWidthUint32, IGD_PCI_ASLS_OFFSET, 1, &Asls);
  if (EFI_ERROR (Status)) {
    DEBUG ((DEBUG_ERROR, "IgdAssignmentDxe: reading ASLS failed: %r\n", Status));
    return;
  }

  if (Asls != 0) {
    DEBUG ((DEBUG_INFO, "IgdAssignmentDxe: ASLS already 0x%x, OpRegion left alone\n", Asls));
    return;
  }

  Pages  = EFI_SIZE_TO_PAGES ((UINTN)mOpRegionFile.Size);
  Status = IgdAllocateBelow4Gb (EfiACPIMemoryNVS, Pages, 1, &Address);
  if (EFI_ERROR (Status)) {
    DEBUG ((DEBUG_ERROR, "IgdAssignmentDxe: no memory for the OpRegion (%u bytes): %r\n", mOpRegionFile.Size, Status));
    return;
  }

  ZeroMem ((VOID *)(UINTN)Address, EFI_PAGES_TO_SIZE (Pages));
  IgdFwCfgRead (mOpRegionFile.Selector, (VOID *)(UINTN)Address, mOpRegionFile.Size);

  Asls   = (UINT32)Address;
  Status = PciIo->Pci.Write (PciIo, EfiPciIoWidthUint32, IGD_PCI_ASLS_OFFSET, 1, &Asls);
  if (EFI_ERROR (Status)) {
    DEBUG ((DEBUG_ERROR, "IgdAssignmentDxe: writing ASLS failed: %r\n", Status));
    gBS->FreePages (Address, Pages);
    return;
  }

  DEBUG ((DEBUG_INFO, "IgdAssignmentDxe: OpRegion %u bytes at 0x%lx, ASLS written\n", mOpRegionFile.Size, Address));
}

/**
  Sizes, allocates and zeroes stolen memory for 00:02.0 and writes BDSM in the
  platform's layout.
**/
STATIC
VOID
IgdSetupStolenMemory (
  IN EFI_PCI_IO_PROTOCOL      *PciIo,
  IN CONST IGD_PLATFORM_INFO  *Platform
  )
{
  EFI_STATUS            Status;
  UINT64                Size;
  UINT8                 SizeBytes[8];
  UINT16                Gmch;
  UINT32                Bdsm[2];
  UINT32                Offset;
  UINTN                 Dwords;
  UINTN                 Pages;
  EFI_PHYSICAL_ADDRESS  Address;

  if (Platform->Bdsm == IgdBdsmNone) {
    DEBUG ((DEBUG_INFO, "IgdAssignmentDxe: no BDSM on %a\n", Platform->Key));
    return;
  }

  if (mBdsmSizeFile.Present) {
    if (mBdsmSizeFile.Size != sizeof SizeBytes) {
      DEBUG ((DEBUG_ERROR, "IgdAssignmentDxe: %a is %u bytes, not 8; BDSM left alone\n", IGD_FW_CFG_BDSM_SIZE, mBdsmSizeFile.Size));
      return;
    }

    IgdFwCfgRead (mBdsmSizeFile.Selector, SizeBytes, sizeof SizeBytes);
    Size = IgdReadLe64 (SizeBytes);
  } else {
    Gmch   = 0;
    Status = PciIo->Pci.Read (PciIo, EfiPciIoWidthUint16, IGD_PCI_GMCH_OFFSET, 1, &Gmch);
    if (EFI_ERROR (Status)) {
      DEBUG ((DEBUG_ERROR, "IgdAssignmentDxe: reading GMCH failed: %r\n", Status));
      return;
    }

    Size = IgdStolenSizeFromGmch (Platform->Gms, Gmch);
    if (Size == 0) {
      DEBUG ((DEBUG_INFO, "IgdAssignmentDxe: no stolen size (%a absent, GMS 0)\n", IGD_FW_CFG_BDSM_SIZE));
      return;
    }
  }

  if (!IgdStolenSizeValid (Size)) {
    DEBUG ((
      DEBUG_ERROR,
      "IgdAssignmentDxe: stolen size %lu is not a non-zero multiple of 1 MiB up to %lu, BDSM left alone\n",
      Size,
      (UINT64)IGD_STOLEN_MAX_SIZE
      ));
    return;
  }

  Offset = (Platform->Bdsm == IgdBdsm64) ? IGD_PCI_BDSM64_OFFSET : IGD_PCI_BDSM_OFFSET;
  Dwords = (Platform->Bdsm == IgdBdsm64) ? 2 : 1;
  Bdsm[0] = 0;
  Bdsm[1] = 0;
  Status  = PciIo->Pci.Read (PciIo, EfiPciIoWidthUint32, Offset, Dwords, Bdsm);
  if (EFI_ERROR (Status)) {
    DEBUG ((DEBUG_ERROR, "IgdAssignmentDxe: reading BDSM failed: %r\n", Status));
    return;
  }

  if ((Bdsm[0] != 0) || (Bdsm[1] != 0)) {
    DEBUG ((DEBUG_INFO, "IgdAssignmentDxe: BDSM already 0x%lx, stolen memory left alone\n", LShiftU64 (Bdsm[1], 32) | Bdsm[0]));
    return;
  }

  Pages  = EFI_SIZE_TO_PAGES ((UINTN)Size);
  Status = IgdAllocateBelow4Gb (EfiReservedMemoryType, Pages, EFI_SIZE_TO_PAGES ((UINTN)IGD_STOLEN_ALIGNMENT), &Address);
  if (EFI_ERROR (Status)) {
    DEBUG ((DEBUG_ERROR, "IgdAssignmentDxe: no memory below 4 GiB for %lu bytes of stolen memory: %r\n", Size, Status));
    return;
  }

  ZeroMem ((VOID *)(UINTN)Address, (UINTN)Size);

  //
  // One dword, or two for the 64-bit BDSM (low at 0xC0, high at 0xC4).
  //
  Bdsm[0] = (UINT32)Address;
  Bdsm[1] = (UINT32)RShiftU64 (Address, 32);
  Status  = PciIo->Pci.Write (PciIo, EfiPciIoWidthUint32, Offset, Dwords, Bdsm);
  if (EFI_ERROR (Status)) {
    DEBUG ((DEBUG_ERROR, "IgdAssignmentDxe: writing BDSM failed: %r\n", Status));
    gBS->FreePages (Address, Pages);
    return;
  }

  DEBUG ((
    DEBUG_INFO,
    "IgdAssignmentDxe: stolen memory %lu bytes at 0x%lx, BDSM 0x%x (%a)\n",
    Size,
    Address,
    Offset,
    (Platform->Bdsm == IgdBdsm64) ? "64-bit" : "32-bit"
    ));
}

/**
  True when Handle was handled before; otherwise remembers it.
**/
STATIC
BOOLEAN
IgdAlreadyHandled (
  IN EFI_HANDLE  Handle
  )
{
  UINTN  Index;

  for (Index = 0; Index < mHandledCount; Index++) {
    if (mHandled[Index] == Handle) {
      return TRUE;
    }
  }

  if (mHandledCount < IGD_MAX_HANDLED) {
    mHandled[mHandledCount++] = Handle;
  } else {
    DEBUG ((DEBUG_WARN, "IgdAssignmentDxe: more than %u Intel display functions, not remembering more\n", IGD_MAX_HANDLED));
  }

  return FALSE;
}

/**
  Looks at one PciIo instance and does the IGD setup when it is an Intel display
  function (or 00:02.0 under the test switch).
**/
STATIC
VOID
IgdHandlePciIo (
  IN EFI_HANDLE  Handle
  )
{
  EFI_STATUS               Status;
  EFI_PCI_IO_PROTOCOL      *PciIo;
  UINT16                   Ids[2];
  UINT8                    ClassCode[3];
  UINTN                    Segment;
  UINTN                    Bus;
  UINTN                    Device;
  UINTN                    Function;
  BOOLEAN                  IsIgdSlot;
  UINT16                   DeviceId;
  CONST IGD_PLATFORM_INFO  *Platform;

  Status = gBS->HandleProtocol (Handle, &gEfiPciIoProtocolGuid, (VOID **)&PciIo);
  if (EFI_ERROR (Status)) {
    return;
  }

  Status = PciIo->Pci.Read (PciIo, EfiPciIoWidthUint16, PCI_VENDOR_ID_OFFSET, 2, Ids);
  if (!EFI_ERROR (Status)) {
    Status = PciIo->Pci.Read (PciIo, EfiPciIoWidthUint8, PCI_CLASSCODE_OFFSET, sizeof ClassCode, ClassCode);
  }

  if (!EFI_ERROR (Status)) {
    Status = PciIo->GetLocation (PciIo, &Segment, &Bus, &Device, &Function);
  }

  if (EFI_ERROR (Status)) {
    return;
  }

  if (!IgdIsDisplayClass (((UINT32)ClassCode[2] << 16) | ((UINT32)ClassCode[1] << 8) | ClassCode[0])) {
    return;
  }

  IsIgdSlot = (BOOLEAN)(Segment == 0 && Bus == IGD_PCI_BUS && Device == IGD_PCI_DEVICE && Function == IGD_PCI_FUNCTION);
  if ((!IsIgdSlot || !mDeviceIdOverride) && (Ids[0] != IGD_PCI_VENDOR_INTEL)) {
    return;
  }

  if (IgdAlreadyHandled (Handle)) {
    return;
  }

  if (IsIgdSlot && mDeviceIdOverride) {
    DeviceId = mDeviceIdOverrideValue;
    DEBUG ((
      DEBUG_INFO,
      "IgdAssignmentDxe: %02x:%02x.%x is %04x:%04x, treated as %04x:%04x (%a)\n",
      (UINT32)Bus,
      (UINT32)Device,
      (UINT32)Function,
      Ids[0],
      Ids[1],
      IGD_PCI_VENDOR_INTEL,
      DeviceId,
      IGD_FW_CFG_DEVICE_ID
      ));
  } else {
    DeviceId = Ids[1];
  }

  Platform = IgdLookupDevice (mIgdDeviceIds, IGD_DEVICE_ID_COUNT, mIgdPlatforms, IGD_PLATFORM_COUNT, DeviceId);
  if (Platform == NULL) {
    DEBUG ((
      DEBUG_INFO,
      "IgdAssignmentDxe: %02x:%02x.%x %04x:%04x is not an integrated GPU of the device table, skipped\n",
      (UINT32)Bus,
      (UINT32)Device,
      (UINT32)Function,
      IGD_PCI_VENDOR_INTEL,
      DeviceId
      ));
    return;
  }

  DEBUG ((
    DEBUG_INFO,
    "IgdAssignmentDxe: %02x:%02x.%x %04x:%04x %a gen %a\n",
    (UINT32)Bus,
    (UINT32)Device,
    (UINT32)Function,
    IGD_PCI_VENDOR_INTEL,
    DeviceId,
    Platform->Key,
    Platform->GraphicsVersion
    ));

  IgdSetupOpRegion (PciIo);
  if (IsIgdSlot) {
    IgdSetupStolenMemory (PciIo, Platform);
  }
}

/**
  PciIo installation notify: handles each newly installed instance.
**/
STATIC
VOID
EFIAPI
IgdPciIoNotify (
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

    IgdHandlePciIo (Handle);
  }
}

/**
  Entry point: scans fw_cfg, registers the PciIo notify, then handles the PciIo
  instances that already exist (option-ROM mode).
**/
EFI_STATUS
EFIAPI
IgdAssignmentDxeEntryPoint (
  IN EFI_HANDLE        ImageHandle,
  IN EFI_SYSTEM_TABLE  *SystemTable
  )
{
  EFI_STATUS  Status;
  EFI_EVENT   Event;
  EFI_HANDLE  *Handles;
  UINTN       Count;
  UINTN       Index;

  if (!IgdFwCfgScan ()) {
    //
    // Not QEMU: no OpRegion or size to hand over; GMCH alone may still size
    // stolen memory, so carry on.
    //
    DEBUG ((DEBUG_INFO, "IgdAssignmentDxe: no fw_cfg\n"));
  }

  Status = gBS->CreateEvent (EVT_NOTIFY_SIGNAL, TPL_CALLBACK, IgdPciIoNotify, NULL, &Event);
  if (EFI_ERROR (Status)) {
    DEBUG ((DEBUG_ERROR, "IgdAssignmentDxe: CreateEvent failed: %r\n", Status));
    return Status;
  }

  Status = gBS->RegisterProtocolNotify (&gEfiPciIoProtocolGuid, Event, &mPciIoRegistration);
  if (EFI_ERROR (Status)) {
    DEBUG ((DEBUG_ERROR, "IgdAssignmentDxe: RegisterProtocolNotify failed: %r\n", Status));
    gBS->CloseEvent (Event);
    return Status;
  }

  //
  // Instances installed before the notify was registered; one installed in
  // between is seen by both paths and handled once (IgdAlreadyHandled).
  //
  Status = gBS->LocateHandleBuffer (ByProtocol, &gEfiPciIoProtocolGuid, NULL, &Count, &Handles);
  if (!EFI_ERROR (Status)) {
    for (Index = 0; Index < Count; Index++) {
      IgdHandlePciIo (Handles[Index]);
    }

    gBS->FreePool (Handles);
  }

  return EFI_SUCCESS;
}
