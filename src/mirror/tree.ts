// Installs a signed index into a mirror tree so that the tree is complete at every instant:
// objects first (by-hash, each checked), then the version directories built from them (each
// verified before its one rename), keys, latest.json, index.json, index.html, and the signed
// index last. A process killed anywhere leaves the previous signed index with every object it
// names in place. Old objects go only when no index superseded less than `graceMs` ago still
// names them (a client holding an older index keeps working; fwupd issue 7495).
import { mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { acquireLock } from '../cache/lock.js';
import { discardDir, writeDirAtomic } from '../core/dir-store.js';
import { randomSuffix, writeFileAtomic } from '../core/durable-fs.js';
import { isOvmfBuildError } from '../core/errors.js';
import { PublishError } from '../publish/errors.js';
import type { TrustedKey } from '../publish/trust.js';
import { verifyArtifact } from '../publish/verify.js';
import { renderIndexHtml } from './html.js';
import {
  MIRROR_LAYOUT,
  type LatestPointer,
  type MirrorIndex,
  type SignedMirrorIndex,
} from './index-types.js';
import { hasObject, objectPath, placeObject, type ObjectRef } from './object-store.js';
import { parseSignedIndex, serializeJson } from './signed-index.js';

export interface InstallOptions {
  readonly root: string;
  readonly signed: SignedMirrorIndex;
  /** The exact bytes of index.signed.json to write (a sync keeps the origin's bytes). */
  readonly signedBytes: Uint8Array;
  /** Brings one missing object into by-hash (checked); called once per missing object. */
  readonly fetchObject: (object: ObjectRef) => Promise<void>;
  /** Keys whose signatures on the version directories are accepted. */
  readonly trustedKeys: readonly TrustedKey[];
  /** How long an object stays after the last index naming it was superseded. */
  readonly graceMs: number;
  readonly now: Date;
  readonly signal?: AbortSignal;
}

export interface InstallResult {
  readonly objectsFetched: number;
  readonly versionsAdded: number;
  /** Paths (relative to the root) removed after their grace period. */
  readonly pruned: readonly string[];
}

interface HistoryRecord {
  readonly superseded_at: string;
  readonly payload: MirrorIndex;
}

const HEX_SHA256 = /^[0-9a-f]{64}$/;

export function stateDir(root: string): string {
  return path.join(root, MIRROR_LAYOUT.stateDir);
}

function historyDir(root: string): string {
  return path.join(stateDir(root), 'history');
}

/** The signed index the tree serves now, or null for a new mirror. */
export async function readCurrentIndex(
  root: string,
): Promise<{ signed: SignedMirrorIndex; bytes: Buffer } | null> {
  const bytes = await readFile(path.join(root, MIRROR_LAYOUT.signedIndex)).catch(
    (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return null;
      throw error;
    },
  );
  return bytes === null ? null : { signed: parseSignedIndex(bytes), bytes };
}

/** Holds the mirror's lock: one writer per tree (index, sync) at a time. */
export async function lockMirror(root: string, signal?: AbortSignal): Promise<AsyncDisposable> {
  await mkdir(stateDir(root), { recursive: true });
  return acquireLock(path.join(stateDir(root), 'lock'), signal === undefined ? {} : { signal });
}

function objectsOf(payload: MirrorIndex): Map<string, ObjectRef> {
  const objects = new Map<string, ObjectRef>();
  for (const key of payload.keys) objects.set(key.sha256, { sha256: key.sha256, size: key.size });
  for (const artifact of payload.artifacts) {
    for (const version of artifact.versions) {
      for (const file of version.files) objects.set(file.sha256, { sha256: file.sha256, size: file.size });
    }
  }
  return objects;
}

async function writeIfChanged(file: string, text: string): Promise<void> {
  const current = await readFile(file, 'utf8').catch(() => null);
  if (current !== text) await writeFileAtomic(file, text);
}

async function installVersions(options: InstallOptions): Promise<number> {
  let added = 0;
  for (const artifact of options.signed.payload.artifacts) {
    for (const version of artifact.versions) {
      const target = path.join(options.root, MIRROR_LAYOUT.artifactsDir, artifact.name, version.version);
      if (
        await readdir(target).then(
          () => true,
          () => false,
        )
      )
        continue;
      const result = await writeDirAtomic({
        target,
        fill: async (tmp) => {
          for (const file of version.files)
            await placeObject(options.root, file.sha256, path.join(tmp, file.name));
          // The signed index vouches for the digests; the directory's own signature is checked too.
          await verifyArtifact(tmp, { trustedKeys: options.trustedKeys });
          return true;
        },
        existing: async () => true,
        sweep: { deadOwnerAfterMs: 0 },
      });
      if (result.created) added += 1;
    }
  }
  return added;
}

async function installKeys(root: string, payload: MirrorIndex): Promise<void> {
  const dir = path.join(root, MIRROR_LAYOUT.keysDir);
  await mkdir(dir, { recursive: true });
  for (const key of payload.keys) {
    const target = path.join(dir, `${key.fingerprint}.pub`);
    if (await hasObjectAt(target, key.size)) continue;
    const tmp = path.join(dir, `.${key.fingerprint}.${randomSuffix()}.tmp`);
    await placeObject(root, key.sha256, tmp);
    await rename(tmp, target);
  }
}

async function hasObjectAt(file: string, size: number): Promise<boolean> {
  return readFile(file).then(
    (bytes) => bytes.length === size,
    () => false,
  );
}

async function readHistory(root: string): Promise<Array<{ file: string; record: HistoryRecord }>> {
  const dir = historyDir(root);
  const out: Array<{ file: string; record: HistoryRecord }> = [];
  for (const name of (await readdir(dir).catch(() => [] as string[])).sort()) {
    if (!/^\d{12}\.json$/.test(name)) continue;
    const file = path.join(dir, name);
    try {
      out.push({ file, record: JSON.parse(await readFile(file, 'utf8')) as HistoryRecord });
    } catch {
      // A record we cannot read keeps nothing alive; it goes with the next prune.
      out.push({
        file,
        record: {
          superseded_at: new Date(0).toISOString(),
          payload: { artifacts: [], keys: [] } as unknown as MirrorIndex,
        },
      });
    }
  }
  return out;
}

/** Removes what neither the current index nor one superseded within the grace period names. */
async function prune(options: InstallOptions): Promise<string[]> {
  const { root, now, graceMs } = options;
  const live: MirrorIndex[] = [options.signed.payload];
  for (const { file, record } of await readHistory(root)) {
    if (now.getTime() - Date.parse(record.superseded_at) < graceMs) live.push(record.payload);
    else await rm(file, { force: true });
  }
  const keepObjects = new Set<string>();
  const keepVersions = new Set<string>();
  const keepKeys = new Set<string>();
  for (const payload of live) {
    for (const sha of objectsOf(payload).keys()) keepObjects.add(sha);
    for (const key of payload.keys) keepKeys.add(`${key.fingerprint}.pub`);
    for (const artifact of payload.artifacts) {
      for (const version of artifact.versions) keepVersions.add(`${artifact.name}/${version.version}`);
    }
  }
  const pruned: string[] = [];
  const byHash = path.dirname(objectPath(root, '0'.repeat(64)));
  for (const name of await readdir(byHash).catch(() => [] as string[])) {
    if (HEX_SHA256.test(name) && !keepObjects.has(name)) {
      await rm(path.join(byHash, name), { force: true });
      pruned.push(`${MIRROR_LAYOUT.byHashDir}/${name}`);
    }
  }
  const keysDir = path.join(root, MIRROR_LAYOUT.keysDir);
  for (const name of await readdir(keysDir).catch(() => [] as string[])) {
    if (/^[0-9a-f]{64}\.pub$/.test(name) && !keepKeys.has(name)) {
      await rm(path.join(keysDir, name), { force: true });
      pruned.push(`${MIRROR_LAYOUT.keysDir}/${name}`);
    }
  }
  const artifactsDir = path.join(root, MIRROR_LAYOUT.artifactsDir);
  const currentNames = new Set(options.signed.payload.artifacts.map((a) => a.name));
  for (const name of await readdir(artifactsDir).catch(() => [] as string[])) {
    if (name.startsWith('.')) continue;
    const nameDir = path.join(artifactsDir, name);
    let remaining = 0;
    for (const version of await readdir(nameDir).catch(() => [] as string[])) {
      if (version.startsWith('.') || version === MIRROR_LAYOUT.latestFile) continue;
      if (keepVersions.has(`${name}/${version}`)) {
        remaining += 1;
        continue;
      }
      await discardDir(path.join(nameDir, version));
      pruned.push(`${MIRROR_LAYOUT.artifactsDir}/${name}/${version}`);
    }
    if (remaining === 0 && !currentNames.has(name)) {
      await rm(nameDir, { recursive: true, force: true });
      pruned.push(`${MIRROR_LAYOUT.artifactsDir}/${name}`);
    }
  }
  return pruned;
}

/**
 * Installs `signed` (already checked by the caller: signature, freshness) into the tree. The
 * caller holds lockMirror.
 */
export async function installIndex(options: InstallOptions): Promise<InstallResult> {
  const { root, signed } = options;
  const payload = signed.payload;
  let fetched = 0;
  try {
    for (const object of objectsOf(payload).values()) {
      if (options.signal?.aborted) throw options.signal.reason;
      if (await hasObject(root, object)) continue;
      await options.fetchObject(object);
      fetched += 1;
    }
    const versionsAdded = await installVersions(options);
    await installKeys(root, payload);
    for (const artifact of payload.artifacts) {
      const pointer: LatestPointer = {
        name: artifact.name,
        version: artifact.latest,
        url: `${artifact.latest}/`,
      };
      await writeIfChanged(
        path.join(root, MIRROR_LAYOUT.artifactsDir, artifact.name, MIRROR_LAYOUT.latestFile),
        serializeJson(pointer),
      );
    }
    const previous = await readCurrentIndex(root).catch(() => null);
    await writeIfChanged(path.join(root, MIRROR_LAYOUT.index), serializeJson(payload));
    await writeIfChanged(path.join(root, MIRROR_LAYOUT.html), renderIndexHtml(payload));
    // The index about to be superseded is recorded first, so its objects keep their grace
    // period even if this process dies right after the switch.
    if (previous !== null && previous.signed.payload.serial !== payload.serial) {
      await mkdir(historyDir(root), { recursive: true });
      const record: HistoryRecord = {
        superseded_at: options.now.toISOString(),
        payload: previous.signed.payload,
      };
      await writeFileAtomic(
        path.join(historyDir(root), `${String(previous.signed.payload.serial).padStart(12, '0')}.json`),
        serializeJson(record),
      );
    }
    await writeFileAtomic(path.join(root, MIRROR_LAYOUT.signedIndex), options.signedBytes);
    const pruned = await prune(options);
    return { objectsFetched: fetched, versionsAdded, pruned };
  } catch (error) {
    if (isOvmfBuildError(error)) throw error;
    if (options.signal?.aborted) throw error;
    throw new PublishError(
      'E_MIRROR_WRITE_FAILED',
      `cannot update the mirror ${root}: ${(error as Error).message}`,
      {
        root,
      },
    );
  }
}
