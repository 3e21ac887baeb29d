// ed25519 signing key of this user (RFC 8032 via node:crypto). Created on first use in the
// user's config dir with mode 0600; its public half is copied into every artifact dir.
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';
import { chmod, link, mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { randomSuffix, writeFileAtomic, writeFileSynced } from '../core/durable-fs.js';
import { PublishError } from './errors.js';

export const SIGNING_KEY_FILE = 'signing-key.pem';

export interface SigningKey {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  readonly publicKeyPem: string;
  /** sha256 of the SubjectPublicKeyInfo DER, hex. */
  readonly fingerprint: string;
  readonly path: string;
  /** True when this call created the key. */
  readonly created: boolean;
}

export function publicKeyFingerprint(publicKey: KeyObject): string {
  return createHash('sha256')
    .update(publicKey.export({ type: 'spki', format: 'der' }))
    .digest('hex');
}

function fromPrivatePem(pem: string, file: string, created: boolean): SigningKey {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(pem);
  } catch (error) {
    throw new PublishError(
      'E_SIGNATURE_KEY',
      `${file} is not a PEM private key: ${(error as Error).message}`,
      {
        file,
      },
    );
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new PublishError(
      'E_SIGNATURE_KEY',
      `${file} holds a ${String(privateKey.asymmetricKeyType)} key, not ed25519`,
      {
        file,
      },
    );
  }
  const publicKey = createPublicKey(privateKey);
  return {
    privateKey,
    publicKey,
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    fingerprint: publicKeyFingerprint(publicKey),
    path: file,
    created,
  };
}

/** The public half, written beside the private key so jobs and `keys list` need not parse the private key. */
export const SIGNING_PUBLIC_KEY_FILE = 'signing-key.pub';

function keyStoreError(configDir: string, file: string, error: unknown, doing: string): PublishError {
  const cause = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
  return new PublishError(
    'E_SIGNATURE_KEY_UNAVAILABLE',
    `cannot ${doing} the signing key ${file}: ${(error as Error).message}; make ${configDir} a writable directory or point XDG_CONFIG_HOME elsewhere`,
    { file, configDir, cause },
  );
}

/** Loads `<configDir>/signing-key.pem`, or null when this user has no key yet. */
export async function loadSigningKey(configDir: string): Promise<SigningKey | null> {
  const file = path.join(configDir, SIGNING_KEY_FILE);
  let pem: string;
  try {
    pem = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    // ENOTDIR: a path component is a file, so there is no key there either; creating one will say why.
    if ((error as NodeJS.ErrnoException).code === 'ENOTDIR') return null;
    throw keyStoreError(configDir, file, error, 'read');
  }
  return fromPrivatePem(pem, file, false);
}

async function writePublicHalf(configDir: string, key: SigningKey): Promise<void> {
  const file = path.join(configDir, SIGNING_PUBLIC_KEY_FILE);
  const current = await readFile(file, 'utf8').catch(() => null);
  if (current === key.publicKeyPem) return;
  await writeFileAtomic(file, key.publicKeyPem, 0o644);
}

/**
 * Loads `<configDir>/signing-key.pem`, creating it on first use. Creation is race-free:
 * the key is written to a temp file and hard-linked to the final name (link(2) fails if
 * another process won), so concurrent first runs agree on one key. The public half is kept
 * in `signing-key.pub` beside it. A config directory that cannot be created or written is
 * E_SIGNATURE_KEY_UNAVAILABLE.
 */
export async function loadOrCreateSigningKey(configDir: string): Promise<SigningKey> {
  const existing = await loadSigningKey(configDir);
  if (existing !== null) {
    // Best effort for keys made before the public half was kept: a read-only config still signs.
    await writePublicHalf(configDir, existing).catch(() => undefined);
    return existing;
  }
  const file = path.join(configDir, SIGNING_KEY_FILE);
  const { privateKey } = generateKeyPairSync('ed25519');
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const tmp = path.join(configDir, `.${SIGNING_KEY_FILE}.${randomSuffix()}`);
  let key: SigningKey;
  try {
    await mkdir(configDir, { recursive: true, mode: 0o700 });
    await writeFileSynced(tmp, pem, 0o600);
    await chmod(tmp, 0o600);
    try {
      await link(tmp, file);
      key = fromPrivatePem(pem, file, true);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      key = fromPrivatePem(await readFile(file, 'utf8'), file, false);
    }
    await writePublicHalf(configDir, key);
  } catch (error) {
    if (error instanceof PublishError) throw error;
    throw keyStoreError(configDir, file, error, 'create');
  } finally {
    await rm(tmp, { force: true }).catch(() => undefined);
  }
  return key;
}

/** The exact bytes that are signed: a domain-separation line and the digests of the two signed files. */
export function signedMessage(manifestSha256: string, sumsSha256: string): Buffer {
  return Buffer.from(
    `ovmf-build artifact signature v1\nmanifest.json ${manifestSha256}\nSHA256SUMS ${sumsSha256}\n`,
  );
}

export function signMessage(key: SigningKey, message: Uint8Array): string {
  return sign(null, message, key.privateKey).toString('base64');
}

export function verifyMessage(publicKey: KeyObject, message: Uint8Array, signatureBase64: string): boolean {
  try {
    return verify(null, message, publicKey, Buffer.from(signatureBase64, 'base64'));
  } catch {
    return false;
  }
}
