// Adds OvmfGopPkg to OvmfPkgX64.dsc and OvmfPkgX64.fdf. Text edits on the files as they
// are in the source (CRLF in upstream EDK2), anchored on a module that every OvmfPkgX64
// has outside any conditional, so our modules are built and placed with every flag set.
import { Edk2Error } from './errors.js';
import { GOP_INF, POLICY_INF, VBT_BIN, VBT_FILE_GUID } from './layout.js';

const BEGIN = '# ovmf-build OvmfGopPkg begin';
const END = '# ovmf-build OvmfGopPkg end';

const DSC_ANCHOR = 'OvmfPkg/PlatformDxe/Platform.inf';
const FDF_ANCHOR = 'INF OvmfPkg/PlatformDxe/Platform.inf';

export interface PlatformPatchOptions {
  /**
   * More module INF paths to list in the DSC [Components] block. Test-only: lets a test
   * break the build on purpose (a missing module) and check the error report.
   * @default []
   */
  readonly extraDscComponents?: readonly string[];
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
function withoutOurBlock(lines: Line[], file: string): Line[] {
  const begin = lines.findIndex((line) => line.text.trim().startsWith(BEGIN));
  if (begin === -1) return lines;
  const end = lines.findIndex((line, index) => index > begin && line.text.trim() === END);
  if (end === -1) {
    throw new Edk2Error('E_EDK2_PATCH_FAILED', `${file}: found "${BEGIN}" without "${END}"`, {
      file,
      line: begin + 1,
    });
  }
  return [...lines.slice(0, begin), ...lines.slice(end + 1)];
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

function insertBlock(text: string, file: string, locate: (lines: Line[]) => number, block: string[]): string {
  const { lines: original, eol, finalEol } = splitLines(text);
  const lines = withoutOurBlock(original, file);
  const at = locate(lines);
  const out = [
    ...lines.slice(0, at).map((line) => line.text),
    ...block,
    ...lines.slice(at).map((line) => line.text),
  ];
  return out.join(eol) + (finalEol ? eol : '');
}

/** Adds our two modules to the X64 [Components] section of OvmfPkgX64.dsc. */
export function patchDsc(text: string, options: PlatformPatchOptions = {}, file = 'OvmfPkgX64.dsc'): string {
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
      `  ${BEGIN}: Intel GOP driver (binary) and the platform GOP policy`,
      `  ${POLICY_INF}`,
      `  ${GOP_INF}`,
      ...(options.extraDscComponents ?? []).map((inf) => `  ${inf}`),
      `  ${END}`,
    ],
  );
}

/** Adds the two drivers and the VBT freeform file to [FV.DXEFV] of OvmfPkgX64.fdf. */
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
      `${BEGIN}: Intel GOP driver, its VBT, the platform GOP policy`,
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
