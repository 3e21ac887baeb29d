import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import { parseCommandArgs } from '../args.js';
import type { Command } from '../context.js';
import { writeJson, writeLine } from '../context.js';
import { UsageError } from '../../core/errors.js';
import { sha256 } from '../../core/digest.js';
import { connectEngine } from '../../container/index.js';
import { buildOvmf } from '../../edk2/build.js';
import { resolveBuildFlags, type BuildFlags } from '../../edk2/flags.js';
import { acquireEdk2Source, type Edk2SourceSpec } from '../../edk2/source.js';
import { writeFileAtomic } from '../../core/durable-fs.js';
import { readInputFile } from '../../fetch/read-input.js';
import { ACCEL_MODES, isAccelMode } from '../../verify/accel.js';

const USAGE = [
  'usage: ovmf-build build --gop <file> --vbt <file> [options]',
  '',
  'Builds OVMF with this GOP driver and VBT in a container (no cache, no publish), verifies the',
  'result (our parser finds the exact GOP, VBT, IGD assignment and policy drivers; a DEBUG build is',
  'booted in QEMU and must load the three drivers and reach BDS), then writes OVMF_CODE.fd,',
  'OVMF_VARS.fd and the two helper drivers (IgdAssignmentDxe.efi, PlatformGopPolicyDxe.efi) that a',
  'ROM-mode option ROM is made of (ovmf-build rom --helpers <dir>).',
  '',
  '  --gop <file>               Intel GOP driver (.efi)',
  '  --vbt <file>               Video BIOS Table (.vbt / .bin)',
  '  --out <dir>                where to write OVMF_CODE.fd, OVMF_VARS.fd and the helper drivers (default: .)',
  '  --target DEBUG|RELEASE     EDK2 build target (default DEBUG; RELEASE cannot be boot-checked)',
  '  --fd-size 2MB|4MB          flash size (default 4MB)',
  '  --no-network               leave out the network stack',
  '  --secure-boot              secure boot with SMM (QEMU needs smm=on and a secure pflash)',
  "  --edk2-tarball <file|url>  EDK2 source tarball (with --edk2-sha256); default: Debian's edk2 source package",
  '  --edk2-sha256 <hex>        sha256 of the tarball',
  '  --edk2-git <url>           EDK2 git repository (with --edk2-ref)',
  '  --edk2-ref <ref>           branch, tag or commit id',
  '  --no-warm                  neither reuse nor keep a warm build workspace image',
  '  --accel auto|kvm|tcg       QEMU accelerator of the boot check (default auto: KVM if it ran a probe',
  '                             firmware on this host, else TCG; a KVM failure retries under TCG)',
  '  --json                     print the result as JSON',
  '',
  'Logs go to stderr; set OVMF_BUILD_LOG_LEVEL (e.g. info, debug) for more.',
].join('\n');

interface Values {
  gop?: string;
  vbt?: string;
  out?: string;
  target?: string;
  'fd-size'?: string;
  'no-network'?: boolean;
  'secure-boot'?: boolean;
  'edk2-tarball'?: string;
  'edk2-sha256'?: string;
  'edk2-git'?: string;
  'edk2-ref'?: string;
  'no-warm'?: boolean;
  accel?: string;
  json?: boolean;
  help?: boolean;
}

