// The EDK2 build: one locked-down container (no network, uid 1000, limits, job label) that
// builds OVMF from an unpacked EDK2 tree, our overlay and the user's GOP and VBT, and returns
// the bytes and the facts of the build. Verifying them is the job's verify stage
// (jobs/stage-verify.ts), so this folder never imports src/verify.
import type { Logger } from 'pino';
import type { BuilderImage, RunResult } from '../container/index.js';
import { sha256 } from '../core/digest.js';
import { AbortError, throwIfAborted } from '../core/errors.js';
import { assertGopDriver } from '../formats/gop.js';
import { assertVbt } from '../formats/vbt.js';
import { prepareBuildInputs, type PrepareBuildOptions, type PreparedBuild } from './build-inputs.js';
import { BuildLogParser, parseBuildFailure } from './build-log.js';
import { OUTPUT_DIR, SCRIPT_PATH, WORKSPACE } from './build-script.js';
import { helperDriversOf, imagesOf } from './build-outputs.js';
import type { BuildOvmfOptions, BuildOvmfResult } from './build-types.js';
import { DEFAULT_BUILDER_CONTEXT, DEFAULT_BUILDER_REPOSITORY } from './builder-context.js';
import { chooseBuildPath } from './build-path.js';
import { BuildError } from './errors.js';
import { flagsKey, resolveBuildFlags, type BuildFlags } from './flags.js';
import { spliceIgdVolume } from './igd-volume.js';
import { DEFAULT_IMAGE_PREFIX, ensureToolsImage, type ToolsImage } from './tools-image.js';
import type { VariantTemplate, VariantTemplates } from './variant-templates.js';
import { pruneWorkspaces } from './workspace-retention.js';

/** Committed warm workspaces: `<repository>:<key>`. */
export const WORKSPACE_REPOSITORY = 'localhost/ovmf-build/edk2-workspace';
/** Bumped when the workspace layout or script changes in a way the key inputs do not show. */
const WORKSPACE_LAYOUT_VERSION = 1;
const LOG_TAIL_LINES = 30;
const KEPT_LINES = 400;

export type { BuildOvmfOptions, BuildOvmfResult } from './build-types.js';

/** Key of a warm workspace: the digests that decide what is compiled, and what each was. */
export function workspaceKey(parts: {
  readonly sourceDigest: string;
  readonly overlayDigest: string;
  readonly platformDigest: string;
  readonly builderImageId: string;
  readonly flags: BuildFlags;
}): { readonly value: string; readonly details: Readonly<Record<string, string>> } {
  const details = {
    layout: String(WORKSPACE_LAYOUT_VERSION),
    source: parts.sourceDigest,
    overlay: parts.overlayDigest,
    platform: parts.platformDigest,
    builderImage: parts.builderImageId,
    flags: flagsKey(parts.flags),
  };
  return { value: sha256(JSON.stringify(details)).slice(0, 24), details };
}

/**
 * Waits for the workspace lock or for a template of the key, whichever comes first; a lock that
 * comes after the template is released at once.
 */
async function lockOrTemplate(
  acquire: (key: string, signal?: AbortSignal) => Promise<AsyncDisposable>,
  key: string,
  templates: VariantTemplates,
  signal: AbortSignal | undefined,
): Promise<{ readonly lock: AsyncDisposable } | { readonly template: VariantTemplate }> {
  const stop = new AbortController();
  const both = signal === undefined ? stop.signal : AbortSignal.any([signal, stop.signal]);
  const locked = acquire(key, both);
  const arrived = templates.waitFor(key, stop.signal);
  try {
    const first = await Promise.race([
      locked.then((lock) => ({ lock })),
      arrived.then((found) => (found ? { template: templates.get(key) } : null)),
    ]);
    if (first !== null && 'lock' in first) return first;
    if (first?.template !== undefined) {
      // Released when it comes; an acquisition aborted by `stop` only rejects.
      locked.then(
        (lock) => lock[Symbol.asyncDispose](),
        () => undefined,
      );
      return { template: first.template };
    }
    return { lock: await locked };
  } finally {
    stop.abort();
  }
}

