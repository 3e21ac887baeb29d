// From an artifact store (artifacts/<name>/<version>/ with `latest` symlinks, as publish writes
// it) to the mirror index payload: every version directory is verified first (signature by a
// key the user trusts, then every digest), so nothing unverified is ever listed, and the facts
// users search by (device IDs, GOP build, VBT, generation) are read from its signed manifest.
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { sha256OfRegularFile } from '../publish/safe-read.js';
import { PublishError } from '../publish/errors.js';
import { CODE_FILE, FIXED_FILE_ROLES, PUBLIC_KEY_FILE, UNSUMMED, VARS_FILE } from '../publish/layout.js';
import { readLatest } from '../publish/artifact.js';
import type { TrustedKey } from '../publish/trust.js';
import { verifyArtifact } from '../publish/verify.js';
import {
  INDEX_FORMAT,
  INDEX_FORMAT_VERSION,
  byHashUrl,
  keyUrl,
  versionUrl,
  type MirrorArtifact,
  type MirrorFile,
  type MirrorIndex,
  type MirrorKey,
  type MirrorVerification,
  type MirrorVersion,
} from './index-types.js';
import { statSize } from './object-store.js';

const VERSION_DIR = /^\d{8}T\d{6}Z-[0-9a-f]{8}(\.\d+)?$/;

/** A file of the index and where its bytes are on this machine. */
export interface LocalFile {
  readonly sha256: string;
  readonly size: number;
  readonly path: string;
}

export interface ScannedStore {
  readonly artifacts: readonly MirrorArtifact[];
  readonly keys: readonly MirrorKey[];
  /** sha256 -> a local file with those bytes. */
  readonly sources: ReadonlyMap<string, LocalFile>;
}

function get(value: unknown, ...keys: string[]): unknown {
  let current = value;
  for (const key of keys) {
    if (current === null || typeof current !== 'object' || Array.isArray(current)) return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

const str = (value: unknown): string | null => (typeof value === 'string' ? value : null);

/** A human label of where an input came from: the recipe's file name or URL. */
function originLabel(origin: unknown): string | null {
  const url = str(get(origin, 'url'));
  if (url !== null) return url;
  const file = str(get(origin, 'path'));
  return file === null ? null : path.basename(file);
}

function passed(value: unknown): string | null {
  const checked = get(value, 'checked');
  const ok = get(value, 'passed');
  if (typeof ok !== 'boolean') return null;
  return checked === false ? 'skipped' : ok ? 'passed' : 'failed';
}

function verificationOf(manifest: Record<string, unknown>): MirrorVerification {
  const structure = get(manifest, 'build', 'facts', 'structure');
  const igdChecks = get(manifest, 'igdChecks');
  const igdParts = ['embedded', 'rom']
    .map((mode) => [mode, passed(get(igdChecks, mode))] as const)
    .filter(([, result]) => result !== null)
    .map(([mode, result]) => `${mode} ${String(result)}`);
  return {
    structural: structure === undefined ? null : 'passed',
    boot: passed(get(manifest, 'build', 'facts', 'boot')),
    igd: igdParts.length === 0 ? null : igdParts.join(', '),
  };
}

function roleOf(file: string, manifest: Record<string, unknown>): string {
  if (file === str(get(manifest, 'files', 'code')) || file === CODE_FILE) return 'code';
  if (file === str(get(manifest, 'files', 'vars')) || file === VARS_FILE) return 'vars';
  if (file === str(get(manifest, 'files', 'rom'))) return 'rom';
  return FIXED_FILE_ROLES[file] ?? (/^60-ovmf-build-.*\.json$/.test(file) ? 'descriptor' : 'other');
}

function versionFacts(
  name: string,
  version: string,
  manifest: Record<string, unknown>,
  files: readonly MirrorFile[],
  signingKeyFingerprint: string,
): MirrorVersion {
  const inputs = get(manifest, 'inputs');
  const deviceId = str(get(inputs, 'device', 'id'));
  const platform = get(inputs, 'device', 'platform');
  const platformName = str(get(platform, 'name'));
  const graphics = str(get(platform, 'graphicsVersion'));
  const rom = get(manifest, 'deliveryModes', 'rom', 'files');
  const secureBoot = get(manifest, 'flags', 'secureBoot');
  return {
    version,
    url: versionUrl(name, version),
    generation:
      graphics !== null
        ? `graphics ${graphics}${platformName === null ? '' : ` (${platformName})`}`
        : str(get(inputs, 'gopFamily')),
    device_ids: deviceId === null ? [] : [deviceId],
    platform: platformName,
    gop_build: str(get(inputs, 'gop', 'build')),
    vbt: {
      signature: str(get(inputs, 'vbt', 'signature')),
      source: str(get(inputs, 'recipe', 'name')) ?? originLabel(get(inputs, 'vbt', 'origin')),
      sha256: str(get(inputs, 'vbt', 'sha256')),
    },
    edk2: {
      version: str(get(manifest, 'edk2', 'description')),
      source_digest: str(get(manifest, 'edk2', 'sourceDigest')),
    },
    target: str(get(manifest, 'flags', 'target')),
    machine: str(get(manifest, 'artifact', 'machine')) ?? str(get(manifest, 'machine')),
    secure_boot: typeof secureBoot === 'boolean' ? secureBoot : null,
    built_at: str(get(manifest, 'builtAt')),
    published_at: str(get(manifest, 'artifact', 'createdAt')),
    rom_mode: Array.isArray(rom) && rom.length > 0,
    verification: verificationOf(manifest),
    signing_key_fingerprint: signingKeyFingerprint,
    files,
  };
}

async function listDirs(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') {
      throw new PublishError('E_ARTIFACT_DIR_NOT_FOUND', `${dir} does not exist; give the artifact store`, {
        artifactDir: dir,
      });
    }
    throw error;
  });
  return entries
    .filter((entry) => entry.isDirectory() && !entry.name.startsWith('.'))
    .map((entry) => entry.name)
    .sort();
}

