// Checking an artifact version directory. The order is the point: the directory may come
// from anyone, so nothing it names is read before the signature over manifest.json and
// SHA256SUMS has verified with a key the user trusts. Before that only the fixed files
// (SHA256SUMS, manifest.json, signature.json, signing-key.pub) are read, each as a regular
// file opened without following links; every entry of the directory must be a regular file.
import { lstat, readdir, readlink } from 'node:fs/promises';
import path from 'node:path';
import { sha256 } from '../core/digest.js';
import { fileKind } from '../core/file-kind.js';
import type { ErrorCode } from '../core/error-codes.js';
import { PublishError } from './errors.js';
import {
  LATEST_LINK,
  MANIFEST_FILE,
  PUBLIC_KEY_FILE,
  SIGNATURE_FILE,
  SUMS_FILE,
  UNSUMMED,
  isPlainFileName,
} from './layout.js';
import { describeFailure, readRegularFile, SafeOpenError, sha256OfRegularFile } from './safe-read.js';
import { signedMessage, verifyMessage } from './signing.js';
import { parsePublicKey, type TrustedKey } from './trust.js';

/** SHA256SUMS and signature.json of a published directory are a few hundred bytes. */
const MAX_SMALL_FILE_BYTES = 64 * 1024;
const MAX_MANIFEST_BYTES = 1024 * 1024;
const HEX_SHA256 = /^[0-9a-f]{64}$/;
/** manifest.files.<role> names the payload file of that role. */
const FILE_ROLES = ['code', 'vars', 'rom'] as const;

export interface VerifyArtifactOptions {
  /** Check against exactly this public key (PEM), e.g. `verify --key`. */
  readonly publicKeyPem?: string;
  /**
   * The keys to accept (loadTrustedKeys(configDir)). A signature that verifies only with the
   * directory's own signing-key.pub is E_SIGNATURE_UNTRUSTED, naming that key's fingerprint.
   */
  readonly trustedKeys?: readonly TrustedKey[];
}

