// The main command, `ovmf-build --gop x --vbt y`: every stage of the job pipeline, from the
// inputs to a published artifact, with progress on stderr and a log file per job.
import type { Command, CommandContext } from '../context.js';
import { writeJson, writeLine } from '../context.js';
import { runPipeline, type PipelineStages } from '../../jobs/pipeline.js';
import { EXIT } from '../exit-codes.js';
import { jobOptionsUsage, jobRequest, parseJobOptionsOrHelp, withJobLog } from '../job-options.js';
import { checkOutputDirectory, outputDirLabel } from '../output-dir.js';

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
  jobOptionsUsage('  --out <dir>                       artifact store (default ./artifacts)'),
].join('\n');

/** Runs the job; `stages` stand in for some of the real ones (tests give a stand-in build). */
export async function runMain(ctx: CommandContext, stages: Partial<PipelineStages> = {}): Promise<number> {
  const parsed = await parseJobOptionsOrHelp(ctx, USAGE);
  if (parsed === undefined) return EXIT.ok;
  await checkOutputDirectory(
    parsed.options.storeDir,
    outputDirLabel(parsed.out !== undefined, 'artifact store'),
  );
  return withJobLog(ctx, parsed.json, async (log, onEvent) => {
    const result = await runPipeline(await jobRequest(parsed.options, ctx, log.jobId), {
      signal: ctx.signal,
      logger: log.logger,
      stages,
      ...(onEvent === undefined ? {} : { onEvent }),
    });
    if (parsed.json) {
      writeJson(ctx.stdout, { ...result, jobId: log.jobId, logFile: log.logFile });
      return EXIT.ok;
    }
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
    return EXIT.ok;
  });
}

export const command: Command = {
  name: 'ovmf',
  summary: 'build, verify, cache and publish OVMF with a GOP driver and VBT',
  usage: USAGE,
  run: (ctx) => runMain(ctx),
};
