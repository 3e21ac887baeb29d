/** @file
  The pure logic of IGD assignment, shared by IgdAssignmentDxe, PlatformGopPolicyDxe
  and host-side tests: the device table lookup, stolen-memory sizing and bounds,
  fw_cfg directory entries, the igd-device-id test switch and the search for the
  VBT in an IGD OpRegion.

  Everything here is static inline C over plain integer types and byte buffers:
  no EDK2 library, no protocol, no memory access outside the buffers passed in.
  Inside EDK2 the base types come from Base.h (via PiDxe.h/Uefi.h). On a host,
  define IGD_LOGIC_HOST before including this file and it supplies the few EDK2
  typedefs it uses from <stdint.h>.

  Sources: QEMU docs/igd-assign.txt and hw/vfio/igd.c (fw_cfg files, ASLS, BDSM),
  Linux drivers/gpu/drm/i915/display/intel_opregion.c (OpRegion layout, RVDA),
  Linux drivers/gpu/drm/i915/display/intel_bios.c (intel_bios_is_valid_vbt),
  Linux arch/x86/kernel/early-quirks.c (GMS encodings), QEMU docs/specs/fw_cfg.rst.

  SPDX-License-Identifier: BSD-2-Clause-Patent
**/

#ifndef IGD_ASSIGNMENT_LOGIC_H_
#define IGD_ASSIGNMENT_LOGIC_H_

#ifdef IGD_LOGIC_HOST
  #include <stdint.h>
typedef uint8_t   UINT8;
typedef uint16_t  UINT16;
typedef uint32_t  UINT32;
typedef uint64_t  UINT64;
typedef uintptr_t UINTN;
typedef char      CHAR8;
typedef uint8_t   BOOLEAN;
  #ifndef TRUE
    #define TRUE   ((BOOLEAN)1)
    #define FALSE  ((BOOLEAN)0)
  #endif
  #ifndef NULL
    #define NULL  ((void *)0)
  #endif
  #define CONST   const
  #define STATIC  static
  #define VOID    void
#endif

//
// PCI configuration registers of the IGD (QEMU docs/igd-assign.txt).
//
#define IGD_PCI_GMCH_OFFSET    0x50   // Graphics Control: GMS, the stolen size
#define IGD_PCI_BDSM_OFFSET    0x5C   // Base of Data Stolen Memory, 32-bit (Gen6 to Gen9.5)
#define IGD_PCI_BDSM64_OFFSET  0xC0   // Base of Data Stolen Memory, 64-bit (Gen11, Gen12)
#define IGD_PCI_ASLS_OFFSET    0xFC   // ASL Storage: physical address of the OpRegion

#define IGD_PCI_VENDOR_INTEL   0x8086
#define IGD_PCI_CLASS_DISPLAY  0x03

//
// The IGD that QEMU's legacy-mode assignment (and the Intel GOP) expects: 00:02.0.
//
#define IGD_PCI_BUS       0
#define IGD_PCI_DEVICE    2
#define IGD_PCI_FUNCTION  0

//
// fw_cfg files. The first two come from QEMU (hw/vfio/igd.c); the third is
// ovmf-build's test switch (see IgdParseDeviceIdText).
//
#define IGD_FW_CFG_OPREGION   "etc/igd-opregion"
#define IGD_FW_CFG_BDSM_SIZE  "etc/igd-bdsm-size"
#define IGD_FW_CFG_DEVICE_ID  "opt/ovmf-build/igd-device-id"

//
// fw_cfg over I/O ports (QEMU docs/specs/fw_cfg.rst): a 16-bit selector port and
// an 8-bit data port; the file directory is item 0x19, a big-endian 32-bit count
// followed by 64-byte entries { BE32 size, BE16 select, BE16 reserved, name[56] }.
//
#define IGD_FW_CFG_PORT_SELECTOR   0x510
#define IGD_FW_CFG_PORT_DATA       0x511
#define IGD_FW_CFG_ITEM_SIGNATURE  0x0000
#define IGD_FW_CFG_ITEM_FILE_DIR   0x0019
#define IGD_FW_CFG_FILE_ENTRY_SIZE 64
#define IGD_FW_CFG_FILE_NAME_SIZE  56
#define IGD_FW_CFG_MAX_FILES       4096

