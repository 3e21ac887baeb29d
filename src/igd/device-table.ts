// The Intel iGPU device table (containers/igd-devices.json): which platform a PCI device ID
// belongs to, and what that platform needs from the firmware for IGD assignment (where BDSM
// lives, how GMCH encodes the stolen size). One data file serves the CLI and, through a
// generated C header, IgdAssignmentDxe. Pure: takes the file's bytes, does no I/O.
import { FormatError } from '../core/errors.js';

/** Where firmware writes the stolen-memory base (QEMU docs/igd-assign.txt, "Guest firmware"). */
export type BdsmLayout =
  /** dword at config 0x5C: Gen6 to Gen9.5 (SNB to CML, VLV/CHV/BXT/GLK). */
  | 'bdsm32'
  /** qword at config 0xC0/0xC4: Gen11 and Gen12 (ICL to RPL, EHL/JSL, ADL-N). */
  | 'bdsm64'
  /** Meteor Lake and newer: no BDSM for the firmware to program. */
  | 'none';

/** How GMCH (config 0x50) encodes the stolen size (Linux arch/x86/kernel/early-quirks.c). */
export type GmsEncoding = 'gen6' | 'gen8' | 'chv' | 'gen9' | 'none';

export interface IgdPlatform {
  /** Short key, also used in artifact names: `cml`, `adln`. */
  readonly key: string;
  readonly name: string;
  /** Intel graphics version as i915 numbers it: "9.5", "12", "12.70". */
  readonly graphicsVersion: string;
  readonly bdsm: BdsmLayout;
  readonly gms: GmsEncoding;
  /** Lower-case, 4 hex digits, sorted. */
  readonly deviceIds: readonly string[];
  /** Every other field of the data file, for consumers that add their own (snippet hints...). */
  readonly extra: Readonly<Record<string, unknown>>;
}

export interface IgdDeviceTable {
  readonly platforms: readonly IgdPlatform[];
  /** Device ID (lower-case, 4 hex digits) to its platform. */
  readonly byDeviceId: ReadonlyMap<string, IgdPlatform>;
  readonly byKey: ReadonlyMap<string, IgdPlatform>;
}

const BDSM_LAYOUTS: readonly BdsmLayout[] = ['bdsm32', 'bdsm64', 'none'];
const GMS_ENCODINGS: readonly GmsEncoding[] = ['gen6', 'gen8', 'chv', 'gen9', 'none'];
const MAX_TABLE_BYTES = 1_048_576;

function invalid(message: string, details: Record<string, unknown> = {}): FormatError {
  return new FormatError('E_INPUT_DEVICE_TABLE_INVALID', `IGD device table: ${message}`, details);
}

/** `46d4`, `0x46D4`, `46D4` -> `46d4`; anything else is null. */
export function normalizeDeviceId(text: string): string | null {
  const match = /^(?:0x)?([0-9a-f]{1,4})$/iu.exec(text.trim());
  if (match?.[1] === undefined) return null;
  return match[1].toLowerCase().padStart(4, '0');
}

function requireString(value: unknown, what: string): string {
  if (typeof value !== 'string' || value.length === 0) throw invalid(`${what} must be a non-empty string`);
  return value;
}

