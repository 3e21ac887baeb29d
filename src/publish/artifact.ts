// Versioned, checksummed, signed artifact directories: artifacts/<name>/<version>/. The whole
// directory is built under artifacts/<name>/.tmp-<pid>-<random>/, fsynced, renamed into
// place in one step, and only then is artifacts/<name>/latest repointed (symlink swapped
// by rename), so a reader never sees half an artifact.
import { createPublicKey, type KeyObject } from 'node:crypto';
import { mkdir, readdir, readFile, readlink, rename, rm, symlink } from 'node:fs/promises';
import path from 'node:path';
import { sha256 } from '../core/digest.js';
import { fsyncDir, randomSuffix, writeFileSynced } from '../fetch/durable-fs.js';
import { PublishError } from './errors.js';
import { artifactVersion, assertArtifactName } from './naming.js';
import {
  loadOrCreateSigningKey,
  publicKeyFingerprint,
  signedMessage,
  signMessage,
  verifyMessage,
} from './signing.js';
import {
  firmwareDescriptor,
  proxmoxSnippet,
  qemuCommandLine,
  type FirmwareFacts,
  type MachineType,
} from './snippets.js';

export const CODE_FILE = 'OVMF_CODE.fd';
export const VARS_FILE = 'OVMF_VARS.fd';
export const DEFAULT_ROM_FILE = 'igd.rom';
export const MANIFEST_FILE = 'manifest.json';
export const SUMS_FILE = 'SHA256SUMS';
export const SIGNATURE_FILE = 'signature.json';
export const PUBLIC_KEY_FILE = 'signing-key.pub';
export const PROXMOX_FILE = 'proxmox.conf';
export const QEMU_FILE = 'qemu.sh';
export const LATEST_LINK = 'latest';
const TEMP_PREFIX = '.tmp-';
/** Files that cannot be listed in SHA256SUMS (they are made from it). */
const UNSUMMED: readonly string[] = [SUMS_FILE, SIGNATURE_FILE, PUBLIC_KEY_FILE];

export interface PublishOptions {
  readonly name: string;
  /** The full cache key value; its first 8 hex digits end the version. */
  readonly keyValue: string;
  readonly files: { readonly code: Uint8Array; readonly vars: Uint8Array; readonly rom: Uint8Array };
  /** @default 'igd.rom' */
  readonly romFileName?: string;
  /** Inputs, build facts, key details...; publish adds `artifact` and `files`. */
  readonly manifest: Readonly<Record<string, unknown>>;
  /** The artifact store, e.g. ./artifacts. */
  readonly storeDir: string;
  /** Where the signing key lives (userConfigDir(env)). */
  readonly configDir: string;
  readonly machine: MachineType;
  readonly target: 'DEBUG' | 'RELEASE';
  readonly secureBoot: boolean;
  readonly description?: string;
  /** The clock, passed in for tests. @default new Date() */
  readonly now?: Date;
}

export interface PublishedArtifact {
  readonly name: string;
  readonly version: string;
  readonly artifactDir: string;
  readonly files: { readonly code: string; readonly vars: string; readonly rom: string };
  readonly descriptorFile: string;
  readonly signingKeyFingerprint: string;
  /** True when an existing, verified directory for the same key was reused instead of writing a new one. */
  readonly reused: boolean;
}

/** `60-ovmf-build-<name>.json`: ready to drop into /etc/qemu/firmware (firmware.json: NN- prefix sorts). */
export function descriptorFileName(name: string): string {
  return `60-ovmf-build-${name}.json`;
}

function sumsText(entries: ReadonlyMap<string, Uint8Array>): string {
  // GNU coreutils format: "<hex>  <name>" (two spaces: text mode), accepted by `sha256sum -c`.
  return [...entries.keys()]
    .sort()
    .map((name) => `${sha256(entries.get(name) as Uint8Array)}  ${name}\n`)
    .join('');
}

async function removeAbandonedTemps(nameDir: string): Promise<void> {
  for (const entry of await readdir(nameDir).catch(() => [] as string[])) {
    if (!entry.startsWith(TEMP_PREFIX)) continue;
    const pid = Number(entry.slice(TEMP_PREFIX.length).split('-')[0]);
    let alive: boolean;
    try {
      process.kill(pid, 0);
      alive = true;
    } catch (error) {
      alive = (error as NodeJS.ErrnoException).code === 'EPERM';
    }
    if (!alive) await rm(path.join(nameDir, entry), { recursive: true, force: true });
  }
}

