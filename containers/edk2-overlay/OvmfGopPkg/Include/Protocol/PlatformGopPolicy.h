/** @file
  PLATFORM_GOP_POLICY_PROTOCOL: the interface the Intel GOP driver locates to
  ask the platform for the lid state and for the Video BIOS Table (VBT).

  The layout (a UINT32 revision followed by two function pointers) and the
  GUID are fixed by the binary GOP drivers Intel ships; this header restates
  that interface so the policy driver can be built without Intel's sources.

  SPDX-License-Identifier: BSD-2-Clause-Patent
**/

#ifndef PLATFORM_GOP_POLICY_H_
#define PLATFORM_GOP_POLICY_H_

#define PLATFORM_GOP_POLICY_PROTOCOL_GUID \
  { 0xec2e931b, 0x3281, 0x48a5, { 0x81, 0x07, 0xdf, 0x8a, 0x8b, 0xed, 0x3c, 0x5d } }

#define PLATFORM_GOP_POLICY_PROTOCOL_REVISION_01  0x01

typedef enum {
  LidClosed,
  LidOpen,
  LidStatusMax
} LID_STATUS;

/**
  Reports whether the lid of the machine is open.

  @param[out] CurrentLidStatus  The lid state.

  @retval EFI_SUCCESS  CurrentLidStatus is set.
**/
typedef
EFI_STATUS
(EFIAPI *GET_PLATFORM_LID_STATUS)(
  OUT LID_STATUS  *CurrentLidStatus
  );

/**
  Hands the GOP driver the address and size of the VBT.

  @param[out] VbtAddress  Physical address of the first VBT byte.
  @param[out] VbtSize     Number of bytes at VbtAddress.

  @retval EFI_SUCCESS    Both outputs are set.
  @retval EFI_NOT_FOUND  The firmware carries no VBT.
**/
typedef
EFI_STATUS
(EFIAPI *GET_VBT_DATA)(
  OUT EFI_PHYSICAL_ADDRESS  *VbtAddress,
  OUT UINT32                *VbtSize
  );

typedef struct {
  UINT32                     Revision;
  GET_PLATFORM_LID_STATUS    GetPlatformLidStatus;
  GET_VBT_DATA               GetVbtData;
} PLATFORM_GOP_POLICY_PROTOCOL;

extern EFI_GUID  gPlatformGopPolicyProtocolGuid;

#endif
