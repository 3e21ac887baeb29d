// Versioned, checksummed, signed artifact directories: artifacts/<name>/<version>/. The whole
// directory is written through the directory store (core/dir-store.ts: fsynced temp dir beside
// it, one rename), and only then is artifacts/<name>/latest repointed (symlink swapped by
// rename), so a reader never sees half an artifact.
import { mkdir, readdir, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { acquireLock } from '../cache/lock.js';
import { sha256 } from '../core/digest.js';
import { sweepStaleTemps, writeDirAtomic } from '../core/dir-store.js';
import { fsyncPath, randomSuffix } from '../core/durable-fs.js';
import { PublishError } from './errors.js';
import {
  CODE_FILE,
  DEFAULT_ROM_FILE,
  LATEST_LINK,
  MANIFEST_FILE,
  PROXMOX_FILE,
  PUBLIC_KEY_FILE,
  QEMU_FILE,
  SIGNATURE_FILE,
  SUMS_FILE,
  VARS_FILE,
  descriptorFileName,
} from './layout.js';
import { artifactVersion, assertArtifactName } from './naming.js';
import { loadOrCreateSigningKey, signedMessage, signMessage, type SigningKey } from './signing.js';
import {
  firmwareDescriptor,
  proxmoxSnippet,
  qemuCommandLine,
  type FirmwareFacts,
  type IgdSnippetFacts,
  type MachineType,
} from './snippets.js';
import { verifyArtifact, type VerifyArtifactOptions } from './verify.js';

/** One publisher per artifact name at a time, so two identical runs agree on one version. */
const PUBLISH_LOCK = '.publish.lock';
/** Versions tried after the base one when names are taken by other content (`<version>.2` ...). */
const MAX_VERSION_SUFFIX = 1000;

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
  /** The host iGPU (--device), for the snippets' per-generation advice. */
  readonly igd?: IgdSnippetFacts;
  /** The ROM is the ROM-mode chain (IgdAssignmentDxe, PlatformGopPolicyDxe, GOP): the snippets add ROM mode. */
  readonly romMode?: boolean;
  /** The clock, passed in for tests. @default new Date() */
  readonly now?: Date;
  /** Stops waiting for another publisher of the same name. */
  readonly signal?: AbortSignal;
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

function sumsText(entries: ReadonlyMap<string, Uint8Array>): string {
  // GNU coreutils format: "<hex>  <name>" (two spaces: text mode), accepted by `sha256sum -c`.
  return [...entries.keys()]
    .sort()
    .map((name) => `${sha256(entries.get(name) as Uint8Array)}  ${name}\n`)
    .join('');
}

interface VersionPlan {
  readonly version: string;
  readonly finalDir: string;
  readonly facts: FirmwareFacts;
  /** Every file of the directory but SHA256SUMS, signature.json and signing-key.pub. */
  readonly payload: ReadonlyMap<string, Uint8Array>;
}

/** The files of one version directory; everything but manifest.json depends only on the inputs and the version. */
function planVersion(
  options: PublishOptions,
  nameDir: string,
  version: string,
  romFileName: string,
  now: Date,
  key: SigningKey,
): VersionPlan {
  const finalDir = path.join(nameDir, version);
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
    ...(options.igd === undefined ? {} : { igd: options.igd }),
    ...(options.romMode === true ? { romMode: true } : {}),
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
  return { version, finalDir, facts, payload };
}

/**
 * True when `check` (an intact directory signed by our key) holds exactly what `plan` would
 * write for its version, manifest.json aside (it records when and how the build ran): the
 * same firmware, ROM, descriptor and snippets, so the same cache key, machine and paths.
 */
function holdsSameContent(
  check: { readonly digests: Readonly<Record<string, string>> },
  plan: VersionPlan,
): boolean {
  const listed = Object.keys(check.digests).sort();
  const planned = [...plan.payload.keys()].sort();
  if (listed.join('\n') !== planned.join('\n')) return false;
  return [...plan.payload].every(
    ([file, bytes]) => file === MANIFEST_FILE || check.digests[file] === sha256(bytes),
  );
}

/** Versions of this name built from this key, newest first. */
async function versionsOfKey(nameDir: string, keyValue: string): Promise<string[]> {
  const suffix = `-${keyValue.slice(0, 8)}`;
  return (await readdir(nameDir).catch(() => [] as string[]))
    .filter((entry) => !entry.startsWith('.') && entry !== LATEST_LINK && entry.includes(suffix))
    .sort()
    .reverse();
}

/** An intact published version of the same content, or null. */
async function findIdentical(
  options: PublishOptions,
  nameDir: string,
  romFileName: string,
  now: Date,
  key: SigningKey,
  candidates: readonly string[],
): Promise<VersionPlan | null> {
  const trusted: VerifyArtifactOptions = { publicKeyPem: key.publicKeyPem };
  for (const version of candidates) {
    const plan = planVersion(options, nameDir, version, romFileName, now, key);
    const check = await verifyArtifact(plan.finalDir, trusted).catch(() => null);
    if (check !== null && holdsSameContent(check, plan)) return plan;
  }
  return null;
}

function published(
  options: PublishOptions,
  plan: VersionPlan,
  key: SigningKey,
  reused: boolean,
): PublishedArtifact {
  return {
    name: options.name,
    version: plan.version,
    artifactDir: plan.finalDir,
    files: { code: plan.facts.codePath, vars: plan.facts.varsPath, rom: plan.facts.romPath },
    descriptorFile: path.join(plan.finalDir, descriptorFileName(options.name)),
    signingKeyFingerprint: key.fingerprint,
    reused,
  };
}

/** Writes the version directory under a temp name and renames it into place; false when the name was taken meanwhile. */
async function writeVersion(nameDir: string, plan: VersionPlan, key: SigningKey): Promise<boolean> {
  const sums = new TextEncoder().encode(sumsText(plan.payload));
  const signature = {
    algorithm: 'ed25519',
    publicKeyFingerprint: key.fingerprint,
    signedFiles: [MANIFEST_FILE, SUMS_FILE],
    message: 'ovmf-build artifact signature v1',
    signature: signMessage(
      key,
      signedMessage(sha256(plan.payload.get(MANIFEST_FILE) as Uint8Array), sha256(sums)),
    ),
  };
  try {
    const written = await writeDirAtomic({
      target: plan.finalDir,
      fill: async (tmp) => {
        for (const [file, bytes] of plan.payload) {
          await writeFile(path.join(tmp, file), bytes, {
            flag: 'wx',
            mode: file === QEMU_FILE ? 0o755 : 0o644,
          });
        }
        await writeFile(path.join(tmp, SUMS_FILE), sums, { flag: 'wx' });
        await writeFile(path.join(tmp, SIGNATURE_FILE), `${JSON.stringify(signature, null, 2)}\n`, {
          flag: 'wx',
        });
        await writeFile(path.join(tmp, PUBLIC_KEY_FILE), key.publicKeyPem, { flag: 'wx' });
        return true;
      },
      // The name is taken (a publisher that does not take the lock, e.g. an older ovmf-build):
      // never replace a published version; the caller compares contents or tries the next name.
      existing: async () => false,
    });
    return written.value;
  } catch (error) {
    throw new PublishError(
      'E_PUBLISH_FAILED',
      `cannot publish ${plan.finalDir}: ${(error as Error).message}`,
      {
        artifactDir: plan.finalDir,
      },
    );
  }
}

/**
 * Publishes a version directory atomically and repoints `latest`. Under a per-name lock: when
 * an intact version with the same content is already published (two identical runs, or a
 * rebuild of the same inputs), that version is returned (`reused: true`) instead of a copy.
 */
export async function publishArtifact(options: PublishOptions): Promise<PublishedArtifact> {
  assertArtifactName(options.name);
  const romFileName = options.romFileName ?? DEFAULT_ROM_FILE;
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(romFileName)) {
    throw new TypeError(`Expected \`romFileName\` to be a plain file name, got \`${romFileName}\``);
  }
  const now = options.now ?? new Date();
  const storeDir = path.resolve(options.storeDir);
  const nameDir = path.join(storeDir, options.name);
  try {
    await mkdir(nameDir, { recursive: true });
  } catch (error) {
    throw new PublishError('E_PUBLISH_FAILED', `cannot create ${nameDir}: ${(error as Error).message}`, {
      artifactDir: nameDir,
    });
  }
  const key = await loadOrCreateSigningKey(options.configDir);
  await using _lock = await acquireLock(
    path.join(nameDir, PUBLISH_LOCK),
    options.signal === undefined ? {} : { signal: options.signal },
  );
  // Under the per-name lock no other publisher is writing here, so a dead writer's temp dir
  // needs no grace period.
  await sweepStaleTemps(nameDir, { deadOwnerAfterMs: 0 });
  const same = await findIdentical(
    options,
    nameDir,
    romFileName,
    now,
    key,
    await versionsOfKey(nameDir, options.keyValue),
  );
  if (same !== null) {
    await pointLatest(nameDir, same.version);
    return published(options, same, key, true);
  }
  const taken = new Set(await readdir(nameDir));
  const baseVersion = artifactVersion(now, options.keyValue);
  for (let n = 1; n <= MAX_VERSION_SUFFIX; n += 1) {
    const version = n === 1 ? baseVersion : `${baseVersion}.${n}`;
    if (taken.has(version)) continue;
    const plan = planVersion(options, nameDir, version, romFileName, now, key);
    if (await writeVersion(nameDir, plan, key)) {
      await pointLatest(nameDir, version);
      return published(options, plan, key, false);
    }
    const winner = await findIdentical(options, nameDir, romFileName, now, key, [version]);
    if (winner !== null) {
      await pointLatest(nameDir, winner.version);
      return published(options, winner, key, true);
    }
    taken.add(version);
  }
  throw new PublishError(
    'E_PUBLISH_FAILED',
    `cannot publish ${options.name}: versions ${baseVersion} to .${MAX_VERSION_SUFFIX} are all taken`,
    { artifactDir: path.join(nameDir, baseVersion) },
  );
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
  await fsyncPath(nameDir);
}

export async function readLatest(nameDir: string): Promise<string | null> {
  return readlink(path.join(nameDir, LATEST_LINK)).catch(() => null);
}

/**
 * The newest intact published version of `name` built from this cache key, or null. Used on
 * a cache hit so a warm run points at the existing artifact instead of writing a copy. Give
 * `publicKeyPem` (this user's key) or `trustedKeys`: by default the directory's own key is used.
 */
export async function findPublished(
  storeDir: string,
  name: string,
  keyValue: string,
  options: VerifyArtifactOptions = {},
): Promise<PublishedArtifact | null> {
  assertArtifactName(name);
  const nameDir = path.join(path.resolve(storeDir), name);
  for (const version of await versionsOfKey(nameDir, keyValue)) {
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
