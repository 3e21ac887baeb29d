// The scripts the build containers run. Generated, so the job, the benchmark's by-hand
// baseline, a warm rebuild and a variant all run the same commands.
import type { BuildFlags } from './flags.js';
import { buildDefines } from './flags.js';
import {
  DSC_PATH,
  GOP_EFI,
  GOP_FILE_GUID,
  GOP_UI_NAME,
  IGD_ASSIGNMENT_EFI,
  IGD_ASSIGNMENT_INF,
  IGD_VOLUME_FV,
  igdVolumeSizes,
  POLICY_EFI,
  POLICY_INF,
  VBT_BIN,
  VBT_FILE_GUID,
} from './layout.js';

/** Fixed workspace path: absolute paths end up in the binaries (BUILD-NOTES, reproducibility). */
export const WORKSPACE = '/edk2';
/** Our inputs (overlay, patched DSC/FDF, GOP, VBT, this script), staged outside the workspace. */
export const STAGING = '/ovmf-build';
export const STAGED_INPUTS = `${STAGING}/input`;
export const SCRIPT_PATH = `${STAGING}/build.sh`;
export const OUTPUT_DIR = `${STAGING}/output`;
/** Stage markers the script prints; the job turns them into progress events. */
export const STAGE_PREFIX = '::ovmf-build:: stage ';
/** The script reports who it runs as and which network interfaces it sees (only `lo` with network none). */
export const ENV_PREFIX = '::ovmf-build:: env ';

export const TOOLCHAIN = 'GCC5';
export const PLATFORM_DSC = DSC_PATH;
/** `Build/OvmfX64/<target>_GCC5`, from OUTPUT_DIRECTORY in OvmfPkgX64.dsc. */
function buildDir(flags: BuildFlags): string {
  return `Build/OvmfX64/${flags.target}_${TOOLCHAIN}`;
}

/** `Build/OvmfX64/<target>_GCC5/FV`. */
export function fvDir(flags: BuildFlags): string {
  return `${buildDir(flags)}/FV`;
}

export const OUTPUT_FILES = ['OVMF_CODE.fd', 'OVMF_VARS.fd', 'OVMF.fd'] as const;

/**
 * The helper drivers' PE32 images as `build` leaves them in each module's OUTPUT directory
 * (`Build/OvmfX64/<target>_GCC5/X64/<INF dir>/<BASE_NAME>/OUTPUT/<BASE_NAME>.efi`), the files
 * GenFds wraps into the DXE volume; exported so option ROMs carry the very same binaries.
 */
export function helperDriverPaths(
  flags: BuildFlags,
): Readonly<Record<'igdAssignment' | 'gopPolicy', string>> {
  const output = (inf: string, efi: string): string => {
    const dir = inf.slice(0, inf.lastIndexOf('/'));
    const baseName = efi.replace(/\.efi$/, '');
    return `${buildDir(flags)}/X64/${dir}/${baseName}/OUTPUT/${efi}`;
  };
  return {
    igdAssignment: output(IGD_ASSIGNMENT_INF, IGD_ASSIGNMENT_EFI),
    gopPolicy: output(POLICY_INF, POLICY_EFI),
  };
}

/**
 * Which commands a build container runs:
 * - 'clean': a container from the tools image (source + compiled BaseTools, tools-image.ts)
 *   runs the full `build`, which compiles every module;
 * - 'warm': a committed workspace runs `build` again, recompiling what changed (e.g. a
 *   stand-in overlay file) and making the firmware volumes;
 * - 'variant': a committed workspace whose compiled inputs are all unchanged regenerates only the
 *   IGD volume (the GOP and VBT) and writes it over its region of the flash images
 *   (igdVolumeCommands).
 */
export type BuildPath = 'clean' | 'warm' | 'variant';

export interface BuildScriptOptions {
  readonly flags: BuildFlags;
  readonly mode: BuildPath;
  /**
   * Parallel jobs for `build -n` (and `make -j` in the tools script).
   * @default 2
   */
  readonly jobs?: number;
}

function checkJobs(jobs: number): number {
  if (!Number.isInteger(jobs) || jobs < 1 || jobs > 256) {
    throw new TypeError(`Expected \`jobs\` to be an integer from 1 to 256, got \`${String(jobs)}\``);
  }
  return jobs;
}

/** The `build` command line (without the shell). */
export function buildCommand(flags: BuildFlags, jobs = 2): string[] {
  return [
    'build',
    '-a',
    'X64',
    '-t',
    TOOLCHAIN,
    '-p',
    PLATFORM_DSC,
    '-b',
    flags.target,
    '-n',
    String(jobs),
    ...buildDefines(flags),
  ];
}

/**
 * The variant path's flash step: the commands GenFds runs for the IGD volume's two files and the
 * volume itself, then the volume written over its region of OVMF.fd (at VARS_SIZE) and of
 * OVMF_CODE.fd (at 0). Nothing else in the flash depends on the GOP or the VBT (they are not in
 * the compressed DXE volume, platform-patch.ts), so the images equal what GenFds makes from the
 * same inputs, byte for byte, without its ~4 s (mostly LZMA-compressing the DXE volume again).
 * GenFds records each section and file command it ran in a `.txt` beside the output; the script
 * checks that the workspace's records are these commands before it runs them, and stops (exit 3)
 * if they are not, so a GenFds that packages the files differently is never imitated wrongly.
 * The UI and version sections of the GOP file (name and version from its INF) stay as the clean
 * build made them. GenFv gets the arguments GenFds.Fv passes for a volume without FFS3 or rebase.
 */
