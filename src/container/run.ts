// One build container, start to finish: create (locked down), fill
// (putArchive), start, stream logs line by line, wait, fetch outputs
// (getArchive, in memory), optionally commit, and remove on every path.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import type { Readable } from 'node:stream';
import type Docker from 'dockerode';
import type { Logger } from 'pino';
import { AbortError, OvmfBuildError } from '../core/errors.js';
import { splitRef } from './debootstrap.js';
import { LineSplitter, TailBuffer } from './line-splitter.js';
import { processStartTicks } from '../core/process-alive.js';
import { createPack, extractInMemory, packBytes, packDirectory, packHostTree, walkHostTree } from './tar.js';
import type { RunResult, RunSpec } from './types.js';

export const LABEL_JOB = 'ovmf-build.job';
export const LABEL_PURPOSE = 'ovmf-build.purpose';
export const LABEL_OWNER_PID = 'ovmf-build.owner-pid';
export const LABEL_OWNER_START = 'ovmf-build.owner-start';
export const LABEL_OWNER_HOST = 'ovmf-build.owner-host';
export const LABEL_CREATED = 'ovmf-build.created';

const DEFAULT_MEMORY_BYTES = 4 * 1024 * 1024 * 1024;
const DEFAULT_PIDS = 4096;
const BUILDER_OWNER = { uid: 1000, gid: 1000 };
/** Exit detection when the event-based wait was registered too late for a very short container. */
const EXIT_POLL_MS = 2_000;
const LOG_DRAIN_MS = 5_000;

/** Ulimits inside this process's hard limits (above them runc fails with `setrlimit ... operation not permitted`). */
function ulimits(): { Name: string; Soft: number; Hard: number }[] {
  const wanted: Record<string, { name: string; value: number }> = {
    'Max open files': { name: 'nofile', value: 20_000 },
    'Max processes': { name: 'nproc', value: 32_768 },
  };
  const result: { Name: string; Soft: number; Hard: number }[] = [];
  let limits: string;
  try {
    limits = readLimits();
  } catch {
    return result;
  }
  for (const [label, { name, value }] of Object.entries(wanted)) {
    const line = limits.split('\n').find((l) => l.startsWith(label));
    const hard = line?.slice(label.length).trim().split(/\s+/)[1];
    const hardValue = hard === undefined ? undefined : hard === 'unlimited' ? Infinity : Number(hard);
    const limit = hardValue === undefined ? Number.NaN : Math.min(value, hardValue);
    if (Number.isFinite(limit) && limit > 0) {
      result.push({ Name: name, Soft: limit, Hard: limit });
    }
  }
  return result;
}

let limitsText: string | undefined;
function readLimits(): string {
  limitsText ??= readFileSync('/proc/self/limits', 'utf8');
  return limitsText;
}

/** uid part of 'uid[:gid]' / 'name[:group]'. */
function isRootUser(user: string): boolean {
  const name = user.split(':')[0] ?? '';
  return name === '0' || name === 'root' || name === '';
}

function validate(spec: RunSpec): void {
  if (spec.jobId === '' || spec.purpose === '') {
    throw new TypeError('Expected `jobId` and `purpose` to be non-empty strings (they label the container)');
  }
  if (spec.cmd.length === 0) {
    throw new TypeError('Expected `cmd` to be a non-empty array, got `[]`');
  }
  for (const file of spec.files ?? []) {
    if (!path.posix.isAbsolute(file.path) || file.path.split('/').includes('..')) {
      throw new TypeError(`Expected input file path to be absolute without \`..\`, got \`${file.path}\``);
    }
  }
  for (const dir of spec.directories ?? []) {
    if (!path.posix.isAbsolute(dir.containerDir) || dir.containerDir.split('/').includes('..')) {
      throw new TypeError(
        `Expected \`containerDir\` to be absolute without \`..\`, got \`${dir.containerDir}\``,
      );
    }
  }
  const user = spec.user ?? '1000:1000';
  if (isRootUser(user) && spec.allowRoot !== true) {
    throw new OvmfBuildError(
      'E_CONTAINER_ROOT_REFUSED',
      `refusing to run a container as \`${user}\` without allowRoot`,
      {
        user,
      },
    );
  }
}

