// Adds OvmfGopPkg to OvmfPkgX64.dsc and OvmfPkgX64.fdf. Text edits on the files as they
// are in the source (CRLF in upstream EDK2), anchored on a module that every OvmfPkgX64
// has outside any conditional, so our modules are built and placed with every flag set.
//
// The GOP driver and the VBT go into a volume of their own, [FV.IGDVOL], stored uncompressed in
// a flash region cut from the start of FVMAIN_COMPACT's (the compressed PEI and DXE volumes),
// and IgdVolumeDxe (in the DXE volume) hands it to the dispatcher. So two firmwares that differ
// only in GOP or VBT differ only in that region: a variant build regenerates the small volume
// and writes it over the region (build-script.ts), instead of GenFds compressing the whole DXE
// volume again. FVMAIN_COMPACT stays right below SECFV, where SEC looks for it (SecMain.c
// FindMainFv walks down from its own volume).
import { Edk2Error } from './errors.js';
import {
  GOP_INF,
  IGD_ASSIGNMENT_INF,
  IGD_VOLUME_DXE_INF,
  IGD_VOLUME_FV,
  IGD_VOLUME_GUID,
  IGD_VOLUME_SIZES,
  POLICY_INF,
  VBT_BIN,
  VBT_FILE_GUID,
} from './layout.js';

const BEGIN = '# ovmf-build OvmfGopPkg begin';
const END = '# ovmf-build OvmfGopPkg end';
const IGD_BEGIN = '# ovmf-build IGD volume begin';
const IGD_END = '# ovmf-build IGD volume end';
/** An original line our IGD volume block replaces, kept in the block so that patching again restores it first. */
const WAS = '# was: ';
const QUIRK_BEGIN = '# ovmf-build quirk begin';
const QUIRK_END = '# ovmf-build quirk end';

const DSC_ANCHOR = 'OvmfPkg/PlatformDxe/Platform.inf';
const FDF_ANCHOR = 'INF OvmfPkg/PlatformDxe/Platform.inf';

export interface PlatformPatchOptions {
  /**
   * More module INF paths to list in the DSC [Components] block. Test-only: lets a test
   * break the build on purpose (a missing module) and check the error report.
   * @default []
   */
  readonly extraDscComponents?: readonly string[];
  /**
   * Map SecureBootVariableLib (and its PlatformPKProtectionLib) also when SECURE_BOOT_ENABLE is
   * FALSE. Debian patches the UEFI Shell to consume SecureBootVariableLib (it refuses to start in
   * secure boot user mode) but OvmfPkgX64.dsc maps the library only for secure boot builds, so a
   * build without secure boot fails with "Instance of library class [SecureBootVariableLib] is not
   * found". Set it when the tree's Shell.inf lists the library (see shellNeedsSecureBootVariableLib).
   * @default false
   */
  readonly secureBootLibsForShell?: boolean;
}