export function igdVolumeCommands(flags: BuildFlags): string[] {
  const fv = `${WORKSPACE}/${fvDir(flags)}`;
  const gopDir = `${fv}/Ffs/${GOP_FILE_GUID}${GOP_UI_NAME}`;
  const vbtDir = `${fv}/Ffs/${VBT_FILE_GUID}${IGD_VOLUME_FV}`;
  const gop = (suffix: string): string => `${gopDir}/${GOP_FILE_GUID}${suffix}`;
  const vbt = (suffix: string): string => `${vbtDir}/${VBT_FILE_GUID}${suffix}`;
  const recorded: [string, string][] = [
    [gop('SEC2.1.pe32.txt'), `GenSec -s EFI_SECTION_PE32 -o ${gop('SEC2.1.pe32')} ${WORKSPACE}/${GOP_EFI}`],
    [
      gop('.ffs.txt'),
      `GenFfs -t EFI_FV_FILETYPE_DRIVER -g ${GOP_FILE_GUID} -o ${gop('.ffs')} -i ${gop('SEC2.1.pe32')} ` +
        `-i ${gop('SEC3.ui')} -i ${gop('SEC4.ver')}`,
    ],
    [vbt('SEC1.raw.txt'), `GenSec -s EFI_SECTION_RAW -o ${vbt('SEC1.raw')} ${WORKSPACE}/${VBT_BIN}`],
    [
      vbt('.ffs.txt'),
      `GenFfs -t EFI_FV_FILETYPE_FREEFORM -g ${VBT_FILE_GUID} -o ${vbt('.ffs')} -i ${vbt('SEC1.raw')}`,
    ],
  ];
  const sizes = igdVolumeSizes(flags.fdSize);
  const volume = `${fv}/${IGD_VOLUME_FV}.Fv`;
  const write = (image: string, offset: number): string =>
    `dd if=${volume} of=${fv}/${image} bs=4096 seek=${offset / 4096} conv=notrunc status=none`;
  return [
    ...recorded.flatMap(([record, command]) => [
      `[ "$(cat ${record})" = ${quote(command)} ] || { echo "GenFds recorded another command in ${record}" >&2; exit 3; }`,
      command,
    ]),
    `GenFv -F FALSE -a ${fv}/Ffs/${IGD_VOLUME_FV}.inf -o ${volume} -i ${fv}/${IGD_VOLUME_FV}.inf`,
    `[ "$(stat -c %s ${volume})" = ${String(sizes.igdVolume)} ] || { echo "${IGD_VOLUME_FV}.Fv is not ${String(sizes.igdVolume)} bytes" >&2; exit 3; }`,
    write('OVMF.fd', sizes.varsSize),
    write('OVMF_CODE.fd', 0),
  ];
}

/**
 * The script that makes the tools image: BaseTools' C tools compiled in the source tree, once per
 * EDK2 source and builder image instead of in every clean build.
 */
export function toolsScript(jobs = 2): string {
  checkJobs(jobs);
  return [
    '#!/bin/bash',
    '# Generated by ovmf-build (src/edk2/build-script.ts). Runs as uid 1000 in the builder image.',
    'set -eo pipefail',
    'export LC_ALL=C TZ=UTC',
    `cd ${WORKSPACE}`,
    `echo "${STAGE_PREFIX}basetools"`,
    `make -C BaseTools/Source/C -j ${jobs}`,
    `echo "${STAGE_PREFIX}done"`,
    '',
  ].join('\n');
}

function quote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

export function buildScript(options: BuildScriptOptions): string {
  const jobs = checkJobs(options.jobs ?? 2);
  const fv = fvDir(options.flags);
  const helpers = helperDriverPaths(options.flags);
  const run =
    options.mode === 'variant'
      ? ['stage genfds', ...igdVolumeCommands(options.flags)]
      : ['stage build', buildCommand(options.flags, jobs).map(quote).join(' ')];
  return [
    '#!/bin/bash',
    `# Generated by ovmf-build (src/edk2/build-script.ts). Runs as uid 1000, ${options.mode} build.`,
    'set -eo pipefail',
    'export LC_ALL=C TZ=UTC',
    `cd ${WORKSPACE}`,
    `stage() { echo "${STAGE_PREFIX}$1"; }`,
    '',
    // proc(5): CapBnd is the capability bounding set (0 after dropping ALL), NoNewPrivs 1 with no-new-privileges.
    `echo "${ENV_PREFIX}uid=$(id -u) gid=$(id -g) net=$(ls /sys/class/net | paste -sd, -)` +
      ` capbnd=$(awk '/^CapBnd:/{print $2}' /proc/self/status) nnp=$(awk '/^NoNewPrivs:/{print $2}' /proc/self/status)"`,
    'stage inputs',
    // cp -R of the staged tree: overlay package, GOP/VBT and the patched platform files.
    `cp -R --no-preserve=mode,ownership ${STAGED_INPUTS}/. ${WORKSPACE}/`,
    '',
    'stage setup',
    // edksetup.sh reads the positional parameters of the shell that sources it.
    'set --',
    '. ./edksetup.sh',
    '',
    ...run,
    '',
    'stage collect',
    `mkdir -p ${OUTPUT_DIR}`,
    ...OUTPUT_FILES.map((file) => `cp ${fv}/${file} ${OUTPUT_DIR}/${file}`),
    `cp ${helpers.igdAssignment} ${OUTPUT_DIR}/${IGD_ASSIGNMENT_EFI}`,
    `cp ${helpers.gopPolicy} ${OUTPUT_DIR}/${POLICY_EFI}`,
    'stage done',
    '',
  ].join('\n');
}
