// FFS file GUIDs and UI names under which firmware ships the Intel GOP driver, its VBT
// and the helpers around them. A GUID or name only says where to look: whether a file
// really is a GOP driver or a VBT is decided by its bytes (gop.ts, vbt.ts), because
// vendors reuse GOP-like names for policy and debug modules.
//
// Sources are cited per entry. "corpus manifest" means the ground truth shipped with the
// test corpus (measured with UEFIExtract on the named image).

export interface KnownGuid {
  readonly guid: string;
  readonly name: string;
  /** Where this GUID was seen. */
  readonly source: string;
}

/** FFS file GUIDs of Intel GOP driver files (DXE driver, PE32 section). */
export const KNOWN_GOP_FILE_GUIDS: readonly KnownGuid[] = [
  {
    guid: '1647B4F3-3E8A-4FDD-81C8-328ED647AB1A',
    name: 'IntelGopDriver',
    // Also the GOP file GUID of Intel/AMI client platform firmware (Gemini Lake era).
    source:
      'corpus manifest: images/geminilake-ovmf-with-gop-vbt-gk41.fd (my33love/gk41-pve-ovmf OVMF_CODE.fd)',
  },
  {
    guid: 'FF0C8745-3270-4439-B74F-3E45F8C77064',
    name: 'IntelGopDriver',
    source:
      'public edk2 payload sources: mIntelGopDriverFileGuid of a CBFS PlatformGopPolicy loader and the GOP_FFS_GUID of firmware FFS scripts (found by code search; not pinned to one repository)',
  },
];

/** FFS file GUIDs of VBT files (freeform file, raw section starting with "$VBT"). */
export const KNOWN_VBT_FILE_GUIDS: readonly KnownGuid[] = [
  {
    guid: '1647B4F3-3E8A-4FEF-81C8-328ED647AB1A',
    name: 'IntelGopVbt',
    source: 'corpus manifest: images/geminilake-ovmf-with-gop-vbt-gk41.fd (file without UI section)',
  },
  {
    guid: 'E08CA6D5-8D02-43AE-ABB1-952CC787C933',
    name: 'IntelGopVbt1',
    source:
      'corpus manifest: images/geminilake-protectli-vp2410-ifwi.bin (Dasharo/dasharo-blobs protectli/vault_glk/ifwi.bin)',
  },
  {
    guid: 'DBADD769-E86A-4819-8120-E991792C0BC1',
    name: 'IntelGopVbt2',
    source:
      'corpus manifest: images/geminilake-protectli-vp2410-ifwi.bin (Dasharo/dasharo-blobs protectli/vault_glk/ifwi.bin)',
  },
  {
    guid: '56752DA9-DE6B-4895-8819-1945B6B76C22',
    name: 'IntelGopVbt',
    source:
      'system76/gop-policy README.md: FILE FREEFORM = 56752da9-... { SECTION RAW = vbt.rom; SECTION UI = "IntelGopVbt" }',
  },
];

/** EFI_PLATFORM_GOP_POLICY_PROTOCOL: the GOP driver waits for it and asks it for the VBT. */
export const GOP_POLICY_PROTOCOL_GUID = 'EC2E931B-3281-48A5-8107-DF8A8BED3C5D';
/** Source of GOP_POLICY_PROTOCOL_GUID. */
export const GOP_POLICY_PROTOCOL_GUID_SOURCE =
  'tianocore/edk2 UefiPayloadPkg/UefiPayloadPkg.dec (edk2-stable202211): gPlatformGOPPolicyGuid; also system76/gop-policy src/gop_policy.rs GopPolicy::GUID';

/** Files with GOP-like names that are NOT Intel GOP drivers (negative knowledge). */
export const KNOWN_NON_GOP_FILES: readonly KnownGuid[] = [
  {
    guid: '9737D7CA-D869-46E5-A5EF-75D9538688DE',
    name: 'PlatformGOPPolicy',
    source:
      'corpus manifest: images/geminilake-ovmf-with-gop-vbt-gk41.fd (the policy driver that serves the VBT)',
  },
  {
    guid: '2A202DAE-364E-4C93-B132-AEAB857EBCD4',
    name: 'GvtGopDxe',
    source:
      'corpus manifest: images/geminilake-ovmf-with-gop-vbt-gk41.fd; FILE_GUID of the GVT-g GOP driver INF (Intel, OvmfPkg fork)',
  },
  {
    guid: 'B8FE3D49-DCF3-4CBB-8070-47B4F5A34559',
    name: 'GopDebugDxe',
    source: 'corpus manifest: images/kabylake-platform-clevo-p870km-modded-spi.rom (AMI Aptio V)',
  },
];

/** UI (user interface section) names of GOP driver files. */
export const GOP_UI_NAMES: readonly string[] = ['IntelGopDriver'];
/** UI names of VBT files; some VBT files carry no UI section at all. */
export const VBT_UI_NAMES: readonly string[] = ['IntelGopVbt', 'IntelGopVbt1', 'IntelGopVbt2'];

function index(list: readonly KnownGuid[]): ReadonlyMap<string, KnownGuid> {
  return new Map(list.map((entry) => [entry.guid, entry]));
}

const GOP_BY_GUID = index(KNOWN_GOP_FILE_GUIDS);
const VBT_BY_GUID = index(KNOWN_VBT_FILE_GUIDS);
const NON_GOP_BY_GUID = index(KNOWN_NON_GOP_FILES);

/** The known GOP file entry for a GUID string (any case), or undefined. */
export function knownGopFile(guid: string): KnownGuid | undefined {
  return GOP_BY_GUID.get(guid.toUpperCase());
}

/** The known VBT file entry for a GUID string (any case), or undefined. */
export function knownVbtFile(guid: string): KnownGuid | undefined {
  return VBT_BY_GUID.get(guid.toUpperCase());
}

/** The known non-GOP (policy/helper/debug) file entry for a GUID string, or undefined. */
export function knownNonGopFile(guid: string): KnownGuid | undefined {
  return NON_GOP_BY_GUID.get(guid.toUpperCase());
}