//
// Bounds. An OpRegion is 8 KiB (the OPREGION_SIZE of i915 and vfio-pci); from
// OpRegion 2.1 the host kernel appends the raw VBT that RVDA/RVDS describe, and a
// VBT cannot exceed 64 KiB since its header's vbt_size field is 16 bits. So a
// fw_cfg OpRegion outside 8 KiB .. 8 KiB + 64 KiB is refused.
//
#define IGD_OPREGION_SIZE      0x2000
#define IGD_OPREGION_MAX_SIZE  (IGD_OPREGION_SIZE + 0x10000)

//
// Stolen memory is 1 MiB aligned (BDSM bits 31:20 hold the base). The largest GMS
// the Gen8/Gen9+ encodings define in Intel's datasheets is 2 GiB (0x40 * 32 MiB),
// and QEMU 7.2 adds the GTT's own stolen part (GGMS, at most 8 MiB) to
// etc/igd-bdsm-size, so a larger size is refused.
//
#define IGD_STOLEN_ALIGNMENT  0x100000ULL
#define IGD_STOLEN_MAX_SIZE   (0x80000000ULL + 0x800000ULL)

//
// OpRegion layout (intel_opregion.c): header at 0, mailbox 3 (ASLE) at 0x300,
// mailbox 4 (VBT, 6 KiB) at 0x400, mailbox 5 (ASLE ext) at 0x1C00.
//
#define IGD_OPREGION_SIGNATURE        "IntelGraphicsMem"
#define IGD_OPREGION_SIGNATURE_SIZE   16
#define IGD_OPREGION_OVER_MINOR       0x16  // header.over.minor (UINT8)
#define IGD_OPREGION_OVER_MAJOR       0x17  // header.over.major (UINT8)
#define IGD_OPREGION_MBOXES           0x58  // header.mboxes (UINT32)
#define IGD_OPREGION_ASLE_OFFSET      0x300
#define IGD_OPREGION_VBT_OFFSET       0x400
#define IGD_OPREGION_ASLE_EXT_OFFSET  0x1C00
#define IGD_OPREGION_RVDA             (IGD_OPREGION_ASLE_OFFSET + 0xBA) // asle.rvda (UINT64)
#define IGD_OPREGION_RVDS             (IGD_OPREGION_ASLE_OFFSET + 0xC2) // asle.rvds (UINT32)
#define IGD_OPREGION_MBOX_ASLE        0x04  // mailbox 3
#define IGD_OPREGION_MBOX_ASLE_EXT    0x10  // mailbox 5

//
// VBT header (intel_vbt_defs.h struct vbt_header, 48 bytes) and BDB header
// (struct bdb_header, 22 bytes).
//
#define IGD_VBT_HEADER_SIZE      48
#define IGD_VBT_SIZE_OFFSET      0x18  // vbt_header.vbt_size (UINT16)
#define IGD_VBT_BDB_OFFSET       0x1C  // vbt_header.bdb_offset (UINT32)
#define IGD_BDB_HEADER_SIZE      22
#define IGD_BDB_SIZE_OFFSET      0x14  // bdb_header.bdb_size (UINT16)

typedef enum {
  IgdBdsmNone = 0,  // Meteor Lake and newer: nothing to program
  IgdBdsm32   = 1,  // dword at 0x5C
  IgdBdsm64   = 2   // qword at 0xC0/0xC4
} IGD_BDSM_LAYOUT;

typedef enum {
  IgdGmsNone = 0,
  IgdGmsGen6 = 1,   // GMCH bits 7:3, 32 MiB units
  IgdGmsGen8 = 2,   // GMCH bits 15:8, 32 MiB units
  IgdGmsChv  = 3,   // GMCH bits 15:8, Cherryview's 4 MiB ranges above 0x10
  IgdGmsGen9 = 4    // GMCH bits 15:8, 32 MiB units below 0xF0, 4 MiB units from 0xF0
} IGD_GMS_ENCODING;

typedef struct {
  CONST CHAR8    *Key;              // "cfl", "adln", "mtl"
  CONST CHAR8    *GraphicsVersion;  // "9.5", "12", "12.70"
  UINT8          Bdsm;              // IGD_BDSM_LAYOUT
  UINT8          Gms;               // IGD_GMS_ENCODING
} IGD_PLATFORM_INFO;

