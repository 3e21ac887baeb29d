// Intel GOP driver recognition. A real Intel GOP is an x64 PE32+ EFI boot-service
// driver whose data section holds the UTF-16LE driver name "Intel(R) GOP Driver" that
// its EFI_COMPONENT_NAME2_PROTOCOL returns. File names and FFS GUIDs are not trusted:
// vendor trees ship policy modules and debug drivers under GOP-like names.
import { FormatError, isOvmfBuildError } from '../core/errors.js';
import { sha256 } from '../core/digest.js';
import { hex } from '../core/hex.js';
import type { PeImageSummary } from './pe-coff.js';
import { parsePeImage, validatePeImage } from './pe-coff.js';

export interface GopDriverInfo {
  /**
   * The build number stored (UTF-16LE) after the "Intel(R) GOP Driver" string, e.g. "1034":
   * the first NUL-terminated run of 4 to 8 UTF-16 digits within BUILD_WINDOW_BYTES after
   * the name. null when there is none (see buildNote).
   */
  readonly build: string | null;
  /** Why build is null (e.g. the build slot holds a single digit); null when a build was found. */
  readonly buildNote: string | null;
  /**
   * Every NUL-terminated UTF-16 digit run within BUILD_WINDOW_BYTES after the name, in
   * order: older drivers store major, minor and build ("5", "0", "1034"), newer ones the
   * build first and the major version later ("1066", "21").
   */
  readonly digitFields: readonly string[];
  /** Byte offset of the UTF-16LE "Intel(R) GOP Driver" string. */
  readonly nameOffset: number;
  /** The controller name ("Intel(R) Graphics Controller", ...), null if absent. */
  readonly controllerName: string | null;
  readonly sha256: string;
  readonly sizeInBytes: number;
  readonly pe: PeImageSummary;
}

export type GopClassification =
  | { readonly isGop: true; readonly info: GopDriverInfo }
  | {
      readonly isGop: false;
      readonly reason: string;
      readonly pe: PeImageSummary | null;
      /** The bytes are not a well-formed, loadable PE/COFF image (as opposed to another kind of driver). */
      readonly malformed: boolean;
    };

/** The driver name every Intel GOP driver reports through EFI_COMPONENT_NAME2_PROTOCOL. */
export const INTEL_GOP_DRIVER_NAME = 'Intel(R) GOP Driver';

/**
 * How far after the end of the driver name the build digits are looked for. In the
 * corpus the build sits 98..250 bytes after the name's end (the name is a CHAR16[68]
 * buffer; on Haswell/Skylake a device-id table and the major/minor digits come first);
 * 384 covers that and the major-version field of newer drivers (~330 bytes on) without
 * reaching the unrelated digit strings that follow.
 */
export const BUILD_WINDOW_BYTES = 384;
const BUILD_MIN_DIGITS = 4;
const BUILD_MAX_DIGITS = 8;
/** Controller names are short; walking back further than this finds no start. */
const MAX_CONTROLLER_NAME_CHARS = 64;

const NAME_UTF16 = Buffer.from(INTEL_GOP_DRIVER_NAME, 'utf16le');
const CONTROLLER_SUFFIX_UTF16 = Buffer.from('Graphics Controller', 'utf16le');

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function unit(buf: Buffer, at: number): number {
  return (buf[at] as number) | ((buf[at + 1] as number) << 8);
}

/** NUL-terminated UTF-16LE digit runs in [start, end), aligned to `start`. */
function digitRuns(buf: Buffer, start: number, end: number): string[] {
  const runs: string[] = [];
  let current = '';
  const limit = Math.min(end, buf.length - 1);
  for (let at = start; at < limit; at += 2) {
    const c = unit(buf, at);
    if (c >= 0x30 && c <= 0x39) {
      current += String.fromCharCode(c);
      continue;
    }
    if (current !== '' && c === 0) runs.push(current);
    current = '';
  }
  return runs;
}

function isPrintableUnit(c: number): boolean {
  return c >= 0x20 && c < 0x7f;
}