/** The images of two builds of one workspace key differ in the IGD volume only: make it here. */
function variantFromTemplate(
  options: BuildOvmfOptions,
  context: {
    readonly started: number;
    readonly flags: BuildFlags;
    readonly builder: Pick<BuilderImage, 'id' | 'ref' | 'built'>;
    readonly key: ReturnType<typeof workspaceKey>;
    readonly base: PreparedBuild;
    readonly log: Logger;
    readonly template: VariantTemplate;
  },
): BuildOvmfResult | null {
  const { flags, builder, key, log, template } = context;
  const made = spliceIgdVolume(template, flags.fdSize, options.gop, options.vbt);
  if (!made.ok) {
    log.warn(
      { reason: made.reason, templateOf: template.jobId },
      'build: the variant template is not usable',
    );
    return null;
  }
  log.info(
    { buildPath: 'variant', variantOf: template.jobId, workspaceKey: key.details },
    'build: IGD volume made over the images of an earlier build of this workspace key (variant path, no container)',
  );
  options.onHelperDrivers?.(template.helperDrivers);
  log.info(
    { codeSha256: sha256(made.value.code), containerMs: 0, modulesBuilt: 0 },
    'build: outputs collected',
  );
  return {
    code: made.value.code,
    vars: template.vars,
    combined: made.value.combined,
    helperDrivers: template.helperDrivers,
    flags,
    builderImage: { id: builder.id, ref: builder.ref, built: builder.built },
    sourceDigest: options.source.digest,
    sourceDescription: options.source.description,
    overlayDigest: context.base.overlayDigest,
    mode: 'warm',
    buildPath: 'variant',
    variantFrom: 'template',
    variantOf: template.jobId,
    toolsImage: null,
    workspace: null,
    containerId: '',
    durationMs: Math.round(performance.now() - context.started),
    containerDurationMs: 0,
    modulesBuilt: 0,
    environment: null,
    logTail: [],
  };
}

/**
 * Builds OVMF with the GOP and VBT: validates both (E_INPUT_NOT_GOP / E_INPUT_NOT_VBT), ensures
 * the builder image, runs one container (clean, or warm from a committed workspace), checks the
 * image sizes and the helper drivers. Throws BuildError E_BUILD_FAILED (details: failingModule,
 * stage, errorLines, lastLines), E_BUILD_OUTPUT_INVALID or AbortError; the container is removed on
 * every path. Nothing here is verified: the caller's verify stage does that.
 */
