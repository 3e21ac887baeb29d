// Structural verification of a built OVMF_CODE.fd: parse it with our own firmware parser
// and prove that the IGD volume (OvmfPkgX64.fdf [FV.IGDVOL], stored plain; in images built
// before it, the DXE volume) holds exactly the GOP driver and VBT we were given, and that the
// DXE volume ([FV.DXEFV], carried LZMA-compressed inside [FV.FVMAIN_COMPACT]) holds our policy
// and IGD assignment drivers, and IgdVolumeDxe where there is an IGD volume. Pure: bytes in,
// report out (or a VerificationError).
import { OvmfBuildError } from '../core/errors.js';
import { sha256 } from '../core/digest.js';
import { isGuidString } from '../core/guid.js';
import type { ErrorCode } from '../core/error-codes.js';
import {
  nodePath,
  type FileNode,
  type FirmwareNode,
  type FirmwareTree,
  type SectionNode,
  type VolumeNode,
} from '../formats/firmware-node.js';
import { listFiles, parseFirmware } from '../formats/firmware-tree.js';
import { EFI_SECTION_PE32, EFI_SECTION_RAW } from '../formats/section.js';
import { VerificationError } from './errors.js';
import {
  DEFAULT_GOP_FILE_GUID,
  DEFAULT_IGD_ASSIGNMENT_FILE_GUID,
  DEFAULT_POLICY_FILE_GUID,
  DEFAULT_VBT_FILE_GUID,
  IGD_VOLUME_DXE_FILE_GUID,
  IGD_VOLUME_NAME_GUID,
} from './guids.js';

/** FILE_GUID of the DXE core (MdeModulePkg/Core/Dxe/DxeMain.inf): its volume is the DXE volume. */
export const DXE_CORE_FILE_GUID = 'D6A2CB7F-6A18-4E2F-B43B-9920A733700A';
/** PI spec vol. 3, 2.1.4.1: the file types the DXE dispatcher dispatches. */
const EFI_FV_FILETYPE_DRIVER = 0x07;
const EFI_FV_FILETYPE_COMBINED_SMM_DXE = 0x0a;
const DISPATCHABLE_TYPES = new Set([EFI_FV_FILETYPE_DRIVER, EFI_FV_FILETYPE_COMBINED_SMM_DXE]);
/** Subsystems of a UEFI/DXE driver (PE Format, "Windows Subsystem"). */
const DRIVER_SUBSYSTEMS = new Set(['EFI_BOOT_SERVICE_DRIVER', 'EFI_RUNTIME_DRIVER']);

export interface VerifyStructureInput {
  /** The built OVMF_CODE.fd. */
  readonly code: Uint8Array;
  /** The GOP driver (.efi) that went into the build. */
  readonly gop: Uint8Array;
  /** The VBT that went into the build. */
  readonly vbt: Uint8Array;
  /**
   * FILE_GUID of the platform GOP policy driver.
   * @default '6FE0ECC8-FDFF-490E-A0C6-B60B3A8E98A2' (OvmfGopPkg PlatformGopPolicyDxe)
   */
  readonly policyFileGuid?: string;
  /** @default '1647B4F3-3E8A-4FDD-81C8-328ED647AB1A' */
  readonly gopFileGuid?: string;
  /** @default '1647B4F3-3E8A-4FEF-81C8-328ED647AB1A' */
  readonly vbtFileGuid?: string;
  /**
   * FILE_GUID of the IGD assignment driver.
   * @default '283B2335-ABD8-4B75-A8AA-004177A20A4B' (OvmfGopPkg IgdAssignmentDxe)
   */
  readonly igdAssignmentFileGuid?: string;
  /**
   * The helper drivers the build exported (BuildOvmfResult.helperDrivers): when given, each must
   * equal its driver's PE32 section in the DXE volume byte for byte, so an option ROM made from
   * them carries the very binaries that were verified here.
   * @default none (only the drivers' presence and kind are checked)
   */
  readonly helperDrivers?: { readonly igdAssignment?: Uint8Array; readonly gopPolicy?: Uint8Array };
}

