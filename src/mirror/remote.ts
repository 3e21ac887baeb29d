// Reading a mirror over HTTP: its signed index, checked against a key the user trusts, and
// its objects, each downloaded into staging (resumable) and checked for size and sha256.
// Shared by `mirror sync` and `pull`, so both apply the same checks.
import path from 'node:path';
import { mkdir, readFile } from 'node:fs/promises';
import { downloadResumable, getSmall, removePart } from '../fetch/index.js';
import { PublishError } from '../publish/errors.js';
import { parsePublicKey, loadTrustedKeys, type TrustedKey } from '../publish/trust.js';
import { keyUrl, MIRROR_LAYOUT, type MirrorIndex, type SignedMirrorIndex } from './index-types.js';
import { commitObject, objectPath, stagingDir, type ObjectRef } from './object-store.js';
import { assertIndexSignature, parseSignedIndex } from './signed-index.js';

const FULL_FINGERPRINT = /^[0-9a-f]{64}$/;

/** The base URL with one trailing slash, so relative index URLs resolve under it. */
export function mirrorBase(url: string): string {
  if (!/^https?:\/\/[^/]/.test(url)) throw new TypeError(`Expected an http(s) mirror URL, got \`${url}\``);
  return url.endsWith('/') ? url : `${url}/`;
}

export function mirrorUrl(base: string, relative: string): string {
  return new URL(relative, base).toString();
}

/**
 * The key that must have signed the index: one the user trusts (`keys list`, by fingerprint or
 * an 8+ digit prefix), or, given the full fingerprint, the mirror's keys/<fingerprint>.pub when
 * its sha256-of-SPKI equals it (the fingerprint itself came by another channel; a key that
 * merely sits beside the data is never enough).
 */
export async function resolveIndexKey(
  base: string,
  trustKey: string,
  configDir: string,
  signal?: AbortSignal,
): Promise<TrustedKey> {
  const wanted = trustKey.toLowerCase();
  const trusted = await loadTrustedKeys(configDir);
  const known = trusted.filter((key) => key.fingerprint.startsWith(wanted));
  if (known.length === 1) return known[0] as TrustedKey;
  if (!FULL_FINGERPRINT.test(wanted)) {
    throw new PublishError(
      'E_SIGNATURE_KEY_NOT_FOUND',
      `no single trusted key has fingerprint ${wanted}; give the full 64-hex fingerprint of the mirror's key or \`keys add\` it`,
      { fingerprint: wanted },
    );
  }
  const url = mirrorUrl(base, keyUrl(wanted));
  const response = await getSmall({
    url,
    maxBytes: 16 * 1024,
    ...(signal === undefined ? {} : { signal }),
  }).catch((error: unknown) => {
    if ((error as { code?: unknown }).code !== 'E_FETCH_HTTP_STATUS') throw error;
    throw new PublishError('E_MIRROR_INDEX_UNTRUSTED', `the mirror has no key ${wanted} (${url})`, {
      url,
      trustedFingerprint: wanted,
    });
  });
  if (response.status !== 200)
    throw new PublishError('E_MIRROR_INDEX_UNTRUSTED', `${url} gave no key`, { url });
  const parsed = parsePublicKey(response.bytes, url);
  if (parsed.fingerprint !== wanted) {
    throw new PublishError(
      'E_MIRROR_INDEX_UNTRUSTED',
      `${url} holds key ${parsed.fingerprint}, not the trusted ${wanted}`,
      { url, fingerprint: parsed.fingerprint, trustedFingerprint: wanted },
    );
  }
  return { ...parsed, source: 'added', file: url };
}

/**
 * The key chooser of a sync or pull given --trust-key: an index whose envelope names another key
 * is refused before anything else is fetched; otherwise the key is resolved (resolveIndexKey).
 */
export function trustedKeyChooser(
  base: string,
  trustKey: string,
  configDir: string,
  signal?: AbortSignal,
): (signed: SignedMirrorIndex) => Promise<TrustedKey> {
  const wanted = trustKey.toLowerCase();
  return async (signed) => {
    if (!signed.key_fingerprint.startsWith(wanted)) {
      throw new PublishError(
        'E_MIRROR_INDEX_UNTRUSTED',
        `the index is signed by key ${signed.key_fingerprint}, not by the trusted key ${wanted}`,
        { signingKeyFingerprint: signed.key_fingerprint, trustedFingerprint: wanted },
      );
    }
    return resolveIndexKey(base, wanted, configDir, signal);
  };
}

export interface FetchedIndex {
  readonly signed: SignedMirrorIndex;
  readonly bytes: Buffer;
  readonly etag: string | null;
  /** The key the signature verified with. */
  readonly key: TrustedKey;
}

/**
 * GET index.signed.json (conditional when `etag` is given: null on 304), parsed, then its
 * signature checked with the key `keyFor` chooses (a fixed trusted key, or the trusted key the
 * envelope names).
 */
export async function fetchSignedIndex(
  base: string,
  keyFor: (signed: SignedMirrorIndex) => Promise<TrustedKey>,
  options: { readonly etag?: string; readonly signal?: AbortSignal } = {},
): Promise<FetchedIndex | null> {
  const response = await getSmall({
    url: mirrorUrl(base, MIRROR_LAYOUT.signedIndex),
    ...(options.etag === undefined ? {} : { ifNoneMatch: options.etag }),
    ...(options.signal === undefined ? {} : { signal: options.signal }),
  });
  if (response.status === 304) return null;
  const signed = parseSignedIndex(response.bytes);
  const key = await keyFor(signed);
  assertIndexSignature(signed, key.publicKey, key.fingerprint);
  return { signed, bytes: response.bytes, etag: response.etag, key };
}

/** Downloads one object into `root`'s by-hash (resuming a part left by a killed run), checked. */
export async function fetchObjectInto(
  root: string,
  base: string,
  object: ObjectRef,
  signal?: AbortSignal,
): Promise<void> {
  const part = path.join(stagingDir(root), `${object.sha256}.part`);
  await mkdir(path.dirname(part), { recursive: true });
  const url = mirrorUrl(base, `${MIRROR_LAYOUT.byHashDir}/${object.sha256}`);
  await downloadResumable({
    url,
    partFile: part,
    expectedSize: object.size,
    ...(signal === undefined ? {} : { signal }),
  });
  try {
    await commitObject(root, object, part, url);
  } finally {
    await removePart(part);
  }
}

/**
 * The keys the version directories may be signed with: the user's trusted keys, the index key,
 * and every key the signed index lists (its by-hash object must already be in `root`).
 */
export async function artifactKeys(
  root: string,
  payload: MirrorIndex,
  indexKey: TrustedKey,
  configDir: string,
): Promise<TrustedKey[]> {
  const keys = new Map<string, TrustedKey>();
  for (const key of await loadTrustedKeys(configDir)) keys.set(key.fingerprint, key);
  keys.set(indexKey.fingerprint, indexKey);
  for (const entry of payload.keys) {
    if (keys.has(entry.fingerprint)) continue;
    const file = objectPath(root, entry.sha256);
    const parsed = parsePublicKey(await readFile(file), file);
    if (parsed.fingerprint !== entry.fingerprint) {
      throw new PublishError(
        'E_MIRROR_INDEX_INVALID',
        `index.signed.json lists key ${entry.fingerprint} with the bytes of key ${parsed.fingerprint}`,
        { fingerprint: entry.fingerprint },
      );
    }
    keys.set(parsed.fingerprint, { ...parsed, source: 'added', file });
  }
  return [...keys.values()];
}