/** Publishes a new version directory atomically and repoints `latest`. */
export async function publishArtifact(options: PublishOptions): Promise<PublishedArtifact> {
  assertArtifactName(options.name);
  const romFileName = options.romFileName ?? DEFAULT_ROM_FILE;
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(romFileName)) {
    throw new TypeError(`Expected \`romFileName\` to be a plain file name, got \`${romFileName}\``);
  }
  const now = options.now ?? new Date();
  const storeDir = path.resolve(options.storeDir);
  const nameDir = path.join(storeDir, options.name);
  await mkdir(nameDir, { recursive: true });
  await removeAbandonedTemps(nameDir);
  const taken = new Set(await readdir(nameDir));
  const baseVersion = artifactVersion(now, options.keyValue);
  let version = baseVersion;
  for (let n = 2; taken.has(version); n += 1) version = `${baseVersion}.${n}`;
  const finalDir = path.join(nameDir, version);
  const tmp = path.join(nameDir, `${TEMP_PREFIX}${process.pid}-${randomSuffix()}`);
  const key = await loadOrCreateSigningKey(options.configDir);
  const facts: FirmwareFacts = {
    machine: options.machine,
    target: options.target,
    secureBoot: options.secureBoot,
    codePath: path.join(finalDir, CODE_FILE),
    varsPath: path.join(finalDir, VARS_FILE),
    romPath: path.join(finalDir, romFileName),
    romFileName,
    description:
      options.description ?? `OVMF with Intel GOP and VBT (${options.name} ${version}, ${options.machine})`,
    tags: [`ovmf-build:${options.name}`, `version:${version}`, `cache-key:${options.keyValue}`],
  };
  const payload = new Map<string, Uint8Array>([
    [CODE_FILE, options.files.code],
    [VARS_FILE, options.files.vars],
    [romFileName, options.files.rom],
  ]);
  const fileRecords = Object.fromEntries(
    [...payload].map(([file, bytes]) => [file, { sha256: sha256(bytes), sizeInBytes: bytes.length }]),
  );
  const manifest = {
    ...options.manifest,
    artifact: {
      name: options.name,
      version,
      createdAt: now.toISOString(),
      machine: options.machine,
      signingKeyFingerprint: key.fingerprint,
    },
    files: { code: CODE_FILE, vars: VARS_FILE, rom: romFileName, digests: fileRecords },
  };
  const encoder = new TextEncoder();
  payload.set(MANIFEST_FILE, encoder.encode(`${JSON.stringify(manifest, null, 2)}\n`));
  payload.set(
    descriptorFileName(options.name),
    encoder.encode(`${JSON.stringify(firmwareDescriptor(facts), null, 2)}\n`),
  );
  payload.set(PROXMOX_FILE, encoder.encode(proxmoxSnippet(facts, options.name)));
  payload.set(QEMU_FILE, encoder.encode(qemuCommandLine(facts)));
  const sums = encoder.encode(sumsText(payload));
  const signature = {
    algorithm: 'ed25519',
    publicKeyFingerprint: key.fingerprint,
    signedFiles: [MANIFEST_FILE, SUMS_FILE],
    message: 'ovmf-build artifact signature v1',
    signature: signMessage(
      key,
      signedMessage(sha256(payload.get(MANIFEST_FILE) as Uint8Array), sha256(sums)),
    ),
  };
  await mkdir(tmp);
  try {
    for (const [file, bytes] of payload) {
      await writeFileSynced(path.join(tmp, file), bytes, file === QEMU_FILE ? 0o755 : 0o644);
    }
    await writeFileSynced(path.join(tmp, SUMS_FILE), sums);
    await writeFileSynced(path.join(tmp, SIGNATURE_FILE), `${JSON.stringify(signature, null, 2)}\n`);
    await writeFileSynced(path.join(tmp, PUBLIC_KEY_FILE), key.publicKeyPem);
    await fsyncDir(tmp);
    await rename(tmp, finalDir);
    await fsyncDir(nameDir);
  } catch (error) {
    await rm(tmp, { recursive: true, force: true });
    throw new PublishError('E_PUBLISH_FAILED', `cannot publish ${finalDir}: ${(error as Error).message}`, {
      artifactDir: finalDir,
    });
  }
  await pointLatest(nameDir, version);
  return {
    name: options.name,
    version,
    artifactDir: finalDir,
    files: { code: facts.codePath, vars: facts.varsPath, rom: facts.romPath },
    descriptorFile: path.join(finalDir, descriptorFileName(options.name)),
    signingKeyFingerprint: key.fingerprint,
    reused: false,
  };
}