function parse(argv: readonly string[]): Values {
  return parseCommandArgs(
    argv,
    {
      gop: { type: 'string' },
      vbt: { type: 'string' },
      out: { type: 'string' },
      target: { type: 'string' },
      'fd-size': { type: 'string' },
      'no-network': { type: 'boolean' },
      'secure-boot': { type: 'boolean' },
      'edk2-tarball': { type: 'string' },
      'edk2-sha256': { type: 'string' },
      'edk2-git': { type: 'string' },
      'edk2-ref': { type: 'string' },
      'no-warm': { type: 'boolean' },
      accel: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    USAGE,
    false,
  ).values;
}

function sourceSpec(values: Values): Edk2SourceSpec {
  const tarball = values['edk2-tarball'];
  const git = values['edk2-git'];
  if (tarball !== undefined && git !== undefined) {
    throw new UsageError('give either --edk2-tarball or --edk2-git, not both');
  }
  if (tarball !== undefined) {
    const digest = values['edk2-sha256'];
    if (digest === undefined || !/^[0-9a-fA-F]{64}$/.test(digest)) {
      throw new UsageError('--edk2-tarball needs --edk2-sha256 <64 hex digits>');
    }
    const sha = digest.toLowerCase();
    return /^https?:\/\//.test(tarball)
      ? { kind: 'tarball', url: tarball, sha256: sha }
      : { kind: 'tarball', path: tarball, sha256: sha };
  }
  if (values['edk2-sha256'] !== undefined) throw new UsageError('--edk2-sha256 goes with --edk2-tarball');
  if (git !== undefined) {
    const ref = values['edk2-ref'];
    if (ref === undefined || ref === '')
      throw new UsageError('--edk2-git needs --edk2-ref <branch|tag|commit>');
    return { kind: 'git', url: git, ref };
  }
  if (values['edk2-ref'] !== undefined) throw new UsageError('--edk2-ref goes with --edk2-git');
  return { kind: 'debian' };
}

function flagsFrom(values: Values): BuildFlags {
  try {
    return resolveBuildFlags({
      ...(values.target === undefined ? {} : { target: values.target.toUpperCase() as BuildFlags['target'] }),
      ...(values['fd-size'] === undefined
        ? {}
        : { fdSize: values['fd-size'].toUpperCase() as BuildFlags['fdSize'] }),
      network: values['no-network'] !== true,
      secureBoot: values['secure-boot'] === true,
    });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
}

function readInput(ctx: { cwd: string }, file: string, what: string): Promise<Uint8Array> {
  return readInputFile(path.resolve(ctx.cwd, file), { what: `the ${what}` });
}

export const command: Command = {
  name: 'build',
  summary: 'build OVMF only (no cache, no publish)',
  usage: USAGE,
  async run(ctx) {
    const values = parse(ctx.argv);
    if (values.help === true) {
      writeLine(ctx.stdout, USAGE);
      return 0;
    }
    if (values.gop === undefined || values.vbt === undefined) {
      throw new UsageError(`--gop and --vbt are required\n${USAGE}`);
    }
    const flags = flagsFrom(values);
    const accel = values.accel ?? 'auto';
    if (!isAccelMode(accel)) {
      throw new UsageError(`--accel must be ${ACCEL_MODES.join(', ')}, got \`${accel}\``, { accel });
    }
    const spec = sourceSpec(values);
    const outDir = path.resolve(ctx.cwd, values.out ?? '.');
    const gop = await readInput(ctx, values.gop, 'GOP driver');
    const vbt = await readInput(ctx, values.vbt, 'VBT');
    const json = values.json === true;
    const logger = pino({ level: ctx.env['OVMF_BUILD_LOG_LEVEL'] ?? 'warn' }, ctx.stderr);
    const say = (text: string): void => {
      if (!json) writeLine(ctx.stderr, text);
    };

    say(`ovmf-build: EDK2 source (${spec.kind})...`);
    const source = await acquireEdk2Source(spec, { env: ctx.env, logger, signal: ctx.signal });
    say(`ovmf-build: ${source.description}`);
    await using engine = await connectEngine({ env: ctx.env, logger, signal: ctx.signal });
    const jobId = `build-${randomUUID()}`;
    let lastReported = 0;
    const result = await buildOvmf({
      gop,
      vbt,
      source,
      flags,
      engine,
      logger,
      signal: ctx.signal,
      jobId,
      ...(values['no-warm'] === true ? { workspace: { reuse: false, commit: false } } : {}),
      bootAccel: accel,
      env: ctx.env,
      onProgress: (event) => {
        if (event.kind === 'stage')
          say(
            `ovmf-build: ${event.stage}${event.modulesBuilt > 0 ? ` (${event.modulesBuilt} modules)` : ''}`,
          );
        else if (event.kind === 'module' && event.modulesBuilt - lastReported >= 50) {
          lastReported = event.modulesBuilt;
          say(`ovmf-build: building, ${event.modulesBuilt} modules started`);
        }
      },
    });

    await mkdir(outDir, { recursive: true });
    const codePath = path.join(outDir, 'OVMF_CODE.fd');
    const varsPath = path.join(outDir, 'OVMF_VARS.fd');
    const igdPath = path.join(outDir, 'IgdAssignmentDxe.efi');
    const policyPath = path.join(outDir, 'PlatformGopPolicyDxe.efi');
    await writeFileAtomic(codePath, result.code);
    await writeFileAtomic(varsPath, result.vars);
    await writeFileAtomic(igdPath, result.helperDrivers.igdAssignment);
    await writeFileAtomic(policyPath, result.helperDrivers.gopPolicy);

    const summary = {
      code: { path: codePath, sizeInBytes: result.code.length, sha256: sha256(result.code) },
      vars: { path: varsPath, sizeInBytes: result.vars.length, sha256: sha256(result.vars) },
      helperDrivers: {
        igdAssignment: {
          path: igdPath,
          sizeInBytes: result.helperDrivers.igdAssignment.length,
          sha256: sha256(result.helperDrivers.igdAssignment),
        },
        gopPolicy: {
          path: policyPath,
          sizeInBytes: result.helperDrivers.gopPolicy.length,
          sha256: sha256(result.helperDrivers.gopPolicy),
        },
      },
      flags: result.flags,
      source: { digest: result.sourceDigest, description: result.sourceDescription },
      overlayDigest: result.overlayDigest,
      builderImage: result.builderImage,
      mode: result.mode,
      workspace: result.workspace,
      durationMs: result.durationMs,
      containerDurationMs: result.containerDurationMs,
      modulesBuilt: result.modulesBuilt,
      verification: {
        structure:
          result.structure === null
            ? null
            : {
                gop: { fileGuid: result.structure.gop.fileGuid, sha256: result.structure.gop.sha256 },
                vbt: { fileGuid: result.structure.vbt.fileGuid, sha256: result.structure.vbt.sha256 },
                policy: { fileGuid: result.structure.policy.fileGuid },
              },
        boot:
          result.boot === null
            ? { skipped: 'RELEASE builds write no debug log' }
            : {
                passed: result.boot.passed,
                timeToBdsMs: result.boot.timeToBdsMs ?? null,
                durationMs: result.boot.durationMs,
                accel: result.boot.accel,
              },
      },
    };
    if (json) {
      writeJson(ctx.stdout, summary);
    } else {
      writeLine(ctx.stdout, `OVMF_CODE.fd  ${summary.code.sha256}  ${codePath}`);
      writeLine(ctx.stdout, `OVMF_VARS.fd  ${summary.vars.sha256}  ${varsPath}`);
      writeLine(
        ctx.stdout,
        `IgdAssignmentDxe.efi  ${summary.helperDrivers.igdAssignment.sha256}  ${igdPath}`,
      );
      writeLine(
        ctx.stdout,
        `PlatformGopPolicyDxe.efi  ${summary.helperDrivers.gopPolicy.sha256}  ${policyPath}`,
      );
      writeLine(
        ctx.stdout,
        `built ${result.mode} in ${(result.durationMs / 1000).toFixed(1)} s (${result.modulesBuilt} modules) from ${result.sourceDescription}, ${flags.target} ${flags.fdSize}`,
      );
      writeLine(
        ctx.stdout,
        `verified: GOP, VBT, IGD assignment and policy drivers in the DXE volume${result.boot === null ? '; boot check skipped (RELEASE)' : `; booted to BDS in ${((result.boot.timeToBdsMs ?? result.boot.durationMs) / 1000).toFixed(1)} s with the three drivers loaded`}`,
      );
    }
    return 0;
  },
};
