// Parser of the OVMF debug log (DEBUG builds write it to the QEMU debug console, I/O port
// 0x402, through OvmfPkg/Library/PlatformDebugLibIoPort). The line formats come from
// edk2-stable202211:
//   MdeModulePkg/Core/Dxe/Dispatcher/Dispatcher.c  "Loading driver %g"
//                                                  "Driver %g was discovered but not loaded!!"
//   MdeModulePkg/Core/Dxe/Image/Image.c            "Loading driver at 0x%11p EntryPoint=0x%11p <Name>.efi"
//                                                  "Error: Image at %11p start failed: %r"
//   MdeModulePkg/Core/Pei/Image/Image.c            "Loading PEIM %g"
//   MdeModulePkg/Universal/BdsDxe/BdsEntry.c       "[Bds] Entry..."
//   OvmfPkg/Library/PlatformDebugLibIoPort          "ASSERT <file>(<line>): <expression>"
//   containers/edk2-overlay PlatformGopPolicyDxe.c  "OvmfGopPkg: VBT found, %u bytes at 0x%lx, signature "%a""
//                                                  "OvmfGopPkg: VBT file %g not found: %r"
// Pure: takes the log text, returns values; the boot runner feeds it what QEMU wrote.

/** One driver the DXE dispatcher loaded, in dispatch order. */
export interface LoadedDriver {
  /** FILE_GUID, upper case (the log prints `%g` lower or upper case depending on the PrintLib). */
  readonly guid: string;
  /** 1-based line number of the `Loading driver <GUID>` line. */
  readonly line: number;
  /** Load address from the following `Loading driver at 0x...` line (upper-case hex, no 0x). */
  readonly imageBase?: string;
  readonly entryPoint?: string;
  /** `X.efi` from the PDB path; absent for stripped binaries such as Intel's GOP driver. */
  readonly name?: string;
  /**
   * Lines logged after this driver's image was loaded and before the next driver load or
   * BDS: mostly the driver's own entry point messages (callbacks of other drivers can
   * interleave, so this is a reading aid, not proof of authorship).
   */
  readonly messages: readonly string[];
}

export interface StartFailure {
  readonly line: number;
  /** Upper-case hex without 0x, as printed by `%11p`, leading zeros stripped. */
  readonly imageBase: string;
  /** EFI_STATUS text as printed by `%r`, e.g. `Unsupported`, `Not Found`. */
  readonly status: string;
  /** FILE_GUID of the driver loaded at that address, when the log names it. */
  readonly guid?: string;
}

export interface NotLoadedDriver {
  readonly line: number;
  readonly guid: string;
  /** True for the SMM dispatcher's `SMM Driver <GUID> was discovered but not loaded!!`. */
  readonly smm: boolean;
}

export interface AssertLine {
  readonly line: number;
  readonly text: string;
}

/** What our PlatformGopPolicyDxe reported about the VBT it hands to the GOP driver. */
export type PolicyVbtReport =
  | {
      readonly found: true;
      readonly line: number;
      readonly sizeInBytes: number;
      /** Upper-case hex without 0x. */
      readonly address: string;
      readonly signature: string;
    }
  | {
      readonly found: false;
      readonly line: number;
      /** FILE_GUID it searched for, upper case. */
      readonly guid: string;
      /** EFI_STATUS text, e.g. `Not Found`. */
      readonly status: string;
    };

export interface DebugLogSummary {
  /** Complete lines (a trailing partial line counts). */
  readonly lineCount: number;
  /** PEIMs in dispatch order (FILE_GUID, upper case). */
  readonly loadedPeims: readonly string[];
  /** DXE drivers in dispatch order. */
  readonly loadedDrivers: readonly LoadedDriver[];
  readonly notLoaded: readonly NotLoadedDriver[];
  readonly startFailures: readonly StartFailure[];
  readonly asserts: readonly AssertLine[];
  /** `[Bds] Entry...` appeared: the DXE phase ended and the boot manager ran. */
  readonly reachedBds: boolean;
  /** 1-based line of the first `[Bds] Entry`. */
  readonly bdsLine?: number;
  /** The first VBT line of the OvmfGopPkg policy driver; absent for other policy drivers. */
  readonly policyVbt?: PolicyVbtReport;
  /** Number of `Loading driver at 0x...` lines (0 when the build's debug level hides DEBUG_LOAD). */
  readonly imageLoadLineCount: number;
}

const GUID = '[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}';
const LOADING_DRIVER_RE = new RegExp(`^Loading driver (${GUID})\\s*$`);
const LOADING_AT_RE = /^Loading driver at 0x([0-9A-Fa-f]+) EntryPoint=0x([0-9A-Fa-f]+)(?: (\S+\.efi))?/;
const LOADING_PEIM_RE = new RegExp(`^Loading PEIM (${GUID})\\s*$`);
const NOT_LOADED_RE = new RegExp(`^(SMM )?Driver (${GUID}) was discovered but not loaded`);
const START_FAILED_RE = /^Error: (?:SMM )?[Ii]mage at ([0-9A-Fa-f]+) start failed: (.*?)\s*$/;
const ASSERT_RE = /^ASSERT /;
const VBT_FOUND_RE = /^OvmfGopPkg: VBT found, (\d+) bytes at 0x([0-9A-Fa-f]+), signature "(.*)"\s*$/;
const VBT_NOT_FOUND_RE = new RegExp(`^OvmfGopPkg: VBT file (${GUID}) not found: (.*?)\\s*$`);
/** The marker `[Bds] Entry...`; the early-exit watcher matches the same text. */
export const BDS_ENTRY_MARKER = '[Bds] Entry';