export interface VerifiedFile {
  readonly fileGuid: string;
  /** Place in the tree, as nodePath prints it (UI names where present). */
  readonly path: string;
  /** EFI_FV_FILETYPE name, e.g. `DXE driver`, `Freeform`. */
  readonly fileType: string;
  /** Size and sha256 of the checked section body (PE32 image or RAW data). */
  readonly sizeInBytes: number;
  readonly sha256: string;
}

export interface VerifiedDriver extends VerifiedFile {
  readonly machine: string;
  readonly subsystem: string;
}

export interface StructureReport {
  readonly code: { readonly sizeInBytes: number; readonly sha256: string };
  readonly dxeVolume: {
    readonly name: string;
    readonly path: string;
    /** Algorithm of the section that carries the DXE volume (`LZMA` for OVMF), or null if stored plain. */
    readonly compression: string | null;
    readonly fileCount: number;
  };
  /** The volume holding the GOP and the VBT, when it is not the DXE volume (IGD_VOLUME_NAME_GUID). */
  readonly igdVolume: {
    readonly name: string;
    readonly path: string;
    readonly compression: string | null;
    readonly fileCount: number;
  } | null;
  readonly gop: VerifiedDriver;
  readonly vbt: VerifiedFile;
  readonly policy: VerifiedDriver;
  readonly igdAssignment: VerifiedDriver;
}

/** One failed check; verifyStructure throws the first, with all of them in `details.failures`. */
export interface StructureFailure {
  readonly code: ErrorCode;
  readonly message: string;
  readonly details: Record<string, unknown>;
}

function checkGuid(name: string, value: string): string {
  if (!isGuidString(value)) throw new TypeError(`Expected \`${name}\` to be a GUID string, got \`${value}\``);
  return value.toUpperCase();
}

function checkBytes(name: string, value: unknown): void {
  if (!(value instanceof Uint8Array)) {
    throw new TypeError(`Expected \`${name}\` to be a Uint8Array, got \`${typeof value}\``);
  }
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.length).equals(b);
}

/**
 * The failure for a section body in the image (`described`, `body`) that is not `expected`
 * byte for byte, with both digests and sizes; undefined when they are equal.
 */
function compareBody(
  code: ErrorCode,
  role: string,
  source: string,
  described: VerifiedFile,
  body: Uint8Array,
  expected: Uint8Array,
): StructureFailure | undefined {
  if (bytesEqual(body, expected)) return undefined;
  const expectedSha256 = sha256(expected);
  return {
    code,
    message:
      `${role} in the image (sha256 ${described.sha256}, ${described.sizeInBytes} bytes) differs from the ` +
      `${source} (sha256 ${expectedSha256}, ${expected.length} bytes)`,
    details: {
      fileGuid: described.fileGuid,
      path: described.path,
      expectedSha256,
      expectedSizeInBytes: expected.length,
      actualSha256: described.sha256,
      actualSizeInBytes: described.sizeInBytes,
    },
  };
}

/** Sections of a file, through compression/GUID-defined sections but not into nested volumes. */
function sectionsOf(file: FileNode): SectionNode[] {
  const found: SectionNode[] = [];
  const stack: FirmwareNode[] = [...file.children].reverse();
  while (stack.length > 0) {
    const node = stack.pop() as FirmwareNode;
    if (node.kind !== 'section') continue;
    found.push(node);
    for (let i = node.children.length - 1; i >= 0; i--) stack.push(node.children[i] as FirmwareNode);
  }
  return found;
}

/** The nearest enclosing volume of a node. */
function volumeOf(node: FirmwareNode): VolumeNode | null {
  for (let n = node.parent; n !== null; n = n.parent) if (n.kind === 'volume') return n;
  return null;
}

/** The algorithm of the nearest compression or GUID-defined section above a node. */
function compressionAbove(node: FirmwareNode): string | null {
  for (let n = node.parent; n !== null; n = n.parent) {
    if (n.kind === 'section' && n.compression !== null) return n.compression.algorithm;
  }
  return null;
}

function parseOvmf(code: Uint8Array): FirmwareTree {
  try {
    return parseFirmware(code);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new VerificationError(
      'E_VERIFY_NOT_OVMF',
      `the OVMF code image does not parse as UEFI firmware: ${reason}`,
      {
        sizeInBytes: code.length,
        reason,
        ...(error instanceof OvmfBuildError ? { parserCode: error.code } : {}),
      },
      { cause: error },
    );
  }
}

