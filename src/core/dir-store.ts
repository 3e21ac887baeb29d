// One way to make a directory appear whole or not at all, shared by the build cache, the EDK2
// source cache and the artifact store (STYLE.md "Caching"; Bazel/Nix): the caller fills a temp
// dir beside the target, every file and directory in it is fsynced, an optional completion
// marker is written last, and one rename(2) makes it visible. A crash leaves only a temp dir,
// which a later writer sweeps once its owner is gone.
import { lstat, mkdir, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { fsyncPath, randomSuffix, writeFileSynced } from './durable-fs.js';
import { isProcessAlive } from './process-alive.js';

/** Temp dirs are `.tmp-<pid>-<random>`: the pid says whose they are, the random part keeps writers apart. */
export const TEMP_PREFIX = '.tmp-';
/** Directories renamed out of the way before deletion (readers never see them half-deleted). */
export const DISCARD_PREFIX = '.discard-';
/** Files fsynced at once: enough for the file system to batch journal commits of a 30k-file tree. */
const FSYNC_CONCURRENCY = 64;

export interface WriteDirOptions<T> {
  /** The directory to create; its parent is created when missing. */
  readonly target: string;
  /** Writes the content into `tempDir` (plain writes: the store fsyncs everything afterwards). */
  readonly fill: (tempDir: string) => Promise<T>;
  /** A file written (and fsynced) last; a directory without it is incomplete. @default no marker */
  readonly marker?: string;
  /**
   * Called when `target` already exists at rename time (another writer finished first, or an
   * incomplete leftover). Return the existing entry's value to keep it (our copy is dropped),
   * or null to discard it and put ours in its place.
   */
  readonly existing: (target: string) => Promise<T | null>;
  /** Sweep rules for stale temp dirs beside the target, run before writing. */
  readonly sweep?: SweepOptions;
}

export type WriteDirResult<T> =
  { readonly created: true; readonly value: T } | { readonly created: false; readonly value: T };

export interface SweepOptions {
  /**
   * A temp dir whose owner pid is dead is removed once it is at least this old (a writer in
   * another pid namespace or on another host sharing the directory looks dead from here).
   * @default 600_000 (10 min)
   */
  readonly deadOwnerAfterMs?: number;
  /** A temp dir is removed after this long even if a process with its pid runs. @default 86_400_000 (24 h) */
  readonly abandonedAfterMs?: number;
  /** The clock (ms since the epoch), passed in for tests. @default Date.now() */
  readonly now?: number;
}

export interface StaleTemp {
  readonly path: string;
  readonly pid: number;
  /** Why it can go: "writer process 123 is gone" or "older than 24 h". */
  readonly reason: string;
}

/** The pid in a temp dir name, or null for names that are not ours. */
function tempOwner(name: string): number | null {
  const match = /^\.tmp-(\d+)-[0-9a-f]+$/.exec(name);
  return match === null ? null : Number(match[1]);
}

/** Temp dirs in `parent` that may be removed under `options` (nothing is removed here). */
export async function findStaleTemps(parent: string, options: SweepOptions = {}): Promise<StaleTemp[]> {
  const now = options.now ?? Date.now();
  const deadAfter = options.deadOwnerAfterMs ?? 600_000;
  const abandonedAfter = options.abandonedAfterMs ?? 86_400_000;
  const stale: StaleTemp[] = [];
  for (const name of (await readdir(parent).catch(() => [] as string[])).sort()) {
    const pid = tempOwner(name);
    if (pid === null) continue;
    const full = path.join(parent, name);
    const info = await lstat(full).catch(() => null);
    if (info === null) continue;
    const ageMs = now - info.mtimeMs;
    if (!isProcessAlive(pid) && ageMs >= deadAfter) {
      stale.push({ path: full, pid, reason: `writer process ${pid} is gone` });
    } else if (ageMs > abandonedAfter) {
      stale.push({ path: full, pid, reason: `older than ${Math.round(abandonedAfter / 3_600_000)} h` });
    }
  }
  return stale;
}

/** Removes the stale temp dirs in `parent`; returns what went. */
export async function sweepStaleTemps(parent: string, options: SweepOptions = {}): Promise<StaleTemp[]> {
  const stale = await findStaleTemps(parent, options);
  for (const temp of stale) await rm(temp.path, { recursive: true, force: true });
  return stale;
}

/** Renames `dir` aside (so readers see it whole or not at all), then deletes it. */
export async function discardDir(dir: string): Promise<void> {
  const aside = path.join(path.dirname(dir), `${DISCARD_PREFIX}${path.basename(dir)}-${randomSuffix(4)}`);
  try {
    await rename(dir, aside);
  } catch {
    return;
  }
  await rm(aside, { recursive: true, force: true });
}

/**
 * Bytes under `target`, links not followed: a symlink counts as itself, so a link to a
 * parent directory (a loop) or to a huge tree elsewhere cannot hang or inflate a listing.
 */
export async function treeSize(target: string): Promise<number> {
  const info = await lstat(target).catch(() => null);
  if (info === null) return 0;
  if (!info.isDirectory()) return info.size;
  let total = 0;
  for (const name of await readdir(target).catch(() => [] as string[])) {
    total += await treeSize(path.join(target, name));
  }
  return total;
}

/** fsyncs every regular file under `root`, then every directory bottom-up (symlinks are stored in their directory). */
export async function fsyncTree(root: string): Promise<void> {
  const files: string[] = [];
  const dirs: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) await walk(full);
      else if (entry.isFile()) files.push(full);
    }
    dirs.push(dir);
  };
  await walk(root);
  for (let start = 0; start < files.length; start += FSYNC_CONCURRENCY) {
    await Promise.all(files.slice(start, start + FSYNC_CONCURRENCY).map(fsyncPath));
  }
  for (const dir of dirs) await fsyncPath(dir);
}

/**
 * Creates `target` atomically (see the file comment). When another writer's complete entry
 * is found at rename time, that entry wins: ours is removed and `existing`'s value returned.
 * On any failure the temp dir is removed and the error rethrown; nothing partial is visible.
 */
export async function writeDirAtomic<T>(options: WriteDirOptions<T>): Promise<WriteDirResult<T>> {
  const parent = path.dirname(options.target);
  await mkdir(parent, { recursive: true });
  await sweepStaleTemps(parent, options.sweep);
  const tmp = path.join(parent, `${TEMP_PREFIX}${process.pid}-${randomSuffix()}`);
  await mkdir(tmp);
  try {
    const value = await options.fill(tmp);
    await fsyncTree(tmp);
    if (options.marker !== undefined) {
      await writeFileSynced(path.join(tmp, options.marker), `${new Date().toISOString()}\n`);
      await fsyncPath(tmp);
    }
    for (let attempt = 0; ; attempt += 1) {
      try {
        await rename(tmp, options.target);
        break;
      } catch (error) {
        // rename(2) onto a non-empty directory fails: someone else put an entry there.
        const code = (error as NodeJS.ErrnoException).code;
        if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw error;
        const winner = await options.existing(options.target);
        if (winner !== null) {
          await rm(tmp, { recursive: true, force: true });
          return { created: false, value: winner };
        }
        if (attempt > 0) throw error;
        await discardDir(options.target);
      }
    }
    await fsyncPath(parent);
    return { created: true, value };
  } catch (error) {
    await rm(tmp, { recursive: true, force: true });
    throw error;
  }
}