/** True when ShellPkg/Application/Shell/Shell.inf consumes SecureBootVariableLib (Debian's patch). */
export function shellNeedsSecureBootVariableLib(shellInf: string): boolean {
  const section = /^\s*\[LibraryClasses[^\]]*\]([\s\S]*?)(?=^\s*\[|(?![\s\S]))/m.exec(shellInf)?.[1] ?? '';
  return section.split(/\r?\n/).some((line) => line.replace(/#.*$/, '').trim() === 'SecureBootVariableLib');
}

interface Line {
  readonly text: string;
  /** The text without comment and surrounding blanks, whitespace runs collapsed. */
  readonly code: string;
}

/** A line and its code: without comment and surrounding blanks, whitespace runs collapsed. */
function toLine(text: string): Line {
  return { text, code: text.replace(/#.*$/, '').trim().replace(/\s+/g, ' ') };
}

function splitLines(text: string): { lines: Line[]; eol: string; finalEol: boolean } {
  const eol = text.includes('\r\n') ? '\r\n' : '\n';
  const finalEol = text.endsWith('\n');
  const raw = text.split(/\r?\n/);
  if (finalEol) raw.pop();
  return {
    lines: raw.map(toLine),
    eol,
    finalEol,
  };
}

/**
 * Removes every block this patcher inserted earlier between `begin` and `end`, putting back the
 * original lines a block replaced (kept in it as `# was: ` comments), so applying the patch
 * twice equals applying it once. Returns `lines` itself when there is none.
 */
function withoutOurBlock(lines: Line[], file: string, begin = BEGIN, end = END): Line[] {
  let out = lines;
  for (;;) {
    const first = out.findIndex((line) => line.text.trim().startsWith(begin));
    if (first === -1) return out;
    const last = out.findIndex((line, index) => index > first && line.text.trim() === end);
    if (last === -1) {
      throw new Edk2Error('E_EDK2_PATCH_FAILED', `${file}: found "${begin}" without "${end}"`, {
        file,
        line: first + 1,
      });
    }
    const restored = out
      .slice(first + 1, last)
      .filter((line) => line.text.startsWith(WAS))
      .map((line) => toLine(line.text.slice(WAS.length)));
    out = [...out.slice(0, first), ...restored, ...out.slice(last + 1)];
  }
}

function sectionNames(code: string): string[] | null {
  const match = /^\[([^\]]+)\]$/.exec(code);
  if (match === null) return null;
  return (match[1] as string).split(',').map((name) => name.trim().toLowerCase());
}

/**
 * Index of the anchor line inside a section that `inSection` accepts, checking that it is
 * not inside an !if/!ifdef/!ifndef block (DSC/FDF spec, "Conditional Directive Blocks").
 */
function findAnchor(
  lines: readonly Line[],
  file: string,
  inSection: (names: readonly string[]) => boolean,
  matches: (code: string) => boolean,
  anchorText: string,
): number {
  let depth = 0;
  let sectionOk = false;
  let sectionSeen = false;
  for (const [index, line] of lines.entries()) {
    const names = sectionNames(line.code);
    if (names !== null) {
      sectionOk = inSection(names);
      sectionSeen ||= sectionOk;
      continue;
    }
    if (/^!if(n?def)?\b/i.test(line.code)) depth += 1;
    else if (/^!endif\b/i.test(line.code)) depth -= 1;
    else if (sectionOk && matches(line.code)) {
      if (depth !== 0) {
        throw new Edk2Error(
          'E_EDK2_PATCH_FAILED',
          `${file}:${index + 1}: the anchor "${anchorText}" is inside a conditional block`,
          { file, line: index + 1, anchor: anchorText },
        );
      }
      return index;
    }
  }
  throw new Edk2Error(
    'E_EDK2_PATCH_FAILED',
    sectionSeen
      ? `${file}: the anchor "${anchorText}" is missing from its section`
      : `${file}: the section for the anchor "${anchorText}" is missing`,
    { file, anchor: anchorText },
  );
}

/** The line after a module statement, skipping its `{ ... }` override block if it has one. */
function afterStatement(lines: readonly Line[], anchor: number, file: string): number {
  if (!(lines[anchor] as Line).code.endsWith('{')) return anchor + 1;
  let depth = 0;
  for (let index = anchor; index < lines.length; index += 1) {
    const code = (lines[index] as Line).code;
    depth += (code.match(/\{/g) ?? []).length - (code.match(/\}/g) ?? []).length;
    if (depth === 0) return index + 1;
  }
  throw new Edk2Error('E_EDK2_PATCH_FAILED', `${file}:${anchor + 1}: unterminated { block`, {
    file,
    line: anchor + 1,
  });
}

/**
 * The line before which a block is appended to the end of a section (before its trailing blank
 * lines), checked to be outside any conditional block.
 */
function endOfSection(lines: readonly Line[], file: string, header: string): number {
  let depth = 0;
  let start = -1;
  for (const [index, line] of lines.entries()) {
    const names = sectionNames(line.code);
    if (names !== null) {
      if (start !== -1) return checkedEnd(lines, file, header, start, index, depth);
      if (names.length === 1 && names[0] === header) start = index;
      continue;
    }
    if (/^!if(n?def)?\b/i.test(line.code)) depth += 1;
    else if (/^!endif\b/i.test(line.code)) depth -= 1;
  }
  if (start === -1) {
    throw new Edk2Error('E_EDK2_PATCH_FAILED', `${file}: the section [${header}] is missing`, {
      file,
      section: header,
    });
  }
  return checkedEnd(lines, file, header, start, lines.length, depth);
}

function checkedEnd(
  lines: readonly Line[],
  file: string,
  header: string,
  start: number,
  next: number,
  depth: number,
) {
  if (depth !== 0) {
    throw new Edk2Error(
      'E_EDK2_PATCH_FAILED',
      `${file}: the section [${header}] ends inside a conditional block`,
      {
        file,
        section: header,
      },
    );
  }
  let at = next;
  while (at > start + 1 && (lines[at - 1] as Line).text.trim() === '') at -= 1;
  return at;
}

function insertBlock(
  text: string,
  file: string,
  locate: (lines: Line[]) => number,
  block: string[],
  markers: readonly [string, string] = [BEGIN, END],
): string {
  const { lines: original, eol, finalEol } = splitLines(text);
  const lines = withoutOurBlock(original, file, ...markers);
  const at = locate(lines);
  const out = [
    ...lines.slice(0, at).map((line) => line.text),
    ...block,
    ...lines.slice(at).map((line) => line.text),
  ];
  return out.join(eol) + (finalEol ? eol : '');
}

/** Adds our four modules to the X64 [Components] section of OvmfPkgX64.dsc (and the Shell quirk if asked). */
export function patchDsc(text: string, options: PlatformPatchOptions = {}, file = 'OvmfPkgX64.dsc'): string {
  const withModules = addComponents(text, options, file);
  const quirkBlock = [
    `  ${QUIRK_BEGIN}: the Shell consumes SecureBootVariableLib also without secure boot`,
    '!if $(SECURE_BOOT_ENABLE) == FALSE',
    '  SecureBootVariableLib|SecurityPkg/Library/SecureBootVariableLib/SecureBootVariableLib.inf',
    '  PlatformPKProtectionLib|SecurityPkg/Library/PlatformPKProtectionLibVarPolicy/PlatformPKProtectionLibVarPolicy.inf',
    '!endif',
    `  ${QUIRK_END}`,
  ];
  if (options.secureBootLibsForShell !== true) {
    const { lines, eol, finalEol } = splitLines(withModules);
    const kept = withoutOurBlock(lines, file, QUIRK_BEGIN, QUIRK_END);
    return kept === lines ? withModules : kept.map((line) => line.text).join(eol) + (finalEol ? eol : '');
  }
  return insertBlock(withModules, file, (lines) => endOfSection(lines, file, 'libraryclasses'), quirkBlock, [
    QUIRK_BEGIN,
    QUIRK_END,
  ]);
}

function addComponents(text: string, options: PlatformPatchOptions, file: string): string {
  const isX64Components = (names: readonly string[]): boolean =>
    names.some((name) => name === 'components' || name === 'components.x64' || name === 'components.common');
  return insertBlock(
    text,
    file,
    (lines) =>
      afterStatement(
        lines,
        findAnchor(
          lines,
          file,
          isX64Components,
          (code) => code === DSC_ANCHOR || code === `${DSC_ANCHOR} {`,
          DSC_ANCHOR,
        ),
        file,
      ),
    [
      `  ${BEGIN}: IGD assignment, the platform GOP policy, the Intel GOP driver (binary) and the IGD volume loader`,
      `  ${IGD_ASSIGNMENT_INF}`,
      `  ${POLICY_INF}`,
      `  ${GOP_INF}`,
      `  ${IGD_VOLUME_DXE_INF}`,
      ...(options.extraDscComponents ?? []).map((inf) => `  ${inf}`),
      `  ${END}`,
    ],
  );
}

/** Index of the first of `statement` (two lines: region, `FV = name`) in the section `section`. */
function findRegion(
  lines: readonly Line[],
  file: string,
  section: string,
  statement: readonly [string, string],
): number {
  const at = findAnchor(
    lines,
    file,
    (names) => names.length === 1 && names[0] === section,
    (code) => code === statement[0],
    statement[0],
  );
  if ((lines[at + 1] as Line | undefined)?.code !== statement[1]) {
    throw new Edk2Error(
      'E_EDK2_PATCH_FAILED',
      `${file}:${at + 2}: expected "${statement[1]}" after "${statement[0]}" in [${section.toUpperCase()}]`,
      { file, line: at + 2, anchor: statement[1] },
    );
  }
  return at;
}

/** The sizes of the IGD volume's region and of what is left to FVMAIN_COMPACT, per flash size. */
function igdVolumeDefines(): string[] {
  return Object.entries(IGD_VOLUME_SIZES).flatMap(([kib, sizes]) => [
    `!if $(FD_SIZE_IN_KB) == ${kib}`,
    `DEFINE OVMF_BUILD_IGDVOL_SIZE       = 0x${sizes.igdVolume.toString(16).toUpperCase()}`,
    `DEFINE OVMF_BUILD_FVMAIN_OFFSET     = 0x${sizes.fvMainOffset.toString(16).toUpperCase()}`,
    `DEFINE OVMF_BUILD_FVMAIN_SIZE       = 0x${sizes.fvMain.toString(16).toUpperCase()}`,
    '!endif',
  ]);
}

/**
 * Patches OvmfPkgX64.fdf: our three DXE drivers into [FV.DXEFV]; the GOP driver and the VBT
 * freeform file into a new [FV.IGDVOL]; its region (with the PCDs IgdVolumeDxe reads) cut from
 * the start of FVMAIN_COMPACT's in [FD.OVMF] and [FD.OVMF_CODE].
 */
export function patchFdf(text: string, file = 'OvmfPkgX64.fdf'): string {
  const { lines: original, eol, finalEol } = splitLines(text);
  let lines = withoutOurBlock(withoutOurBlock(original, file, IGD_BEGIN, IGD_END), file);
  const edit = (at: number, remove: number, block: readonly string[]): void => {
    const replaced = lines.slice(at, at + remove).map((line) => `${WAS}${line.text}`);
    const body = remove === 0 ? block : [block[0] as string, ...replaced, ...block.slice(1)];
    lines = [...lines.slice(0, at), ...body.map(toLine), ...lines.slice(at + remove)];
  };

  const dxeAnchor = findAnchor(
    lines,
    file,
    (names) => names.includes('fv.dxefv'),
    (code) => code === FDF_ANCHOR,
    FDF_ANCHOR,
  );
  edit(dxeAnchor + 1, 0, [
    `${BEGIN}: IGD assignment, the platform GOP policy, and the driver that loads the IGD volume`,
    `INF  ${IGD_ASSIGNMENT_INF}`,
    `INF  ${POLICY_INF}`,
    `INF  ${IGD_VOLUME_DXE_INF}`,
    END,
  ]);

  const dxeHeader = lines.findIndex((line) => line.code.toLowerCase() === '[fv.dxefv]');
  edit(dxeHeader, 0, [
    `${IGD_BEGIN}: the Intel GOP driver and its VBT, uncompressed, in a volume of their own`,
    `[FV.${IGD_VOLUME_FV}]`,
    'FvForceRebase      = FALSE',
    `FvNameGuid         = ${IGD_VOLUME_GUID}`,
    'BlockSize          = 0x10000',
    'FvAlignment        = 16',
    'ERASE_POLARITY     = 1',
    'MEMORY_MAPPED      = TRUE',
    'STICKY_WRITE       = TRUE',
    'LOCK_CAP           = TRUE',
    'LOCK_STATUS        = TRUE',
    'WRITE_DISABLED_CAP = TRUE',
    'WRITE_ENABLED_CAP  = TRUE',
    'WRITE_STATUS       = TRUE',
    'WRITE_LOCK_CAP     = TRUE',
    'WRITE_LOCK_STATUS  = TRUE',
    'READ_DISABLED_CAP  = TRUE',
    'READ_ENABLED_CAP   = TRUE',
    'READ_STATUS        = TRUE',
    'READ_LOCK_CAP      = TRUE',
    'READ_LOCK_STATUS   = TRUE',
    '',
    `INF  ${GOP_INF}`,
    `FILE FREEFORM = ${VBT_FILE_GUID} {`,
    `  SECTION RAW = ${VBT_BIN}`,
    '}',
    '',
    IGD_END,
  ]);

  // FVMAIN_COMPACT's region, in each FD that has it: the IGD volume at its start, FVMAIN_COMPACT after.
  for (const [section, start, fvMainStart] of [
    ['fd.ovmf_code', '0x00000000', '$(OVMF_BUILD_IGDVOL_SIZE)'],
    ['fd.ovmf', '$(VARS_SIZE)', '$(OVMF_BUILD_FVMAIN_OFFSET)'],
  ] as const) {
    edit(findRegion(lines, file, section, [`${start}|$(FVMAIN_SIZE)`, 'FV = FVMAIN_COMPACT']), 2, [
      `${IGD_BEGIN}: the IGD volume, then FVMAIN_COMPACT in the rest of its region`,
      `${start}|$(OVMF_BUILD_IGDVOL_SIZE)`,
      `FV = ${IGD_VOLUME_FV}`,
      '',
      `${fvMainStart}|$(OVMF_BUILD_FVMAIN_SIZE)`,
      'FV = FVMAIN_COMPACT',
      IGD_END,
    ]);
  }

  const include = findAnchor(
    lines,
    file,
    (names) => names.length === 1 && names[0] === 'defines',
    (line) => line === '!include OvmfPkgDefines.fdf.inc',
    '!include OvmfPkgDefines.fdf.inc',
  );
  edit(include + 1, 0, [
    `${IGD_BEGIN}: the IGD volume's region at the start of the code, where FVMAIN_COMPACT's began`,
    ...igdVolumeDefines(),
    'SET gOvmfGopPkgTokenSpaceGuid.PcdOvmfGopIgdVolumeBase = $(CODE_BASE_ADDRESS)',
    'SET gOvmfGopPkgTokenSpaceGuid.PcdOvmfGopIgdVolumeSize = $(OVMF_BUILD_IGDVOL_SIZE)',
    IGD_END,
  ]);

  return lines.map((line) => line.text).join(eol) + (finalEol ? eol : '');
}

export interface PlatformFiles {
  readonly dsc: string;
  readonly fdf: string;
}

/** Both edits; the result is what the build container gets instead of the original files. */
export function patchPlatform(files: PlatformFiles, options: PlatformPatchOptions = {}): PlatformFiles {
  return { dsc: patchDsc(files.dsc, options), fdf: patchFdf(files.fdf) };
}