function describeDriver(file: FileNode, pe32: SectionNode): VerifiedDriver {
  return {
    fileGuid: file.guid,
    path: nodePath(file),
    fileType: file.file.typeName,
    sizeInBytes: pe32.body.length,
    sha256: sha256(pe32.body),
    machine: pe32.pe?.machineName ?? 'unknown',
    subsystem: pe32.pe?.subsystemName ?? 'unknown',
  };
}

/**
 * Every check on a parsed OVMF, without throwing for a failed check: the report parts that
 * passed and the failures in a fixed order (not OVMF, GOP, VBT, policy, IGD assignment). Throws
 * E_VERIFY_NOT_OVMF when no DXE volume can be found, since nothing else can be checked.
 */
export function inspectStructure(input: VerifyStructureInput): {
  readonly report: Partial<StructureReport> & Pick<StructureReport, 'code' | 'dxeVolume' | 'igdVolume'>;
  readonly failures: readonly StructureFailure[];
} {
  checkBytes('code', input.code);
  checkBytes('gop', input.gop);
  checkBytes('vbt', input.vbt);
  const gopGuid = checkGuid('gopFileGuid', input.gopFileGuid ?? DEFAULT_GOP_FILE_GUID);
  const vbtGuid = checkGuid('vbtFileGuid', input.vbtFileGuid ?? DEFAULT_VBT_FILE_GUID);
  const policyGuid = checkGuid('policyFileGuid', input.policyFileGuid ?? DEFAULT_POLICY_FILE_GUID);
  const igdGuid = checkGuid(
    'igdAssignmentFileGuid',
    input.igdAssignmentFileGuid ?? DEFAULT_IGD_ASSIGNMENT_FILE_GUID,
  );
  if (input.helperDrivers?.igdAssignment !== undefined)
    checkBytes('helperDrivers.igdAssignment', input.helperDrivers.igdAssignment);
  if (input.helperDrivers?.gopPolicy !== undefined)
    checkBytes('helperDrivers.gopPolicy', input.helperDrivers.gopPolicy);

  const tree = parseOvmf(input.code);
  const files = listFiles(tree);
  const dxeCore = files.find((file) => file.guid === DXE_CORE_FILE_GUID);
  const dxeVolume = dxeCore === undefined ? null : volumeOf(dxeCore);
  if (dxeVolume === null) {
    throw new VerificationError(
      'E_VERIFY_NOT_OVMF',
      `no DXE volume in the OVMF code image: the DXE core file ${DXE_CORE_FILE_GUID} was not found`,
      {
        format: tree.format,
        volumes: tree.stats.volumes,
        files: tree.stats.files,
        problems: tree.problems.slice(0, 20),
      },
    );
  }
  const dxeFiles = files.filter((file) => volumeOf(file) === dxeVolume);
  const igdVolume =
    files.map((file) => volumeOf(file)).find((volume) => volume?.name === IGD_VOLUME_NAME_GUID) ?? null;
  const igdFiles = igdVolume === null ? dxeFiles : files.filter((file) => volumeOf(file) === igdVolume);
  const report: {
    -readonly [K in keyof StructureReport]?: StructureReport[K];
  } & Pick<StructureReport, 'code' | 'dxeVolume' | 'igdVolume'> = {
    code: { sizeInBytes: input.code.length, sha256: sha256(input.code) },
    dxeVolume: {
      name: dxeVolume.name,
      path: nodePath(dxeVolume),
      compression: compressionAbove(dxeVolume),
      fileCount: dxeFiles.length,
    },
    igdVolume:
      igdVolume === null
        ? null
        : {
            name: igdVolume.name,
            path: nodePath(igdVolume),
            compression: compressionAbove(igdVolume),
            fileCount: igdFiles.length,
          },
  };
  const failures: StructureFailure[] = [];

  /** The single file with this GUID in the DXE (or IGD) volume, or a failure naming where else it is. */
  const findIn = (
    inIgdVolume: boolean,
    guid: string,
    role: string,
    missingCode: ErrorCode,
  ): FileNode | undefined => {
    const [volume, label, candidates] =
      inIgdVolume && igdVolume !== null
        ? [igdVolume, 'IGD volume', igdFiles]
        : [dxeVolume, 'DXE volume', dxeFiles];
    const matches = candidates.filter((file) => file.guid === guid);
    if (matches.length === 1) return matches[0];
    if (matches.length > 1) {
      failures.push({
        code: 'E_VERIFY_DUPLICATE_FILE',
        message: `${role} file ${guid} appears ${matches.length} times in the ${label}`,
        details: { fileGuid: guid, paths: matches.map((file) => nodePath(file)) },
      });
      return undefined;
    }
    const elsewhere = files.filter((file) => file.guid === guid).map((file) => nodePath(file));
    failures.push({
      code: missingCode,
      message:
        `${role} file ${guid} is not in the ${label} ${volume.name}` +
        (elsewhere.length > 0 ? ` (found elsewhere: ${elsewhere.join(', ')})` : ''),
      details: {
        fileGuid: guid,
        [volume === dxeVolume ? 'dxeVolume' : 'igdVolume']: nodePath(volume),
        foundElsewhere: elsewhere,
      },
    });
    return undefined;
  };
  const findInDxe = (guid: string, role: string, missingCode: ErrorCode): FileNode | undefined =>
    findIn(false, guid, role, missingCode);

  const gopFile = findIn(true, gopGuid, 'GOP driver', 'E_VERIFY_GOP_MISSING');
  if (gopFile !== undefined) {
    const pe32 = sectionsOf(gopFile).find((section) => section.section.type === EFI_SECTION_PE32);
    if (pe32 === undefined) {
      failures.push({
        code: 'E_VERIFY_GOP_MISMATCH',
        message: `GOP driver file ${gopGuid} has no PE32 section`,
        details: {
          fileGuid: gopGuid,
          path: nodePath(gopFile),
          expectedSha256: sha256(input.gop),
          expectedSizeInBytes: input.gop.length,
          actualSha256: null,
          actualSizeInBytes: null,
        },
      });
    } else {
      const described = describeDriver(gopFile, pe32);
      report.gop = described;
      const mismatch = compareBody(
        'E_VERIFY_GOP_MISMATCH',
        'GOP driver',
        'input GOP',
        described,
        pe32.body,
        input.gop,
      );
      if (mismatch !== undefined) failures.push(mismatch);
      if (!DISPATCHABLE_TYPES.has(gopFile.file.type)) {
        failures.push({
          code: 'E_VERIFY_GOP_NOT_DRIVER',
          message: `GOP driver file ${gopGuid} has type ${gopFile.file.typeName}, which the DXE dispatcher never loads`,
          details: { fileGuid: gopGuid, path: described.path, fileType: gopFile.file.type },
        });
      }
      if (igdVolume !== null && !dxeFiles.some((file) => file.guid === IGD_VOLUME_DXE_FILE_GUID)) {
        failures.push({
          code: 'E_VERIFY_GOP_NOT_DRIVER',
          message:
            `GOP driver file ${gopGuid} is in the IGD volume ${igdVolume.name}, which the DXE dispatcher never ` +
            `sees: IgdVolumeDxe (${IGD_VOLUME_DXE_FILE_GUID}), which hands it over, is not in the DXE volume`,
          details: { fileGuid: gopGuid, path: described.path, igdVolumeDxe: IGD_VOLUME_DXE_FILE_GUID },
        });
      }
    }
  }

  const vbtFile = findIn(true, vbtGuid, 'VBT', 'E_VERIFY_VBT_MISSING');
  if (vbtFile !== undefined) {
    const raw = sectionsOf(vbtFile).find((section) => section.section.type === EFI_SECTION_RAW);
    if (raw === undefined) {
      failures.push({
        code: 'E_VERIFY_VBT_MISSING',
        message: `VBT file ${vbtGuid} has no RAW section`,
        details: {
          fileGuid: vbtGuid,
          path: nodePath(vbtFile),
          expectedSha256: sha256(input.vbt),
          expectedSizeInBytes: input.vbt.length,
        },
      });
    } else {
      const described: VerifiedFile = {
        fileGuid: vbtFile.guid,
        path: nodePath(vbtFile),
        fileType: vbtFile.file.typeName,
        sizeInBytes: raw.body.length,
        sha256: sha256(raw.body),
      };
      report.vbt = described;
      const mismatch = compareBody(
        'E_VERIFY_VBT_MISMATCH',
        'VBT',
        'input VBT',
        described,
        raw.body,
        input.vbt,
      );
      if (mismatch !== undefined) failures.push(mismatch);
    }
  }

  /** One of our own DXE drivers: an x64 boot-service driver the dispatcher loads, optionally equal to `expected`. */
  const checkOwnDriver = (
    guid: string,
    role: string,
    codes: { readonly missing: ErrorCode; readonly invalid: ErrorCode },
    expected: Uint8Array | undefined,
  ): VerifiedDriver | undefined => {
    const file = findInDxe(guid, role, codes.missing);
    if (file === undefined) return undefined;
    const pe32 = sectionsOf(file).find((section) => section.section.type === EFI_SECTION_PE32);
    if (pe32 === undefined) {
      failures.push({
        code: codes.missing,
        message: `${role} file ${guid} has no PE32 section`,
        details: { fileGuid: guid, path: nodePath(file) },
      });
      return undefined;
    }
    const described = describeDriver(file, pe32);
    const problems: string[] = [];
    if (described.machine !== 'x64') problems.push(`machine is ${described.machine}, not x64`);
    if (!DRIVER_SUBSYSTEMS.has(described.subsystem))
      problems.push(`subsystem is ${described.subsystem}, not a driver`);
    if (!DISPATCHABLE_TYPES.has(file.file.type)) {
      problems.push(`file type is ${file.file.typeName}, which the DXE dispatcher never loads`);
    }
    if (problems.length > 0) {
      failures.push({
        code: codes.invalid,
        message: `${role} file ${guid} is not an x64 DXE driver: ${problems.join('; ')}`,
        details: { ...described, problems },
      });
    }
    const mismatch =
      expected === undefined
        ? undefined
        : compareBody('E_VERIFY_HELPER_MISMATCH', role, 'exported .efi', described, pe32.body, expected);
    if (mismatch !== undefined) failures.push(mismatch);
    return described;
  };

  const ownDrivers = [
    {
      key: 'policy',
      guid: policyGuid,
      role: 'policy driver',
      codes: { missing: 'E_VERIFY_POLICY_MISSING', invalid: 'E_VERIFY_POLICY_INVALID' },
      exported: input.helperDrivers?.gopPolicy,
    },
    {
      key: 'igdAssignment',
      guid: igdGuid,
      role: 'IGD assignment driver',
      codes: { missing: 'E_VERIFY_IGD_MISSING', invalid: 'E_VERIFY_IGD_INVALID' },
      exported: input.helperDrivers?.igdAssignment,
    },
  ] as const;
  for (const { key, guid, role, codes, exported } of ownDrivers) {
    const driver = checkOwnDriver(guid, role, codes, exported);
    if (driver !== undefined) report[key] = driver;
  }
  return { report, failures };
}

