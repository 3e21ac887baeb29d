// `ovmf-build build`: the job's stages up to verify (inputs, environment, key, build, verify;
// no cache, no publish), under the same locks and options as the main command, then the
// verified firmware and the two helper drivers written to --out.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Command, CommandContext } from '../context.js';
import { writeJson, writeLine } from '../context.js';
import { BuildError } from '../../edk2/errors.js';
import { sha256 } from '../../core/digest.js';
import { writeFileAtomic } from '../../core/durable-fs.js';
import { runPipeline, type PipelineStages } from '../../jobs/pipeline.js';
import { HELPER_FILE_NAMES } from '../../jobs/rom.js';
import { EXIT } from '../exit-codes.js';
import { jobOptionsUsage, jobRequest, parseJobOptionsOrHelp, withJobLog } from '../job-options.js';
import { checkOutputDirectory, outputDirLabel } from '../output-dir.js';

const USAGE = [
  'usage: ovmf-build build --gop <file> --vbt <file> [options]',
  '',
  'Builds OVMF with this GOP driver and VBT in a container (no cache, no publish), verifies the',
  'result like the main command (our parser finds the exact GOP, VBT, IGD assignment and policy',
  'drivers; a DEBUG build is booted in QEMU and must load the three drivers and reach BDS; the IGD',
  'assignment check), then writes OVMF_CODE.fd, OVMF_VARS.fd and the two helper drivers',
  '(IgdAssignmentDxe.efi, PlatformGopPolicyDxe.efi) that a ROM-mode option ROM is made of',
  '(ovmf-build rom --helpers <dir>).',
  '',
  jobOptionsUsage(
    '  --out <dir>                       where to write OVMF_CODE.fd, OVMF_VARS.fd and the helper drivers (default .)',
  ),
].join('\n');

function fileSummary(file: string, bytes: Uint8Array): { path: string; sizeInBytes: number; sha256: string } {
  return { path: file, sizeInBytes: bytes.length, sha256: sha256(bytes) };
}

/** Runs the build; `stages` stand in for some of the real ones. */
export async function runBuild(ctx: CommandContext, stages: Partial<PipelineStages> = {}): Promise<number> {
  const parsed = await parseJobOptionsOrHelp(ctx, USAGE);
  if (parsed === undefined) return EXIT.ok;
  const outDir = parsed.out ?? path.resolve(ctx.cwd, '.');
  await checkOutputDirectory(outDir, outputDirLabel(parsed.out !== undefined, 'output directory'));
  return withJobLog(ctx, parsed.json, async (log, onEvent) => {
    const { verified, environment, durationMs } = await runPipeline(
      await jobRequest(parsed.options, ctx, log.jobId),
      {
        until: 'verify',
        signal: ctx.signal,
        logger: log.logger,
        stages,
        ...(onEvent === undefined ? {} : { onEvent }),
      },
    );
    const { built, structure, boot } = verified;
    const result = built.edk2;
    const helpers = built.helperDrivers;
    if (result === undefined || helpers === undefined) {
      throw new BuildError(
        'E_BUILD_OUTPUT_INVALID',
        'the build stage returned no EDK2 build report or helper drivers',
      );
    }
    await mkdir(outDir, { recursive: true });
    const codePath = path.join(outDir, 'OVMF_CODE.fd');
    const varsPath = path.join(outDir, 'OVMF_VARS.fd');
    const igdPath = path.join(outDir, HELPER_FILE_NAMES.igdAssignment);
    const policyPath = path.join(outDir, HELPER_FILE_NAMES.gopPolicy);
    await writeFileAtomic(codePath, built.code);
    await writeFileAtomic(varsPath, built.vars);
    await writeFileAtomic(igdPath, helpers.igdAssignment);
    await writeFileAtomic(policyPath, helpers.gopPolicy);
    const flags = result.flags;
    const summary = {
      code: fileSummary(codePath, built.code),
      vars: fileSummary(varsPath, built.vars),
      helperDrivers: {
        igdAssignment: fileSummary(igdPath, helpers.igdAssignment),
        gopPolicy: fileSummary(policyPath, helpers.gopPolicy),
      },
      flags,
      source: { digest: result.sourceDigest, description: result.sourceDescription },
      overlayDigest: result.overlayDigest,
      builderImage: result.builderImage,
      mode: result.mode,
      buildPath: result.buildPath,
      // A variant's other bytes: a container of the committed workspace, or a template (no container).
      variantFrom: result.variantFrom,
      variantOf: result.variantOf ?? null,
      workspace: result.workspace,
      durationMs,
      containerDurationMs: result.containerDurationMs,
      modulesBuilt: result.modulesBuilt,
      environment: {
        edk2SourceDigest: environment.edk2SourceDigest,
        builderImageId: environment.builderImageId,
      },
      verification: {
        structure:
          structure === null
            ? null
            : {
                gop: { fileGuid: structure.gop.fileGuid, sha256: structure.gop.sha256 },
                vbt: { fileGuid: structure.vbt.fileGuid, sha256: structure.vbt.sha256 },
                policy: { fileGuid: structure.policy.fileGuid },
              },
        boot:
          boot === null
            ? { skipped: flags.target === 'DEBUG' ? '--no-verify-boot' : 'RELEASE builds write no debug log' }
            : {
                passed: boot.passed,
                timeToBdsMs: boot.timeToBdsMs ?? null,
                durationMs: boot.durationMs,
                accel: boot.accel,
              },
        igd: verified.igd,
      },
    };
    if (parsed.json) {
      writeJson(ctx.stdout, summary);
      return EXIT.ok;
    }
    writeLine(ctx.stdout, `OVMF_CODE.fd  ${summary.code.sha256}  ${codePath}`);
    writeLine(ctx.stdout, `OVMF_VARS.fd  ${summary.vars.sha256}  ${varsPath}`);
    writeLine(
      ctx.stdout,
      `${HELPER_FILE_NAMES.igdAssignment}  ${summary.helperDrivers.igdAssignment.sha256}  ${igdPath}`,
    );
    writeLine(
      ctx.stdout,
      `${HELPER_FILE_NAMES.gopPolicy}  ${summary.helperDrivers.gopPolicy.sha256}  ${policyPath}`,
    );
    writeLine(
      ctx.stdout,
      `built ${result.mode} (${result.buildPath} path${result.variantFrom === 'template' ? `, over the images of job ${result.variantOf ?? '?'}, no container` : ''}) in ${(durationMs / 1000).toFixed(1)} s (${result.modulesBuilt} modules) from ${result.sourceDescription}, ${flags.target} ${flags.fdSize}`,
    );
    const bootLine =
      boot === null
        ? '; boot check skipped'
        : `; booted to BDS in ${((boot.timeToBdsMs ?? boot.durationMs) / 1000).toFixed(1)} s with the three drivers loaded`;
    writeLine(
      ctx.stdout,
      `verified: GOP and VBT in the IGD volume, IGD assignment and policy drivers in the DXE volume${bootLine}`,
    );
    return EXIT.ok;
  });
}

export const command: Command = {
  name: 'build',
  summary: 'build and verify OVMF only (no cache, no publish)',
  usage: USAGE,
  run: (ctx) => runBuild(ctx),
};
