import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseCommandArgs } from '../args.js';
import type { Command, CommandContext } from '../context.js';
import { writeJson, writeLine } from '../context.js';
import { UsageError } from '../../core/errors.js';
import { resolveBuildFlags, type BuildFlags } from '../../edk2/flags.js';
import type { Edk2SourceSpec } from '../../edk2/source.js';
import type { InputSpec } from '../../fetch/index.js';
import type { JobBackend } from '../../jobs/backend.js';
import { openJobLog } from '../../jobs/job-logger.js';
import { runOvmfJob, type JobInputs, type OvmfJobOptions } from '../../jobs/ovmf-job.js';
import { createProgress } from '../../jobs/progress.js';
import { RealBackend } from '../../jobs/real-backend.js';
import { loadRecipe, type Recipe } from '../../jobs/recipe.js';
import { parseDeviceId } from '../../jobs/rom.js';
import { igdWiring, lookupDevice } from '../../igd/device-table.js';
import { loadIgdDeviceTable } from '../../igd/load.js';
import { EXIT } from '../exit-codes.js';

/** Options shared by the main command and `cache why --gop ...` (they must compute the same key). */
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

export const JOB_OPTIONS_USAGE = [
  'inputs (one of):',
  '  --gop <file> --vbt <file>         the Intel GOP driver (.efi) and the VBT',
  '  --firmware <image>                a vendor firmware image to take both from',
  '  --recipe <recipes/x.json>         pinned inputs (URL + sha256) for a CPU generation',
  '      --source-base-url <url>       fetch recipe URLs from this mirror of raw.githubusercontent.com',
  'options:',
  "  --machine q35|i440fx              VM machine type (default: the recipe's, else the --device generation's:",
  '                                    i440fx legacy mode up to Comet Lake, q35 after; else q35)',
  '  --out <dir>                       artifact store (default ./artifacts)',
  '  --name <name>                     artifact name (default: platform, device and GOP build, e.g. cml-9b41-gop1107)',
  '  --rom <file>                      ship this vBIOS ROM (validated) instead of generating one',
  '  --device 8086:XXXX|XXXX           the host iGPU (lspci -n -s 00:02.0): its generation from the device table names',
  "                                    the artifact, is checked against the GOP and VBT, and is the generated ROM's id",
  "                                    (default: the recipe's; without one the ROM says 8086:ffff)",
  '  --target DEBUG|RELEASE            EDK2 build target (default DEBUG: the boot check reads its log)',
  '  --fd-size 2MB|4MB                 flash layout (default 4MB)',
  '  --secure-boot                     secure boot with SMM (q35 only)',
  '  --no-network                      leave out the UEFI network stack',
  '  --edk2-tarball <f> --edk2-sha256 <h> | --edk2-url <u> --edk2-sha256 <h>',
  '  --edk2-git <url> --edk2-ref <ref> | --edk2-debian-version <v>',
  "                                    EDK2 source (default: Debian's edk2 source package)",
  '  --offline                         no downloads or registry pulls',
  '  --no-verify-boot                  skip the QEMU boot check (the structural check always runs)',
  '  --accel auto|kvm|tcg              QEMU accelerator of the boot check (default auto: KVM if it ran a probe',
  '                                    firmware on this host, else TCG; a KVM failure retries under TCG)',
  '  --clean-build                     compile everything instead of reusing a committed EDK2 workspace',
  '  --json                            print one JSON object on stdout, no progress',
].join('\n');

const USAGE = [
  'usage: ovmf-build --gop <file> --vbt <file> [options]',
  '       ovmf-build --firmware <vendor image> [options]',
  '       ovmf-build --recipe <recipe.json> [options]',
  '',
  'Builds OVMF with this GOP driver and VBT, verifies it (structure and a QEMU boot), caches it',
  'by the hash of every input and publishes a signed artifact directory',
  '<out>/<name>/<version>/ with OVMF_CODE.fd, OVMF_VARS.fd, the vBIOS ROM, manifest.json,',
  'SHA256SUMS, signature.json, a QEMU firmware descriptor and Proxmox/QEMU snippets.',
  'The same inputs again are a cache hit; `ovmf-build cache why` explains a miss.',
  '',
  JOB_OPTIONS_USAGE,
].join('\n');

