// Intel IGD OpRegion: the 8 KiB memory block the firmware hands the graphics driver (its
// address in the iGPU's ASLS register, config 0xFC), and the VBT inside it. Layout from the
// "Intel IGD OpRegion Specification" as Linux reads it (drivers/gpu/drm/i915/display/
// intel_opregion.c: struct opregion_header, struct opregion_asle, intel_opregion_setup) and as
// vfio hands it to QEMU's `etc/igd-opregion` (drivers/vfio/pci/vfio_pci_igd.c: an extended VBT
// is exposed contiguously after the 8 KiB, with OpRegion version 2.1 and RVDA = 8 KiB).
// Pure: bytes in, values out.
import { isOvmfBuildError } from '../core/errors.js';
import { hex } from '../core/hex.js';
import { fail } from './fail.js';
import { parseVbt, VBT_HEADER_SIZE, type VbtInfo } from './vbt.js';

/** OPREGION_SIZE: header plus mailboxes 1-5. */
export const OPREGION_SIZE = 0x2000;
export const OPREGION_SIGNATURE = 'IntelGraphicsMem';
/** struct opregion_header field offsets. */
export const OPREGION_HEADER = {
  signature: 0x00,
  /** u32, size of the OpRegion in KiB (8; the extended VBT is not counted). */
  sizeInKiB: 0x10,
  /** struct { u8 rsvd; u8 revision; u8 minor; u8 major; } over. */
  revision: 0x15,
  minor: 0x16,
  major: 0x17,
  /** u8[32] system BIOS version (ASCII). */
  biosVersion: 0x18,
  /** u8[16] video BIOS version. */
  vbiosVersion: 0x38,
  /** u8[16] graphics driver version. */
  driverVersion: 0x48,
  /** u32 bitmap of the supported mailboxes. */
  mailboxes: 0x58,
} as const;
/** Mailbox offsets (OPREGION_ACPI_OFFSET...). */
export const OPREGION_MAILBOX_OFFSET = {
  acpi: 0x100,
  swsci: 0x200,
  asle: 0x300,
  vbt: 0x400,
  asleExt: 0x1c00,
} as const;
/** Mailbox bits at 0x58 (MBOX_ACPI... in intel_opregion.c; bit 3 is mailbox 4, the VBT). */
export const MBOX = {
  acpi: 1 << 0,
  swsci: 1 << 1,
  asle: 1 << 2,
  vbt: 1 << 3,
  asleExt: 1 << 4,
  backlight: 1 << 5,
} as const;
/** struct opregion_asle: u64 rvda (raw VBT data address) at 0xBA, u32 rvds (its size) at 0xC2. */
export const ASLE_RVDA_OFFSET = OPREGION_MAILBOX_OFFSET.asle + 0xba;
export const ASLE_RVDS_OFFSET = OPREGION_MAILBOX_OFFSET.asle + 0xc2;
/** Mailbox 4 is 6 KiB when mailbox 5 (ASLE_EXT) follows it, else it runs to the end (7 KiB). */
export const MAILBOX4_SIZE = OPREGION_MAILBOX_OFFSET.asleExt - OPREGION_MAILBOX_OFFSET.vbt;
export const MAILBOX4_SIZE_WITHOUT_ASLE_EXT = OPREGION_SIZE - OPREGION_MAILBOX_OFFSET.vbt;
/**
 * Largest OpRegion accepted: the 8 KiB plus an extended VBT. VBT sizes are u16 (vbt_header
 * vbt_size), so 64 KiB is far more than any real extended VBT.
 */
export const MAX_OPREGION_BYTES = OPREGION_SIZE + 0x1_0000;

export type OpRegionVersion = '2.0' | '2.1';

/** Where the VBT was found: mailbox 4, or the extended VBT that ASLE's RVDA/RVDS point at. */
export type OpRegionVbtSource = 'mailbox4' | 'rvda';

export interface OpRegionVbt {
  readonly source: OpRegionVbtSource;
  /** Offset of the VBT in the OpRegion bytes. */
  readonly offset: number;
  /** Bytes available for it: mailbox 4's size, or RVDS. */
  readonly areaSizeInBytes: number;
  /** The VBT's own vbt_size: the bytes the GOP is given. */
  readonly sizeInBytes: number;
  readonly info: VbtInfo;
}