/** Parses and checks containers/igd-devices.json. Throws E_INPUT_DEVICE_TABLE_INVALID. */
export function parseIgdDeviceTable(bytes: Uint8Array): IgdDeviceTable {
  if (bytes.byteLength > MAX_TABLE_BYTES) {
    throw invalid(`${bytes.byteLength} bytes is more than the ${MAX_TABLE_BYTES} accepted`);
  }
  let root: unknown;
  try {
    root = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (error) {
    throw invalid(`not valid UTF-8 JSON (${(error as Error).message})`);
  }
  if (
    typeof root !== 'object' ||
    root === null ||
    !Array.isArray((root as { platforms?: unknown }).platforms)
  ) {
    throw invalid('the top level must be an object with a "platforms" array');
  }
  const platforms: IgdPlatform[] = [];
  const byDeviceId = new Map<string, IgdPlatform>();
  const byKey = new Map<string, IgdPlatform>();
  for (const [index, raw] of (root as { platforms: unknown[] }).platforms.entries()) {
    if (typeof raw !== 'object' || raw === null) throw invalid(`platforms[${index}] is not an object`);
    const { key, name, graphicsVersion, bdsm, gms, deviceIds, ...extra } = raw as Record<string, unknown>;
    const platformKey = requireString(key, `platforms[${index}].key`);
    if (!/^[a-z][a-z0-9]*$/u.test(platformKey))
      throw invalid(`platform key "${platformKey}" is not [a-z][a-z0-9]*`);
    if (byKey.has(platformKey)) throw invalid(`platform key "${platformKey}" appears twice`);
    if (!BDSM_LAYOUTS.includes(bdsm as BdsmLayout)) {
      throw invalid(`${platformKey}: bdsm must be one of ${BDSM_LAYOUTS.join(', ')}`, { bdsm });
    }
    if (!GMS_ENCODINGS.includes(gms as GmsEncoding)) {
      throw invalid(`${platformKey}: gms must be one of ${GMS_ENCODINGS.join(', ')}`, { gms });
    }
    if (!Array.isArray(deviceIds) || deviceIds.length === 0) {
      throw invalid(`${platformKey}: deviceIds must be a non-empty array`);
    }
    const ids = deviceIds.map((id: unknown) => {
      const normalized = typeof id === 'string' ? normalizeDeviceId(id) : null;
      if (normalized === null)
        throw invalid(`${platformKey}: device ID ${JSON.stringify(id)} is not 1-4 hex digits`);
      return normalized;
    });
    const platform: IgdPlatform = {
      key: platformKey,
      name: requireString(name, `${platformKey}.name`),
      graphicsVersion: requireString(graphicsVersion, `${platformKey}.graphicsVersion`),
      bdsm: bdsm as BdsmLayout,
      gms: gms as GmsEncoding,
      deviceIds: [...new Set(ids)].sort(),
      extra,
    };
    for (const id of platform.deviceIds) {
      const other = byDeviceId.get(id);
      if (other !== undefined)
        throw invalid(`device ID ${id} is listed under both ${other.key} and ${platformKey}`);
      byDeviceId.set(id, platform);
    }
    byKey.set(platformKey, platform);
    platforms.push(platform);
  }
  return { platforms, byDeviceId, byKey };
}

/** The platform of a device ID (any spelling `normalizeDeviceId` takes), or undefined. */
export function lookupDevice(table: IgdDeviceTable, deviceId: string): IgdPlatform | undefined {
  const id = normalizeDeviceId(deviceId);
  return id === null ? undefined : table.byDeviceId.get(id);
}

/**
 * Stolen-memory size in bytes that GMCH (config 0x50) asks for, decoded the platform's way;
 * 0 when the field is 0 or the encoding is unknown/reserved. Mirrors the C in IgdAssignmentDxe.
 */
export function stolenSizeFromGmch(encoding: GmsEncoding, gmch: number): number {
  const MiB = 1_048_576;
  switch (encoding) {
    case 'gen6':
      return ((gmch >>> 3) & 0x1f) * 32 * MiB;
    case 'gen8':
      return ((gmch >>> 8) & 0xff) * 32 * MiB;
    case 'chv': {
      const gms = (gmch >>> 8) & 0xff;
      if (gms < 0x11) return gms * 32 * MiB;
      if (gms < 0x17) return ((gms - 0x11) * 4 + 8) * MiB;
      return ((gms - 0x17) * 4 + 4) * MiB;
    }
    case 'gen9': {
      const gms = (gmch >>> 8) & 0xff;
      if (gms < 0xf0) return gms * 32 * MiB;
      return ((gms - 0xf0) * 4 + 4) * MiB;
    }
    case 'none':
      return 0;
  }
}

/** What QEMU needs to wire a platform's iGPU (the table's legacyMode/defaultMachine/minQemu). */
export interface IgdWiring {
  /** QEMU's legacy IGD mode (i440fx, IGD at 00:02.0, OpRegion + LPC IDs + VGA ranges) applies. */
  readonly legacyMode: boolean;
  readonly defaultMachine: 'q35' | 'i440fx';
  /** Oldest QEMU release that handles this generation's IGD assignment, e.g. "8.0". */
  readonly minQemu: string;
}

/** The wiring facts of a platform; throws E_INPUT_DEVICE_TABLE_INVALID when the table lacks them. */
export function igdWiring(platform: IgdPlatform): IgdWiring {
  const { legacyMode, defaultMachine, minQemu } = platform.extra;
  if (
    typeof legacyMode !== 'boolean' ||
    (defaultMachine !== 'q35' && defaultMachine !== 'i440fx') ||
    typeof minQemu !== 'string' ||
    !/^\d+\.\d+$/u.test(minQemu)
  ) {
    throw invalid(
      `${platform.key}: legacyMode (boolean), defaultMachine (q35|i440fx) and minQemu ("8.0") are required`,
      {
        key: platform.key,
      },
    );
  }
  return { legacyMode, defaultMachine, minQemu };
}
