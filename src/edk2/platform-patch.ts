// Adds OvmfGopPkg to OvmfPkgX64.dsc and OvmfPkgX64.fdf. Text edits on the files as they
// are in the source (CRLF in upstream EDK2), anchored on a module that every OvmfPkgX64
// has outside any conditional, so our modules are built and placed with every flag set.
import { Edk2Error } from './errors.js';
import { GOP_INF, IGD_ASSIGNMENT_INF, POLICY_INF, VBT_BIN, VBT_FILE_GUID } from './layout.js';

const BEGIN = '# ovmf-build OvmfGopPkg begin';
const END = '# ovmf-build OvmfGopPkg end';
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

function splitLines(text: string): { lines: Line[]; eol: string; finalEol: boolean } {
  const eol = text.includes('\r\n') ? '\r\n' : '\n';
  const finalEol = text.endsWith('\n');
  const raw = text.split(/\r?\n/);
  if (finalEol) raw.pop();
  return {
    lines: raw.map((line) => ({
      text: line,
      code: line.replace(/#.*$/, '').trim().replace(/\s+/g, ' '),
    })),
    eol,
    finalEol,
  };
}

/** Removes a block this patcher inserted earlier, so applying the patch twice equals applying it once. */
function withoutOurBlock(lines: Line[], file: string, begin = BEGIN, end = END): Line[] {
  const first = lines.findIndex((line) => line.text.trim().startsWith(begin));
  if (first === -1) return lines;
  const last = lines.findIndex((line, index) => index > first && line.text.trim() === end);
  if (last === -1) {
    throw new Edk2Error('E_EDK2_PATCH_FAILED', `${file}: found "${begin}" without "${end}"`, {
      file,
      line: first + 1,
    });
  }
  return [...lines.slice(0, first), ...lines.slice(last + 1)];
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

/** Adds our three modules to the X64 [Components] section of OvmfPkgX64.dsc (and the Shell quirk if asked). */
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
      `  ${BEGIN}: IGD assignment, the platform GOP policy and the Intel GOP driver (binary)`,
      `  ${IGD_ASSIGNMENT_INF}`,
      `  ${POLICY_INF}`,
      `  ${GOP_INF}`,
      ...(options.extraDscComponents ?? []).map((inf) => `  ${inf}`),
      `  ${END}`,
    ],
  );
}

/** Adds the three drivers and the VBT freeform file to [FV.DXEFV] of OvmfPkgX64.fdf. */
export function patchFdf(text: string, file = 'OvmfPkgX64.fdf'): string {
  return insertBlock(
    text,
    file,
    (lines) =>
      findAnchor(
        lines,
        file,
        (names) => names.includes('fv.dxefv'),
        (code) => code === FDF_ANCHOR,
        FDF_ANCHOR,
      ) + 1,
    [
      `${BEGIN}: IGD assignment, the platform GOP policy, the Intel GOP driver and its VBT`,
      `INF  ${IGD_ASSIGNMENT_INF}`,
      `INF  ${POLICY_INF}`,
      `INF  ${GOP_INF}`,
      `FILE FREEFORM = ${VBT_FILE_GUID} {`,
      `  SECTION RAW = ${VBT_BIN}`,
      `}`,
      END,
    ],
  );
}

export interface PlatformFiles {
  readonly dsc: string;
  readonly fdf: string;
}

/** Both edits; the result is what the build container gets instead of the original files. */
export function patchPlatform(files: PlatformFiles, options: PlatformPatchOptions = {}): PlatformFiles {
  return { dsc: patchDsc(files.dsc, options), fdf: patchFdf(files.fdf) };
}