/**
 * An engine request failed: keep our own coded errors and aborts as they are,
 * give everything else a code and the engine's message.
 */
function engineFailure(
  code: string,
  what: string,
  error: unknown,
  details: Record<string, unknown>,
): unknown {
  if (error instanceof OvmfBuildError || isAbort(error)) {
    return error;
  }
  const message = error instanceof Error ? error.message : String(error);
  return new OvmfBuildError(code, `${what} failed: ${message}`, details, { cause: error });
}

function isAbort(error: unknown): boolean {
  return (
    error instanceof Error &&
    (error.name === 'AbortError' || (error as { code?: string }).code === 'ABORT_ERR')
  );
}

/** Directories that must be created (not already in the image) for the inputs, parents first. */
async function missingDirectories(container: Docker.Container, wanted: readonly string[]): Promise<string[]> {
  const known = new Map<string, boolean>([['/', true]]);
  const exists = async (dir: string): Promise<boolean> => {
    const cached = known.get(dir);
    if (cached !== undefined) {
      return cached;
    }
    const present = await container.infoArchive({ path: dir }).then(
      () => true,
      (error: { statusCode?: number }) => {
        if (error.statusCode === 404) {
          return false;
        }
        throw error;
      },
    );
    known.set(dir, present);
    return present;
  };
  const missing = new Set<string>();
  for (const dir of wanted) {
    const chain: string[] = [];
    for (let d = path.posix.normalize(dir); d !== '/'; d = path.posix.dirname(d)) {
      chain.unshift(d);
    }
    for (const d of chain) {
      if (missing.has(d)) {
        continue;
      }
      // A missing parent means every child is missing too: no need to ask.
      const parentMissing = missing.has(path.posix.dirname(d));
      if (parentMissing || !(await exists(d))) {
        missing.add(d);
      }
    }
  }
  return [...missing].sort();
}

/** Puts all inputs in one archive extracted at '/', owned by uid/gid 1000; existing directories are left as they are. */
async function putInputs(container: Docker.Container, spec: RunSpec): Promise<void> {
  const files = spec.files ?? [];
  const directories = spec.directories ?? [];
  if (files.length === 0 && directories.length === 0) {
    return;
  }
  // Walk every host tree first: an unsafe entry is refused before any byte reaches the container.
  const trees = await Promise.all(
    directories.map(async (dir) => ({
      dir,
      entries: await walkHostTree(dir.hostDir, {
        exclude: dir.exclude ?? [],
        unsafeSymlinks: dir.unsafeSymlinks ?? 'refuse',
        skipped: (relative, target) =>
          spec.logger.warn(
            { hostDir: dir.hostDir, path: relative, target },
            'symlink leaving the input tree left out',
          ),
      }),
    })),
  );
  const wanted = [
    ...files.map((file) => path.posix.dirname(file.path)),
    ...directories.map((dir) => path.posix.normalize(dir.containerDir)),
  ];
  const missing = await missingDirectories(container, wanted);
  const pack = createPack();
  const fill = async (): Promise<void> => {
    for (const dir of missing) {
      await packDirectory(pack, dir.slice(1), 0o755, BUILDER_OWNER);
    }
    for (const file of files) {
      await packBytes(pack, file.path.slice(1), file.data, file.mode ?? 0o644, BUILDER_OWNER);
    }
    for (const { dir, entries } of trees) {
      await packHostTree(
        pack,
        dir.hostDir,
        entries,
        path.posix.normalize(dir.containerDir).slice(1),
        BUILDER_OWNER,
      );
    }
  };
  fill().then(
    () => pack.finalize(),
    (error: unknown) => pack.destroy(error instanceof Error ? error : new Error(String(error))),
  );
  await container.putArchive(pack as unknown as NodeJS.ReadableStream, {
    path: '/',
    ...(spec.signal === undefined ? {} : { abortSignal: spec.signal }),
  });
}

