// The job's build machinery for real: EDK2 source acquisition, the container engine and
// builder image, the EDK2 build, structural verification and a QEMU boot.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { acquireLock, lockPathFor, type HeldLock, type LockOwner } from '../cache/lock.js';
import { buildCacheDir, userCacheDir } from '../cache/paths.js';
import type { ContainerEngine } from '../container/index.js';
import type { Edk2Source } from '../edk2/source.js';
import type { IgdVerification, IgdVerifyRequest } from '../verify/igd-check.js';
import type { BackendContext, BuildEnvironment, BuildRequest, BuiltFirmware, JobBackend } from './backend.js';
import {
  BUILDER_CONTEXT_DIR,
  BUILDER_REPOSITORY,
  builderContextDigest,
  overlayDigest,
  sourceMemoKey,
  sourceStamp,
} from './environment.js';
import { MemoFile } from './memo.js';
import { safeSourceView } from './source-view.js';

/** A lock between ovmf-build processes, beside the cache's per-key locks (so `cache gc` clears stale ones). */
async function jobLock(
  env: NodeJS.ProcessEnv,
  name: string,
  signal: AbortSignal | undefined,
  onWait: (owner: LockOwner | null) => void,
): Promise<HeldLock> {
  const file = lockPathFor(buildCacheDir(env), name);
  await mkdir(path.dirname(file), { recursive: true });
  return acquireLock(file, { ...(signal === undefined ? {} : { signal }), onWait });
}

export class RealBackend implements JobBackend {
  #engine: ContainerEngine | null = null;
  #memo: MemoFile | null = null;
  /** The source tree resolved by the last verified resolution, reused by build(). */
  #acquired: Edk2Source | null = null;

