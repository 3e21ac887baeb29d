// One build container, start to finish: create (locked down, labelled), fill,
// start, follow the log, wait, fetch outputs, optionally commit, and remove on
// every path out. The steps live beside it (archive-io, commit, log-stream,
// run-spec, podman-quirks); this file is their order and the abort handling.
import type Docker from 'dockerode';
import type { Logger } from 'pino';
import { AbortError, OvmfBuildError } from '../core/errors.js';
import { commitContainer } from './commit.js';
import { engineFailure, isAbort, isNotFound, unlessNotFound } from './engine-errors.js';
import { fetchOutputs, putInputs } from './archive-io.js';
import { containerLabels } from './labels.js';
import { TailBuffer } from './line-splitter.js';
import { streamLogs } from './log-stream.js';
import { registerExitWait, ulimitsWithinHostLimits } from './podman-quirks.js';
import { DEFAULT_USER, validateRunSpec } from './run-spec.js';
import type { RunResult, RunSpec } from './types.js';

const DEFAULT_MEMORY_BYTES = 4 * 1024 * 1024 * 1024;
const DEFAULT_PIDS = 4096;
/** Generous limits for a parallel EDK2 build, clamped to the host's hard limits. */
const WANTED_ULIMITS = { nofile: 20_000, nproc: 32_768 };
const LOG_DRAIN_MS = 5_000;
const TAIL_LINES = 200;

/** Removes the container when disposed, on every path out of run(). */
class ContainerHandle implements AsyncDisposable {
  constructor(
    readonly container: Docker.Container,
    readonly logger: Logger,
  ) {}
  async [Symbol.asyncDispose](): Promise<void> {
    const started = performance.now();
    await unlessNotFound(this.container.remove({ force: true, v: true }), undefined);
    this.logger.debug(
      { containerId: this.container.id, removeMs: Math.round(performance.now() - started) },
      'container removed',
    );
  }
}

function createOptions(spec: RunSpec): Docker.ContainerCreateOptions {
  const memoryBytes = spec.limits?.memoryBytes ?? DEFAULT_MEMORY_BYTES;
  return {
    Image: spec.image,
    Cmd: [...spec.cmd],
    User: spec.user ?? DEFAULT_USER,
    ...(spec.workingDir === undefined ? {} : { WorkingDir: spec.workingDir }),
    Env: Object.entries(spec.env ?? {}).map(([key, value]) => `${key}=${value}`),
    Tty: false,
    AttachStdin: false,
    OpenStdin: false,
    Labels: containerLabels(spec.jobId, spec.purpose),
    HostConfig: {
      NetworkMode: (spec.network ?? 'none') === 'none' ? 'none' : 'bridge',
      Memory: memoryBytes,
      // Same as Memory: no swap on top of the limit.
      MemorySwap: memoryBytes,
      PidsLimit: spec.limits?.pids ?? DEFAULT_PIDS,
      ...(spec.limits?.nanoCpus === undefined ? {} : { NanoCpus: spec.limits.nanoCpus }),
      ...(spec.limits?.cpuShares === undefined ? {} : { CpuShares: spec.limits.cpuShares }),
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      ReadonlyRootfs: false,
      Ulimits: ulimitsWithinHostLimits(WANTED_ULIMITS),
      AutoRemove: false,
    },
  };
}

async function createContainer(docker: Docker, spec: RunSpec): Promise<Docker.Container> {
  const details = { image: spec.image };
  return docker.createContainer(createOptions(spec)).catch((error: unknown) => {
    throw isNotFound(error)
      ? new OvmfBuildError('E_IMAGE_NOT_FOUND', `image ${spec.image} is not in the engine`, details)
      : engineFailure('E_CONTAINER_CREATE_FAILED', `creating a container from ${spec.image}`, error, details);
  });
}

export async function runContainer(docker: Docker, spec: RunSpec): Promise<RunResult> {
  validateRunSpec(spec);
  const { logger, signal } = spec;
  if (signal?.aborted) {
    throw new AbortError('run aborted before the container was created', { jobId: spec.jobId });
  }
  const started = performance.now();
  await using handle = new ContainerHandle(await createContainer(docker, spec), logger);
  const container = handle.container;
  const log = logger.child({
    containerId: container.id.slice(0, 12),
    jobId: spec.jobId,
    purpose: spec.purpose,
  });
  const internal = new AbortController();
  let aborted = false;
  const onAbort = (): void => {
    aborted = true;
    log.info('abort requested: stopping the container');
    container.stop({ t: spec.stopTimeoutSeconds ?? 2 }).catch(() => undefined);
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  if (signal?.aborted === true) {
    onAbort();
  }
  const tail = new TailBuffer(TAIL_LINES);
  try {
    const createdAt = performance.now();
    await putInputs(container, spec).catch((error: unknown) => {
      throw engineFailure('E_CONTAINER_INPUT_FAILED', 'putting the inputs into the container', error, {
        containerId: container.id,
      });
    });
    const filledAt = performance.now();
    if (aborted) {
      throw new AbortError('run aborted', { containerId: container.id, jobId: spec.jobId });
    }
    const exited = registerExitWait(container, internal.signal);
    await container.start().catch((error: unknown) => {
      throw engineFailure('E_CONTAINER_START_FAILED', 'starting the container', error, {
        containerId: container.id,
      });
    });
    const startedAt = performance.now();
    const logsDone = streamLogs(docker, container, { tail, onLine: spec.onLine, logger }, internal.signal);
    logsDone.catch(() => undefined);
    const exitCode = await exited();
    const exitedAt = performance.now();
    await Promise.race([logsDone, new Promise((resolve) => setTimeout(resolve, LOG_DRAIN_MS).unref())]);
    if (aborted) {
      throw new AbortError('run aborted', { containerId: container.id, jobId: spec.jobId, exitCode });
    }
    let outputs = new Map<string, Uint8Array>();
    let committedImageId: string | undefined;
    if (exitCode === 0) {
      outputs = await fetchOutputs(container, spec);
      spec.onOutputs?.(outputs);
      if (spec.commitAs !== undefined) {
        committedImageId = await commitContainer(docker, container.id, spec.commitAs);
      }
    }
    const finishedAt = performance.now();
    const durationMs = Math.round(finishedAt - started);
    const phasesMs = {
      create: Math.round(createdAt - started),
      inputs: Math.round(filledAt - createdAt),
      start: Math.round(startedAt - filledAt),
      run: Math.round(exitedAt - startedAt),
      outputs: Math.round(finishedAt - exitedAt),
    };
    log.debug({ exitCode, durationMs, phasesMs }, 'container finished');
    return {
      containerId: container.id,
      exitCode,
      outputs,
      durationMs,
      phasesMs,
      tailLines: tail.lines(),
      ...(committedImageId === undefined ? {} : { committedImageId }),
    };
  } catch (error) {
    if (aborted || isAbort(error)) {
      throw error instanceof AbortError
        ? error
        : new AbortError('run aborted', { containerId: container.id, jobId: spec.jobId }, { cause: error });
    }
    throw error;
  } finally {
    signal?.removeEventListener('abort', onAbort);
    internal.abort();
  }
}