async function fetchOutputs(container: Docker.Container, spec: RunSpec): Promise<Map<string, Uint8Array>> {
  const outputs = new Map<string, Uint8Array>();
  let remaining = spec.maxOutputBytes ?? 512 * 1024 * 1024;
  for (const outputPath of spec.outputs ?? []) {
    let stream: Readable;
    try {
      stream = (await container.getArchive({ path: outputPath })) as Readable;
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode === 404) {
        throw new OvmfBuildError(
          'E_CONTAINER_OUTPUT_MISSING',
          `output ${outputPath} does not exist in the container`,
          {
            path: outputPath,
            containerId: container.id,
          },
        );
      }
      throw engineFailure('E_CONTAINER_OUTPUT_FAILED', `fetching output ${outputPath}`, error, {
        path: outputPath,
        containerId: container.id,
      });
    }
    const files = await extractInMemory(stream, { maxTotalBytes: remaining });
    for (const [name, data] of files) {
      if (outputs.has(name)) {
        throw new OvmfBuildError(
          'E_CONTAINER_OUTPUT_DUPLICATE',
          `output entry \`${name}\` appears in two outputs`,
          {
            entry: name,
            reason: 'duplicate entry',
          },
        );
      }
      outputs.set(name, data);
      remaining -= data.byteLength;
    }
  }
  return outputs;
}

async function commit(docker: Docker, containerId: string, ref: string): Promise<string> {
  const [repo, tag] = splitRef(ref);
  // Podman answers `Decode(): EOF` to a bodiless POST /commit; an empty JSON object works everywhere.
  const result = await new Promise<{ Id?: string }>((resolve, reject) => {
    docker.modem.dial(
      {
        path: '/commit?',
        method: 'POST',
        options: { _query: { container: containerId, repo, tag }, _body: {} },
        allowEmpty: true,
        statusCodes: { 200: true, 201: true, 404: 'no such container', 500: 'server error' },
      } as never,
      (error: unknown, data: unknown) => (error ? reject(error as Error) : resolve(data as { Id?: string })),
    );
  });
  if (result.Id === undefined) {
    throw new OvmfBuildError(
      'E_CONTAINER_COMMIT_FAILED',
      `committing ${containerId} as ${ref} returned no image id`,
      {
        containerId,
        ref,
      },
    );
  }
  return result.Id;
}

/** Removes the container when disposed, on every path out of run(). */
class ContainerHandle implements AsyncDisposable {
  constructor(
    readonly container: Docker.Container,
    readonly logger: Logger,
  ) {}
  async [Symbol.asyncDispose](): Promise<void> {
    const started = performance.now();
    await this.container.remove({ force: true, v: true }).catch((error: { statusCode?: number }) => {
      if (error.statusCode !== 404) {
        throw error;
      }
    });
    this.logger.debug(
      { containerId: this.container.id, removeMs: Math.round(performance.now() - started) },
      'container removed',
    );
  }
}