  #memoFile(env: NodeJS.ProcessEnv): MemoFile {
    this.#memo ??= new MemoFile(path.join(userCacheDir(env), 'resolutions.json'));
    return this.#memo;
  }

  async #connect(context: BackendContext): Promise<ContainerEngine> {
    // Loaded on first use: a cache hit never needs the engine (or dockerode).
    const { connectEngine } = await import('../container/index.js');
    this.#engine ??= await connectEngine({
      env: context.env,
      logger: context.logger,
      signal: context.signal,
    });
    return this.#engine;
  }

  async #source(context: BackendContext): Promise<Edk2Source> {
    const { acquireEdk2Source } = await import('../edk2/source.js');
    return acquireEdk2Source(context.source, {
      env: context.env,
      logger: context.logger,
      signal: context.signal,
    });
  }

  async resolveEnvironment(
    context: BackendContext,
    options: { readonly verify: boolean },
  ): Promise<BuildEnvironment> {
    const memoFile = this.#memoFile(context.env);
    const memo = await memoFile.read();
    const sourceKey = sourceMemoKey(context.source);
    const stamp = (await sourceStamp(context.source, Date.now())) ?? 'pinned';
    const imageKey = await builderContextDigest(BUILDER_CONTEXT_DIR);
    let source = memo.sources[sourceKey];
    let image = memo.images[imageKey];
    let fromMemo = true;
    if (options.verify || source === undefined || source.stamp !== stamp) {
      const acquired = await this.#source(context);
      this.#acquired = acquired;
      source = { digest: acquired.digest, dir: acquired.dir, description: acquired.description, stamp };
      fromMemo = false;
    }
    if (options.verify || image === undefined) {
      const engine = await this.#connect(context);
      // Jobs started together on a cold machine build the builder image once: the others wait
      // (a reuse takes milliseconds once it exists).
      await using _lock = await jobLock(context.env, 'builder-image', context.signal, (owner) => {
        context.logger.info({ owner }, 'waiting for another process to finish the builder image');
      });
      const built = await engine.ensureBuilderImage({
        contextDir: BUILDER_CONTEXT_DIR,
        repository: BUILDER_REPOSITORY,
        logger: context.logger,
        signal: context.signal,
        offline: context.offline,
      });
      image = { id: built.id, ref: built.ref };
      fromMemo = false;
    }
    let overlay: string;
    try {
      overlay = await overlayDigest(source.dir, context.flags);
    } catch (error) {
      if (!fromMemo) throw error;
      // The memoized source tree is gone (cache cleaned): resolve again.
      return this.resolveEnvironment(context, { verify: true });
    }
    if (!fromMemo) {
      const resolvedSource = source;
      const resolvedImage = image;
      await memoFile.update((current) => ({
        sources: { ...current.sources, [sourceKey]: resolvedSource },
        images: { ...current.images, [imageKey]: resolvedImage },
      }));
    }
    return {
      edk2SourceDigest: source.digest,
      edk2SourceDescription: source.description,
      overlayDigest: overlay,
      builderImageId: image.id,
      builderImageRef: image.ref,
      fromMemo,
    };
  }

  async removeLeftovers(context: BackendContext): Promise<readonly string[]> {
    const engine = await this.#connect(context);
    return engine.removeLeftovers();
  }

  async build(request: BuildRequest): Promise<BuiltFirmware> {
    const engine = await this.#connect(request);
    const source = this.#acquired ?? (await this.#source(request));
    const { buildOvmf } = await import('../edk2/build.js');
    const run = (tree: Edk2Source): ReturnType<typeof buildOvmf> =>
      buildOvmf({
        gop: request.gop,
        vbt: request.vbt,
        source: tree,
        flags: request.flags,
        engine,
        logger: request.logger,
        signal: request.signal,
        jobId: request.jobId,
        onProgress: (event) => {
          if (event.kind === 'stage')
            request.onProgress(`stage ${event.stage} (${event.modulesBuilt} modules built)`);
          else if (event.kind === 'module') request.onProgress(`[${event.modulesBuilt}] ${event.module}`);
        },
        // Structure always; the boot check runs for DEBUG builds (RELEASE prints no debug log).
        verify: { structure: true, boot: request.verifyBoot },
        bootAccel: request.bootAccel ?? 'auto',
        env: request.env,
        workspace: { reuse: !request.cleanBuild, commit: true },
        // Parallel jobs (one per recipe, say) that need the same new workspace compile it once:
        // the others wait, then build warm from it.
        workspaceLock: (key) =>
          jobLock(request.env, `workspace-${key}`, request.signal, (owner) => {
            request.onProgress(
              `waiting for process ${owner?.pid ?? '?'} to finish the clean EDK2 build this one can start from`,
            );
          }),
      });
    let result: Awaited<ReturnType<typeof buildOvmf>>;
    try {
      result = await run(source);
    } catch (error) {
      // A tree with a symlink leaving it (Debian's EmulatorPkg X11IncludeHack) is refused by
      // the container layer before anything starts; build from a view without such links.
      if ((error as { code?: unknown }).code !== 'E_INPUT_UNSAFE_ENTRY') throw error;
      const view = await safeSourceView(source, path.join(userCacheDir(request.env), 'edk2-view'));
      request.logger.warn(
        { skipped: view.skipped, dir: view.source.dir },
        'building from a source view without symlinks that leave the tree',
      );
      result = await run(view.source);
    }
    const boot = result.boot;
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
        workspace: result.workspace,
        modulesBuilt: result.modulesBuilt,
        containerDurationMs: result.containerDurationMs,
        structure: result.structure,
        boot:
          boot === null
            ? {
                checked: false,
                reason: request.verifyBoot ? 'RELEASE builds print no debug log' : '--no-verify-boot',
              }
            : {
                checked: true,
                passed: boot.passed,
                durationMs: boot.durationMs,
                timeToBdsMs: boot.timeToBdsMs ?? null,
                reachedBds: boot.reachedBds,
                loadedDrivers: boot.loadedDrivers.length,
                accel: boot.accel,
              },
      },
    };
  }

  async verifyIgd(request: IgdVerifyRequest): Promise<IgdVerification> {
    const { verifyIgdModes } = await import('../verify/igd-check.js');
    return verifyIgdModes(request);
  }

  async dispose(): Promise<void> {
    const engine = this.#engine;
    this.#engine = null;
    if (engine !== null) await engine[Symbol.asyncDispose]();
  }
}