export interface OpRegionInfo {
  readonly sizeInKiB: number;
  readonly version: { readonly major: number; readonly minor: number; readonly revision: number };
  /** `major.minor`, e.g. "2.1". */
  readonly versionText: string;
  readonly mailboxes: number;
  readonly biosVersion: string;
  readonly vbiosVersion: string;
  readonly driverVersion: string;
  /** ASLE RVDA/RVDS as stored (0 when unused). */
  readonly rvda: bigint;
  readonly rvds: number;
  /** The VBT the graphics driver would use, or null when neither place holds a valid one. */
  readonly vbt: OpRegionVbt | null;
  /** Why a place that could hold the VBT was passed over (RVDA out of range, invalid VBT...). */
  readonly notes: readonly string[];
}

export interface ParseOpRegionOptions {
  /**
   * Physical address the OpRegion sits at. Only OpRegion 2.0 needs it: its RVDA is an
   * absolute address, so without it an extended VBT of a 2.0 OpRegion cannot be located.
   */
  readonly physicalAddress?: bigint;
}

function asciiField(bytes: Uint8Array, offset: number, length: number): string {
  let text = '';
  for (let index = 0; index < length; index++) {
    const byte = bytes[offset + index] as number;
    if (byte === 0) break;
    text += byte >= 0x20 && byte < 0x7f ? String.fromCharCode(byte) : '?';
  }
  return text.trimEnd();
}

/**
 * A VBT as i915 accepts it (intel_bios_is_valid_vbt, which parseVbt follows), and one rule
 * more: a vbt_size smaller than the 48-byte header it sits in is not a VBT (IgdVbtValid in
 * IgdAssignmentLogic.h refuses it too).
 */
function tryVbt(area: Uint8Array): VbtInfo | string {
  try {
    const info = parseVbt(area);
    if (info.vbtSize < VBT_HEADER_SIZE) {
      return `E_VBT_TRUNCATED: vbt_size ${hex(info.vbtSize)} is smaller than the ${hex(VBT_HEADER_SIZE)}-byte VBT header`;
    }
    return info;
  } catch (error) {
    if (isOvmfBuildError(error)) return `${error.code}: ${error.message}`;
    throw error;
  }
}

/** OpRegion 2.1 and later store RVDA relative to the OpRegion; 2.0 stores a physical address. */
export function rvdaIsRelative(major: number, minor: number): boolean {
  return major > 2 || (major === 2 && minor >= 1);
}

/**
 * Parses an OpRegion and finds its VBT the way i915 does (intel_opregion_setup): from version
 * 2.0 on, when mailbox 3 (ASLE) is present and its RVDA and RVDS are both non-zero, the
 * extended VBT they point at (relative to the OpRegion from 2.1 on, where it must lie past the
 * 8 KiB; absolute in 2.0); when that is absent or not a valid VBT, mailbox 4 at 0x400 (6 KiB
 * when mailbox 5 is present, else 7 KiB). Throws FormatError E_OPREGION_TRUNCATED,
 * E_OPREGION_TOO_LARGE or E_OPREGION_BAD_SIGNATURE; a missing or invalid VBT is `vbt: null`
 * with the reasons in `notes`.
 */