export async function buildOvmf(options: BuildOvmfOptions): Promise<BuildOvmfResult> {
  const started = performance.now();
  const { engine, logger, signal, jobId } = options;
  const flags = resolveBuildFlags(options.flags);
  if (!(options.gop instanceof Uint8Array)) throw new TypeError('Expected `gop` to be a Uint8Array');
  if (!(options.vbt instanceof Uint8Array)) throw new TypeError('Expected `vbt` to be a Uint8Array');
  if (typeof jobId !== 'string' || jobId === '')
    throw new TypeError('Expected `jobId` to be a non-empty string');
  // Inputs first: a file that is not a GOP or VBT never costs a build.
  const gopInfo = assertGopDriver(options.gop);
  const vbtInfo = assertVbt(options.vbt);
  const log = logger.child({ jobId, component: 'edk2-build' });
  log.info(
    {
      gopBuild: gopInfo.build,
      gopSha256: gopInfo.sha256,
      vbt: vbtInfo.signature,
      flags,
      source: options.source.description,
    },
    'build: inputs valid',
  );
  throwIfAborted(signal);

  const common = {
    gop: options.gop,
    vbt: options.vbt,
    sourceDir: options.source.dir,
    flags,
    ...(options.jobs === undefined ? {} : { jobs: options.jobs }),
  };
  // The key comes from the real inputs, so a stand-in preparation can break a warm rebuild on purpose.
  const base = await prepareBuildInputs({ ...common, mode: 'clean' });
  const keyWith = (builderImageId: string): ReturnType<typeof workspaceKey> =>
    workspaceKey({
      sourceDigest: options.source.digest,
      overlayDigest: base.packageOverlayDigest,
      platformDigest: base.platformDigest,
      builderImageId,
      flags,
    });
  const reuse = options.workspace?.reuse ?? true;
  const templates =
    reuse && (options.workspace?.variant ?? true) && options.prepare === undefined
      ? options.variantTemplates
      : undefined;
  /** A template that did not prove itself (logged): not tried again for this build. */
  let refused: VariantTemplate | undefined;
  if (templates !== undefined && options.builderImageId !== undefined) {
    // The builder image the caller's key names: its template needs no engine call (Podman
    // answers none while it commits a workspace, 10-20 s here).
    const key = keyWith(options.builderImageId);
    const template = templates.get(key.value);
    if (template !== undefined && template.builder.id === options.builderImageId) {
      const builder = { ...template.builder, built: false };
      const variant = variantFromTemplate(options, { started, flags, builder, key, base, log, template });
      if (variant !== null) return variant;
      refused = template;
    }
  }

  const builder = await engine.ensureBuilderImage({
    contextDir: options.builder?.contextDir ?? DEFAULT_BUILDER_CONTEXT,
    repository: options.builder?.repository ?? DEFAULT_BUILDER_REPOSITORY,
    logger: log,
    ...(signal === undefined ? {} : { signal }),
  });
  throwIfAborted(signal);
  const key = keyWith(builder.id);
  const prefix = options.imagePrefix ?? DEFAULT_IMAGE_PREFIX;
  if (!/^[a-z0-9][a-z0-9._-]*(\/[a-z0-9][a-z0-9._-]*)*$/.test(prefix)) {
    throw new TypeError(`Expected \`imagePrefix\` to be an image repository path, got \`${prefix}\``);
  }
  const workspaceRef = `${prefix === DEFAULT_IMAGE_PREFIX ? WORKSPACE_REPOSITORY : `${prefix}/edk2-workspace`}:${key.value}`;
  const commit = (options.workspace?.commit ?? true) && options.prepare === undefined;
  const repository = repositoryOf(workspaceRef);
  // Before looking for the workspace: a prune in another process spares one used this recently.
  if (reuse) await recordWorkspaceUse(options, repository, key.value, log);
  // This process's template of the key, else one an earlier process left on disk (its builder
  // image is the one just ensured: the key names it).
  let template = await templates?.load(key.value, log);
  if (template === refused || template?.builder.id !== builder.id) template = undefined;
  let existingWorkspaceId = template === undefined ? await engine.imageId(workspaceRef) : null;
  let workspaceLock: AsyncDisposable | undefined;
  const takeLock = async (
    acquire: (key: string, signal?: AbortSignal) => Promise<AsyncDisposable>,
    orTemplate: boolean,
  ): Promise<void> => {
    if (templates === undefined || !orTemplate) {
      workspaceLock = await acquire(key.value, signal);
    } else {
      // The clean build holding the lock leaves its template about 10 s before its commit.
      const waited = await lockOrTemplate(acquire, key.value, templates, signal);
      if ('template' in waited) {
        template = waited.template;
        return;
      }
      workspaceLock = waited.lock;
    }
    // Whoever held the lock may have committed this very workspace meanwhile.
    existingWorkspaceId = await engine.imageId(workspaceRef);
    if (existingWorkspaceId !== null) {
      await workspaceLock[Symbol.asyncDispose]();
      workspaceLock = undefined;
    }
  };
  if (
    template === undefined &&
    reuse &&
    commit &&
    existingWorkspaceId === null &&
    options.workspaceLock !== undefined
  ) {
    await takeLock(options.workspaceLock, refused === undefined);
  }
  if (template !== undefined) {
    const variant = variantFromTemplate(options, { started, flags, builder, key, base, log, template });
    if (variant !== null) return variant;
    // Not usable (logged): the container paths, as without a template.
    existingWorkspaceId = await engine.imageId(workspaceRef);
    if (reuse && commit && existingWorkspaceId === null && options.workspaceLock !== undefined) {
      await takeLock(options.workspaceLock, false);
    }
  }
  try {
    return await buildWithWorkspace(options, {
      started,
      flags,
      builder,
      key,
      workspaceRef,
      existingWorkspaceId,
      warm: reuse && existingWorkspaceId !== null,
      commit,
      base,
      common,
      log,
    });
  } finally {
    await workspaceLock?.[Symbol.asyncDispose]();
  }
}

/** The repository of a workspace ref (`<repository>:<key>`). */
function repositoryOf(workspaceRef: string): string {
  return workspaceRef.slice(0, workspaceRef.lastIndexOf(':'));
}

/** Records a use of the workspace (workspace-retention.ts); only housekeeping, so a failure is logged. */
async function recordWorkspaceUse(
  options: BuildOvmfOptions,
  repository: string,
  key: string,
  log: Logger,
): Promise<void> {
  await options.workspaceRetention?.use.touch(repository, key).catch((error: unknown) => {
    log.warn({ err: error }, 'build: could not record the use of the warm workspace');
  });
}