/**
 * Verifies and lists every version of every name in the store. A version that does not verify
 * with a trusted key stops the whole index (its PublishError): a mirror never lists a version
 * it could not vouch for. Names without versions are skipped.
 */
export async function scanStore(storeDir: string, trustedKeys: readonly TrustedKey[]): Promise<ScannedStore> {
  const sources = new Map<string, LocalFile>();
  const keys = new Map<string, MirrorKey>();
  const artifacts: MirrorArtifact[] = [];
  for (const name of await listDirs(storeDir)) {
    const nameDir = path.join(storeDir, name);
    const versions: MirrorVersion[] = [];
    for (const version of (await listDirs(nameDir)).filter((v) => VERSION_DIR.test(v)).reverse()) {
      const dir = path.join(nameDir, version);
      const check = await verifyArtifact(dir, { trustedKeys });
      const listed = [...check.checkedFiles, ...UNSUMMED].sort();
      const files: MirrorFile[] = [];
      for (const file of listed) {
        const full = path.join(dir, file);
        const sha256 = check.digests[file] ?? (await sha256OfRegularFile(full));
        const size = await statSize(full);
        sources.set(sha256, { sha256, size, path: full });
        files.push({
          name: file,
          size,
          sha256,
          url: `${versionUrl(name, version)}${file}`,
          by_hash: byHashUrl(sha256),
          role: roleOf(file, check.manifest),
        });
        if (file === PUBLIC_KEY_FILE && !keys.has(check.signingKeyFingerprint)) {
          keys.set(check.signingKeyFingerprint, {
            fingerprint: check.signingKeyFingerprint,
            url: keyUrl(check.signingKeyFingerprint),
            sha256,
            size,
          });
        }
      }
      versions.push(versionFacts(name, version, check.manifest, files, check.signingKeyFingerprint));
    }
    if (versions.length === 0) continue;
    const linked = await readLatest(nameDir);
    const latest = versions.some((v) => v.version === linked) ? (linked as string) : versions[0]!.version;
    artifacts.push({ name, latest, versions });
  }
  return {
    artifacts,
    keys: [...keys.values()].sort((a, b) => (a.fingerprint < b.fingerprint ? -1 : 1)),
    sources,
  };
}

export interface IndexPayloadOptions {
  readonly serial: number;
  readonly now: Date;
  readonly validForMs: number;
  readonly keyFingerprint: string;
  /** The index key's own entry (keys/<fingerprint>.pub), added when no artifact carries it. */
  readonly indexKey: MirrorKey;
}

export function indexPayload(store: ScannedStore, options: IndexPayloadOptions): MirrorIndex {
  const keys = store.keys.some((key) => key.fingerprint === options.indexKey.fingerprint)
    ? store.keys
    : [...store.keys, options.indexKey].sort((a, b) => (a.fingerprint < b.fingerprint ? -1 : 1));
  return {
    format: INDEX_FORMAT,
    format_version: INDEX_FORMAT_VERSION,
    serial: options.serial,
    generated_at: options.now.toISOString(),
    valid_until: new Date(options.now.getTime() + options.validForMs).toISOString(),
    key_fingerprint: options.keyFingerprint,
    keys,
    artifacts: store.artifacts,
  };
}
