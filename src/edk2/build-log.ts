// Reads the build container's log line by line: stage markers of our script, EDK2's
// "Building ... X.inf [X64]" per module and GenFds, and, after a failure, which module
// failed and the error lines (formats of BaseTools/Source/Python/build/build.py and make).
import { ENV_PREFIX, STAGE_PREFIX, WORKSPACE } from './build-script.js';

export type BuildStage = 'inputs' | 'basetools' | 'setup' | 'build' | 'genfds' | 'collect' | 'done';

/** What the script saw inside the container. */
export interface BuildEnvironment {
  readonly uid: number;
  readonly gid: number;
  readonly networkInterfaces: readonly string[];
  /** CapBnd of /proc/self/status, hex: 0000000000000000 when every capability was dropped. */
  readonly capabilityBoundingSet: string;
  /** NoNewPrivs of /proc/self/status. */
  readonly noNewPrivileges: boolean;
}

export type BuildProgress =
  | { readonly kind: 'environment'; readonly environment: BuildEnvironment }
  | { readonly kind: 'stage'; readonly stage: BuildStage; readonly modulesBuilt: number }
  | {
      readonly kind: 'module';
      readonly stage: 'build';
      readonly module: string;
      readonly modulesBuilt: number;
    };

const STAGES: readonly string[] = ['inputs', 'basetools', 'setup', 'build', 'genfds', 'collect', 'done'];
const BUILDING = /^Building \.\.\. (\S+\.inf) \[(\w+)\]\s*$/;

/** Workspace-relative form of an absolute path inside the container. */
function relative(file: string): string {
  return file.startsWith(`${WORKSPACE}/`) ? file.slice(WORKSPACE.length + 1) : file;
}

/** Turns log lines into progress events; keeps the counts. */
export class BuildLogParser {
  #stage: BuildStage | null = null;
  #modulesBuilt = 0;
  #environment: BuildEnvironment | null = null;

  get environment(): BuildEnvironment | null {
    return this.#environment;
  }

  get stage(): BuildStage | null {
    return this.#stage;
  }

  get modulesBuilt(): number {
    return this.#modulesBuilt;
  }