/** `0x0007E5D5000` and `7E5D5000` name the same address: compare without leading zeros. */
function normaliseAddress(text: string): string {
  return text.toUpperCase().replace(/^0+(?=.)/, '');
}

/** Splits on LF, dropping CR (QEMU's debugcon passes bytes through; serial paths add CR). */
export function splitLogLines(text: string): string[] {
  const lines = text.split('\n').map((line) => (line.endsWith('\r') ? line.slice(0, -1) : line));
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** The last `count` non-blank lines: what an error shows of the console that explains it. */
export function lastLogLines(text: string, count: number): string[] {
  return splitLogLines(text)
    .filter((line) => line.trim().length > 0)
    .slice(-count);
}

interface MutableDriver {
  guid: string;
  line: number;
  imageBase?: string;
  entryPoint?: string;
  name?: string;
  messages: string[];
  /** Set once the `Loading driver at` line came, so later lines count as messages. */
  loaded: boolean;
}

/** Reads an OVMF DEBUG log and returns what the dispatcher and BDS did. */
export function parseDebugLog(text: string): DebugLogSummary {
  const lines = splitLogLines(text);
  const loadedPeims: string[] = [];
  const drivers: MutableDriver[] = [];
  const notLoaded: NotLoadedDriver[] = [];
  const startFailures: StartFailure[] = [];
  const asserts: AssertLine[] = [];
  const byAddress = new Map<string, string>();
  let current: MutableDriver | undefined;
  let bdsLine: number | undefined;
  let imageLoadLineCount = 0;
  let policyVbt: PolicyVbtReport | undefined;

  lines.forEach((raw, index) => {
    const lineNumber = index + 1;
    const line = raw.trimStart();
    let match: RegExpExecArray | null;
    if ((match = LOADING_DRIVER_RE.exec(line)) !== null) {
      current = { guid: (match[1] as string).toUpperCase(), line: lineNumber, messages: [], loaded: false };
      drivers.push(current);
      return;
    }
    if ((match = LOADING_AT_RE.exec(line)) !== null) {
      imageLoadLineCount += 1;
      // The DXE core also prints this for images loaded by LoadImage() outside the
      // dispatcher (the shell, option ROMs): only the first one after a dispatcher line
      // belongs to that driver.
      if (current !== undefined && !current.loaded) {
        current.imageBase = normaliseAddress(match[1] as string);
        current.entryPoint = normaliseAddress(match[2] as string);
        if (match[3] !== undefined) current.name = match[3];
        current.loaded = true;
        byAddress.set(current.imageBase, current.guid);
      } else {
        current = undefined;
      }
      return;
    }
    if ((match = LOADING_PEIM_RE.exec(line)) !== null) {
      loadedPeims.push((match[1] as string).toUpperCase());
      return;
    }
    if ((match = NOT_LOADED_RE.exec(line)) !== null) {
      notLoaded.push({
        line: lineNumber,
        guid: (match[2] as string).toUpperCase(),
        smm: match[1] !== undefined,
      });
      return;
    }
    if ((match = START_FAILED_RE.exec(line)) !== null) {
      const imageBase = normaliseAddress(match[1] as string);
      const guid = byAddress.get(imageBase);
      startFailures.push({
        line: lineNumber,
        imageBase,
        status: match[2] as string,
        ...(guid === undefined ? {} : { guid }),
      });
      return;
    }
    if (policyVbt === undefined) {
      if ((match = VBT_FOUND_RE.exec(line)) !== null) {
        policyVbt = {
          found: true,
          line: lineNumber,
          sizeInBytes: Number(match[1]),
          address: normaliseAddress(match[2] as string),
          signature: match[3] as string,
        };
      } else if ((match = VBT_NOT_FOUND_RE.exec(line)) !== null) {
        policyVbt = {
          found: false,
          line: lineNumber,
          guid: (match[1] as string).toUpperCase(),
          status: match[2] as string,
        };
      }
    }
    if (ASSERT_RE.test(line)) {
      asserts.push({ line: lineNumber, text: line });
    }
    if (line.startsWith(BDS_ENTRY_MARKER)) {
      bdsLine ??= lineNumber;
      current = undefined;
      return;
    }
    if (current?.loaded === true && line.length > 0) current.messages.push(line);
  });

  return {
    lineCount: lines.length,
    loadedPeims,
    loadedDrivers: drivers.map(({ loaded: _loaded, ...driver }) => driver),
    notLoaded,
    startFailures,
    asserts,
    reachedBds: bdsLine !== undefined,
    ...(bdsLine === undefined ? {} : { bdsLine }),
    ...(policyVbt === undefined ? {} : { policyVbt }),
    imageLoadLineCount,
  };
}

/** The loaded-driver record for a FILE_GUID (case-insensitive), if the dispatcher loaded it. */
export function findLoadedDriver(summary: DebugLogSummary, guid: string): LoadedDriver | undefined {
  const wanted = guid.toUpperCase();
  return summary.loadedDrivers.find((driver) => driver.guid === wanted);
}