type JobValues = {
  [K in keyof typeof JOB_OPTIONS]?: (typeof JOB_OPTIONS)[K]['type'] extends 'boolean' ? boolean : string;
};

export interface ParsedJobRequest {
  readonly options: Omit<
    OvmfJobOptions,
    'env' | 'cwd' | 'signal' | 'backend' | 'logger' | 'jobId' | 'onEvent' | 'toolVersion'
  >;
  readonly json: boolean;
}

function oneOf<T extends string>(
  name: string,
  value: string | undefined,
  allowed: readonly T[],
): T | undefined {
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value)) {
    throw new UsageError(`--${name} must be ${allowed.join(' or ')}, got \`${value}\``, { [name]: value });
  }
  return value as T;
}

function sourceSpec(values: JobValues): Edk2SourceSpec {
  const sha = values['edk2-sha256'];
  if (values['edk2-tarball'] !== undefined || values['edk2-url'] !== undefined) {
    if (sha === undefined || !/^[0-9a-f]{64}$/.test(sha)) {
      throw new UsageError('--edk2-tarball/--edk2-url need --edk2-sha256 <64 hex digits>');
    }
    return values['edk2-url'] !== undefined
      ? { kind: 'tarball', url: values['edk2-url'], sha256: sha }
      : { kind: 'tarball', path: path.resolve(values['edk2-tarball'] as string), sha256: sha };
  }
  if (values['edk2-git'] !== undefined) {
    if (values['edk2-ref'] === undefined)
      throw new UsageError('--edk2-git needs --edk2-ref <branch, tag or commit>');
    return { kind: 'git', url: values['edk2-git'], ref: values['edk2-ref'] };
  }
  return values['edk2-debian-version'] === undefined
    ? { kind: 'debian' }
    : { kind: 'debian', version: values['edk2-debian-version'] };
}

/** Turns the job options into a request; shared by the main command and `cache why`. */
/** The device table's default machine for a device id, or undefined for an id it does not know. */
async function defaultMachineFor(deviceId: number): Promise<'q35' | 'i440fx' | undefined> {
  const platform = lookupDevice(await loadIgdDeviceTable(), deviceId.toString(16).padStart(4, '0'));
  return platform === undefined ? undefined : igdWiring(platform).defaultMachine;
}