  /** The event this line means, or null for an ordinary line. */
  push(line: string): BuildProgress | null {
    if (line.startsWith(ENV_PREFIX)) {
      const fields = new Map(
        line
          .slice(ENV_PREFIX.length)
          .trim()
          .split(/\s+/)
          .map((field) => [field.split('=')[0] ?? '', field.slice(field.indexOf('=') + 1)] as const),
      );
      this.#environment = {
        uid: Number(fields.get('uid')),
        gid: Number(fields.get('gid')),
        networkInterfaces: (fields.get('net') ?? '').split(',').filter((name) => name !== ''),
        capabilityBoundingSet: fields.get('capbnd') ?? '',
        noNewPrivileges: fields.get('nnp') === '1',
      };
      return { kind: 'environment', environment: this.#environment };
    }
    if (line.startsWith(STAGE_PREFIX)) {
      const stage = line.slice(STAGE_PREFIX.length).trim();
      if (STAGES.includes(stage)) {
        this.#stage = stage as BuildStage;
        return { kind: 'stage', stage: this.#stage, modulesBuilt: this.#modulesBuilt };
      }
      return null;
    }
    const building = BUILDING.exec(line);
    if (building !== null) {
      this.#modulesBuilt += 1;
      return {
        kind: 'module',
        stage: 'build',
        module: relative(building[1] as string),
        modulesBuilt: this.#modulesBuilt,
      };
    }
    // Flash image generation: build.py (edk2-stable202211) runs GenFds in-process and prints
    // "Fd File Name:OVMF (<path>)" first; a standalone GenFds call prints "GenFds -f <fdf> ...".
    if (this.#stage === 'build' && /^(Fd File Name:|GenFds -f )/.test(line)) {
      this.#stage = 'genfds';
      return { kind: 'stage', stage: 'genfds', modulesBuilt: this.#modulesBuilt };
    }
    return null;
  }
}

export interface BuildFailure {
  /** Workspace-relative INF (or 'BaseTools', or the DSC/FDF) that failed, null when unknown. */
  readonly failingModule: string | null;
  /** Our script's stage when it failed. */
  readonly stage: BuildStage | null;
  /** The error lines (compiler, make, build.py), at most 20. */
  readonly errorLines: readonly string[];
  /** The last lines of the log. */
  readonly lastLines: readonly string[];
  /** GenFv's "required fv image size exceeds the set fv image size": which volume, by how much. */
  readonly volumeOverflow: {
    readonly volume: string | null;
    readonly required: number;
    readonly size: number;
  } | null;
}

const FV_OVERFLOW = /the required fv image size (0x[0-9a-f]+) exceeds the set fv image size (0x[0-9a-f]+)/i;
/** GenFds's echo of the GenFv command: `['GenFv', ..., '-o', '<dir>/FVMAIN_COMPACT.Fv', ...]`. */
const GENFV_OUTPUT = /'-o', '[^']*\/([\w.-]+)\.Fv'/;

function volumeOverflow(lines: readonly string[]): BuildFailure['volumeOverflow'] {
  for (let index = lines.length - 1; index >= 0; index -= 1) {
    const overflow = FV_OVERFLOW.exec(lines[index] as string);
    if (overflow === null) continue;
    let volume: string | null = null;
    for (let before = index; before >= 0 && volume === null; before -= 1) {
      volume = GENFV_OUTPUT.exec(lines[before] as string)?.[1] ?? null;
    }
    return { volume, required: Number(overflow[1]), size: Number(overflow[2]) };
  }
  return null;
}

const INF_IN_LINE = /(\/?[\w.\-/]+\.inf)\b/;

/** Names the failing module from the last lines of a failed build's log. */
export function parseBuildFailure(
  lines: readonly string[],
  stage: BuildStage | null,
  lastLineCount = 30,
): BuildFailure {
  const errorLines = lines
    .filter(
      (line) =>
        // Not `-Wno-error` of a compiler or linker command line that make echoes (parallel
        // builds print other modules' link lines between the error and build.py's report).
        /(?<![-\w])error\b/i.test(line) ||
        /^make(\[\d+\])?: \*\*\*/.test(line) ||
        /^\s*(consumed by module|in) \[/.test(line),
    )
    .slice(-20);
  return {
    failingModule: failingModule(lines, stage),
    stage,
    errorLines,
    lastLines: lines.slice(-lastLineCount),
    volumeOverflow: volumeOverflow(lines),
  };
}

function failingModule(lines: readonly string[], stage: BuildStage | null): string | null {
  if (stage === 'basetools') return 'BaseTools';
  const nextInf = (index: number): string | null => {
    const match = INF_IN_LINE.exec(lines[index + 1] ?? '');
    return match === null ? null : relative(match[1] as string);
  };
  // build.py: ": error F002: Failed to build module" then "\t<inf> [X64, GCC5, DEBUG]".
  for (let index = lines.length - 1; index >= 0; index -= 1) {
    if (/Failed to build module/.test(lines[index] as string)) {
      const inf = nextInf(index);
      if (inf !== null) return inf;
    }
  }
  // Library resolution errors: "consumed by module [<inf>]".
  for (let index = lines.length - 1; index >= 0; index -= 1) {
    const consumed = /consumed by module \[(\S+\.inf)\]/.exec(lines[index] as string);
    if (consumed !== null) return relative(consumed[1] as string);
  }
  // "<file>(<line>): error <code>: ..." followed by an indented INF (e.g. 000E file not found).
  for (let index = lines.length - 1; index >= 0; index -= 1) {
    const line = lines[index] as string;
    const meta = /^(\S+\.(?:dsc|fdf|inf|dec))\([^)]*\): error [0-9A-F]{4}:/.exec(line);
    if (meta !== null) return nextInf(index) ?? relative(meta[1] as string);
  }
  // "make tbuild [<workspace>/Build/<platform>/<target>_<tool>/<arch>/<module dir>/<base name>]".
  for (let index = lines.length - 1; index >= 0; index -= 1) {
    const tbuild = /make tbuild \[\S*?\/Build\/[^/]+\/[^/]+\/[^/]+\/(\S+)\/([^/\]]+)\]/.exec(
      lines[index] as string,
    );
    if (tbuild !== null) return `${tbuild[1] as string}/${tbuild[2] as string}.inf`;
  }
  return null;
}