export interface ArtifactCheck {
  readonly artifactDir: string;
  /** Files whose digests were checked (every name in SHA256SUMS). */
  readonly checkedFiles: readonly string[];
  /** name -> sha256 as listed in SHA256SUMS (and checked). */
  readonly digests: Readonly<Record<string, string>>;
  readonly signingKeyFingerprint: string;
  /**
   * Which key the signature verified with: 'own' or 'added' (a trusted key), 'given'
   * (`publicKeyPem`), or 'embedded' (the directory's own signing-key.pub, when neither
   * option was given: that proves the files are intact, not who signed them).
   */
  readonly keySource: 'own' | 'added' | 'given' | 'embedded';
  /** Files in the directory that nothing lists (not an error: a user may keep a VARS copy there). */
  readonly unlistedFiles: readonly string[];
  readonly manifest: Record<string, unknown>;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const VERSION_LIKE = /^\d{8}T\d{6}Z-[0-9a-f]{8}(\.\d+)?$/;

/**
 * A directory without SHA256SUMS that holds a `latest` link or version directories is an
 * artifact name directory (artifacts/<name>); one whose sub-directories hold `latest` links is
 * the store (artifacts/). Say which path to give instead.
 */
async function refuseNameDir(artifactDir: string, names: readonly string[]): Promise<void> {
  if (names.includes(SUMS_FILE)) return;
  const versions = names.filter((name) => VERSION_LIKE.test(name)).sort();
  const latest = names.includes(LATEST_LINK)
    ? await readlink(path.join(artifactDir, LATEST_LINK)).catch(() => null)
    : null;
  if (versions.length === 0 && latest === null) {
    const artifactNames: string[] = [];
    for (const name of names.slice().sort()) {
      const link = await lstat(path.join(artifactDir, name, LATEST_LINK)).catch(() => null);
      if (link?.isSymbolicLink() === true) artifactNames.push(name);
    }
    if (artifactNames.length === 0) return;
    const shown = artifactNames.slice(0, 5).map((name) => path.join(artifactDir, name, LATEST_LINK));
    throw new PublishError(
      'E_ARTIFACT_NOT_A_VERSION_DIR',
      `${artifactDir} is an artifact store, not one artifact version; use ${shown.join(' or ')}${artifactNames.length > 5 ? ` (${artifactNames.length} names in all)` : ''}`,
      { artifactDir, names: artifactNames },
    );
  }
  const shown = versions.slice(-5).join(', ');
  const more = versions.length > 5 ? ` (newest 5 of ${versions.length})` : '';
  const hint =
    latest !== null
      ? `use ${path.join(artifactDir, LATEST_LINK)} (-> ${latest}) or one of its versions: ${shown}${more}`
      : `use one of its versions: ${shown}${more}`;
  throw new PublishError(
    'E_ARTIFACT_NOT_A_VERSION_DIR',
    `${artifactDir} is an artifact name directory, not one version of it; ${hint}`,
    { artifactDir, latest, versions },
  );
}

/** Each entry must be a regular file, judged by lstat (a link is refused, never followed). */
async function listRegularFiles(artifactDir: string): Promise<string[]> {
  const entries = await readdir(artifactDir, { withFileTypes: true });
  await refuseNameDir(
    artifactDir,
    entries.map((entry) => entry.name),
  );
  for (const entry of entries) {
    if (!entry.isFile()) {
      throw new PublishError(
        'E_ARTIFACT_UNSAFE_ENTRY',
        `${path.join(artifactDir, entry.name)} is ${fileKind(entry)}; an artifact directory holds only regular files`,
        { artifactDir, file: entry.name },
      );
    }
  }
  return entries.map((entry) => entry.name);
}

async function readFixed(
  artifactDir: string,
  present: ReadonlySet<string>,
  file: string,
  maxSizeInBytes: number,
  missingCode: ErrorCode = 'E_ARTIFACT_FILE_MISSING',
): Promise<Buffer> {
  if (!present.has(file)) {
    throw new PublishError(missingCode, `${file} is missing from ${artifactDir}`, { file, artifactDir });
  }
  try {
    return await readRegularFile(path.join(artifactDir, file), maxSizeInBytes);
  } catch (error) {
    if (!(error instanceof SafeOpenError)) throw error;
    throw new PublishError(
      error.failure.kind === 'missing' ? missingCode : 'E_ARTIFACT_UNSAFE_ENTRY',
      `${path.join(artifactDir, file)} ${describeFailure(error.failure)}`,
      { file, artifactDir },
    );
  }
}

/** GNU coreutils format, strictly: "<64 hex> <space or *><plain name>", each name once. */
function parseSums(text: string): Map<string, string> {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const listed = new Map<string, string>();
  for (const [index, line] of lines.entries()) {
    const match = /^([0-9a-f]{64}) [ *](.*)$/.exec(line);
    const name = match?.[2];
    const fail = (why: string): PublishError =>
      new PublishError('E_ARTIFACT_SUMS_INVALID', `${SUMS_FILE} line ${index + 1} ${why}`, {
        file: SUMS_FILE,
        line: index + 1,
      });
    if (match === null || name === undefined) throw fail('is malformed');
    if (!isPlainFileName(name)) throw fail(`names \`${name}\`, which is not a plain file name`);
    if (UNSUMMED.includes(name)) throw fail(`lists ${name}, which cannot be summed`);
    if (listed.has(name)) throw fail(`lists ${name} a second time`);
    listed.set(name, match[1] as string);
  }
  if (!listed.has(MANIFEST_FILE)) {
    throw new PublishError('E_ARTIFACT_MANIFEST_INVALID', `${SUMS_FILE} does not list ${MANIFEST_FILE}`, {
      file: SUMS_FILE,
    });
  }
  return listed;
}

function parseSignature(bytes: Buffer): { signature: string; claimedFingerprint: string | null } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new PublishError('E_SIGNATURE_INVALID', `${SIGNATURE_FILE} is not JSON`, { file: SIGNATURE_FILE });
  }
  if (
    !isPlainObject(parsed) ||
    parsed['algorithm'] !== 'ed25519' ||
    typeof parsed['signature'] !== 'string' ||
    !(parsed['publicKeyFingerprint'] === undefined || typeof parsed['publicKeyFingerprint'] === 'string')
  ) {
    throw new PublishError(
      'E_SIGNATURE_INVALID',
      `${SIGNATURE_FILE} is not an ovmf-build signature (an object with "algorithm": "ed25519" and a base64 "signature")`,
      { file: SIGNATURE_FILE },
    );
  }
  const claimed = parsed['publicKeyFingerprint'];
  return {
    signature: parsed['signature'],
    claimedFingerprint: typeof claimed === 'string' && HEX_SHA256.test(claimed) ? claimed : null,
  };
}

function manifestError(message: string): PublishError {
  return new PublishError('E_ARTIFACT_MANIFEST_INVALID', `${MANIFEST_FILE} ${message}`, {
    file: MANIFEST_FILE,
  });
}