export async function parseJobRequest(
  argv: readonly string[],
  cwd: string,
): Promise<ParsedJobRequest & { help: boolean }> {
  const values: JobValues = parseCommandArgs(argv, JOB_OPTIONS, USAGE, false).values;
  const json = values.json === true;
  if (values.help === true) return { help: true, json, options: undefined as never };
  let recipe: Recipe | undefined;
  let recipeFile: string | undefined;
  if (values.recipe !== undefined) {
    recipeFile = path.resolve(cwd, values.recipe);
    recipe = await loadRecipe(
      recipeFile,
      values['source-base-url'] === undefined ? {} : { baseUrl: values['source-base-url'] },
    );
  }
  const given = [
    values.gop !== undefined || values.vbt !== undefined,
    values.firmware !== undefined,
    recipe !== undefined,
  ];
  if (given.filter(Boolean).length !== 1) {
    throw new UsageError('give --gop and --vbt, or --firmware, or --recipe (exactly one way)');
  }
  let inputs: JobInputs;
  if (recipe !== undefined) {
    inputs = { gop: recipe.gop, vbt: recipe.vbt };
  } else if (values.firmware !== undefined) {
    inputs = { firmware: { path: path.resolve(cwd, values.firmware) } };
  } else {
    if (values.gop === undefined || values.vbt === undefined)
      throw new UsageError('--gop and --vbt go together');
    inputs = { gop: { path: path.resolve(cwd, values.gop) }, vbt: { path: path.resolve(cwd, values.vbt) } };
  }
  const device = values.device ?? recipe?.device;
  // Without --machine, the device's generation picks it as QEMU's docs/igd-assign.txt allows:
  // i440fx legacy mode up to graphics 9.5, q35 after (containers/igd-devices.json).
  const machine =
    oneOf('machine', values.machine, ['q35', 'i440fx'] as const) ??
    recipe?.machine ??
    (device === undefined ? undefined : await defaultMachineFor(parseDeviceId(device))) ??
    'q35';
  const target = oneOf('target', values.target, ['DEBUG', 'RELEASE'] as const);
  const fdSize = oneOf('fd-size', values['fd-size'], ['2MB', '4MB'] as const);
  let flags: BuildFlags;
  try {
    flags = resolveBuildFlags({
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
  const rom: InputSpec | undefined =
    values.rom === undefined ? undefined : { path: path.resolve(cwd, values.rom) };
  return {
    help: false,
    json,
    options: {
      inputs,
      machine,
      storeDir: path.resolve(cwd, values.out ?? 'artifacts'),
      ...(values.name === undefined ? {} : { name: values.name }),
      ...(rom === undefined ? {} : { rom }),
      ...(device === undefined ? {} : { deviceId: parseDeviceId(device) }),
      flags,
      source: sourceSpec(values),
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

export async function toolVersion(): Promise<string> {
  const manifest = JSON.parse(await readFile(new URL('../../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return manifest.version;
}

/** Runs the job; `backend` is a parameter so tests can give a stand-in build. */
export async function runMain(ctx: CommandContext, backend: JobBackend): Promise<number> {
  const request = await parseJobRequest(ctx.argv, ctx.cwd);
  if (request.help) {
    writeLine(ctx.stdout, USAGE);
    return EXIT.ok;
  }
  const log = openJobLog(ctx.env);
  const progress = request.json ? undefined : createProgress({ stream: ctx.stderr });
  if (!request.json) writeLine(ctx.stderr, `log: ${log.logFile}`);
  try {
    const result = await runOvmfJob({
      ...request.options,
      env: ctx.env,
      cwd: ctx.cwd,
      signal: ctx.signal,
      backend,
      logger: log.logger,
      jobId: log.jobId,
      toolVersion: await toolVersion(),
      ...(progress === undefined ? {} : { onEvent: progress }),
    });
    if (request.json) {
      writeJson(ctx.stdout, { ...result, jobId: log.jobId, logFile: log.logFile });
    } else {
      writeLine(ctx.stdout, `${result.cacheHit ? 'cache hit' : 'built'}: ${result.artifactDir}`);
      writeLine(ctx.stdout, `  key      ${result.key}`);
      writeLine(ctx.stdout, `  code     ${result.files.code}`);
      writeLine(ctx.stdout, `  vars     ${result.files.vars}`);
      writeLine(ctx.stdout, `  rom      ${result.files.rom}`);
      if (result.miss !== null) writeLine(ctx.stdout, `  miss     ${result.miss.lines.join('; ')}`);
      if (result.bootAccel !== null) {
        writeLine(ctx.stdout, `  boot     ${result.bootAccel.accelerator}: ${result.bootAccel.reason}`);
      }
      writeLine(ctx.stdout, `  time     ${(result.durationMs / 1000).toFixed(2)} s`);
    }
    return EXIT.ok;
  } catch (error) {
    log.logger.error(
      { error: error instanceof Error ? { message: error.message, ...(error as object) } : error },
      'job failed',
    );
    if (!request.json) writeLine(ctx.stderr, `log: ${log.logFile}`);
    throw error;
  } finally {
    await backend.dispose();
    log.close();
  }
}

export const command: Command = {
  name: 'ovmf',
  summary: 'build, verify, cache and publish OVMF with a GOP driver and VBT',
  usage: USAGE,
  run: (ctx) => runMain(ctx, new RealBackend()),
};
