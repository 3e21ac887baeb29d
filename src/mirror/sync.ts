// `mirror sync URL DIR`: make DIR a copy of the mirror at URL, only ever moving forward. The
// signed index is fetched conditionally (ETag), checked (trusted key, valid_until, serial newer
// than DIR's: no rollback, no replay), then installed like `mirror index` installs its own:
// objects downloaded into staging first (resumable, size and sha256 checked), version
// directories verified before their rename, the signed index last. A sync killed at any point
// leaves DIR's previous index complete and serving.
import path from 'node:path';
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../core/durable-fs.js';
import { hasObject } from './object-store.js';
import { artifactKeys, fetchObjectInto, fetchSignedIndex, mirrorBase, trustedKeyChooser } from './remote.js';
import { assertFresh, serializeJson } from './signed-index.js';
import { installIndex, lockMirror, readCurrentIndex, stateDir } from './tree.js';
import { DEFAULT_GRACE_MS } from './make-index.js';

export interface SyncOptions {
  /** The mirror to copy (the directory that holds index.signed.json). */
  readonly url: string;
  /** The local mirror tree. */
  readonly root: string;
  /** Fingerprint of the key that must sign the index (see resolveIndexKey in remote.ts). */
  readonly trustKey: string;
  /** userConfigDir(env): trusted keys. */
  readonly configDir: string;
  /** @default new Date() */
  readonly now?: Date;
  /** @default DEFAULT_GRACE_MS (24 h) */
  readonly graceMs?: number;
  readonly signal?: AbortSignal;
}

export interface SyncResult {
  readonly root: string;
  /** 'not-modified': the server answered 304; 'same': the same index; 'updated'. */
  readonly outcome: 'not-modified' | 'same' | 'updated';
  readonly serial: number;
  readonly previousSerial: number | null;
  readonly objectsFetched: number;
  readonly versionsAdded: number;
  readonly pruned: readonly string[];
}

const ETAG_STATE = 'etag.json';

interface EtagState {
  readonly serial: number;
  readonly etag: string;
}

async function readEtag(root: string, serial: number | undefined): Promise<string | undefined> {
  if (serial === undefined) return undefined;
  try {
    const state = JSON.parse(await readFile(path.join(stateDir(root), ETAG_STATE), 'utf8')) as EtagState;
    return state.serial === serial && typeof state.etag === 'string' ? state.etag : undefined;
  } catch {
    return undefined;
  }
}

async function saveEtag(root: string, state: EtagState): Promise<void> {
  await writeFileAtomic(path.join(stateDir(root), ETAG_STATE), serializeJson(state));
}

export async function syncMirror(options: SyncOptions): Promise<SyncResult> {
  const root = path.resolve(options.root);
  const base = mirrorBase(options.url);
  const now = options.now ?? new Date();
  const signal = options.signal;
  const withSignal = signal === undefined ? {} : { signal };
  await using _lock = await lockMirror(root, signal);
  const current = await readCurrentIndex(root);
  const previousSerial = current?.signed.payload.serial ?? null;
  const etag = await readEtag(root, current?.signed.payload.serial);
  const fetched = await fetchSignedIndex(
    base,
    trustedKeyChooser(base, options.trustKey, options.configDir, signal),
    {
      ...(etag === undefined ? {} : { etag }),
      ...withSignal,
    },
  );
  const unchanged = (outcome: 'not-modified' | 'same'): SyncResult => ({
    root,
    outcome,
    serial: previousSerial ?? 0,
    previousSerial,
    objectsFetched: 0,
    versionsAdded: 0,
    pruned: [],
  });
  if (fetched === null) return unchanged('not-modified');
  const payload = fetched.signed.payload;
  if (assertFresh(payload, now, current?.signed.payload ?? null) === 'same') {
    if (fetched.etag !== null) await saveEtag(root, { serial: payload.serial, etag: fetched.etag });
    return unchanged('same');
  }
  // The keys first: the version directories are checked against them.
  for (const entry of payload.keys) {
    const object = { sha256: entry.sha256, size: entry.size };
    if (!(await hasObject(root, object))) await fetchObjectInto(root, base, object, signal);
  }
  const trustedKeys = await artifactKeys(root, payload, fetched.key, options.configDir);
  const result = await installIndex({
    root,
    signed: fetched.signed,
    signedBytes: fetched.bytes,
    fetchObject: (object) => fetchObjectInto(root, base, object, signal),
    trustedKeys,
    graceMs: options.graceMs ?? DEFAULT_GRACE_MS,
    now,
    ...withSignal,
  });
  if (fetched.etag !== null) await saveEtag(root, { serial: payload.serial, etag: fetched.etag });
  return {
    root,
    outcome: 'updated',
    serial: payload.serial,
    previousSerial,
    objectsFetched: result.objectsFetched,
    versionsAdded: result.versionsAdded,
    pruned: result.pruned,
  };
}