typedef struct {
  UINT16    DeviceId;
  UINT16    PlatformIndex;  // index into the platform table
} IGD_DEVICE_ID_ENTRY;

typedef enum {
  IgdVbtSourceNone     = 0,
  IgdVbtSourceMailbox4 = 1,
  IgdVbtSourceRvda     = 2
} IGD_VBT_SOURCE;

typedef struct {
  UINT8     Source;   // IGD_VBT_SOURCE
  UINT64    Offset;   // from the first byte of the OpRegion
  UINT32    Size;     // the VBT header's vbt_size
} IGD_VBT_LOCATION;

//
// Little- and big-endian reads from byte buffers (no alignment assumed).
//
STATIC inline UINT16
IgdReadLe16 (
  CONST UINT8  *Bytes
  )
{
  return (UINT16)(Bytes[0] | ((UINT16)Bytes[1] << 8));
}

STATIC inline UINT32
IgdReadLe32 (
  CONST UINT8  *Bytes
  )
{
  return (UINT32)Bytes[0] | ((UINT32)Bytes[1] << 8) | ((UINT32)Bytes[2] << 16) | ((UINT32)Bytes[3] << 24);
}

STATIC inline UINT64
IgdReadLe64 (
  CONST UINT8  *Bytes
  )
{
  return (UINT64)IgdReadLe32 (Bytes) | ((UINT64)IgdReadLe32 (Bytes + 4) << 32);
}

STATIC inline UINT16
IgdReadBe16 (
  CONST UINT8  *Bytes
  )
{
  return (UINT16)(((UINT16)Bytes[0] << 8) | Bytes[1]);
}

STATIC inline UINT32
IgdReadBe32 (
  CONST UINT8  *Bytes
  )
{
  return ((UINT32)Bytes[0] << 24) | ((UINT32)Bytes[1] << 16) | ((UINT32)Bytes[2] << 8) | (UINT32)Bytes[3];
}

/**
  Binary search of a device-ID table sorted by DeviceId (IgdDeviceTable.h).

  @return The entry's platform, or NULL when DeviceId is not in the table.
**/
STATIC inline CONST IGD_PLATFORM_INFO *
IgdLookupDevice (
  CONST IGD_DEVICE_ID_ENTRY  *Devices,
  UINTN                      DeviceCount,
  CONST IGD_PLATFORM_INFO    *Platforms,
  UINTN                      PlatformCount,
  UINT16                     DeviceId
  )
{
  UINTN  Low;
  UINTN  High;
  UINTN  Middle;

  Low  = 0;
  High = DeviceCount;
  while (Low < High) {
    Middle = Low + (High - Low) / 2;
    if (Devices[Middle].DeviceId == DeviceId) {
      return Devices[Middle].PlatformIndex < PlatformCount ? &Platforms[Devices[Middle].PlatformIndex] : NULL;
    }

    if (Devices[Middle].DeviceId < DeviceId) {
      Low = Middle + 1;
    } else {
      High = Middle;
    }
  }

  return NULL;
}

/**
  Stolen-memory size in bytes that GMCH (config 0x50, 16 bits) asks for, decoded
  the platform's way (early-quirks.c: gen6_stolen_size, gen8_stolen_size,
  chv_stolen_size, gen9_stolen_size). 0 when the field is 0 or the encoding is
  IgdGmsNone. Mirrors stolenSizeFromGmch in src/igd/device-table.ts.
**/
STATIC inline UINT64
IgdStolenSizeFromGmch (
  UINT8   Encoding,
  UINT32  Gmch
  )
{
  UINT32  Gms;

  switch (Encoding) {
    case IgdGmsGen6:
      return (UINT64)((Gmch >> 3) & 0x1F) * 32 * 0x100000ULL;
    case IgdGmsGen8:
      return (UINT64)((Gmch >> 8) & 0xFF) * 32 * 0x100000ULL;
    case IgdGmsChv:
      Gms = (Gmch >> 8) & 0xFF;
      if (Gms < 0x11) {
        return (UINT64)Gms * 32 * 0x100000ULL;
      }

      if (Gms < 0x17) {
        return ((UINT64)(Gms - 0x11) * 4 + 8) * 0x100000ULL;
      }

      return ((UINT64)(Gms - 0x17) * 4 + 4) * 0x100000ULL;
    case IgdGmsGen9:
      Gms = (Gmch >> 8) & 0xFF;
      if (Gms < 0xF0) {
        return (UINT64)Gms * 32 * 0x100000ULL;
      }

      return ((UINT64)(Gms - 0xF0) * 4 + 4) * 0x100000ULL;
    default:
      return 0;
  }
}

