// The job's build stage: EDK2 in a container (edk2/build.ts) from the session's source tree,
// after sweeping containers left by killed runs. Parallel jobs that need the same new warm
// workspace compile it once under the `workspace-<key>` lock; the others wait, then build warm
// (the variant path when only the GOP and VBT differ: the IGD volume alone, edk2/build-path.ts).
// It returns bytes and facts; the verify stage decides whether they are good.
import { UsageError } from '../core/errors.js';
import { compiledInputsKey } from './early-rom.js';
import type { BuildEnvironment, BuiltFirmware, JobRequest, ResolvedInputs } from './job-types.js';
import type { StageContext } from './stage.js';

export interface BuildInput {
  readonly request: Pick<JobRequest, 'env' | 'source' | 'flags' | 'jobId' | 'cleanBuild'>;
  readonly inputs: Pick<ResolvedInputs, 'gop' | 'vbt'>;
  /** The verified environment the key was computed from. */
  readonly environment: BuildEnvironment;
}

/** The engine's --cpu-shares range (Docker: 2 to 262144). */
const CPU_SHARES_MIN = 2;
const CPU_SHARES_MAX = 262_144;

/**
 * `OVMF_BUILD_CPU_SHARES` from the job's environment: the build containers' relative CPU weight
 * (unset or empty: the engine's default, 1024). Anything but an integer in the engine's range is
 * a usage error (exit 2) when a build is about to start.
 */
export function buildCpuShares(env: Readonly<Record<string, string | undefined>>): number | undefined {
  const text = env['OVMF_BUILD_CPU_SHARES'];
  if (text === undefined || text === '') return undefined;
  const value = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < CPU_SHARES_MIN || value > CPU_SHARES_MAX) {
    throw new UsageError(
      `OVMF_BUILD_CPU_SHARES must be an integer from ${CPU_SHARES_MIN} to ${CPU_SHARES_MAX}, not ${JSON.stringify(text)}`,
    );
  }
  return value;
}

/** Stage `build`. */
export async function build(input: BuildInput, context: StageContext): Promise<BuiltFirmware> {
  const { request } = input;
  const { logger, signal, session, emit } = context;
  const engine = await session.engine(logger, signal);
  const compiled = compiledInputsKey(input.environment, request.flags);
  // A build this session's template serves starts no container; the build that left it swept.
  if (request.cleanBuild === true || !session.variantTemplates.hasCompiled(compiled)) {
    const removed = await engine.removeLeftovers();
    if (removed.length > 0) {
      emit({ type: 'note', message: `removed ${removed.length} container(s) left by killed runs` });
    }
  }
  const source = await session.source(request.source, logger, signal);
  emit({ type: 'phase', phase: 'build', message: 'building OVMF with EDK2 in a container' });
  const { buildOvmf } = await import('../edk2/build.js');
  const imagePrefix = request.env['OVMF_BUILD_IMAGE_PREFIX'];
  const cpuShares = buildCpuShares(request.env);
  const result = await buildOvmf({
    gop: input.inputs.gop.bytes,
    vbt: input.inputs.vbt.bytes,
    source,
    flags: request.flags,
    engine,
    logger,
    signal,
    jobId: request.jobId,
    onProgress: (event) => {
      if (event.kind === 'stage') {
        emit({ type: 'progress', line: `stage ${event.stage} (${event.modulesBuilt} modules built)` });
      } else if (event.kind === 'module') {
        emit({ type: 'progress', line: `[${event.modulesBuilt}] ${event.module}` });
      }
    },
    // A clean build is committed as the new warm workspace: the next build starts from it.
    workspace: { reuse: request.cleanBuild !== true, commit: true },
    // OVMF_BUILD_IMAGE_PREFIX: workspaces and tools images of their own (bench:nightly's cold runs).
    ...(imagePrefix === undefined || imagePrefix === '' ? {} : { imagePrefix }),
    // OVMF_BUILD_CPU_SHARES: the build containers' CPU weight (a nightly on a shared host, or the
    // test runner's parts beside the clean-build chain, give their builds less).
    ...(cpuShares === undefined ? {} : { limits: { cpuShares } }),
    // The tools image (source + compiled BaseTools) is made once, under the builder image's lock.
    toolsLock: () =>
      session.lock('builder-image', signal, (owner) => {
        emit({
          type: 'progress',
          line: `waiting for process ${owner?.pid ?? '?'} to finish the EDK2 tools image`,
        });
      }),
    // Its helper drivers start the ROM-mode checks of the jobs waiting on them (early-rom.ts).
    onHelperDrivers: (helpers) => session.earlyRom.offer(compiled, helpers, logger),
    // Variants of a workspace key this session built once: the IGD volume alone, in this process.
    variantTemplates: session.variantTemplates,
    builderImageId: input.environment.builderImageId,
    compiledInputsKey: compiled,
    // Older warm workspaces go after a commit beyond the ones kept (OVMF_BUILD_KEEP_WORKSPACES).
    workspaceRetention: session.workspaceRetention,
    workspaceLock: (key, lockSignal) =>
      session.lock(`workspace-${key}`, lockSignal ?? signal, (owner) => {
        emit({
          type: 'progress',
          line: `waiting for process ${owner?.pid ?? '?'} to finish the clean EDK2 build this one can start from`,
        });
      }),
  });
  return {
    code: result.code,
    vars: result.vars,
    // The exact helper binaries inside this firmware: the ROM-mode ROM chains them.
    helperDrivers: result.helperDrivers,
    edk2SourceDigest: result.sourceDigest,
    builderImageId: result.builderImage.id,
    durationMs: result.durationMs,
    facts: {
      mode: result.mode,
      // clean, warm or variant (only the IGD volume): what the log, --json and the manifest report.
      buildPath: result.buildPath,
      // A variant's images: from the committed workspace, or a template (no container) left by
      // the job `variantOf`, in this process or an earlier one (edk2/template-store.ts).
      variantFrom: result.variantFrom,
      variantOf: result.variantOf ?? null,
      toolsImage: result.toolsImage,
      workspace: result.workspace,
      modulesBuilt: result.modulesBuilt,
      containerDurationMs: result.containerDurationMs,
    },
    edk2: result,
  };
}