export function parseOpRegion(bytes: Uint8Array, options: ParseOpRegionOptions = {}): OpRegionInfo {
  if (bytes.length < OPREGION_SIZE) {
    fail('E_OPREGION_TRUNCATED', `${bytes.length} bytes cannot hold the ${OPREGION_SIZE}-byte OpRegion`, {
      length: bytes.length,
    });
  }
  if (bytes.length > MAX_OPREGION_BYTES) {
    fail(
      'E_OPREGION_TOO_LARGE',
      `${bytes.length} bytes is more than the ${MAX_OPREGION_BYTES} an OpRegion with an extended VBT can need`,
      { length: bytes.length, maxBytes: MAX_OPREGION_BYTES },
    );
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let signature = '';
  for (let index = 0; index < 16; index++) signature += String.fromCharCode(bytes[index] as number);
  if (signature !== OPREGION_SIGNATURE) {
    fail(
      'E_OPREGION_BAD_SIGNATURE',
      `no "${OPREGION_SIGNATURE}" signature at 0x0 (found ${JSON.stringify(signature)})`,
      {
        offset: 0,
      },
    );
  }
  const sizeInKiB = dv.getUint32(OPREGION_HEADER.sizeInKiB, true);
  const major = bytes[OPREGION_HEADER.major] as number;
  const minor = bytes[OPREGION_HEADER.minor] as number;
  const revision = bytes[OPREGION_HEADER.revision] as number;
  const mailboxes = dv.getUint32(OPREGION_HEADER.mailboxes, true);
  const rvda = dv.getBigUint64(ASLE_RVDA_OFFSET, true);
  const rvds = dv.getUint32(ASLE_RVDS_OFFSET, true);
  const notes: string[] = [];
  let vbt: OpRegionVbt | null = null;
  // i915 never reads the size field (vfio-pci does, to map the region); it is only reported.
  if (sizeInKiB !== OPREGION_SIZE / 1024) {
    notes.push(`the size field at 0x10 says ${sizeInKiB} KiB, not ${OPREGION_SIZE / 1024}`);
  }

  if (major < 1) {
    // No OpRegion version 0 exists; IgdOpRegionHeaderValid refuses it, and so does this model.
    notes.push(`OpRegion version ${major}.${minor} is not a version a driver reads`);
  } else if (major >= 2 && (mailboxes & MBOX.asle) !== 0 && rvda !== 0n && rvds !== 0) {
    let offset: bigint | undefined;
    if (rvdaIsRelative(major, minor)) {
      if (rvda < BigInt(OPREGION_SIZE)) {
        notes.push(`RVDA ${hex(rvda)} points inside the ${hex(OPREGION_SIZE)}-byte OpRegion`);
      } else {
        offset = rvda;
      }
    } else if (options.physicalAddress === undefined) {
      notes.push(
        `OpRegion 2.0 RVDA ${hex(rvda)} is a physical address; the OpRegion's own address is not known`,
      );
    } else if (rvda < options.physicalAddress + BigInt(OPREGION_SIZE)) {
      notes.push(`RVDA ${hex(rvda)} is not past the OpRegion at ${hex(options.physicalAddress)}`);
    } else {
      offset = rvda - options.physicalAddress;
    }
    if (offset !== undefined) {
      if (offset + BigInt(rvds) > BigInt(bytes.length)) {
        notes.push(
          `RVDA ${hex(rvda)} + RVDS ${hex(rvds)} ends at ${hex(offset + BigInt(rvds))}, past the ${hex(bytes.length)} bytes given`,
        );
      } else {
        const start = Number(offset);
        const parsed = tryVbt(bytes.subarray(start, start + rvds));
        if (typeof parsed === 'string') notes.push(`no valid VBT at RVDA ${hex(rvda)}: ${parsed}`);
        else
          vbt = {
            source: 'rvda',
            offset: start,
            areaSizeInBytes: rvds,
            sizeInBytes: parsed.vbtSize,
            info: parsed,
          };
      }
    }
  }
  if (vbt === null && major >= 1) {
    const areaSizeInBytes = (mailboxes & MBOX.asleExt) !== 0 ? MAILBOX4_SIZE : MAILBOX4_SIZE_WITHOUT_ASLE_EXT;
    const start = OPREGION_MAILBOX_OFFSET.vbt;
    const parsed = tryVbt(bytes.subarray(start, start + areaSizeInBytes));
    if (typeof parsed === 'string') notes.push(`no valid VBT in mailbox 4: ${parsed}`);
    else
      vbt = { source: 'mailbox4', offset: start, areaSizeInBytes, sizeInBytes: parsed.vbtSize, info: parsed };
  }
  return {
    sizeInKiB,
    version: { major, minor, revision },
    versionText: `${major}.${minor}`,
    mailboxes,
    biosVersion: asciiField(bytes, OPREGION_HEADER.biosVersion, 32),
    vbiosVersion: asciiField(bytes, OPREGION_HEADER.vbiosVersion, 16),
    driverVersion: asciiField(bytes, OPREGION_HEADER.driverVersion, 16),
    rvda,
    rvds,
    vbt,
    notes,
  };
}

/** The VBT bytes of a parsed OpRegion (its vbt_size bytes), or throws E_OPREGION_NO_VBT. */
export function opRegionVbtBytes(bytes: Uint8Array, info: OpRegionInfo): Uint8Array {
  if (info.vbt === null) {
    fail('E_OPREGION_NO_VBT', `the OpRegion holds no valid VBT (${info.notes.join('; ')})`, {
      notes: info.notes,
    });
  }
  return bytes.subarray(info.vbt.offset, info.vbt.offset + info.vbt.sizeInBytes);
}

export interface BuildOpRegionOptions {
  /** The VBT to carry (its vbt_size bytes are used; padding after them is dropped). */
  readonly vbt: Uint8Array;
  /**
   * OpRegion version. A VBT larger than mailbox 4 (6 KiB) needs 2.1, whose RVDA is relative,
   * so the extended VBT can follow the 8 KiB in the same bytes (as vfio exposes it).
   * @default '2.1'
   */
  readonly version?: OpRegionVersion;
  /**
   * Mailbox bitmap at 0x58.
   * @default ACPI | ASLE | VBT | ASLE_EXT (0x1d): SWSCI is obsolete from version 2
   */
  readonly mailboxes?: number;
  /**
   * System BIOS version string (ASCII, at most 32 bytes).
   * @default 'ovmf-build test OpRegion'
   */
  readonly biosVersion?: string;
  /**
   * Put the VBT in the extended area even when it fits mailbox 4 (version 2.1 only), to test
   * the RVDA path with any VBT.
   * @default false
   */
  readonly forceExtendedVbt?: boolean;
}

function writeAscii(target: Uint8Array, offset: number, text: string, maxLength: number, what: string): void {
  if (text.length > maxLength || !/^[\x20-\x7e]*$/u.test(text)) {
    throw new TypeError(
      `Expected \`${what}\` to be printable ASCII of at most ${maxLength} characters, got \`${text}\``,
    );
  }
  for (let index = 0; index < text.length; index++) target[offset + index] = text.charCodeAt(index);
}

/**
 * Builds an OpRegion around a VBT: the 8 KiB with header, ASLE mailbox and the VBT in mailbox 4
 * when it fits 6 KiB; else (version 2.1) mailbox 4 left empty and the VBT after the 8 KiB, with
 * RVDA = 0x2000 and RVDS = its size. Throws FormatError E_OPREGION_BAD_VBT (not a valid VBT) or
 * E_OPREGION_VBT_TOO_LARGE (a VBT over 6 KiB in a version 2.0 OpRegion, whose RVDA would have to
 * be a physical address).
 */
export function buildOpRegion(options: BuildOpRegionOptions): Uint8Array {
  const version = options.version ?? '2.1';
  if (version !== '2.0' && version !== '2.1') {
    throw new TypeError(`Expected \`version\` to be \`2.0\` or \`2.1\`, got \`${String(version)}\``);
  }
  const mailboxes = options.mailboxes ?? MBOX.acpi | MBOX.asle | MBOX.vbt | MBOX.asleExt;
  if (!Number.isInteger(mailboxes) || mailboxes < 0 || mailboxes > 0xffff_ffff) {
    throw new TypeError(`Expected \`mailboxes\` to be a u32, got \`${String(mailboxes)}\``);
  }
  const parsed = tryVbt(options.vbt);
  if (typeof parsed === 'string') {
    fail('E_OPREGION_BAD_VBT', `the VBT for the OpRegion is not valid: ${parsed}`, { reason: parsed });
  }
  const vbt = options.vbt.subarray(0, parsed.vbtSize);
  const mailbox4Size = (mailboxes & MBOX.asleExt) !== 0 ? MAILBOX4_SIZE : MAILBOX4_SIZE_WITHOUT_ASLE_EXT;
  const extended = vbt.length > mailbox4Size || options.forceExtendedVbt === true;
  if (extended && version === '2.0') {
    fail(
      'E_OPREGION_VBT_TOO_LARGE',
      options.forceExtendedVbt === true
        ? 'an extended VBT needs OpRegion 2.1: in 2.0 RVDA is a physical address'
        : `the VBT is ${vbt.length} bytes, more than mailbox 4's ${mailbox4Size}; it needs OpRegion 2.1 (in 2.0 RVDA is a physical address)`,
      { vbtSizeInBytes: vbt.length, mailbox4SizeInBytes: mailbox4Size, version },
    );
  }
  const out = new Uint8Array(OPREGION_SIZE + (extended ? vbt.length : 0));
  const dv = new DataView(out.buffer);
  writeAscii(out, OPREGION_HEADER.signature, OPREGION_SIGNATURE, 16, 'signature');
  dv.setUint32(OPREGION_HEADER.sizeInKiB, OPREGION_SIZE / 1024, true);
  out[OPREGION_HEADER.major] = 2;
  out[OPREGION_HEADER.minor] = version === '2.1' ? 1 : 0;
  writeAscii(
    out,
    OPREGION_HEADER.biosVersion,
    options.biosVersion ?? 'ovmf-build test OpRegion',
    32,
    'biosVersion',
  );
  dv.setUint32(OPREGION_HEADER.mailboxes, mailboxes >>> 0, true);
  if (extended) {
    out.set(vbt, OPREGION_SIZE);
    dv.setBigUint64(ASLE_RVDA_OFFSET, BigInt(OPREGION_SIZE), true);
    dv.setUint32(ASLE_RVDS_OFFSET, vbt.length, true);
  } else {
    out.set(vbt, OPREGION_MAILBOX_OFFSET.vbt);
  }
  return out;
}