/**
  A stolen size the driver accepts: a non-zero multiple of 1 MiB, at most
  IGD_STOLEN_MAX_SIZE.
**/
STATIC inline BOOLEAN
IgdStolenSizeValid (
  UINT64  Size
  )
{
  return (BOOLEAN)(Size != 0 && (Size % IGD_STOLEN_ALIGNMENT) == 0 && Size <= IGD_STOLEN_MAX_SIZE);
}

/**
  An etc/igd-opregion size the driver accepts: 8 KiB to 8 KiB + 64 KiB.
**/
STATIC inline BOOLEAN
IgdOpRegionSizeValid (
  UINT64  Size
  )
{
  return (BOOLEAN)(Size >= IGD_OPREGION_SIZE && Size <= IGD_OPREGION_MAX_SIZE);
}

/**
  Rounds Value up to a multiple of Alignment (a power of two); returns 0 when
  the result does not fit in 64 bits.
**/
STATIC inline UINT64
IgdAlignUp (
  UINT64  Value,
  UINT64  Alignment
  )
{
  if (Value > ~(UINT64)0 - (Alignment - 1)) {
    return 0;
  }

  return (Value + Alignment - 1) & ~(Alignment - 1);
}

/**
  True for a PCI class code whose base class is display (03h): VGA (0300h), XGA
  (0301h), 3D (0302h) or other (0380h). ClassCode is the 24-bit value of config
  0x09..0x0B (base class in bits 23:16).
**/
STATIC inline BOOLEAN
IgdIsDisplayClass (
  UINT32  ClassCode
  )
{
  return (BOOLEAN)(((ClassCode >> 16) & 0xFF) == IGD_PCI_CLASS_DISPLAY);
}

/**
  The opt/ovmf-build/igd-device-id test switch: 1 to 4 hex digits, optionally
  "0x"-prefixed, optionally followed by whitespace and NULs (QEMU's -fw_cfg
  string= and file= forms), e.g. "3e9b" or "0x46D4\n".

  @retval TRUE   *DeviceId is set.
  @retval FALSE  The text is not such a device ID.
**/
STATIC inline BOOLEAN
IgdParseDeviceIdText (
  CONST UINT8  *Text,
  UINTN        Length,
  UINT16       *DeviceId
  )
{
  UINTN   Index;
  UINTN   Digits;
  UINT32  Value;
  UINT8   Char;

  Index = 0;
  if ((Length >= 2) && (Text[0] == '0') && ((Text[1] == 'x') || (Text[1] == 'X'))) {
    Index = 2;
  }

  Digits = 0;
  Value  = 0;
  for ( ; Index < Length; Index++) {
    Char = Text[Index];
    if ((Char >= '0') && (Char <= '9')) {
      Value = Value * 16 + (UINT32)(Char - '0');
    } else if ((Char >= 'a') && (Char <= 'f')) {
      Value = Value * 16 + (UINT32)(Char - 'a' + 10);
    } else if ((Char >= 'A') && (Char <= 'F')) {
      Value = Value * 16 + (UINT32)(Char - 'A' + 10);
    } else {
      break;
    }

    Digits++;
    if (Digits > 4) {
      return FALSE;
    }
  }

  for ( ; Index < Length; Index++) {
    Char = Text[Index];
    if ((Char != 0) && (Char != ' ') && (Char != '\t') && (Char != '\r') && (Char != '\n')) {
      return FALSE;
    }
  }

  if (Digits == 0) {
    return FALSE;
  }

  *DeviceId = (UINT16)Value;
  return TRUE;
}