/** The manifest's shape where verify and findPublished rely on it; its digests must agree with SHA256SUMS. */
function parseManifest(bytes: Buffer, listed: ReadonlyMap<string, string>): Record<string, unknown> {
  let manifest: unknown;
  try {
    manifest = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw manifestError('is not JSON');
  }
  if (!isPlainObject(manifest)) throw manifestError('is not a JSON object');
  const files = manifest['files'];
  const digests = isPlainObject(files) ? files['digests'] : undefined;
  if (!isPlainObject(files) || !isPlainObject(digests)) throw manifestError('has no files.digests object');
  const names = Object.keys(digests);
  if (names.length === 0) throw manifestError('lists no files in files.digests');
  for (const name of names) {
    const record = digests[name];
    if (!isPlainFileName(name)) throw manifestError(`names \`${name}\`, which is not a plain file name`);
    if (
      !isPlainObject(record) ||
      typeof record['sha256'] !== 'string' ||
      !HEX_SHA256.test(record['sha256'])
    ) {
      throw manifestError(`has no sha256 for ${name}`);
    }
    const summed = listed.get(name);
    if (summed === undefined) throw manifestError(`lists ${name}, which ${SUMS_FILE} does not`);
    if (summed !== record['sha256']) {
      throw new PublishError(
        'E_ARTIFACT_DIGEST_MISMATCH',
        `${name}: ${MANIFEST_FILE} says ${record['sha256']}, ${SUMS_FILE} says ${summed}`,
        { file: name, expected: record['sha256'], actual: summed },
      );
    }
  }
  for (const role of FILE_ROLES) {
    const name = files[role];
    if (name !== undefined && !(isPlainFileName(name) && names.includes(name))) {
      throw manifestError(`files.${role} is not one of the files in files.digests`);
    }
  }
  return manifest;
}

function signatureMessageFor(fingerprint: string, source: string): string {
  return `the signature in ${SIGNATURE_FILE} over ${MANIFEST_FILE} and ${SUMS_FILE} does not verify with ${source} ${fingerprint.slice(0, 16)}..`;
}

/**
 * Checks an artifact version directory: its entries (regular files only), the ed25519
 * signature over manifest.json and SHA256SUMS, then every digest. By default the key is the
 * directory's own signing-key.pub, which proves integrity only; give `trustedKeys` (what the
 * CLI does) or `publicKeyPem` to check who signed it. Throws PublishError naming the file.
 */
