// How many warm workspaces stay. Each is a committed build container of about 1 GB, one per
// workspace key (build flags, builder image, EDK2 source), so every new EDK2 release, builder
// recipe or flag combination would add one for good. After each commit (the only moment one
// is added) and in `ovmf-build cleanup`, the workspaces of the repository beyond the `keep`
// most recently used are removed, except one used within the last hour: a job that found it a
// moment ago may be about to start its container from it. A workspace a container still uses
// is never removed (the engine refuses). Use is recorded as the mtime of an empty file per key
// in `$XDG_CACHE_HOME/ovmf-build/workspace-use/<repository>`, written before a build looks for
// its workspace and again after a commit; a workspace without a record counts as used when its
// image was created. A variant made over a template this process holds in memory starts no
// container and records nothing.
import { mkdir, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { UsageError } from '../core/errors.js';
import type { ContainerEngine } from '../container/index.js';

/** Workspaces kept by default (about 1 GB each). */
export const DEFAULT_KEEP_WORKSPACES = 3;
/** A workspace used this recently is never removed, whatever `keep` says. */
export const RECENT_USE_MS = 3_600_000;
/** Workspace keys are hex digests (edk2/workspace key): nothing else names a file here. */
const KEY_RE = /^[0-9a-f]{8,128}$/;

/**
 * `OVMF_BUILD_KEEP_WORKSPACES`: how many warm workspaces to keep (a positive integer; unset or
 * empty: DEFAULT_KEEP_WORKSPACES). Anything else is a usage error (exit 2).
 */
export function keepWorkspacesOf(env: Readonly<Record<string, string | undefined>>): number {
  const value = env['OVMF_BUILD_KEEP_WORKSPACES'];
  if (value === undefined || value === '') return DEFAULT_KEEP_WORKSPACES;
  return parseKeep(value, 'OVMF_BUILD_KEEP_WORKSPACES');
}

/** A positive integer of at most 4 digits, else a usage error naming `what`. */
export function parseKeep(value: string, what: string): number {
  if (!/^[1-9][0-9]{0,3}$/.test(value)) {
    throw new UsageError(
      `${what} must be a positive whole number of workspaces to keep, not ${JSON.stringify(value)}`,
    );
  }
  return Number(value);
}

export interface WorkspaceCandidate {
  readonly ref: string;
  /** Last use (the record's time, else the image's creation), ms since the epoch. */
  readonly lastUsedMs: number;
}

/**
 * The refs to remove: all but the `keep` most recently used, less those used within
 * `recentMs` of `now`. Ties keep the earlier listed. Pure.
 */
export function workspacesToRemove(
  workspaces: readonly WorkspaceCandidate[],
  options: { readonly keep: number; readonly now: number; readonly recentMs?: number },
): string[] {
  const recentMs = options.recentMs ?? RECENT_USE_MS;
  return workspaces
    .map((workspace, index) => ({ ...workspace, index }))
    .sort((a, b) => b.lastUsedMs - a.lastUsedMs || a.index - b.index)
    .slice(options.keep)
    .filter((workspace) => options.now - workspace.lastUsedMs >= recentMs)
    .map((workspace) => workspace.ref);
}

/**
 * The record of when each workspace was last used: one empty file per repository and key, its
 * mtime (`<dir>/<repository, "/" as "+">/<key>`).
 */
export class WorkspaceUse {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  #dirOf(repository: string): string {
    if (!/^[a-z0-9][a-z0-9._-]*(\/[a-z0-9][a-z0-9._-]*)*$/.test(repository)) {
      throw new TypeError(`Expected \`repository\` to be an image repository path, got \`${repository}\``);
    }
    return path.join(this.dir, repository.replaceAll('/', '+'));
  }

  #fileOf(repository: string, key: string): string {
    if (!KEY_RE.test(key)) throw new TypeError(`Expected \`key\` to be a hex workspace key, got \`${key}\``);
    return path.join(this.#dirOf(repository), key);
  }

  /** Records a use of the workspace `repository:key` now. */
  async touch(repository: string, key: string, now = new Date()): Promise<void> {
    const file = this.#fileOf(repository, key);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, '');
    await utimes(file, now, now);
  }

  /** When `repository:key` was last used, or undefined without a record. */
  async lastUsedMs(repository: string, key: string): Promise<number | undefined> {
    const info = await stat(this.#fileOf(repository, key)).catch(() => null);
    return info?.isFile() === true ? Math.round(info.mtimeMs) : undefined;
  }

  /** Forgets the records of `repository` whose keys are not in `keys` (their workspaces are gone). */
  async forgetAllBut(repository: string, keys: ReadonlySet<string>): Promise<void> {
    const dir = this.#dirOf(repository);
    const names = await readdir(dir).catch(() => [] as string[]);
    for (const name of names) {
      if (KEY_RE.test(name) && !keys.has(name)) await rm(path.join(dir, name), { force: true });
    }
  }
}

export interface WorkspaceRetention {
  readonly use: WorkspaceUse;
  /** Workspaces kept at most (those used within RECENT_USE_MS come on top). */
  readonly keep: number;
}

export interface WorkspacePruneResult {
  /** Refs removed. */
  readonly removed: readonly string[];
  /** Refs that were to go but a container still uses. */
  readonly inUse: readonly string[];
  /** Refs kept: the `keep` most recently used and those used within the hour. */
  readonly kept: readonly string[];
}

/**
 * Removes the workspaces of `repository` beyond `retention.keep` (see the top of this file),
 * without force, and forgets the use records of workspaces no longer there.
 */
export async function pruneWorkspaces(
  engine: Pick<ContainerEngine, 'taggedImages' | 'removeImage'>,
  repository: string,
  retention: WorkspaceRetention,
  logger?: Logger,
  now = Date.now(),
): Promise<WorkspacePruneResult> {
  const images = await engine.taggedImages(repository);
  const keyOf = (ref: string): string => ref.slice(repository.length + 1);
  const candidates: WorkspaceCandidate[] = [];
  for (const image of images) {
    const key = keyOf(image.ref);
    // Tags that name no workspace key (a test's, a hand-made one) are not ours to judge.
    if (!KEY_RE.test(key)) continue;
    const used = await retention.use.lastUsedMs(repository, key);
    candidates.push({ ref: image.ref, lastUsedMs: used ?? image.createdMs });
  }
  const targets = new Set(workspacesToRemove(candidates, { keep: retention.keep, now }));
  const removed: string[] = [];
  const inUse: string[] = [];
  for (const ref of targets) {
    const outcome = await engine.removeImage(ref, { force: false });
    if (outcome === 'in-use') {
      inUse.push(ref);
      continue;
    }
    removed.push(ref);
  }
  const kept = candidates.map((c) => c.ref).filter((ref) => !targets.has(ref));
  // Records of workspaces that are gone (removed here, by cleanup --workspaces or by hand).
  await retention.use.forgetAllBut(repository, new Set([...kept, ...inUse].map(keyOf)));
  if (removed.length > 0 || inUse.length > 0) {
    logger?.info(
      { removed, inUse, kept, keep: retention.keep },
      'build: removed warm workspaces beyond the ones kept',
    );
  }
  return { removed, inUse, kept };
}
