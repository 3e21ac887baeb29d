// The resources the stages of one job run share: one container-engine connection (opened on
// first use: a cache hit never needs the engine or dockerode), the EDK2 tree the environment
// stage resolved (reused by the build stage), the locks between ovmf-build processes and the
// ROM-mode checks started ahead when a build's helper drivers came out (early-rom.ts) and the
// images variants of the same compiled inputs are made over (edk2/variant-templates.ts).
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { acquireLock, lockPathFor, type HeldLock, type LockOwner } from '../cache/lock.js';
import { buildCacheDir, userCacheDir } from '../cache/paths.js';
import { UsageError } from '../core/errors.js';
import type { ContainerEngine } from '../container/index.js';
import type { Edk2Source, Edk2SourceSpec } from '../edk2/source.js';
import { TemplateStore } from '../edk2/template-store.js';
import { VariantTemplates } from '../edk2/variant-templates.js';
import { keepWorkspacesOf, WorkspaceUse, type WorkspaceRetention } from '../edk2/workspace-retention.js';
import { EarlyRomChecks } from './early-rom.js';

/**
 * `OVMF_BUILD_VARIANT_TEMPLATES`: `disk` (unset or empty: the default) keeps variant templates for
 * later processes too, `memory` in this process only; anything else is a usage error (exit 2).
 */
export function variantTemplatesOnDisk(env: Readonly<Record<string, string | undefined>>): boolean {
  const value = env['OVMF_BUILD_VARIANT_TEMPLATES'];
  if (value === undefined || value === '' || value === 'disk') return true;
  if (value === 'memory') return false;
  throw new UsageError(`OVMF_BUILD_VARIANT_TEMPLATES must be disk or memory, not ${JSON.stringify(value)}`);
}

export class JobSession implements AsyncDisposable {
  readonly env: NodeJS.ProcessEnv;
  /** ROM-mode checks started when a build's helper drivers came out (early-rom.ts). */
  readonly earlyRom = new EarlyRomChecks();
  /**
   * Per warm-workspace key, the images of a build this session made or found on disk: the next
   * variant of that key makes only the IGD volume over them, without a container
   * (edk2/variant-templates.ts). Kept in `$XDG_CACHE_HOME/ovmf-build/variant-templates` for later
   * processes (edk2/template-store.ts), unless OVMF_BUILD_VARIANT_TEMPLATES=memory.
   */
  readonly variantTemplates: VariantTemplates;
  /**
   * When each warm workspace was last used, and how many to keep (OVMF_BUILD_KEEP_WORKSPACES,
   * default 3): a build that commits one removes the least recently used beyond them
   * (edk2/workspace-retention.ts).
   */
  readonly workspaceRetention: WorkspaceRetention;
  #engine: ContainerEngine | null = null;
  /**
   * The source tree of the last acquisition, reused by the build; `stamp` is the state it was
   * acquired under (environment.ts sourceStamp: for Debian's package, the apt lists), when known.
   */
  #acquired: { readonly key: string; readonly source: Edk2Source; readonly stamp?: string } | null = null;

  constructor(env: NodeJS.ProcessEnv) {
    this.env = env;
    this.variantTemplates = new VariantTemplates(
      variantTemplatesOnDisk(env)
        ? new TemplateStore(path.join(userCacheDir(env), 'variant-templates'))
        : undefined,
    );
    this.workspaceRetention = {
      use: new WorkspaceUse(path.join(userCacheDir(env), 'workspace-use')),
      keep: keepWorkspacesOf(env),
    };
  }

  async engine(logger: Logger, signal: AbortSignal): Promise<ContainerEngine> {
    // Loaded on first use: a cache hit never needs the engine (or dockerode).
    const { connectEngine } = await import('../container/index.js');
    this.#engine ??= await connectEngine({ env: this.env, logger, signal });
    return this.#engine;
  }

  /**
   * The EDK2 tree of `spec`: acquired (or found in the source cache) once per session. `fresh`
   * asks for a new acquisition (the verified resolution before a build), except for Debian's
   * package when `stamp` equals the one this session acquired it under: apt answers from its
   * lists alone, and an unchanged lists directory gives the same answer. So a nightly's jobs
   * pay `apt-get source --print-uris` (about 1 s here) once per run, not once per recipe, and an
   * `apt-get update` between two jobs still makes the next one ask again.
   */
  async source(
    spec: Edk2SourceSpec,
    logger: Logger,
    signal: AbortSignal,
    fresh = false,
    stamp?: string,
  ): Promise<Edk2Source> {
    const key = JSON.stringify(spec);
    const previous = this.#acquired?.key === key ? this.#acquired : null;
    if (previous !== null && !fresh) return previous.source;
    if (previous !== null && spec.kind === 'debian' && stamp !== undefined && previous.stamp === stamp) {
      return previous.source;
    }
    const { acquireEdk2Source } = await import('../edk2/source.js');
    const source = await acquireEdk2Source(spec, { env: this.env, logger, signal });
    this.#acquired = { key, source, ...(stamp === undefined ? {} : { stamp }) };
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
    // A template offered by the last build is on disk before the process may exit.
    await this.variantTemplates.settled();
    await this.earlyRom[Symbol.asyncDispose]();
    const engine = this.#engine;
    this.#engine = null;
    if (engine !== null) await engine[Symbol.asyncDispose]();
  }
}