/**
 * Proves that `code` is an OVMF whose DXE volume carries `gop` (PE32 body, byte for byte),
 * `vbt` (RAW section, byte for byte), the policy driver and the IGD assignment driver (x64 DXE
 * drivers, equal to the exported helper drivers when given). Throws a VerificationError with the
 * first failure's code (E_VERIFY_NOT_OVMF, E_VERIFY_GOP_MISSING, E_VERIFY_GOP_MISMATCH,
 * E_VERIFY_GOP_NOT_DRIVER, E_VERIFY_VBT_MISSING, E_VERIFY_VBT_MISMATCH, E_VERIFY_POLICY_MISSING,
 * E_VERIFY_POLICY_INVALID, E_VERIFY_IGD_MISSING, E_VERIFY_IGD_INVALID, E_VERIFY_HELPER_MISMATCH,
 * E_VERIFY_DUPLICATE_FILE) and every failure in `details.failures`.
 */
export function verifyStructure(input: VerifyStructureInput): StructureReport {
  const { report, failures } = inspectStructure(input);
  const first = failures[0];
  if (first !== undefined) {
    const more = failures.length > 1 ? ` (and ${failures.length - 1} more problem(s))` : '';
    throw new VerificationError(first.code, `${first.message}${more}`, {
      ...first.details,
      failures: failures.map(({ code, message }) => ({ code, message })),
    });
  }
  return report as StructureReport;
}
