// The EDK2 builder image: built from containers/edk2-builder through the
// engine API, tagged by a digest of its recipe and resolved base image so an
// unchanged recipe is reused and a changed one makes a new image.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type Docker from 'dockerode';
import type { Logger } from 'pino';
import { AbortError, OvmfBuildError, throwIfAborted } from '../core/errors.js';
import { sha256 } from '../core/digest.js';
import { bootstrapBaseImage, debootstrapInputs, readProgress } from './debootstrap.js';
import { isNotFound } from './engine-errors.js';
import { imageName } from './podman-quirks.js';
import { packFrom, packHostTree, walkHostTree } from './tar.js';
import type { BuilderImage, BuilderImageSpec } from './types.js';

export const DEFAULT_BASE_IMAGE = 'debian:bookworm-slim';
export const BOOTSTRAP_REPOSITORY = 'localhost/ovmf-build/debian-base';
export const CONTAINERFILE = 'Containerfile';
const SHORT_DIGEST_LENGTH = 16;

export async function imageIdOf(docker: Docker, ref: string): Promise<string | null> {
  try {
    const info = await docker.getImage(imageName(ref)).inspect();
    return info.Id;
  } catch (error) {
    if (isNotFound(error)) {
      return null;
    }
    throw new OvmfBuildError('E_ENGINE_REQUEST_FAILED', `inspecting image ${ref} failed: ${String(error)}`, {
      ref,
    });
  }
}

/** Digest of the build context: every file's path, mode and content, in sorted order. */
export async function contextDigest(
  contextDir: string,
): Promise<{ value: string; files: Record<string, string> }> {
  const entries = await walkHostTree(contextDir);
  const files: Record<string, string> = {};
  for (const entry of entries) {
    if (entry.type === 'file') {
      files[entry.relative] =
        `${(entry.mode & 0o111) === 0 ? '644' : '755'}:${sha256(await readFile(path.join(contextDir, entry.relative)))}`;
    } else if (entry.type === 'symlink') {
      files[entry.relative] = `symlink:${entry.linkname ?? ''}`;
    }
  }
  if (files[CONTAINERFILE] === undefined) {
    throw new OvmfBuildError('E_IMAGE_RECIPE_MISSING', `no ${CONTAINERFILE} in ${contextDir}`, {
      contextDir,
    });
  }
  return { value: sha256(JSON.stringify(files)), files };
}

function linkedSignal(signal: AbortSignal | undefined, timeoutMs: number): AbortSignal {
  const timeout = AbortSignal.timeout(timeoutMs);
  return signal === undefined ? timeout : AbortSignal.any([signal, timeout]);
}

/** A bounded pull attempt; resolves to the image id or null (never throws for network trouble). */
async function tryPull(
  docker: Docker,
  ref: string,
  timeoutMs: number,
  logger: Logger,
  signal?: AbortSignal,
): Promise<string | null> {
  const started = performance.now();
  try {
    const stream = (await docker.pull(ref, { abortSignal: linkedSignal(signal, timeoutMs) })) as Readable;
    await readProgress(stream, () => undefined, 'E_IMAGE_PULL_FAILED', `pulling ${ref}`);
    return await imageIdOf(docker, ref);
  } catch (error) {
    throwIfAborted(signal);
    logger.info(
      {
        ref,
        ms: Math.round(performance.now() - started),
        error: error instanceof Error ? error.message : String(error),
      },
      'base image pull failed',
    );
    return null;
  }
}

interface BaseImage {
  readonly ref: string;
  readonly id: string;
  readonly source: 'local' | 'pulled' | 'debootstrap';
}

