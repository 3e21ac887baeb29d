// The options every job command shares (the main command, `build`, `cache why` and the
// nightly runner), parsed once so the same flags mean the same request everywhere: one rule
// for EDK2 source digests (64 hex digits in either case, kept lower-case), one refusal of two
// EDK2 sources at once, tarball paths resolved against the command's cwd, one --clean-build.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { UsageError } from '../core/errors.js';
import { resolveBuildFlags, type BuildFlags } from '../edk2/flags.js';
import type { Edk2SourceSpec } from '../edk2/source.js';
import type { InputSpec } from '../fetch/index.js';
import { igdWiring, lookupDevice } from '../igd/device-table.js';
import { loadIgdDeviceTable } from '../igd/load.js';
import { openJobLog, type JobLog } from '../jobs/job-logger.js';
import type { JobEvent, JobInputs, JobRequest } from '../jobs/job-types.js';
import { createProgress } from '../jobs/progress.js';
import { loadRecipe, recipeInputs, type Recipe } from '../jobs/recipe.js';
import { parseDeviceId } from '../jobs/rom.js';
import { assertArtifactName } from '../publish/naming.js';
import { parseCommandArgs } from './args.js';
import { writeLine, type CommandContext } from './context.js';

export const JOB_OPTIONS = {
  gop: { type: 'string' },
  vbt: { type: 'string' },
  firmware: { type: 'string' },
  recipe: { type: 'string' },
  'source-base-url': { type: 'string' },
  machine: { type: 'string' },
  out: { type: 'string' },
  name: { type: 'string' },
  rom: { type: 'string' },
  device: { type: 'string' },
  target: { type: 'string' },
  'fd-size': { type: 'string' },
  'secure-boot': { type: 'boolean' },
  'no-network': { type: 'boolean' },
  'edk2-tarball': { type: 'string' },
  'edk2-url': { type: 'string' },
  'edk2-sha256': { type: 'string' },
  'edk2-git': { type: 'string' },
  'edk2-ref': { type: 'string' },
  'edk2-debian-version': { type: 'string' },
  offline: { type: 'boolean' },
  'no-verify-boot': { type: 'boolean' },
  accel: { type: 'string' },
  'clean-build': { type: 'boolean' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** The help text of the shared options; `out` is each command's own line. */
export function jobOptionsUsage(out: string): string {
  return [
    'inputs (one of):',
    '  --gop <file> --vbt <file>         the Intel GOP driver (.efi) and the VBT',
    '  --firmware <image>                a vendor firmware image to take both from',
    '  --recipe <recipes/x.json>         pinned inputs (URL + sha256) for a CPU generation',
    '      --source-base-url <url>       fetch recipe URLs from this mirror of raw.githubusercontent.com',
    'options:',
    "  --machine q35|i440fx              VM machine type (default: the recipe's, else the --device generation's:",
    '                                    i440fx legacy mode up to Comet Lake, q35 after; else q35)',
    out,
    '  --name <name>                     artifact name (default: platform, device and GOP build, e.g. cml-9b41-gop1107)',
    '  --rom <file>                      ship this vBIOS ROM (validated) instead of generating one',
    '  --device 8086:XXXX|XXXX           the host iGPU (lspci -n -s 00:02.0): its generation from the device table names',
    "                                    the artifact, is checked against the GOP and VBT, and is the generated ROM's id",
    "                                    (default: the recipe's; without one the ROM says 8086:ffff)",
    '  --target DEBUG|RELEASE            EDK2 build target (default DEBUG: the boot check reads its log)',
    '  --fd-size 2MB|4MB                 flash layout (default 4MB)',
    '  --secure-boot                     secure boot with SMM (q35 only)',
    '  --no-network                      leave out the UEFI network stack',
    '  --edk2-tarball <file|url> --edk2-sha256 <hex> | --edk2-url <url> --edk2-sha256 <hex>',
    '  --edk2-git <url> --edk2-ref <ref> | --edk2-debian-version <v>',
    "                                    EDK2 source, at most one (default: Debian's edk2 source package);",
    '                                    the sha256 is 64 hex digits, either case; a tarball path is relative to .',
    '  --offline                         no downloads or registry pulls',
    '  --no-verify-boot                  skip the QEMU checks (boot, IGD); the structural check always runs',
    '  --accel auto|kvm|tcg              QEMU accelerator of the boot check (default auto: KVM if it ran a probe',
    '                                    firmware on this host, else TCG; a KVM failure retries under TCG)',
    '  --clean-build                     compile everything instead of starting from the committed EDK2 workspace;',
    '                                    the clean build is committed as the new workspace (same bytes either way)',
    '  --json                            print one JSON object on stdout, no progress',
  ].join('\n');
}

type JobValues = {
  [K in keyof typeof JOB_OPTIONS]?: (typeof JOB_OPTIONS)[K]['type'] extends 'boolean' ? boolean : string;
};

/** A job request as the command line gives it; the caller adds env, cwd, job id and tool version. */
export type ParsedRequest = Omit<JobRequest, 'env' | 'cwd' | 'jobId' | 'toolVersion'>;

export interface ParsedJobOptions {
  readonly help: boolean;
  readonly json: boolean;
  /** --out resolved against the cwd, when given (each command has its own default). */
  readonly out: string | undefined;
  /** The request; `storeDir` is --out or ./artifacts. Undefined with --help. */
  readonly options: ParsedRequest;
}

function oneOf<T extends string>(
  name: string,
  value: string | undefined,
  allowed: readonly T[],
): T | undefined {
  if (value === undefined) return undefined;
  const upper = allowed.find((choice) => choice.toUpperCase() === value.toUpperCase());
  if (upper === undefined) {
    throw new UsageError(`--${name} must be ${allowed.join(' or ')}, got \`${value}\``, { [name]: value });
  }
  return upper;
}

/** The EDK2 source options: at most one source, each with exactly its own companion options. */
export function edk2SourceSpec(values: JobValues, cwd: string): Edk2SourceSpec {
  const tarball = values['edk2-tarball'];
  const url = values['edk2-url'];
  const git = values['edk2-git'];
  const debian = values['edk2-debian-version'];
  const given = [
    ['--edk2-tarball', tarball],
    ['--edk2-url', url],
    ['--edk2-git', git],
    ['--edk2-debian-version', debian],
  ].filter(([, value]) => value !== undefined);
  if (given.length > 1) {
    throw new UsageError(`give one EDK2 source, not ${given.map(([name]) => name).join(' and ')}`);
  }
  const sha = values['edk2-sha256'];
  if (tarball !== undefined || url !== undefined) {
    if (sha === undefined || !/^[0-9a-f]{64}$/i.test(sha)) {
      throw new UsageError('--edk2-tarball/--edk2-url need --edk2-sha256 <64 hex digits>');
    }
    const digest = sha.toLowerCase();
    const where = (url ?? tarball) as string;
    return url !== undefined || /^https?:\/\//.test(where)
      ? { kind: 'tarball', url: where, sha256: digest }
      : { kind: 'tarball', path: path.resolve(cwd, where), sha256: digest };
  }
  if (sha !== undefined) throw new UsageError('--edk2-sha256 goes with --edk2-tarball or --edk2-url');
  const ref = values['edk2-ref'];
  if (git !== undefined) {
    if (ref === undefined || ref === '')
      throw new UsageError('--edk2-git needs --edk2-ref <branch, tag or commit>');
    return { kind: 'git', url: git, ref };
  }
  if (ref !== undefined) throw new UsageError('--edk2-ref goes with --edk2-git');
  return debian === undefined ? { kind: 'debian' } : { kind: 'debian', version: debian };
}

/** The device table's default machine for a device id, or undefined for an id it does not know. */
async function defaultMachineFor(deviceId: number): Promise<'q35' | 'i440fx' | undefined> {
  const platform = lookupDevice(await loadIgdDeviceTable(), deviceId.toString(16).padStart(4, '0'));
  return platform === undefined ? undefined : igdWiring(platform).defaultMachine;
}

function jobInputs(values: JobValues, recipe: Recipe | undefined, cwd: string): JobInputs {
  const given = [
    values.gop !== undefined || values.vbt !== undefined,
    values.firmware !== undefined,
    recipe !== undefined,
  ];
  if (given.filter(Boolean).length !== 1) {
    throw new UsageError('give --gop and --vbt, or --firmware, or --recipe (exactly one way)');
  }
  if (recipe !== undefined) return recipeInputs(recipe);
  if (values.firmware !== undefined) return { firmware: { path: path.resolve(cwd, values.firmware) } };
  if (values.gop === undefined || values.vbt === undefined)
    throw new UsageError('--gop and --vbt go together');
  return { gop: { path: path.resolve(cwd, values.gop) }, vbt: { path: path.resolve(cwd, values.vbt) } };
}

function buildFlags(values: JobValues, recipe: Recipe | undefined): BuildFlags {
  const target = oneOf('target', values.target, ['DEBUG', 'RELEASE'] as const);
  const fdSize = oneOf('fd-size', values['fd-size'], ['2MB', '4MB'] as const);
  try {
    return resolveBuildFlags({
      ...(recipe?.flags as Partial<BuildFlags> | undefined),
      ...(target === undefined ? {} : { target }),
      ...(fdSize === undefined ? {} : { fdSize }),
      ...(values['secure-boot'] === true ? { secureBoot: true } : {}),
      ...(values['no-network'] === true ? { network: false } : {}),
    });
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(`recipe flags: ${(error as Error).message}`);
  }
}

/** Parses the shared job options of `argv` (relative paths against `cwd`). */
export async function parseJobOptions(
  argv: readonly string[],
  cwd: string,
  usage: string,
): Promise<ParsedJobOptions> {
  const values: JobValues = parseCommandArgs(argv, JOB_OPTIONS, usage, false).values;
  const json = values.json === true;
  const out = values.out === undefined ? undefined : path.resolve(cwd, values.out);
  if (values.help === true) return { help: true, json, out, options: undefined as never };
  let recipe: Recipe | undefined;
  let recipeFile: string | undefined;
  if (values.recipe !== undefined) {
    recipeFile = path.resolve(cwd, values.recipe);
    recipe = await loadRecipe(
      recipeFile,
      values['source-base-url'] === undefined ? {} : { baseUrl: values['source-base-url'] },
    );
  }
  const inputs = jobInputs(values, recipe, cwd);
  const device = values.device ?? recipe?.device;
  // Without --machine, the device's generation picks it as QEMU's docs/igd-assign.txt allows:
  // i440fx legacy mode up to graphics 9.5, q35 after (containers/igd-devices.json).
  const machine =
    oneOf('machine', values.machine, ['q35', 'i440fx'] as const) ??
    recipe?.machine ??
    (device === undefined ? undefined : await defaultMachineFor(parseDeviceId(device))) ??
    'q35';
  if (values.name !== undefined) {
    // Also checked by the job's first stage (recipes name artifacts too); here it is a usage
    // mistake found before the job's log opens.
    try {
      assertArtifactName(values.name);
    } catch (error) {
      throw new UsageError((error as Error).message, { name: values.name });
    }
  }
  const rom: InputSpec | undefined =
    values.rom === undefined ? undefined : { path: path.resolve(cwd, values.rom) };
  return {
    help: false,
    json,
    out,
    options: {
      inputs,
      machine,
      storeDir: out ?? path.resolve(cwd, 'artifacts'),
      ...(values.name === undefined ? {} : { name: values.name }),
      ...(rom === undefined ? {} : { rom }),
      ...(device === undefined ? {} : { deviceId: parseDeviceId(device) }),
      flags: buildFlags(values, recipe),
      source: edk2SourceSpec(values, cwd),
      offline: values.offline === true,
      verifyBoot: values['no-verify-boot'] !== true,
      bootAccel: oneOf('accel', values.accel, ['auto', 'kvm', 'tcg'] as const) ?? 'auto',
      cleanBuild: values['clean-build'] === true,
      ...(recipe === undefined || recipeFile === undefined
        ? {}
        : { recipe: { name: recipe.name, file: recipeFile } }),
    },
  };
}

/**
 * parseJobOptions of a command's own arguments, with -h/--help answered as parseArgsOrHelp
 * answers it: undefined after writing `usage` to `stdout` (the caller exits 0).
 */
export async function parseJobOptionsOrHelp(
  ctx: Pick<CommandContext, 'stdout' | 'argv' | 'cwd'>,
  usage: string,
): Promise<ParsedJobOptions | undefined> {
  const parsed = await parseJobOptions(ctx.argv, ctx.cwd, usage);
  if (!parsed.help) return parsed;
  writeLine(ctx.stdout, usage);
  return undefined;
}

/** This package's version, recorded in every manifest. */
export async function toolVersion(): Promise<string> {
  const manifest = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return manifest.version;
}

/** The full request of a parsed command line in this command's environment. */
export async function jobRequest(
  parsed: ParsedRequest,
  ctx: { readonly env: NodeJS.ProcessEnv; readonly cwd: string },
  jobId: string,
): Promise<JobRequest> {
  return { ...parsed, env: ctx.env, cwd: ctx.cwd, jobId, toolVersion: await toolVersion() };
}

/**
 * Runs a job command's body with its log file (named on stderr unless --json, and again after a
 * failure, which is logged) and, unless --json, progress on stderr.
 */
export async function withJobLog<T>(
  ctx: CommandContext,
  json: boolean,
  body: (log: JobLog, onEvent: ((event: JobEvent) => void) | undefined) => Promise<T>,
): Promise<T> {
  const log = openJobLog(ctx.env);
  const progress = json ? undefined : createProgress({ stream: ctx.stderr });
  if (!json) writeLine(ctx.stderr, `log: ${log.logFile}`);
  try {
    return await body(log, progress);
  } catch (error) {
    log.logger.error(
      { error: error instanceof Error ? { message: error.message, ...(error as object) } : error },
      'job failed',
    );
    if (!json) writeLine(ctx.stderr, `log: ${log.logFile}`);
    throw error;
  } finally {
    log.close();
  }
}
