/** @file
  Platform GOP policy for OVMF: installs PLATFORM_GOP_POLICY_PROTOCOL so the
  Intel GOP driver, when it finds an Intel iGPU passed through to the virtual
  machine, learns the lid state and gets the VBT of the machine it came from.

  The VBT is the body of the RAW section of the freeform file
  gOvmfGopVbtFileGuid in a firmware volume. It is handed out whole, as it was
  given to the build (the GOP reads the VBT header's own size fields).

  SPDX-License-Identifier: BSD-2-Clause-Patent
**/

#include <PiDxe.h>

#include <Library/BaseLib.h>
#include <Library/DebugLib.h>
#include <Library/DxeServicesLib.h>
#include <Library/UefiBootServicesTableLib.h>

#include <Protocol/PlatformGopPolicy.h>

//
// The VBT header starts with a 20-byte signature, "$VBT" and a platform name
// padded with spaces (Intel VBT specification, VBT header).
//
#define VBT_SIGNATURE_LENGTH  20

STATIC EFI_PHYSICAL_ADDRESS  mVbtAddress = 0;
STATIC UINT32                mVbtSize    = 0;

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
  Hands out the VBT found in the firmware volume at driver start.

  @param[out] VbtAddress  Address of the VBT.
  @param[out] VbtSize     Size of the VBT in bytes.

  @retval EFI_SUCCESS            Both outputs are set.
  @retval EFI_INVALID_PARAMETER  An output pointer is NULL.
  @retval EFI_NOT_FOUND          The firmware volume holds no VBT.
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

  if (mVbtSize == 0) {
    return EFI_NOT_FOUND;
  }

  *VbtAddress = mVbtAddress;
  *VbtSize    = mVbtSize;
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
