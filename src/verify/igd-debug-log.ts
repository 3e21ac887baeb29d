// Our drivers' own account of an IGD assignment, from a DEBUG log: which device IgdAssignmentDxe
// took 00:02.0 for, where it put the OpRegion and the stolen memory, and which VBT the GOP
// policy served. The line formats are the DEBUG() calls of containers/edk2-overlay's
// IgdAssignmentDxe.c and PlatformGopPolicyDxe.c. Pure: log text in, report out.

export interface IgdDebugReport {
  /** `IgdAssignmentDxe: <bb:dd.f> <vvvv>:<dddd> <key> gen <version>` of 00:02.0. */
  readonly device?: { readonly deviceId: string; readonly key: string; readonly graphicsVersion: string };
  readonly opRegion?: { readonly sizeInBytes: number; readonly address: number };
  readonly stolen?: {
    readonly sizeInBytes: number;
    readonly address: number;
    readonly register: number;
    readonly width: 32 | 64;
  };
  readonly noBdsm?: string;
  readonly vbt?: {
    readonly source: 'mailbox4' | 'rvda' | 'firmware-volume';
    readonly sizeInBytes: number;
    readonly address: number;
  };
}

const DEVICE_LINE_RE = /^IgdAssignmentDxe: 00:02\.0 ([0-9a-f]{4}):([0-9a-f]{4}) (\S+) gen (\S+)$/iu;
const OPREGION_LINE_RE = /^IgdAssignmentDxe: OpRegion (\d+) bytes at 0x([0-9a-f]+), ASLS written$/iu;
const STOLEN_LINE_RE =
  /^IgdAssignmentDxe: stolen memory (\d+) bytes at 0x([0-9a-f]+), BDSM 0x([0-9a-f]+) \((32|64)-bit\)$/iu;
const NO_BDSM_LINE_RE = /^IgdAssignmentDxe: no BDSM on (\S+)$/u;
const VBT_LINE_RE =
  /^OvmfGopPkg: VBT from (OpRegion \((mailbox 4|RVDA)\)|firmware volume), (\d+) bytes at 0x([0-9a-f]+)/iu;

/** Our drivers' lines from a debug log: what IgdAssignmentDxe did and which VBT the policy served. */
export function parseIgdDebugLog(text: string): {
  readonly lines: string[];
  readonly report: IgdDebugReport;
} {
  const lines = text
    .split('\n')
    .map((line) => line.replace(/\r$/u, ''))
    .filter((line) => line.startsWith('IgdAssignmentDxe: ') || line.startsWith('OvmfGopPkg: '));
  let report: {
    -readonly [K in keyof IgdDebugReport]: IgdDebugReport[K];
  } = {};
  for (const line of lines) {
    let match: RegExpExecArray | null;
    if ((match = DEVICE_LINE_RE.exec(line)) !== null && report.device === undefined) {
      report = {
        ...report,
        device: {
          deviceId: (match[2] as string).toLowerCase(),
          key: match[3] as string,
          graphicsVersion: match[4] as string,
        },
      };
    } else if ((match = OPREGION_LINE_RE.exec(line)) !== null && report.opRegion === undefined) {
      report.opRegion = { sizeInBytes: Number(match[1]), address: Number.parseInt(match[2] as string, 16) };
    } else if ((match = STOLEN_LINE_RE.exec(line)) !== null && report.stolen === undefined) {
      report.stolen = {
        sizeInBytes: Number(match[1]),
        address: Number.parseInt(match[2] as string, 16),
        register: Number.parseInt(match[3] as string, 16),
        width: match[4] === '64' ? 64 : 32,
      };
    } else if ((match = NO_BDSM_LINE_RE.exec(line)) !== null) {
      report.noBdsm = match[1] as string;
    } else if ((match = VBT_LINE_RE.exec(line)) !== null && report.vbt === undefined) {
      const where = match[2]?.toLowerCase();
      report.vbt = {
        source: where === undefined ? 'firmware-volume' : where === 'rvda' ? 'rvda' : 'mailbox4',
        sizeInBytes: Number(match[3]),
        address: Number.parseInt(match[4] as string, 16),
      };
    }
  }
  return { lines, report };
}
