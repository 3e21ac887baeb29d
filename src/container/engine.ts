// connectEngine: finds (or starts) an engine and wraps it in the
// ContainerEngine contract. The only place a Dockerode client is made.
import Docker from 'dockerode';
import type { Logger } from 'pino';
import { OvmfBuildError, throwIfAborted } from '../core/errors.js';
import { ensureBuilderImage, imageIdOf } from './builder-image.js';
import { engineCandidates, MINIMUM_API_VERSION, probeEngine } from './discovery.js';
import type { EngineEndpoint, EngineVersion } from './discovery.js';
import { findOnPath } from '../core/exec-path.js';
import { PrivatePodmanService, removeDanglingServices } from './private-service.js';
import { engineStatus, isNotFound, unlessNotFound } from './engine-errors.js';
import { LABEL_JOB, ownerIsGone } from './labels.js';
import { imageName } from './podman-quirks.js';
import { runContainer } from './run.js';
import type {
  BuilderImage,
  BuilderImageSpec,
  ConnectOptions,
  ContainerEngine,
  EngineInfo,
  ImagePruneResult,
  TaggedImage,
  ImageRemoval,
  RunResult,
  RunSpec,
} from './types.js';

function dockerFor(endpoint: EngineEndpoint): Docker {
  return endpoint.socketPath === undefined
    ? new Docker({ host: endpoint.host ?? '127.0.0.1', port: endpoint.port ?? 2375, protocol: 'http' })
    : new Docker({ socketPath: endpoint.socketPath });
}

class DockerApiEngine implements ContainerEngine {
  readonly info: EngineInfo;
  readonly #docker: Docker;
  readonly #service: PrivatePodmanService | undefined;
  readonly #logger: Logger;
  readonly #offline: boolean;
  #disposed = false;

  constructor(
    docker: Docker,
    info: EngineInfo,
    service: PrivatePodmanService | undefined,
    logger: Logger,
    offline: boolean,
  ) {
    this.#docker = docker;
    this.info = info;
    this.#service = service;
    this.#logger = logger;
    this.#offline = offline;
  }

  ensureBuilderImage(spec: BuilderImageSpec): Promise<BuilderImage> {
    return ensureBuilderImage(this.#docker, spec, { offline: this.#offline });
  }

  imageId(ref: string): Promise<string | null> {
    return imageIdOf(this.#docker, ref);
  }

  async removeImage(ref: string, options: { readonly force?: boolean } = {}): Promise<ImageRemoval> {
    const force = options.force ?? true;
    try {
      await this.#docker.getImage(imageName(ref)).remove({ force });
      return 'removed';
    } catch (error) {
      if (isNotFound(error)) return 'absent';
      // 409: a container (running or not) still uses the image.
      if (engineStatus(error) === 409 && !force) return 'in-use';
      throw new OvmfBuildError('E_IMAGE_REMOVE_FAILED', `removing image ${ref} failed: ${String(error)}`, {
        ref,
        force,
      });
    }
  }

  async pruneImages(options: { readonly repositories?: readonly string[] } = {}): Promise<ImagePruneResult> {
    const list = (filters: Record<string, string[]>): Promise<Docker.ImageInfo[]> =>
      this.#docker.listImages({ filters }).catch((error: unknown) => {
        throw new OvmfBuildError('E_ENGINE_REQUEST_FAILED', `listing images failed: ${String(error)}`, {
          filters,
        });
      });
    // A committed workspace keeps the labels of the build container it was made from.
    const dangling = await list({ dangling: ['true'], label: [LABEL_JOB] });
    const targets = dangling.map((image) => image.Id);
    for (const repository of options.repositories ?? []) {
      for (const image of await list({ reference: [repository] })) {
        targets.push(...(image.RepoTags ?? []).filter((tag) => tag.startsWith(`${repository}:`)));
      }
    }
    const removed: string[] = [];
    const inUse: string[] = [];
    for (const target of targets) {
      const outcome = await this.removeImage(target, { force: false });
      if (outcome === 'removed') removed.push(target);
      else if (outcome === 'in-use') inUse.push(target);
    }
    if (removed.length > 0 || inUse.length > 0) {
      this.#logger.info({ removed, inUse }, 'pruned ovmf-build images');
    }
    return { removed, inUse };
  }

  async taggedImages(repository: string): Promise<readonly TaggedImage[]> {
    const images = await this.#docker
      .listImages({ filters: { reference: [repository] } })
      .catch((error: unknown) => {
        throw new OvmfBuildError('E_ENGINE_REQUEST_FAILED', `listing images failed: ${String(error)}`, {
          repository,
        });
      });
    return images.flatMap((image) =>
      (image.RepoTags ?? [])
        .filter((ref) => ref.startsWith(`${repository}:`))
        .map((ref) => ({ ref, id: image.Id, createdMs: image.Created * 1000 })),
    );
  }