function findControllerName(buf: Buffer): string | null {
  const at = buf.indexOf(CONTROLLER_SUFFIX_UTF16);
  if (at < 0) return null;
  let start = at;
  while (start >= 2 && at - start < MAX_CONTROLLER_NAME_CHARS * 2 && isPrintableUnit(unit(buf, start - 2)))
    start -= 2;
  return buf.toString('utf16le', start, at + CONTROLLER_SUFFIX_UTF16.length);
}

function describeError(error: unknown): string {
  if (isOvmfBuildError(error)) return `${error.code}: ${error.message}`;
  return String(error);
}

/**
 * A real Intel GOP is a loadable (validatePeImage) x64 PE32+ EFI boot-service driver
 * carrying the UTF-16 string "Intel(R) GOP Driver". Never throws.
 */
export function classifyGopDriver(bytes: Uint8Array): GopClassification {
  let pe: PeImageSummary;
  try {
    pe = parsePeImage(bytes);
  } catch (error) {
    return {
      isGop: false,
      reason: `not a PE/COFF image (${describeError(error)})`,
      pe: null,
      malformed: true,
    };
  }
  if (pe.machineName !== 'x64') {
    return {
      isGop: false,
      reason: `machine is ${pe.machineName}; an Intel GOP driver is x64`,
      pe,
      malformed: false,
    };
  }
  if (pe.format !== 'PE32+') {
    return { isGop: false, reason: `${pe.format} image; an Intel GOP driver is PE32+`, pe, malformed: false };
  }
  if (pe.subsystemName !== 'EFI_BOOT_SERVICE_DRIVER') {
    return {
      isGop: false,
      reason: `subsystem is ${pe.subsystemName}; an Intel GOP driver is EFI_BOOT_SERVICE_DRIVER (11)`,
      pe,
      malformed: false,
    };
  }
  try {
    validatePeImage(bytes);
  } catch (error) {
    return {
      isGop: false,
      reason: `not a loadable PE/COFF image (${describeError(error)})`,
      pe,
      malformed: true,
    };
  }
  const buf = asBuffer(bytes);
  const nameOffset = buf.indexOf(NAME_UTF16);
  if (nameOffset < 0) {
    return {
      isGop: false,
      reason: `x64 EFI boot-service driver of ${bytes.length} bytes without the UTF-16LE "${INTEL_GOP_DRIVER_NAME}" string (a policy, helper or debug module, whatever its file name)`,
      pe,
      malformed: false,
    };
  }
  const nameEnd = nameOffset + NAME_UTF16.length;
  const digitFields = digitRuns(buf, nameEnd, nameEnd + BUILD_WINDOW_BYTES);
  const build =
    digitFields.find((run) => run.length >= BUILD_MIN_DIGITS && run.length <= BUILD_MAX_DIGITS) ?? null;
  const buildNote =
    build !== null
      ? null
      : digitFields.length === 0
        ? `no UTF-16 digits within ${BUILD_WINDOW_BYTES} bytes after the driver name at ${hex(nameOffset)}`
        : `no ${BUILD_MIN_DIGITS}-digit build within ${BUILD_WINDOW_BYTES} bytes after the driver name at ${hex(nameOffset)}; the digit fields there hold ${digitFields.map((d) => `"${d}"`).join(', ')} (the build slot is incomplete in this binary)`;
  return {
    isGop: true,
    info: {
      build,
      buildNote,
      digitFields,
      nameOffset,
      controllerName: findControllerName(buf),
      sha256: sha256(bytes),
      sizeInBytes: bytes.length,
      pe,
    },
  };
}

/** Like classifyGopDriver but throws FormatError E_INPUT_NOT_GOP with the reason. */
export function assertGopDriver(bytes: Uint8Array): GopDriverInfo {
  const result = classifyGopDriver(bytes);
  if (result.isGop) return result.info;
  throw new FormatError('E_INPUT_NOT_GOP', `not an Intel GOP driver: ${result.reason}`, {
    reason: result.reason,
    sizeInBytes: bytes.length,
    sha256: sha256(bytes),
  });
}
