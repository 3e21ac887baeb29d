// Per-key build lock: an O_EXCL lock file holding { pid, host, createdAt, token }. Two
// processes with the same request build once: the second waits for the first and then
// finds the entry. A lock whose process is gone (same host, pid dead) is broken.
import { randomBytes } from 'node:crypto';
import { link, open, rename, rm, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AbortError, OvmfBuildError } from '../core/errors.js';
import { isProcessAlive } from '../core/process-alive.js';
import { readInputText } from '../fetch/read-input.js';

export interface LockOwner {
  readonly pid: number;
  readonly host: string;
  readonly createdAt: string;
  readonly token: string;
}

export interface AcquireLockOptions {
  readonly signal?: AbortSignal;
  /**
   * How often a waiting process looks at the lock again.
   * @default 250
   */
  readonly pollMs?: number;
  /**
   * Give up waiting after this long (E_CACHE_LOCK_TIMEOUT).
   * @default 7_200_000 (2 h, longer than any build)
   */
  readonly timeoutMs?: number;
  /**
   * A lock from another host cannot be checked for liveness; it is treated as stale after this age.
   * @default 21_600_000 (6 h)
   */
  readonly foreignStaleAfterMs?: number;
  /** Called once when the lock is held by someone else and we start waiting. */
  readonly onWait?: (owner: LockOwner | null) => void;
  /** Called when a stale lock was broken. */
  readonly onBroken?: (owner: LockOwner | null, reason: string) => void;
}

export interface HeldLock extends AsyncDisposable {
  readonly path: string;
  readonly owner: LockOwner;
  /** True when this process had to wait for another holder first. */
  readonly waited: boolean;
  release(): Promise<void>;
}

/** A lock file being created has no content for a moment; older than this and still unreadable, it is debris. */
const UNREADABLE_GRACE_MS = 10_000;

export async function readLockOwner(file: string): Promise<LockOwner | null> {
  try {
    const parsed = JSON.parse(await readInputText(file, { what: 'lock file' })) as Partial<LockOwner>;
    if (
      typeof parsed.pid === 'number' &&
      typeof parsed.host === 'string' &&
      typeof parsed.createdAt === 'string' &&
      typeof parsed.token === 'string'
    ) {
      return parsed as LockOwner;
    }
    return null;
  } catch {
    return null;
  }
}

/**
 * Why a lock is stale, or null when its holder may still be working.
 * @param now the clock, passed in for tests
 */
export async function lockStaleReason(
  file: string,
  owner: LockOwner | null,
  options: { readonly foreignStaleAfterMs?: number; readonly now?: number } = {},
): Promise<string | null> {
  const now = options.now ?? Date.now();
  if (owner === null) {
    try {
      const info = await stat(file);
      return now - info.mtimeMs > UNREADABLE_GRACE_MS ? 'unreadable lock file' : null;
    } catch {
      return null;
    }
  }
  if (owner.host === hostname()) {
    return isProcessAlive(owner.pid) ? null : `process ${owner.pid} is gone`;
  }
  const ageMs = now - Date.parse(owner.createdAt);
  const limit = options.foreignStaleAfterMs ?? 21_600_000;
  return ageMs > limit ? `held by ${owner.host} for ${Math.round(ageMs / 1000)} s` : null;
}

/**
 * Breaks a stale lock without racing another breaker: the file is renamed to a unique
 * name first, and if what was renamed is not the lock judged stale (someone took the lock
 * in between), it is linked back (link(2) fails if a newer lock is already there).
 */
async function breakLock(file: string, judged: LockOwner | null): Promise<boolean> {
  const aside = `${file}.broken-${randomBytes(6).toString('hex')}`;
  try {
    await rename(file, aside);
  } catch {
    return false;
  }
  const moved = await readLockOwner(aside);
  if (judged !== null && moved?.token !== judged.token) {
    await link(aside, file).catch(() => undefined);
    await rm(aside, { force: true });
    return false;
  }
  await rm(aside, { force: true });
  return true;
}

/** Takes the lock at `file`, waiting while a live process holds it. */
export async function acquireLock(file: string, options: AcquireLockOptions = {}): Promise<HeldLock> {
  const pollMs = options.pollMs ?? 250;
  const deadline = Date.now() + (options.timeoutMs ?? 7_200_000);
  const owner: LockOwner = {
    pid: process.pid,
    host: hostname(),
    createdAt: new Date().toISOString(),
    token: randomBytes(12).toString('hex'),
  };
  let waited = false;
  for (;;) {
    if (options.signal?.aborted) {
      throw new AbortError('aborted while waiting for the cache lock', { lock: file });
    }
    try {
      const handle = await open(file, 'wx', 0o644);
      try {
        await handle.writeFile(JSON.stringify(owner));
        await handle.sync();
      } finally {
        await handle.close();
      }
      return makeHeld(file, owner, waited);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new OvmfBuildError(
          'E_CACHE_LOCK_FAILED',
          `cannot create lock ${file}: ${(error as Error).message}`,
          {
            lock: file,
          },
        );
      }
    }
    const holder = await readLockOwner(file);
    const stale = await lockStaleReason(file, holder, options);
    if (stale !== null) {
      if (await breakLock(file, holder)) options.onBroken?.(holder, stale);
      continue;
    }
    if (!waited) {
      waited = true;
      options.onWait?.(holder);
    }
    if (Date.now() > deadline) {
      throw new OvmfBuildError('E_CACHE_LOCK_TIMEOUT', `gave up waiting for lock ${file}`, {
        lock: file,
        holder,
      });
    }
    try {
      await sleep(pollMs, undefined, options.signal === undefined ? {} : { signal: options.signal });
    } catch {
      throw new AbortError('aborted while waiting for the cache lock', { lock: file });
    }
  }
}

function makeHeld(file: string, owner: LockOwner, waited: boolean): HeldLock {
  let released = false;
  const release = async (): Promise<void> => {
    if (released) return;
    released = true;
    // Only remove the lock if it is still ours (it may have been broken and retaken).
    const current = await readLockOwner(file);
    if (current?.token === owner.token) await rm(file, { force: true });
  };
  return { path: file, owner, waited, release, [Symbol.asyncDispose]: release };
}

/** The lock file for a key inside a cache root. */
export function lockPathFor(root: string, keyValue: string): string {
  return path.join(root, 'locks', `${keyValue}.lock`);
}