/** Swaps `<nameDir>/latest` to point at `version` (a new symlink renamed over the old one: atomic). */
export async function pointLatest(nameDir: string, version: string): Promise<void> {
  const tmp = path.join(nameDir, `.latest-${randomSuffix()}`);
  await symlink(version, tmp);
  try {
    await rename(tmp, path.join(nameDir, LATEST_LINK));
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
  await fsyncDir(nameDir);
}

export async function readLatest(nameDir: string): Promise<string | null> {
  return readlink(path.join(nameDir, LATEST_LINK)).catch(() => null);
}

export interface ArtifactCheck {
  readonly artifactDir: string;
  /** Files whose digests were checked (SHA256SUMS and manifest.json). */
  readonly checkedFiles: readonly string[];
  readonly signingKeyFingerprint: string;
  /** Files in the directory that nothing lists (not an error: a user may keep a VARS copy there). */
  readonly unlistedFiles: readonly string[];
  readonly manifest: Record<string, unknown>;
}

async function readRequired(dir: string, file: string): Promise<Buffer> {
  try {
    return await readFile(path.join(dir, file));
  } catch {
    throw new PublishError('E_ARTIFACT_FILE_MISSING', `${file} is missing from ${dir}`, {
      file,
      artifactDir: dir,
    });
  }
}

/**
 * Checks an artifact directory: every digest in SHA256SUMS and in manifest.json, then the
 * ed25519 signature over manifest.json and SHA256SUMS with the given public key (default:
 * the signing-key.pub in the directory). Throws PublishError naming the file.
 */
export async function verifyArtifact(
  dir: string,
  options: { readonly publicKeyPem?: string } = {},
): Promise<ArtifactCheck> {
  const artifactDir = path.resolve(dir);
  const sums = await readRequired(artifactDir, SUMS_FILE);
  const listed = new Map<string, string>();
  for (const [index, line] of sums.toString('utf8').split('\n').entries()) {
    if (line === '') continue;
    const match = /^([0-9a-f]{64}) [ *]([A-Za-z0-9][A-Za-z0-9._-]{0,127})$/.exec(line);
    if (match === null || UNSUMMED.includes(match[2] as string)) {
      throw new PublishError('E_ARTIFACT_DIGEST_MISMATCH', `${SUMS_FILE} line ${index + 1} is malformed`, {
        file: SUMS_FILE,
        line: index + 1,
      });
    }
    listed.set(match[2] as string, match[1] as string);
  }
  const actual = new Map<string, string>();
  for (const [file, expected] of listed) {
    const digest = sha256(await readRequired(artifactDir, file));
    actual.set(file, digest);
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
  const manifestBytes = await readRequired(artifactDir, MANIFEST_FILE);
  if (!listed.has(MANIFEST_FILE)) {
    throw new PublishError('E_ARTIFACT_MANIFEST_INVALID', `${SUMS_FILE} does not list ${MANIFEST_FILE}`, {
      file: SUMS_FILE,
    });
  }
  let manifest: Record<string, unknown>;
  try {
    manifest = JSON.parse(manifestBytes.toString('utf8')) as Record<string, unknown>;
  } catch {
    throw new PublishError('E_ARTIFACT_MANIFEST_INVALID', `${MANIFEST_FILE} is not JSON`, {
      file: MANIFEST_FILE,
    });
  }
  const digests = (manifest['files'] as { digests?: Record<string, { sha256?: unknown }> } | undefined)
    ?.digests;
  if (digests === undefined || typeof digests !== 'object') {
    throw new PublishError('E_ARTIFACT_MANIFEST_INVALID', `${MANIFEST_FILE} has no files.digests`, {
      file: MANIFEST_FILE,
    });
  }
  for (const [file, record] of Object.entries(digests)) {
    const digest = actual.get(file) ?? sha256(await readRequired(artifactDir, file));
    if (digest !== record.sha256) {
      throw new PublishError(
        'E_ARTIFACT_DIGEST_MISMATCH',
        `${file}: sha256 is ${digest}, ${MANIFEST_FILE} says ${String(record.sha256)}`,
        { file, expected: record.sha256, actual: digest },
      );
    }
  }
  const signatureText = await readRequired(artifactDir, SIGNATURE_FILE).catch((error: unknown) => {
    throw new PublishError('E_SIGNATURE_MISSING', `${SIGNATURE_FILE} is missing from ${artifactDir}`, {
      file: SIGNATURE_FILE,
      cause: String(error),
    });
  });
  let signature: { algorithm?: unknown; signature?: unknown };
  try {
    signature = JSON.parse(signatureText.toString('utf8')) as typeof signature;
  } catch {
    throw new PublishError('E_SIGNATURE_INVALID', `${SIGNATURE_FILE} is not JSON`, { file: SIGNATURE_FILE });
  }
  let publicKey: KeyObject;
  const pem = options.publicKeyPem ?? (await readRequired(artifactDir, PUBLIC_KEY_FILE)).toString('utf8');
  try {
    publicKey = createPublicKey(pem);
  } catch {
    throw new PublishError('E_SIGNATURE_INVALID', 'the public key is not a PEM public key', {
      file: options.publicKeyPem === undefined ? PUBLIC_KEY_FILE : '--key',
    });
  }
  const fingerprint = publicKeyFingerprint(publicKey);
  const message = signedMessage(sha256(manifestBytes), sha256(sums));
  if (
    signature.algorithm !== 'ed25519' ||
    typeof signature.signature !== 'string' ||
    publicKey.asymmetricKeyType !== 'ed25519' ||
    !verifyMessage(publicKey, message, signature.signature)
  ) {
    throw new PublishError(
      'E_SIGNATURE_INVALID',
      `the signature in ${SIGNATURE_FILE} over ${MANIFEST_FILE} and ${SUMS_FILE} does not verify with key ${fingerprint.slice(0, 16)}..`,
      { file: SIGNATURE_FILE, signingKeyFingerprint: fingerprint },
    );
  }
  const present = await readdir(artifactDir);
  return {
    artifactDir,
    checkedFiles: [...listed.keys()].sort(),
    signingKeyFingerprint: fingerprint,
    unlistedFiles: present.filter((file) => !listed.has(file) && !UNSUMMED.includes(file)).sort(),
    manifest,
  };
}

/**
 * The newest intact published version of `name` built from this cache key, or null. Used on
 * a cache hit so a warm run points at the existing artifact instead of writing a copy.
 */
export async function findPublished(
  storeDir: string,
  name: string,
  keyValue: string,
  options: { readonly publicKeyPem?: string } = {},
): Promise<PublishedArtifact | null> {
  assertArtifactName(name);
  const nameDir = path.join(path.resolve(storeDir), name);
  const suffix = `-${keyValue.slice(0, 8)}`;
  const versions = (await readdir(nameDir).catch(() => [] as string[]))
    .filter((entry) => !entry.startsWith('.') && entry !== LATEST_LINK && entry.includes(suffix))
    .sort()
    .reverse();
  for (const version of versions) {
    const artifactDir = path.join(nameDir, version);
    try {
      const check = await verifyArtifact(artifactDir, options);
      const manifest = check.manifest as {
        cache?: { key?: string };
        files?: { code?: string; vars?: string; rom?: string };
      };
      if (manifest.cache?.key !== keyValue || manifest.files?.rom === undefined) continue;
      return {
        name,
        version,
        artifactDir,
        files: {
          code: path.join(artifactDir, manifest.files.code ?? CODE_FILE),
          vars: path.join(artifactDir, manifest.files.vars ?? VARS_FILE),
          rom: path.join(artifactDir, manifest.files.rom),
        },
        descriptorFile: path.join(artifactDir, descriptorFileName(name)),
        signingKeyFingerprint: check.signingKeyFingerprint,
        reused: true,
      };
    } catch {
      continue;
    }
  }
  return null;
}
