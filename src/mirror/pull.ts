// `pull NAME[@VERSION] --mirror URL`: one artifact version from a mirror, with the checks of a
// sync (signed index by a trusted key, valid_until, every file's size and sha256, the version
// directory's own signature), written as <out>/<name>/<version>/ in one rename. The snippets
// it prints, and the firmware descriptor it can install, name the local files: the published
// ones name the publisher's paths, which are replaced here (the directory stays byte-identical).
import { mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { writeDirAtomic } from '../core/dir-store.js';
import { writeFileAtomic } from '../core/durable-fs.js';
import { PublishError } from '../publish/errors.js';
import { descriptorFileName, PROXMOX_FILE, QEMU_FILE } from '../publish/layout.js';
import { verifyArtifact } from '../publish/verify.js';
import type { MirrorArtifact, MirrorIndex, MirrorVersion, SignedMirrorIndex } from './index-types.js';
import {
  checkPulledSerial,
  parsePullSerials,
  PULL_SERIALS_FILE,
  rememberPulledSerial,
  serializePullSerials,
  type PullSerials,
} from './pull-serials.js';
import { hasObject, placeObject, type ObjectRef } from './object-store.js';
import { artifactKeys, fetchObjectInto, fetchSignedIndex, mirrorBase, trustedKeyChooser } from './remote.js';
import { assertFresh, serializeJson } from './signed-index.js';
import { loadTrustedKeys, type TrustedKey } from '../publish/trust.js';

export interface PullOptions {
  /** `name` or `name@version`. */
  readonly spec: string;
  readonly mirrorUrl: string;
  /** The key that must sign the index. @default the user's trusted key that signed it */
  readonly trustKey?: string;
  readonly configDir: string;
  /** Files go to <outDir>/<name>/<version>/. */
  readonly outDir: string;
  /** Install the firmware descriptor here (QEMU docs/interop/firmware.json search path). */
  readonly descriptorDir?: string;
  /**
   * Where the newest index accepted per publisher key is kept (pull-serials.ts), so that an
   * older one, still valid, is refused as a rollback. Unset: no such memory.
   */
  readonly stateDir?: string;
  /** @default new Date() */
  readonly now?: Date;
  readonly signal?: AbortSignal;
}

export interface PullResult {
  readonly name: string;
  readonly version: string;
  readonly dir: string;
  readonly serial: number;
  /** True when the directory was already there and verified. */
  readonly reused: boolean;
  readonly files: { readonly code: string; readonly vars: string; readonly rom: string | null };
  /** proxmox.conf and qemu.sh with the local paths. */
  readonly proxmox: string;
  readonly qemu: string;
  readonly descriptorInstalled: string | null;
}

/** Splits `name@version`; both parts must be plain names. */
export function parsePullSpec(spec: string): { name: string; version: string | null } {
  const match = /^([A-Za-z0-9][A-Za-z0-9._-]{0,63})(?:@([A-Za-z0-9][A-Za-z0-9._-]{0,127}))?$/.exec(spec);
  if (match === null || spec.includes('..')) {
    throw new TypeError(`Expected NAME or NAME@VERSION (letters, digits, '.', '_', '-'), got \`${spec}\``);
  }
  return { name: match[1] as string, version: match[2] ?? null };
}

function pick(
  artifacts: readonly MirrorArtifact[],
  name: string,
  version: string | null,
): { artifact: MirrorArtifact; version: MirrorVersion } {
  const artifact = artifacts.find((a) => a.name === name);
  const wanted = version ?? artifact?.latest;
  const found = artifact?.versions.find((v) => v.version === wanted);
  if (artifact === undefined || found === undefined) {
    const names = artifacts.map((a) => a.name);
    throw new PublishError(
      'E_MIRROR_ARTIFACT_NOT_FOUND',
      artifact === undefined
        ? `the mirror has no artifact ${name} (it has ${names.length === 0 ? 'none' : names.slice(0, 10).join(', ')})`
        : `the mirror has no version ${String(version)} of ${name} (newest: ${artifact.versions
            .slice(0, 3)
            .map((v) => v.version)
            .join(', ')})`,
      { name, version, names },
    );
  }
  return { artifact, version: found };
}

/** The publisher's directory, as its firmware descriptor names it. */
function publishedDir(descriptor: Record<string, unknown>): string | null {
  const executable = (descriptor['mapping'] as { executable?: { filename?: unknown } } | undefined)
    ?.executable;
  return typeof executable?.filename === 'string' ? path.posix.dirname(executable.filename) : null;
}

function localise(text: string, from: string | null, to: string): string {
  return from === null ? text : text.split(`${from}/`).join(`${to}/`);
}

/** The key for the index: --trust-key, else the trusted key the index says signed it. */
function keyChooser(options: PullOptions, base: string): (signed: SignedMirrorIndex) => Promise<TrustedKey> {
  return async (signed) => {
    if (options.trustKey !== undefined) {
      return trustedKeyChooser(base, options.trustKey, options.configDir, options.signal)(signed);
    }
    const key = (await loadTrustedKeys(options.configDir)).find(
      (k) => k.fingerprint === signed.key_fingerprint,
    );
    if (key === undefined) {
      throw new PublishError(
        'E_MIRROR_INDEX_UNTRUSTED',
        `the mirror's index is signed by key ${signed.key_fingerprint}, which you do not trust; compare it with the fingerprint its owner gave you, then pass --trust-key ${signed.key_fingerprint}`,
        { signingKeyFingerprint: signed.key_fingerprint },
      );
    }
    return key;
  };
}

async function readPullSerials(file: string): Promise<PullSerials> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new PublishError('E_MIRROR_PULL_STATE', `cannot read ${file}: ${(error as Error).message}`, {
      file,
    });
  }
  return parsePullSerials(bytes, file);
}