/**
  True when a 64-byte fw_cfg directory entry names Name (NUL-terminated, shorter
  than 56 bytes). The entry's name is NUL-padded.
**/
STATIC inline BOOLEAN
IgdFwCfgEntryNameIs (
  CONST UINT8  *Entry,
  CONST CHAR8  *Name
  )
{
  UINTN  Index;

  for (Index = 0; Index < IGD_FW_CFG_FILE_NAME_SIZE; Index++) {
    if (Entry[8 + Index] != (UINT8)Name[Index]) {
      return FALSE;
    }

    if (Name[Index] == '\0') {
      return TRUE;
    }
  }

  return FALSE;
}

/**
  intel_bios_is_valid_vbt: "$VBT", a vbt_size within Available, and a BIOS data
  block (header and bdb_size) inside vbt_size.

  @param[in]  Vbt        First byte of the candidate VBT.
  @param[in]  Available  Bytes readable at Vbt.
  @param[out] VbtSize    The header's vbt_size when valid.
**/
STATIC inline BOOLEAN
IgdVbtValid (
  CONST UINT8  *Vbt,
  UINT64       Available,
  UINT32       *VbtSize
  )
{
  UINT32  Size;
  UINT32  BdbOffset;

  if (Available < IGD_VBT_HEADER_SIZE) {
    return FALSE;
  }

  if ((Vbt[0] != '$') || (Vbt[1] != 'V') || (Vbt[2] != 'B') || (Vbt[3] != 'T')) {
    return FALSE;
  }

  Size = IgdReadLe16 (Vbt + IGD_VBT_SIZE_OFFSET);
  if ((Size < IGD_VBT_HEADER_SIZE) || (Size > Available)) {
    return FALSE;
  }

  BdbOffset = IgdReadLe32 (Vbt + IGD_VBT_BDB_OFFSET);
  if ((BdbOffset >= Size) || (IGD_BDB_HEADER_SIZE > Size - BdbOffset)) {
    return FALSE;
  }

  if (IgdReadLe16 (Vbt + BdbOffset + IGD_BDB_SIZE_OFFSET) > Size - BdbOffset) {
    return FALSE;
  }

  *VbtSize = Size;
  return TRUE;
}

/**
  True when the first 8 KiB at OpRegion are an IGD OpRegion header we read:
  the "IntelGraphicsMem" signature and a major version of at least 1.
**/
STATIC inline BOOLEAN
IgdOpRegionHeaderValid (
  CONST UINT8  *OpRegion,
  UINT64       Length
  )
{
  UINTN  Index;

  if (Length < IGD_OPREGION_SIZE) {
    return FALSE;
  }

  for (Index = 0; Index < IGD_OPREGION_SIGNATURE_SIZE; Index++) {
    if (OpRegion[Index] != (UINT8)IGD_OPREGION_SIGNATURE[Index]) {
      return FALSE;
    }
  }

  return (BOOLEAN)(OpRegion[IGD_OPREGION_OVER_MAJOR] >= 1);
}

/**
  Where RVDA puts the raw VBT, as an offset from the OpRegion's first byte, when
  the header uses it: version 2.0 or later, mailbox 3 (ASLE) present, RVDA and
  RVDS non-zero (intel_opregion_setup). RVDA is a physical address in OpRegion 2.0
  and relative to the OpRegion from 2.1; a relative RVDA must not point into the
  8 KiB OpRegion itself, and an address below OpRegionAddress has no offset.

  @param[in]  OpRegion         At least IGD_OPREGION_SIZE bytes (header checked).
  @param[in]  OpRegionAddress  Physical address of OpRegion[0] (ASLS).
  @param[out] Offset           RVDA as an offset from OpRegion[0].
  @param[out] Size             RVDS.

  @retval TRUE   The OpRegion points at a raw VBT at Offset.
  @retval FALSE  It does not (or not in a way this logic accepts).
**/
STATIC inline BOOLEAN
IgdOpRegionRvda (
  CONST UINT8  *OpRegion,
  UINT64       OpRegionAddress,
  UINT64       *Offset,
  UINT32       *Size
  )
{
  UINT8   Major;
  UINT8   Minor;
  UINT64  Rvda;
  UINT32  Rvds;

  Major = OpRegion[IGD_OPREGION_OVER_MAJOR];
  Minor = OpRegion[IGD_OPREGION_OVER_MINOR];
  if ((Major < 2) || ((IgdReadLe32 (OpRegion + IGD_OPREGION_MBOXES) & IGD_OPREGION_MBOX_ASLE) == 0)) {
    return FALSE;
  }

  Rvda = IgdReadLe64 (OpRegion + IGD_OPREGION_RVDA);
  Rvds = IgdReadLe32 (OpRegion + IGD_OPREGION_RVDS);
  if ((Rvda == 0) || (Rvds == 0)) {
    return FALSE;
  }

  if ((Major > 2) || (Minor >= 1)) {
    if (Rvda < IGD_OPREGION_SIZE) {
      return FALSE;
    }

    *Offset = Rvda;
  } else {
    if (Rvda < OpRegionAddress + IGD_OPREGION_SIZE) {
      return FALSE;
    }

    *Offset = Rvda - OpRegionAddress;
  }

  *Size = Rvds;
  return TRUE;
}