async function buildWithWorkspace(
  options: BuildOvmfOptions,
  context: {
    readonly started: number;
    readonly flags: BuildFlags;
    readonly builder: BuilderImage;
    readonly key: ReturnType<typeof workspaceKey>;
    readonly workspaceRef: string;
    readonly existingWorkspaceId: string | null;
    readonly warm: boolean;
    readonly commit: boolean;
    readonly base: PreparedBuild;
    readonly common: Omit<PrepareBuildOptions, 'mode'>;
    readonly log: Logger;
  },
): Promise<BuildOvmfResult> {
  const { engine, signal, jobId } = options;
  const { started, flags, builder, key, workspaceRef, existingWorkspaceId, warm, commit, base, common, log } =
    context;
  const prepare = options.prepare ?? prepareBuildInputs;
  // Only a build of the very inputs the key names leaves a template for it.
  const templates = options.prepare === undefined ? options.variantTemplates : undefined;
  let prepared = warm
    ? await prepare({ ...common, mode: 'variant' })
    : options.prepare === undefined
      ? base
      : await prepare({ ...common, mode: 'clean' });
  const buildPath = chooseBuildPath({
    workspaceExists: warm,
    allowVariant: options.workspace?.variant ?? true,
    workspace: { overlayDigest: base.packageOverlayDigest, platformDigest: base.platformDigest },
    shipped: { overlayDigest: prepared.overlayDigest, platformDigest: prepared.platformDigest },
  });
  if (buildPath === 'warm') prepared = await prepare({ ...common, mode: 'warm' });
  const limits = {
    memoryBytes: options.limits?.memoryBytes ?? 4 * 1024 * 1024 * 1024,
    pids: options.limits?.pids ?? 4096,
    ...(options.limits?.cpuShares === undefined ? {} : { cpuShares: options.limits.cpuShares }),
  };
  // The tools image's compile shows as the clean build's basetools stage.
  const toolsParser = new BuildLogParser();
  const onToolsLine = (line: string): void => {
    log.trace({ stream: 'tools' }, line);
    const event = toolsParser.push(line);
    if (event?.kind === 'stage' && event.stage === 'basetools') options.onProgress?.(event);
  };
  const toolsImage =
    buildPath === 'clean'
      ? await ensureToolsImage({
          engine,
          builder,
          source: options.source,
          repository: `${options.imagePrefix ?? DEFAULT_IMAGE_PREFIX}/edk2-tools`,
          jobId,
          logger: log,
          limits,
          onLine: onToolsLine,
          ...(options.toolsLock === undefined ? {} : { lock: options.toolsLock }),
          ...(options.jobs === undefined ? {} : { jobs: options.jobs }),
          ...(signal === undefined ? {} : { signal }),
        })
      : null;
  log.info(
    {
      mode: warm ? 'warm' : 'clean',
      buildPath,
      image: warm ? workspaceRef : toolsImage?.ref,
      toolsImageBuilt: toolsImage?.built,
      workspaceKey: key.details,
    },
    warm ? `build: starting from a warm workspace (${buildPath} path)` : 'build: clean build',
  );

  const parser = new BuildLogParser();
  const kept: string[] = [];
  const onLine = (line: string, stream: 'stdout' | 'stderr'): void => {
    kept.push(line);
    if (kept.length > KEPT_LINES) kept.shift();
    log.trace({ stream }, line);
    const event = parser.push(line);
    if (event === null) return;
    if (event.kind === 'environment') log.info(event.environment, 'build: container environment');
    else if (event.kind === 'stage')
      log.info({ stage: event.stage, modulesBuilt: event.modulesBuilt }, `build: ${event.stage}`);
    else log.debug({ module: event.module, modulesBuilt: event.modulesBuilt }, 'build: module');
    options.onProgress?.(event);
  };

  let run: RunResult;
  try {
    run = await engine.run({
      image: warm ? workspaceRef : (toolsImage as ToolsImage).ref,
      cmd: ['/bin/bash', SCRIPT_PATH],
      user: '1000:1000',
      workingDir: WORKSPACE,
      env: { LC_ALL: 'C', TZ: 'UTC' },
      files: prepared.files,
      // The source tree is in the tools image or the workspace already.
      network: 'none',
      limits,
      jobId,
      purpose: 'edk2-build',
      outputs: [OUTPUT_DIR],
      onLine,
      ...(signal === undefined ? {} : { signal }),
      ...(!warm && commit ? { commitAs: workspaceRef } : {}),
      ...(options.onHelperDrivers === undefined && templates === undefined
        ? {}
        : {
            onOutputs: (outputs: ReadonlyMap<string, Uint8Array>) => {
              let helpers: BuildOvmfResult['helperDrivers'];
              let images: ReturnType<typeof imagesOf>;
              try {
                helpers = helperDriversOf(outputs);
                images = imagesOf(outputs, flags);
              } catch {
                return; // reported below, after the run, as E_BUILD_OUTPUT_INVALID
              }
              // Before the commit: builds waiting for this workspace can go on from the template.
              templates?.offer(
                key.value,
                {
                  ...images,
                  gop: common.gop,
                  vbt: common.vbt,
                  helperDrivers: helpers,
                  jobId,
                  builder: { id: builder.id, ref: builder.ref },
                  ...(options.compiledInputsKey === undefined ? {} : { compiled: options.compiledInputsKey }),
                },
                log,
              );
              options.onHelperDrivers?.(helpers);
            },
          }),
      logger: log,
    });
  } catch (error) {
    if (error instanceof AbortError) log.info('build: aborted');
    throw error;
  }

  if (run.exitCode !== 0) {
    const failure = parseBuildFailure(kept.length > 0 ? kept : run.tailLines, parser.stage, LOG_TAIL_LINES);
    const where = failure.failingModule ?? `stage ${failure.stage ?? 'unknown'}`;
    const firstError = failure.errorLines[0]?.trim();
    const overflow = failure.volumeOverflow;
    const why =
      overflow === null
        ? firstError === undefined
          ? ''
          : `: ${firstError}`
        : `: the firmware volume ${overflow.volume ?? '(unnamed)'} needs 0x${overflow.required.toString(16)} bytes ` +
          `and its flash region holds 0x${overflow.size.toString(16)}, so this build does not fit the ` +
          `${flags.fdSize} layout; ` +
          (flags.fdSize === '2MB' ? 'build a 4 MiB image (--fd-size 4MB), or leave out ' : 'leave out ') +
          'what makes it larger (--target RELEASE, --no-network)';
    throw new BuildError('E_BUILD_FAILED', `EDK2 build failed in ${where} (exit ${run.exitCode})${why}`, {
      ...(overflow === null ? {} : { volumeOverflow: overflow }),
      failingModule: failure.failingModule,
      stage: failure.stage,
      exitCode: run.exitCode,
      errorLines: failure.errorLines,
      lastLines: failure.lastLines,
      containerId: run.containerId,
      jobId,
      mode: warm ? 'warm' : 'clean',
      buildPath,
    });
  }

  if (
    run.committedImageId !== undefined &&
    existingWorkspaceId !== null &&
    existingWorkspaceId !== run.committedImageId
  ) {
    // The commit moved the tag: remove the replaced workspace (about 1 GB) unless a concurrent
    // warm build still runs from it; `ovmf-build cleanup` removes it later in that case.
    const outcome = await engine
      .removeImage(existingWorkspaceId, { force: false })
      .catch((error: unknown) => {
        log.warn(
          { image: existingWorkspaceId, err: error },
          'build: could not remove the replaced warm workspace',
        );
        return 'kept' as const;
      });
    log.info({ image: existingWorkspaceId, outcome }, 'build: replaced warm workspace');
  }

  if (run.committedImageId !== undefined && options.workspaceRetention !== undefined) {
    // A workspace (about 1 GB) was added: the oldest go beyond the ones kept. Only housekeeping:
    // a failure is logged and the build stands.
    const repository = repositoryOf(workspaceRef);
    await recordWorkspaceUse(options, repository, key.value, log);
    await pruneWorkspaces(engine, repository, options.workspaceRetention, log).catch((error: unknown) => {
      log.warn({ err: error }, 'build: could not remove older warm workspaces');
    });
  }

  const images = imagesOf(run.outputs, flags);
  const helperDrivers = helperDriversOf(run.outputs);
  const { code, vars } = images;
  log.info(
    {
      codeSha256: sha256(code),
      containerMs: run.durationMs,
      modulesBuilt: parser.modulesBuilt,
      committed: run.committedImageId !== undefined,
    },
    'build: outputs collected',
  );

  return {
    code,
    vars,
    combined: images.combined,
    helperDrivers,
    flags,
    builderImage: { id: builder.id, ref: builder.ref, built: builder.built },
    sourceDigest: options.source.digest,
    sourceDescription: options.source.description,
    overlayDigest: prepared.overlayDigest,
    mode: warm ? 'warm' : 'clean',
    buildPath,
    variantFrom: buildPath === 'variant' ? 'workspace' : null,
    toolsImage,
    workspace: warm
      ? { ref: workspaceRef, key: key.value, committed: false }
      : run.committedImageId === undefined
        ? null
        : { ref: workspaceRef, key: key.value, committed: true },
    containerId: run.containerId,
    durationMs: Math.round(performance.now() - started),
    containerDurationMs: run.durationMs,
    modulesBuilt: parser.modulesBuilt,
    environment: parser.environment,
    logTail: kept.slice(-LOG_TAIL_LINES),
  };
}
