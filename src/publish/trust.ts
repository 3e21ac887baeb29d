// Which keys this user trusts to sign artifacts: their own signing key, plus public keys they
// added with `ovmf-build keys add`, one `<fingerprint>.pub` each in <config dir>/trusted-keys/.
// A key shipped inside an artifact directory is never trusted for being there: anyone who can
// write the directory can re-sign it with a key of their own.
import { createPublicKey, type KeyObject } from 'node:crypto';
import { mkdir, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { UsageError } from '../core/errors.js';
import { writeFileAtomic } from '../core/durable-fs.js';
import type { ErrorCode } from '../core/error-codes.js';
import { PublishError } from './errors.js';
import { describeFailure, readRegularFile, SafeOpenError } from './safe-read.js';
import { loadSigningKey, publicKeyFingerprint } from './signing.js';

export const TRUSTED_KEYS_DIR = 'trusted-keys';
/** An ed25519 public key PEM is 113 bytes; anything far bigger is not one. */
export const MAX_PUBLIC_KEY_FILE_BYTES = 16 * 1024;
const FINGERPRINT = /^[0-9a-f]{64}$/;

export interface TrustedKey {
  /** sha256 of the SubjectPublicKeyInfo DER, hex. */
  readonly fingerprint: string;
  readonly publicKey: KeyObject;
  readonly publicKeyPem: string;
  /** 'own': this user's signing key; 'added': added with `keys add`. */
  readonly source: 'own' | 'added';
  readonly file: string;
}

function keyError(code: ErrorCode, message: string, file: string): PublishError {
  return new PublishError(code, message, { file });
}

/** Parses an ed25519 public key PEM; anything else (a private key too) is E_SIGNATURE_KEY_INVALID. */
export function parsePublicKey(
  pem: string | Uint8Array,
  file: string,
): { publicKey: KeyObject; publicKeyPem: string; fingerprint: string } {
  const text = typeof pem === 'string' ? pem : Buffer.from(pem).toString('utf8');
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) {
    throw keyError(
      'E_SIGNATURE_KEY_INVALID',
      `${file} holds a private key; give the public half (an artifact's signing-key.pub)`,
      file,
    );
  }
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: text, format: 'pem' });
  } catch {
    throw keyError('E_SIGNATURE_KEY_INVALID', `${file} is not a PEM public key`, file);
  }
  if (publicKey.asymmetricKeyType !== 'ed25519') {
    throw keyError(
      'E_SIGNATURE_KEY_INVALID',
      `${file} holds a ${String(publicKey.asymmetricKeyType)} key; artifacts are signed with ed25519`,
      file,
    );
  }
  return {
    publicKey,
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    fingerprint: publicKeyFingerprint(publicKey),
  };
}

function trustedDir(configDir: string): string {
  return path.join(configDir, TRUSTED_KEYS_DIR);
}

/** The keys added with `keys add`, in fingerprint order. A file whose key does not match its name is refused. */
export async function loadAddedKeys(configDir: string): Promise<TrustedKey[]> {
  const dir = trustedDir(configDir);
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw keyError('E_SIGNATURE_KEY_STORE', `cannot read ${dir}: ${(error as Error).message}`, dir);
  }
  const keys: TrustedKey[] = [];
  for (const entry of entries.sort()) {
    const match = /^([0-9a-f]{64})\.pub$/.exec(entry);
    if (match === null) continue;
    const file = path.join(dir, entry);
    let bytes: Buffer;
    try {
      bytes = await readRegularFile(file, MAX_PUBLIC_KEY_FILE_BYTES);
    } catch (error) {
      if (!(error instanceof SafeOpenError)) throw error;
      throw keyError(
        'E_SIGNATURE_KEY_STORE',
        `trusted key ${file} ${describeFailure(error.failure)}; remove it`,
        file,
      );
    }
    const parsed = parsePublicKey(bytes, file);
    if (parsed.fingerprint !== match[1]) {
      throw keyError(
        'E_SIGNATURE_KEY_STORE',
        `trusted key ${file} holds key ${parsed.fingerprint}, not the one its name says; remove it and add the key again`,
        file,
      );
    }
    keys.push({ ...parsed, source: 'added', file });
  }
  return keys;
}

/** This user's own signing key (when it exists) followed by the added keys. */
export async function loadTrustedKeys(configDir: string): Promise<TrustedKey[]> {
  const own = await loadSigningKey(configDir);
  const added = await loadAddedKeys(configDir);
  if (own === null) return added;
  return [
    {
      fingerprint: own.fingerprint,
      publicKey: own.publicKey,
      publicKeyPem: own.publicKeyPem,
      source: 'own',
      file: own.path,
    },
    ...added.filter((key) => key.fingerprint !== own.fingerprint),
  ];
}

/** Trusts a public key from now on. Adding a key already trusted (or the user's own) changes nothing. */
export async function addTrustedKey(
  configDir: string,
  pem: string | Uint8Array,
  /** Where the key came from, for messages. */
  source: string,
): Promise<{ readonly key: TrustedKey; readonly added: boolean }> {
  const parsed = parsePublicKey(pem, source);
  const current = (await loadTrustedKeys(configDir)).find((key) => key.fingerprint === parsed.fingerprint);
  if (current !== undefined) return { key: current, added: false };
  const dir = trustedDir(configDir);
  const file = path.join(dir, `${parsed.fingerprint}.pub`);
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await writeFileAtomic(file, parsed.publicKeyPem, 0o644);
  } catch (error) {
    throw keyError(
      'E_SIGNATURE_KEY_STORE',
      `cannot write ${file}: ${(error as Error).message}; make ${configDir} a writable directory or point XDG_CONFIG_HOME elsewhere`,
      file,
    );
  }
  return { key: { ...parsed, source: 'added', file }, added: true };
}

/**
 * Stops trusting an added key, named by its fingerprint or an unambiguous prefix of at least
 * 8 hex digits. The user's own key cannot be removed this way.
 */
export async function removeTrustedKey(configDir: string, fingerprint: string): Promise<TrustedKey> {
  const wanted = fingerprint.toLowerCase();
  if (!/^[0-9a-f]{8,64}$/.test(wanted)) {
    throw new UsageError(
      `expected a key fingerprint (8 to 64 hex digits, see \`ovmf-build keys list\`), got \`${fingerprint}\``,
    );
  }
  const all = await loadTrustedKeys(configDir);
  const matches = all.filter((key) => key.fingerprint.startsWith(wanted));
  const own = matches.find((key) => key.source === 'own');
  if (own !== undefined && (matches.length === 1 || FINGERPRINT.test(wanted))) {
    throw new UsageError(
      `${own.fingerprint} is your own signing key (${own.file}); it is always trusted and cannot be removed`,
    );
  }
  const added = matches.filter((key) => key.source === 'added');
  if (added.length === 0) {
    throw new PublishError(
      'E_SIGNATURE_KEY_NOT_FOUND',
      `no trusted key has fingerprint ${wanted}; \`ovmf-build keys list\` shows them`,
      { fingerprint: wanted },
    );
  }
  if (added.length > 1) {
    throw new UsageError(
      `${wanted} matches ${added.length} trusted keys (${added.map((key) => key.fingerprint.slice(0, 16)).join(', ')}); give more digits`,
    );
  }
  const [key] = added as [TrustedKey];
  try {
    await rm(key.file);
  } catch (error) {
    throw keyError(
      'E_SIGNATURE_KEY_STORE',
      `cannot remove ${key.file}: ${(error as Error).message}`,
      key.file,
    );
  }
  return key;
}