export async function runContainer(docker: Docker, spec: RunSpec): Promise<RunResult> {
  validate(spec);
  const { logger, signal } = spec;
  if (signal?.aborted) {
    throw new AbortError('run aborted before the container was created', { jobId: spec.jobId });
  }
  const started = performance.now();
  const memoryBytes = spec.limits?.memoryBytes ?? DEFAULT_MEMORY_BYTES;
  const created = await docker
    .createContainer({
      Image: spec.image,
      Cmd: [...spec.cmd],
      User: spec.user ?? '1000:1000',
      ...(spec.workingDir === undefined ? {} : { WorkingDir: spec.workingDir }),
      Env: Object.entries(spec.env ?? {}).map(([key, value]) => `${key}=${value}`),
      Tty: false,
      AttachStdin: false,
      OpenStdin: false,
      Labels: {
        [LABEL_JOB]: spec.jobId,
        [LABEL_PURPOSE]: spec.purpose,
        [LABEL_OWNER_PID]: String(process.pid),
        [LABEL_OWNER_START]: String(processStartTicks(process.pid) ?? ''),
        [LABEL_OWNER_HOST]: os.hostname(),
        [LABEL_CREATED]: new Date().toISOString(),
      },
      HostConfig: {
        NetworkMode: (spec.network ?? 'none') === 'none' ? 'none' : 'bridge',
        Memory: memoryBytes,
        // Same as Memory: no swap on top of the limit.
        MemorySwap: memoryBytes,
        PidsLimit: spec.limits?.pids ?? DEFAULT_PIDS,
        ...(spec.limits?.nanoCpus === undefined ? {} : { NanoCpus: spec.limits.nanoCpus }),
        CapDrop: ['ALL'],
        SecurityOpt: ['no-new-privileges'],
        ReadonlyRootfs: false,
        Ulimits: ulimits(),
        AutoRemove: false,
      },
    })
    .catch((error: unknown) => {
      throw (error as { statusCode?: number }).statusCode === 404
        ? new OvmfBuildError('E_IMAGE_NOT_FOUND', `image ${spec.image} is not in the engine`, {
            image: spec.image,
          })
        : engineFailure('E_CONTAINER_CREATE_FAILED', `creating a container from ${spec.image}`, error, {
            image: spec.image,
          });
    });
  await using handle = new ContainerHandle(created, logger);
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
  const tail = new TailBuffer(200);
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
    // Event based and registered before start: the condition-less wait keeps Podman 4.x at 100% of a core.
    const waited = container
      .wait({ condition: 'next-exit', abortSignal: internal.signal })
      .then((result: { StatusCode?: number }) => Number(result.StatusCode ?? -1));
    waited.catch(() => undefined);
    await container.start().catch((error: unknown) => {
      throw engineFailure('E_CONTAINER_START_FAILED', 'starting the container', error, {
        containerId: container.id,
      });
    });
    const startedAt = performance.now();
    const logsDone = streamLogs(docker, container, spec, tail, internal.signal);
    logsDone.catch(() => undefined);
    const exitCode = await Promise.race([waited, pollExit(container, internal.signal)]);
    const exitedAt = performance.now();
    await Promise.race([logsDone, new Promise((resolve) => setTimeout(resolve, LOG_DRAIN_MS).unref())]);
    if (aborted) {
      throw new AbortError('run aborted', { containerId: container.id, jobId: spec.jobId, exitCode });
    }
    let outputs = new Map<string, Uint8Array>();
    let committedImageId: string | undefined;
    if (exitCode === 0) {
      outputs = await fetchOutputs(container, spec);
      if (spec.commitAs !== undefined) {
        const ref = spec.commitAs;
        committedImageId = await commit(docker, container.id, ref).catch((error: unknown) => {
          throw engineFailure('E_CONTAINER_COMMIT_FAILED', `committing the container as ${ref}`, error, {
            containerId: container.id,
            ref,
          });
        });
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

/** Fallback for a container that exited before the wait request was registered. */
async function pollExit(container: Docker.Container, signal: AbortSignal): Promise<number> {
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, EXIT_POLL_MS));
    if (signal.aborted) {
      return new Promise<number>(() => undefined);
    }
    const info = await container.inspect().catch(() => undefined);
    const state = info?.State;
    if (
      state !== undefined &&
      !state.Running &&
      state.Status !== 'created' &&
      state.Status !== 'configured'
    ) {
      return state.ExitCode;
    }
  }
}

async function streamLogs(
  docker: Docker,
  container: Docker.Container,
  spec: RunSpec,
  tail: TailBuffer,
  signal: AbortSignal,
): Promise<void> {
  const stream = (await container.logs({
    follow: true,
    stdout: true,
    stderr: true,
    abortSignal: signal,
  } as Docker.ContainerLogsOptions & { follow: true })) as unknown as Readable;
  let callbackFailures = 0;
  const sink = (name: 'stdout' | 'stderr'): { writable: Writable; splitter: LineSplitter } => {
    const splitter = new LineSplitter((line) => {
      tail.push(line);
      try {
        spec.onLine?.(line, name);
      } catch (error) {
        // A throwing callback must not tear down the log stream (or the process); the build goes on.
        callbackFailures += 1;
        if (callbackFailures === 1) {
          spec.logger.warn({ error: String(error) }, 'onLine callback threw; later failures are not logged');
        }
      }
    });
    const writable = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        splitter.write(chunk);
        callback();
      },
    });
    return { writable, splitter };
  };
  const out = sink('stdout');
  const err = sink('stderr');
  docker.modem.demuxStream(stream, out.writable, err.writable);
  await new Promise<void>((resolve) => {
    stream.once('end', resolve);
    stream.once('close', resolve);
    stream.once('error', () => resolve());
  });
  out.splitter.end();
  err.splitter.end();
}