/**
 * Refuses `payload` when it is older than the index last accepted under `fingerprint` (or has
 * its serial and other contents), and records it when newer (the file replaced whole). Two
 * pulls at once of different serials may leave the older recorded: weaker, never wrong.
 */
async function rememberIndex(
  file: string,
  fingerprint: string,
  payload: MirrorIndex,
  mirror: string,
  now: Date,
): Promise<void> {
  const key = fingerprint.toLowerCase();
  const current = await readPullSerials(file);
  if (checkPulledSerial(current, key, payload, mirror, file) === 'same') return;
  try {
    await mkdir(path.dirname(file), { recursive: true });
    await writeFileAtomic(
      file,
      serializePullSerials(rememberPulledSerial(current, key, payload, mirror, now)),
    );
  } catch (error) {
    throw new PublishError(
      'E_MIRROR_PULL_STATE',
      `cannot record the index serial in ${file}: ${(error as Error).message}`,
      {
        file,
      },
    );
  }
}

/** True when `dir` verifies and holds exactly the files the index lists for the version. */
async function holdsVersion(
  dir: string,
  version: MirrorVersion,
  trustedKeys: readonly TrustedKey[],
): Promise<boolean> {
  const check = await verifyArtifact(dir, { trustedKeys }).catch(() => null);
  if (check === null) return false;
  return (
    version.files.every((f) => !(f.name in check.digests) || check.digests[f.name] === f.sha256) &&
    Object.keys(check.digests).every((name) => version.files.some((f) => f.name === name))
  );
}

export async function pullArtifact(options: PullOptions): Promise<PullResult> {
  const base = mirrorBase(options.mirrorUrl);
  const { name, version: wantedVersion } = parsePullSpec(options.spec);
  const signal = options.signal;
  const fetched = await fetchSignedIndex(
    base,
    keyChooser(options, base),
    signal === undefined ? {} : { signal },
  );
  if (fetched === null) throw new Error('unreachable: no ETag was sent');
  const payload = fetched.signed.payload;
  const now = options.now ?? new Date();
  assertFresh(payload, now, null);
  // Checked and remembered before anything is fetched (TUF updates its trusted metadata
  // first): an index signed by a trusted key and in date is one this machine has seen.
  if (options.stateDir !== undefined) {
    await rememberIndex(
      path.join(options.stateDir, PULL_SERIALS_FILE),
      fetched.key.fingerprint,
      payload,
      base,
      now,
    );
  }
  const { artifact, version } = pick(payload.artifacts, name, wantedVersion);
  const outDir = path.resolve(options.outDir);
  const dir = path.join(outDir, artifact.name, version.version);
  // Objects land in a private by-hash store beside the result (resumable), then are linked in.
  const cache = path.join(outDir, artifact.name, `.pull-${version.version}`);
  await mkdir(cache, { recursive: true });
  const fetchAll = async (objects: readonly ObjectRef[]): Promise<void> => {
    for (const object of objects) {
      if (!(await hasObject(cache, object))) await fetchObjectInto(cache, base, object, signal);
    }
  };
  await fetchAll(payload.keys);
  const trustedKeys = await artifactKeys(cache, payload, fetched.key, options.configDir);
  let reused = await holdsVersion(dir, version, trustedKeys);
  if (!reused) {
    await fetchAll(version.files);
    const written = await writeDirAtomic({
      target: dir,
      fill: async (tmp) => {
        for (const file of version.files) await placeObject(cache, file.sha256, path.join(tmp, file.name));
        await verifyArtifact(tmp, { trustedKeys });
        return false;
      },
      // A directory that does not hold this version (damaged, or another's) is replaced.
      existing: async (target) => ((await holdsVersion(target, version, trustedKeys)) ? true : null),
    });
    reused = written.value;
  }
  await rm(cache, { recursive: true, force: true });
  const manifest = JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8')) as {
    files?: Record<string, unknown>;
  };
  const roles = manifest.files ?? {};
  const descriptorFile = path.join(dir, descriptorFileName(artifact.name));
  const descriptor = JSON.parse(await readFile(descriptorFile, 'utf8')) as Record<string, unknown>;
  const from = publishedDir(descriptor);
  const proxmox = localise(await readFile(path.join(dir, PROXMOX_FILE), 'utf8'), from, dir);
  const qemu = localise(await readFile(path.join(dir, QEMU_FILE), 'utf8'), from, dir);
  let descriptorInstalled: string | null = null;
  if (options.descriptorDir !== undefined) {
    const localDescriptor = JSON.parse(localise(JSON.stringify(descriptor), from, dir)) as Record<
      string,
      unknown
    >;
    const target = path.join(path.resolve(options.descriptorDir), descriptorFileName(artifact.name));
    try {
      await mkdir(path.dirname(target), { recursive: true });
      await writeFileAtomic(target, serializeJson(localDescriptor));
    } catch (error) {
      throw new PublishError(
        'E_MIRROR_WRITE_FAILED',
        `cannot install the firmware descriptor ${target}: ${(error as Error).message}`,
        {
          file: target,
        },
      );
    }
    descriptorInstalled = target;
  }
  const file = (role: string, fallback: string | null): string | null => {
    const named = roles[role];
    return typeof named === 'string'
      ? path.join(dir, named)
      : fallback === null
        ? null
        : path.join(dir, fallback);
  };
  return {
    name: artifact.name,
    version: version.version,
    dir,
    serial: payload.serial,
    reused,
    files: {
      code: file('code', 'OVMF_CODE.fd') as string,
      vars: file('vars', 'OVMF_VARS.fd') as string,
      rom: file('rom', null),
    },
    proxmox,
    qemu,
    descriptorInstalled,
  };
}
