// The job's resolveEnvironment stage: cheap resolution of the build-environment inputs of
// the cache key. A warm run must not
// wait for apt-get or the container engine, so each resolution is memoized with a
// validity stamp:
// - EDK2 source: a tarball's digest is its pinned sha256 and a git commit is itself; a
//   Debian source (newest candidate) or git branch/tag is re-resolved when the apt lists
//   change or after GIT_REF_TTL_MS.
// - builder image: by the digest of the recipe directory (containers/edk2-builder).
// - overlay: recomputed every time (our files + the DSC/FDF patched from the source tree +
//   the build script), it costs milliseconds.
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { sha256 } from '../core/digest.js';
import { DEFAULT_BUILDER_CONTEXT, DEFAULT_BUILDER_REPOSITORY } from '../edk2/builder-context.js';
import { buildScript } from '../edk2/build-script.js';
import type { BuildFlags } from '../edk2/flags.js';
import { loadOverlay } from '../edk2/overlay.js';
import { patchPlatform } from '../edk2/platform-patch.js';
import { DSC_PATH, FDF_PATH } from '../edk2/layout.js';
import type { Edk2SourceSpec } from '../edk2/source.js';
import { canonicalJson } from '../cache/key.js';
import { userCacheDir } from '../cache/paths.js';
import type { BuildEnvironment, JobRequest } from './job-types.js';
import { MemoFile } from './memo.js';
import type { StageContext } from './stage.js';

/** A git branch or tag is looked up again after this long. */
export const GIT_REF_TTL_MS = 10 * 60_000;
/** Debian's apt lists: their mtime changes on `apt-get update` (Debian policy, apt(8)). */
const APT_LISTS_DIR = '/var/lib/apt/lists';

/** A memo key for a source spec. */
export function sourceMemoKey(spec: Edk2SourceSpec): string {
  return canonicalJson(spec);
}

/**
 * The stamp a memoized source resolution must still carry to be used, or null when the
 * spec pins its digest (the resolution cannot change).
 */
export async function sourceStamp(spec: Edk2SourceSpec, now: number): Promise<string | null> {
  switch (spec.kind) {
    case 'tarball':
      return null;
    case 'git':
      return /^[0-9a-f]{40}$/.test(spec.ref) ? null : `ttl:${Math.floor(now / GIT_REF_TTL_MS)}`;
    case 'debian': {
      const info = await stat(APT_LISTS_DIR).catch(() => null);
      return `apt:${spec.version ?? 'candidate'}:${info === null ? 'none' : String(info.mtimeMs)}`;
    }
    default:
      return null;
  }
}

/** Digest of the builder recipe directory (every file's path and content). */
export async function builderContextDigest(dir: string = DEFAULT_BUILDER_CONTEXT): Promise<string> {
  const hash = createHash('sha256');
  const walk = async (relative: string): Promise<void> => {
    const entries = await readdir(path.join(dir, relative), { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const child = relative === '' ? entry.name : `${relative}/${entry.name}`;
      if (entry.isDirectory()) await walk(child);
      else if (entry.isFile()) hash.update(`${child}\0${sha256(await readFile(path.join(dir, child)))}\n`);
    }
  };
  await walk('');
  return hash.digest('hex');
}

/** Digest of what we add to EDK2 for these flags: overlay files, patched DSC/FDF, build script. */
export async function overlayDigest(sourceDir: string, flags: BuildFlags): Promise<string> {
  const overlay = await loadOverlay();
  // Read here rather than through edk2/source.js, which pulls in the download stack.
  const platform = patchPlatform({
    dsc: await readFile(path.join(sourceDir, DSC_PATH), 'utf8'),
    fdf: await readFile(path.join(sourceDir, FDF_PATH), 'utf8'),
  });
  return sha256(
    canonicalJson({
      overlay: overlay.digest,
      dsc: sha256(platform.dsc),
      fdf: sha256(platform.fdf),
      script: sha256(buildScript({ flags, mode: 'clean' })),
    }),
  );
}

/** The key's environment as two resolutions see it: equal means the key still holds. */
export function sameEnvironment(a: BuildEnvironment, b: BuildEnvironment): boolean {
  return (
    a.edk2SourceDigest === b.edk2SourceDigest &&
    a.overlayDigest === b.overlayDigest &&
    a.builderImageId === b.builderImageId
  );
}

export interface EnvironmentInput {
  readonly request: Pick<JobRequest, 'env' | 'source' | 'flags' | 'offline'>;
  /**
   * Check each value against the real source and engine (done before a build, so a stale memo
   * never labels a build wrongly); without it the memo answers when it can.
   */
  readonly verify: boolean;
}

/**
 * Stage `resolveEnvironment`: the EDK2 source digest, overlay digest and builder image id of the
 * key. A verified resolution builds or reuses the builder image under the `builder-image` lock,
 * so jobs started together on a cold machine build it once.
 */
export async function resolveEnvironment(
  input: EnvironmentInput,
  context: StageContext,
): Promise<BuildEnvironment> {
  const { request, verify } = input;
  const { logger, signal, session } = context;
  if (verify) {
    context.emit({
      type: 'phase',
      phase: 'prepare',
      message: 'preparing the build (engine, builder image, EDK2 source)',
    });
  }
  const memoFile = new MemoFile(path.join(userCacheDir(request.env), 'resolutions.json'));
  const memo = await memoFile.read();
  const sourceKey = sourceMemoKey(request.source);
  const stamp = (await sourceStamp(request.source, Date.now())) ?? 'pinned';
  const imageKey = await builderContextDigest(DEFAULT_BUILDER_CONTEXT);
  let source = memo.sources[sourceKey];
  let image = memo.images[imageKey];
  let fromMemo = true;
  if (verify || source === undefined || source.stamp !== stamp) {
    const acquired = await session.source(request.source, logger, signal, true, stamp);
    source = { digest: acquired.digest, dir: acquired.dir, description: acquired.description, stamp };
    fromMemo = false;
  }
  if (verify || image === undefined) {
    const engine = await session.engine(logger, signal);
    await using _lock = await session.lock('builder-image', signal, (owner) => {
      logger.info({ owner }, 'waiting for another process to finish the builder image');
    });
    const built = await engine.ensureBuilderImage({
      contextDir: DEFAULT_BUILDER_CONTEXT,
      repository: DEFAULT_BUILDER_REPOSITORY,
      logger,
      signal,
      offline: request.offline,
    });
    image = { id: built.id, ref: built.ref };
    fromMemo = false;
  }
  let overlay: string;
  try {
    overlay = await overlayDigest(source.dir, request.flags);
  } catch (error) {
    if (!fromMemo) throw error;
    // The memoized source tree is gone (cache cleaned): resolve again.
    return resolveEnvironment({ request, verify: true }, context);
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
