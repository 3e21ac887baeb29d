// The resources the stages of one job run share: one container-engine connection (opened on
// first use: a cache hit never needs the engine or dockerode), the EDK2 tree the environment
// stage resolved (reused by the build stage) and the locks between ovmf-build processes.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { acquireLock, lockPathFor, type HeldLock, type LockOwner } from '../cache/lock.js';
import { buildCacheDir } from '../cache/paths.js';
import type { ContainerEngine } from '../container/index.js';
import type { Edk2Source, Edk2SourceSpec } from '../edk2/source.js';

export class JobSession implements AsyncDisposable {
  readonly env: NodeJS.ProcessEnv;
  #engine: ContainerEngine | null = null;
  /** The source tree of the last verified resolution, reused by the build. */
  #acquired: { readonly key: string; readonly source: Edk2Source } | null = null;

  constructor(env: NodeJS.ProcessEnv) {
    this.env = env;
  }

  async engine(logger: Logger, signal: AbortSignal): Promise<ContainerEngine> {
    // Loaded on first use: a cache hit never needs the engine (or dockerode).
    const { connectEngine } = await import('../container/index.js');
    this.#engine ??= await connectEngine({ env: this.env, logger, signal });
    return this.#engine;
  }

  /** The EDK2 tree of `spec`: acquired (or found in the source cache) once per session. */
  async source(
    spec: Edk2SourceSpec,
    logger: Logger,
    signal: AbortSignal,
    fresh = false,
  ): Promise<Edk2Source> {
    const key = JSON.stringify(spec);
    if (!fresh && this.#acquired?.key === key) return this.#acquired.source;
    const { acquireEdk2Source } = await import('../edk2/source.js');
    const source = await acquireEdk2Source(spec, { env: this.env, logger, signal });
    this.#acquired = { key, source };
    return source;
  }

  /**
   * A lock between ovmf-build processes (`builder-image`, `workspace-<key>`), beside the cache's
   * per-key locks so `cache gc` clears stale ones.
   */
  async lock(
    name: string,
    signal: AbortSignal,
    onWait: (owner: LockOwner | null) => void,
  ): Promise<HeldLock> {
    const file = lockPathFor(buildCacheDir(this.env), name);
    await mkdir(path.dirname(file), { recursive: true });
    return acquireLock(file, { signal, onWait });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    const engine = this.#engine;
    this.#engine = null;
    if (engine !== null) await engine[Symbol.asyncDispose]();
  }
}
