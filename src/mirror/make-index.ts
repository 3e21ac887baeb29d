// `mirror index`: an artifact store becomes (or updates) a mirror tree signed by this user's
// key. Same store, serial, clock and key give the same bytes: versions and files are sorted,
// the HTML is generated from the index, and ed25519 signatures are deterministic (RFC 8032).
import path from 'node:path';
import { loadOrCreateSigningKey } from '../publish/signing.js';
import { PublishError } from '../publish/errors.js';
import { loadTrustedKeys } from '../publish/trust.js';
import { sha256 } from '../core/digest.js';
import { indexPayload, scanStore } from './build-index.js';
import { keyUrl, MIRROR_LAYOUT, type MirrorIndex } from './index-types.js';
import { importLocalObject, type ObjectRef } from './object-store.js';
import { signIndex, serializeJson } from './signed-index.js';
import { installIndex, lockMirror, readCurrentIndex } from './tree.js';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { randomSuffix } from '../core/durable-fs.js';
import { commitObject, stagingDir } from './object-store.js';

/** How long a freshly signed index is valid: a mirror must be re-signed (re-indexed) within it. */
export const DEFAULT_VALID_FOR_MS = 7 * 24 * 3_600_000;
/** How long objects stay after the last index naming them was superseded. */
export const DEFAULT_GRACE_MS = 24 * 3_600_000;

export interface MirrorIndexOptions {
  /** The artifact store (artifacts/<name>/<version>/, as publish writes it). */
  readonly storeDir: string;
  /** The mirror tree to create or update. */
  readonly outDir: string;
  /** Where this user's signing key and trusted keys live (userConfigDir(env)). */
  readonly configDir: string;
  /** The clock. @default new Date() */
  readonly now?: Date;
  /** The index serial. @default one more than the tree's current index, or 1 */
  readonly serial?: number;
  /** @default DEFAULT_VALID_FOR_MS (7 days) */
  readonly validForMs?: number;
  /** @default DEFAULT_GRACE_MS (24 h) */
  readonly graceMs?: number;
  readonly signal?: AbortSignal;
}

export interface MirrorIndexResult {
  readonly root: string;
  readonly serial: number;
  readonly keyFingerprint: string;
  readonly names: number;
  readonly versions: number;
  readonly objectsAdded: number;
  readonly versionsAdded: number;
  readonly pruned: readonly string[];
  readonly index: MirrorIndex;
}

export async function writeMirrorIndex(options: MirrorIndexOptions): Promise<MirrorIndexResult> {
  const root = path.resolve(options.outDir);
  const now = options.now ?? new Date();
  const validForMs = options.validForMs ?? DEFAULT_VALID_FOR_MS;
  if (!(Number.isSafeInteger(validForMs) && validForMs > 0)) {
    throw new TypeError(`Expected \`validForMs\` to be a positive integer, got \`${String(validForMs)}\``);
  }
  const key = await loadOrCreateSigningKey(options.configDir);
  const trustedKeys = await loadTrustedKeys(options.configDir);
  const store = await scanStore(path.resolve(options.storeDir), trustedKeys);
  await using _lock = await lockMirror(root, options.signal);
  const current = await readCurrentIndex(root);
  const currentSerial = current?.signed.payload.serial ?? 0;
  const serial = options.serial ?? currentSerial + 1;
  if (!(Number.isSafeInteger(serial) && serial > currentSerial)) {
    throw new PublishError(
      'E_MIRROR_INDEX_ROLLBACK',
      `serial ${serial} is not newer than the ${currentSerial} the mirror ${root} holds`,
      { serial, currentSerial },
    );
  }
  const keyBytes = Buffer.from(key.publicKeyPem);
  const indexKey = {
    fingerprint: key.fingerprint,
    url: keyUrl(key.fingerprint),
    sha256: sha256(keyBytes),
    size: keyBytes.length,
  };
  const payload = indexPayload(store, { serial, now, validForMs, keyFingerprint: key.fingerprint, indexKey });
  const signed = signIndex(payload, key);
  const result = await installIndex({
    root,
    signed,
    signedBytes: Buffer.from(serializeJson(signed)),
    fetchObject: async (object: ObjectRef) => {
      const local = store.sources.get(object.sha256);
      if (local !== undefined) return importLocalObject(root, object, local.path);
      // The index key itself when no artifact carries it.
      const staged = path.join(stagingDir(root), `${object.sha256}.${randomSuffix()}.key`);
      await mkdir(path.dirname(staged), { recursive: true });
      try {
        await writeFile(staged, keyBytes);
        await commitObject(root, object, staged, MIRROR_LAYOUT.keysDir);
      } finally {
        await rm(staged, { force: true });
      }
    },
    trustedKeys,
    graceMs: options.graceMs ?? DEFAULT_GRACE_MS,
    now,
    ...(options.signal === undefined ? {} : { signal: options.signal }),
  });
  return {
    root,
    serial,
    keyFingerprint: key.fingerprint,
    names: payload.artifacts.length,
    versions: payload.artifacts.reduce((n, a) => n + a.versions.length, 0),
    objectsAdded: result.objectsFetched,
    versionsAdded: result.versionsAdded,
    pruned: result.pruned,
    index: payload,
  };
}