export async function verifyArtifact(
  dir: string,
  options: VerifyArtifactOptions = {},
): Promise<ArtifactCheck> {
  const artifactDir = path.resolve(dir);
  let stats;
  try {
    stats = await lstat(artifactDir);
  } catch (error) {
    throw new PublishError(
      'E_ARTIFACT_DIR_NOT_FOUND',
      `${artifactDir} does not exist (${(error as NodeJS.ErrnoException).code ?? 'unreadable'}); give an artifact version directory such as artifacts/<name>/latest`,
      { artifactDir },
    );
  }
  if (!stats.isDirectory()) {
    throw new PublishError(
      'E_ARTIFACT_NOT_A_VERSION_DIR',
      `${artifactDir} is ${stats.isFile() ? 'a file' : fileKind(stats)}, not an artifact directory; give a directory such as artifacts/<name>/latest`,
      { artifactDir },
    );
  }
  const names = await listRegularFiles(artifactDir);
  const present = new Set(names);
  const sums = await readFixed(artifactDir, present, SUMS_FILE, MAX_SMALL_FILE_BYTES);
  const listed = parseSums(sums.toString('utf8'));
  const manifestBytes = await readFixed(artifactDir, present, MANIFEST_FILE, MAX_MANIFEST_BYTES);
  const manifestDigest = sha256(manifestBytes);
  if (manifestDigest !== listed.get(MANIFEST_FILE)) {
    throw new PublishError(
      'E_ARTIFACT_DIGEST_MISMATCH',
      `${MANIFEST_FILE}: sha256 is ${manifestDigest}, ${SUMS_FILE} says ${String(listed.get(MANIFEST_FILE))}`,
      { file: MANIFEST_FILE, expected: listed.get(MANIFEST_FILE), actual: manifestDigest },
    );
  }
  const signature = parseSignature(
    await readFixed(artifactDir, present, SIGNATURE_FILE, MAX_SMALL_FILE_BYTES, 'E_SIGNATURE_MISSING'),
  );
  const message = signedMessage(manifestDigest, sha256(sums));
  const embedded = async (): Promise<ReturnType<typeof parsePublicKey>> => {
    const bytes = await readFixed(artifactDir, present, PUBLIC_KEY_FILE, MAX_SMALL_FILE_BYTES);
    try {
      return parsePublicKey(bytes, PUBLIC_KEY_FILE);
    } catch {
      throw new PublishError('E_SIGNATURE_INVALID', `${PUBLIC_KEY_FILE} is not an ed25519 PEM public key`, {
        file: PUBLIC_KEY_FILE,
      });
    }
  };
  let signer: { fingerprint: string; keySource: ArtifactCheck['keySource'] };
  if (options.publicKeyPem !== undefined) {
    let given;
    try {
      given = parsePublicKey(options.publicKeyPem, '--key');
    } catch {
      throw new PublishError('E_SIGNATURE_INVALID', 'the public key is not an ed25519 PEM public key', {
        file: '--key',
      });
    }
    if (!verifyMessage(given.publicKey, message, signature.signature)) {
      throw new PublishError('E_SIGNATURE_INVALID', signatureMessageFor(given.fingerprint, 'the given key'), {
        file: SIGNATURE_FILE,
        signingKeyFingerprint: given.fingerprint,
      });
    }
    signer = { fingerprint: given.fingerprint, keySource: 'given' };
  } else if (options.trustedKeys !== undefined) {
    const trusted = options.trustedKeys.find((key) =>
      verifyMessage(key.publicKey, message, signature.signature),
    );
    if (trusted !== undefined) {
      signer = { fingerprint: trusted.fingerprint, keySource: trusted.source };
    } else {
      const own = present.has(PUBLIC_KEY_FILE) ? await embedded().catch(() => null) : null;
      if (own !== null && verifyMessage(own.publicKey, message, signature.signature)) {
        throw new PublishError(
          'E_SIGNATURE_UNTRUSTED',
          `${artifactDir} is signed by key ${own.fingerprint}, which you do not trust. ` +
            'If you expect this signer, compare that fingerprint with the one they gave you by another channel, then run: ' +
            `ovmf-build keys add ${path.join(artifactDir, PUBLIC_KEY_FILE)}`,
          { file: SIGNATURE_FILE, signingKeyFingerprint: own.fingerprint, artifactDir },
        );
      }
      throw new PublishError(
        'E_SIGNATURE_INVALID',
        `the signature in ${SIGNATURE_FILE} over ${MANIFEST_FILE} and ${SUMS_FILE} does not verify with any trusted key (${options.trustedKeys.length} trusted)`,
        { file: SIGNATURE_FILE, claimedFingerprint: signature.claimedFingerprint },
      );
    }
  } else {
    const own = await embedded();
    if (!verifyMessage(own.publicKey, message, signature.signature)) {
      throw new PublishError('E_SIGNATURE_INVALID', signatureMessageFor(own.fingerprint, 'key'), {
        file: SIGNATURE_FILE,
        signingKeyFingerprint: own.fingerprint,
      });
    }
    signer = { fingerprint: own.fingerprint, keySource: 'embedded' };
  }
  // Signed from here on: the names below come from files a trusted key vouched for.
  const manifest = parseManifest(manifestBytes, listed);
  for (const [file, expected] of listed) {
    if (file === MANIFEST_FILE) continue;
    if (!present.has(file)) {
      throw new PublishError('E_ARTIFACT_FILE_MISSING', `${file} is missing from ${artifactDir}`, {
        file,
        artifactDir,
      });
    }
    let digest: string;
    try {
      digest = await sha256OfRegularFile(path.join(artifactDir, file));
    } catch (error) {
      if (!(error instanceof SafeOpenError)) throw error;
      throw new PublishError(
        error.failure.kind === 'missing' ? 'E_ARTIFACT_FILE_MISSING' : 'E_ARTIFACT_UNSAFE_ENTRY',
        `${path.join(artifactDir, file)} ${describeFailure(error.failure)}`,
        { file, artifactDir },
      );
    }
    if (digest !== expected) {
      throw new PublishError(
        'E_ARTIFACT_DIGEST_MISMATCH',
        `${file}: sha256 is ${digest}, ${SUMS_FILE} says ${expected}`,
        {
          file,
          expected,
          actual: digest,
        },
      );
    }
  }
  return {
    artifactDir,
    checkedFiles: [...listed.keys()].sort(),
    digests: Object.fromEntries([...listed].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
    signingKeyFingerprint: signer.fingerprint,
    keySource: signer.keySource,
    unlistedFiles: names.filter((file) => !listed.has(file) && !UNSUMMED.includes(file)).sort(),
    manifest,
  };
}