  run(spec: RunSpec): Promise<RunResult> {
    return runContainer(this.#docker, spec);
  }

  async removeLeftovers(
    options: { readonly all?: boolean; readonly jobId?: string } = {},
  ): Promise<readonly string[]> {
    const label = options.jobId === undefined ? LABEL_JOB : `${LABEL_JOB}=${options.jobId}`;
    const containers = await this.#docker
      .listContainers({ all: true, filters: { label: [label] } })
      .catch((error: unknown) => {
        throw new OvmfBuildError('E_ENGINE_REQUEST_FAILED', `listing containers failed: ${String(error)}`, {
          label,
        });
      });
    const removed: string[] = [];
    for (const summary of containers) {
      if (options.all !== true && !ownerIsGone(summary.Labels)) {
        continue;
      }
      const gone = this.#docker.getContainer(summary.Id).remove({ force: true, v: true });
      if (
        (await unlessNotFound(
          gone.then(() => true),
          false,
        )) === true
      ) {
        removed.push(summary.Id);
      }
    }
    const sockets = removeDanglingServices();
    if (removed.length > 0 || sockets.length > 0) {
      this.#logger.info({ containers: removed, serviceDirs: sockets }, 'removed leftovers');
    }
    return removed;
  }

  serviceCpuSeconds(): number | null {
    return this.#service?.cpuSeconds() ?? null;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#disposed) {
      return;
    }
    this.#disposed = true;
    await this.#service?.[Symbol.asyncDispose]();
  }
}

function engineInfo(endpoint: EngineEndpoint, version: EngineVersion): EngineInfo {
  return {
    kind: version.kind,
    version: version.version,
    apiVersion: version.apiVersion,
    source: endpoint.source,
    socketPath: endpoint.socketPath ?? endpoint.address,
  };
}

/**
 * Finds a container engine: DOCKER_HOST, the rootful Docker socket, the
 * rootful Podman socket, the rootless Podman socket; when none answers and
 * podman is on PATH, starts `podman system service` on a private socket that
 * lives until the engine is disposed. Throws E_ENGINE_TOO_OLD,
 * E_ENGINE_PERMISSION_DENIED or E_ENGINE_NOT_FOUND (with what was tried).
 */
export async function connectEngine(options: ConnectOptions): Promise<ContainerEngine> {
  const { env, logger, signal } = options;
  const platform = options.platform ?? process.platform;
  const pingTimeoutMs = options.pingTimeoutMs ?? 2_000;
  const offline = env['OVMF_BUILD_OFFLINE'] === '1' || env['OVMF_BUILD_OFFLINE'] === 'true';
  const tried: { source: string; address: string; outcome: string }[] = [];
  let tooOld: { endpoint: EngineEndpoint; version: EngineVersion } | undefined;
  let denied: EngineEndpoint | undefined;
  for (const endpoint of engineCandidates(env, platform, options.fileSystemRoot ?? '/')) {
    throwIfAborted(signal);
    const outcome = await probeEngine(endpoint, pingTimeoutMs);
    if (outcome.status === 'ok') {
      logger.debug(
        { source: endpoint.source, address: endpoint.address, ...outcome.version },
        'container engine found',
      );
      return new DockerApiEngine(
        dockerFor(endpoint),
        engineInfo(endpoint, outcome.version),
        undefined,
        logger,
        offline,
      );
    }
    if (outcome.status === 'too-old') {
      tooOld ??= { endpoint, version: outcome.version };
      tried.push({ ...endpoint, outcome: `API ${outcome.version.apiVersion} is too old` });
    } else {
      if (outcome.status === 'permission-denied') {
        denied ??= endpoint;
      }
      tried.push({ source: endpoint.source, address: endpoint.address, outcome: outcome.detail });
    }
  }
  const podman = options.startPrivateService === false ? undefined : findOnPath('podman', env);
  if (podman !== undefined) {
    const service = await PrivatePodmanService.start({
      podmanPath: podman,
      env,
      logger,
      ...(signal === undefined ? {} : { signal }),
      ...(options.serviceStartTimeoutMs === undefined
        ? {}
        : { startTimeoutMs: options.serviceStartTimeoutMs }),
    });
    return new DockerApiEngine(
      dockerFor(service.endpoint),
      {
        ...engineInfo(service.endpoint, service.version),
        ...(service.pid === undefined ? {} : { servicePid: service.pid }),
      },
      service,
      logger,
      offline,
    );
  }
  tried.push({
    source: 'podman-private-service',
    address: 'podman on PATH',
    outcome: options.startPrivateService === false ? 'disabled' : 'no podman binary on PATH',
  });
  const triedText = tried.map((t) => `${t.source} (${t.address}): ${t.outcome}`).join('; ');
  if (tooOld !== undefined) {
    throw new OvmfBuildError(
      'E_ENGINE_TOO_OLD',
      `the engine at ${tooOld.endpoint.address} (${tooOld.version.kind} ${tooOld.version.version}) speaks Docker API ${tooOld.version.apiVersion}; ovmf-build needs ${MINIMUM_API_VERSION} or later`,
      {
        address: tooOld.endpoint.address,
        apiVersion: tooOld.version.apiVersion,
        minimumApiVersion: MINIMUM_API_VERSION,
        tried,
      },
    );
  }
  if (denied !== undefined) {
    throw new OvmfBuildError(
      'E_ENGINE_PERMISSION_DENIED',
      `permission denied on the engine socket ${denied.address}: add your user to the socket's group ` +
        '(e.g. `sudo usermod -aG docker $USER`, then log in again), or use a rootless engine ' +
        '(`systemctl --user enable --now podman.socket`, or install podman so ovmf-build can start its own service)',
      { address: denied.address, tried },
    );
  }
  throw new OvmfBuildError(
    'E_ENGINE_NOT_FOUND',
    `no container engine answered; tried ${triedText}. Install podman (scripts/install.sh) or set DOCKER_HOST`,
    { tried },
  );
}