async function resolveBaseImage(
  docker: Docker,
  spec: BuilderImageSpec,
  offline: boolean,
): Promise<BaseImage> {
  const { logger, signal } = spec;
  const baseRef = spec.baseImage ?? DEFAULT_BASE_IMAGE;
  const local = await imageIdOf(docker, baseRef);
  if (local !== null) {
    return { ref: baseRef, id: local, source: 'local' };
  }
  const inputs = await debootstrapInputs(spec.aptDir ?? '/etc/apt', 'bookworm');
  const bootstrapRef = `${BOOTSTRAP_REPOSITORY}:${inputs.suite}-${sha256(JSON.stringify(inputs)).slice(0, SHORT_DIGEST_LENGTH)}`;
  const bootstrapped = await imageIdOf(docker, bootstrapRef);
  if (bootstrapped !== null) {
    return { ref: bootstrapRef, id: bootstrapped, source: 'local' };
  }
  if (!offline) {
    const pulled = await tryPull(docker, baseRef, spec.pullTimeoutMs ?? 20_000, logger, signal);
    if (pulled !== null) {
      return { ref: baseRef, id: pulled, source: 'pulled' };
    }
  }
  const id = await bootstrapBaseImage({
    docker,
    inputs,
    ref: bootstrapRef,
    logger,
    ...(signal ? { signal } : {}),
  });
  return { ref: bootstrapRef, id, source: 'debootstrap' };
}

export async function ensureBuilderImage(
  docker: Docker,
  spec: BuilderImageSpec,
  defaults: { readonly offline: boolean },
): Promise<BuilderImage> {
  const { logger, signal } = spec;
  const started = performance.now();
  throwIfAborted(signal);
  const context = await contextDigest(spec.contextDir);
  const base = await resolveBaseImage(docker, spec, spec.offline ?? defaults.offline);
  const details = { context: context.value, files: context.files, baseImage: base.id, baseRef: base.ref };
  const tag = createHash('sha256')
    .update(JSON.stringify({ context: context.value, baseImage: base.id }))
    .digest('hex')
    .slice(0, SHORT_DIGEST_LENGTH);
  const ref = `${spec.repository}:${tag}`;
  const existing = await docker
    .getImage(ref)
    .inspect()
    .catch(() => undefined);
  if (existing !== undefined) {
    logger.debug({ ref, id: existing.Id }, 'builder image reused');
    return { id: existing.Id, ref, built: false, sizeInBytes: existing.Size, baseImage: base, details };
  }
  logger.info({ ref, baseImage: base.ref }, 'building the EDK2 builder image');
  const entries = await walkHostTree(spec.contextDir);
  // Fixed owner and mtime: the context's bytes depend only on the recipe.
  const pack = packFrom((pack) =>
    packHostTree(pack, spec.contextDir, entries, '', { uid: 0, gid: 0 }, new Date(0)),
  );
  let stream: Readable;
  try {
    stream = (await docker.buildImage(pack as unknown as NodeJS.ReadableStream, {
      t: ref,
      dockerfile: CONTAINERFILE,
      buildargs: { BASE_IMAGE: base.ref },
      labels: { 'ovmf-build.purpose': 'builder-image', 'ovmf-build.context-digest': context.value },
      rm: true,
      forcerm: true,
      ...(signal === undefined ? {} : { abortSignal: signal }),
    })) as Readable;
    await readProgress(
      stream,
      (message) => {
        if (typeof message['stream'] === 'string' && message['stream'].trim() !== '') {
          logger.debug({ build: message['stream'].trimEnd() });
        }
      },
      'E_IMAGE_BUILD_FAILED',
      `building ${ref}`,
    );
  } catch (error) {
    if (signal?.aborted || (error as Error).name === 'AbortError') {
      throw new AbortError('builder image build aborted', { ref }, { cause: error });
    }
    throw error instanceof OvmfBuildError
      ? error
      : new OvmfBuildError(
          'E_IMAGE_BUILD_FAILED',
          `building ${ref} failed: ${String(error)}`,
          { ref },
          { cause: error },
        );
  }
  const built = await docker
    .getImage(ref)
    .inspect()
    .catch(() => undefined);
  if (built === undefined) {
    throw new OvmfBuildError('E_IMAGE_BUILD_FAILED', `the build of ${ref} ended without an image`, { ref });
  }
  logger.info(
    {
      ref,
      id: built.Id,
      sizeInBytes: built.Size,
      ms: Math.round(performance.now() - started),
      base: base.source,
    },
    'builder image built',
  );
  return { id: built.Id, ref, built: true, sizeInBytes: built.Size, baseImage: base, details };
}