/**
  How many bytes from the OpRegion's first byte the VBT search may read: the
  8 KiB OpRegion, extended to the end of the RVDA VBT when IgdOpRegionRvda finds
  one that ends within IGD_OPREGION_MAX_SIZE. The caller checks that this many
  bytes are memory before calling IgdOpRegionFindVbt.
**/
STATIC inline UINT64
IgdOpRegionExtent (
  CONST UINT8  *OpRegion,
  UINT64       OpRegionAddress
  )
{
  UINT64  Offset;
  UINT32  Size;

  if (IgdOpRegionRvda (OpRegion, OpRegionAddress, &Offset, &Size) &&
      (Offset <= IGD_OPREGION_MAX_SIZE) && (Size <= IGD_OPREGION_MAX_SIZE - Offset))
  {
    return Offset + Size;
  }

  return IGD_OPREGION_SIZE;
}

/**
  Finds the VBT in an OpRegion the way i915 does: the raw VBT at RVDA/RVDS when
  the OpRegion has one (version 2.0+, needed when the VBT is larger than the 6 KiB
  of mailbox 4) and it lies within Length, else mailbox 4 at 0x400 (up to 0x1C00
  when mailbox 5 is present, else up to the end of the 8 KiB). The VBT must pass
  IgdVbtValid; its size is the header's vbt_size.

  @param[in]  OpRegion         Length readable bytes, starting at the OpRegion.
  @param[in]  Length           At least IGD_OPREGION_SIZE (IgdOpRegionExtent).
  @param[in]  OpRegionAddress  Physical address of OpRegion[0], for a 2.0 RVDA.
  @param[out] Location         Source, offset from OpRegion[0] and size.

  @retval TRUE   Location is set.
  @retval FALSE  No valid OpRegion header, or no valid VBT in it.
**/
STATIC inline BOOLEAN
IgdOpRegionFindVbt (
  CONST UINT8       *OpRegion,
  UINT64            Length,
  UINT64            OpRegionAddress,
  IGD_VBT_LOCATION  *Location
  )
{
  UINT64  Offset;
  UINT32  RvdaSize;
  UINT32  VbtSize;
  UINT64  Mailbox4Size;

  if (!IgdOpRegionHeaderValid (OpRegion, Length)) {
    return FALSE;
  }

  if (IgdOpRegionRvda (OpRegion, OpRegionAddress, &Offset, &RvdaSize) &&
      (Offset <= Length) && (RvdaSize <= Length - Offset) &&
      IgdVbtValid (OpRegion + Offset, RvdaSize, &VbtSize))
  {
    Location->Source = IgdVbtSourceRvda;
    Location->Offset = Offset;
    Location->Size   = VbtSize;
    return TRUE;
  }

  Mailbox4Size = ((IgdReadLe32 (OpRegion + IGD_OPREGION_MBOXES) & IGD_OPREGION_MBOX_ASLE_EXT) != 0)
                 ? IGD_OPREGION_ASLE_EXT_OFFSET - IGD_OPREGION_VBT_OFFSET
                 : IGD_OPREGION_SIZE - IGD_OPREGION_VBT_OFFSET;
  if (IgdVbtValid (OpRegion + IGD_OPREGION_VBT_OFFSET, Mailbox4Size, &VbtSize)) {
    Location->Source = IgdVbtSourceMailbox4;
    Location->Offset = IGD_OPREGION_VBT_OFFSET;
    Location->Size   = VbtSize;
    return TRUE;
  }

  return FALSE;
}

#endif // IGD_ASSIGNMENT_LOGIC_H_
