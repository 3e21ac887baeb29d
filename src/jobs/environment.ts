// Cheap resolution of the build-environment inputs of the cache key. A warm run must not
// wait for apt-get or the container engine, so each resolution is memoized with a
// validity stamp:
// - EDK2 source: a tarball's digest is its pinned sha256 and a git commit is itself; a
//   Debian source (newest candidate) or git branch/tag is re-resolved when the apt lists
//   change or after GIT_REF_TTL_MS.
// - builder image: by the digest of the recipe directory (containers/edk2-builder).
// - overlay: recomputed every time (our files + the DSC/FDF patched from the source tree +
//   the build script), it costs milliseconds.
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sha256 } from '../core/digest.js';
import { buildScript } from '../edk2/build-script.js';
import type { BuildFlags } from '../edk2/flags.js';
import { loadOverlay } from '../edk2/overlay.js';
import { patchPlatform } from '../edk2/platform-patch.js';
import { DSC_PATH, FDF_PATH } from '../edk2/layout.js';
import type { Edk2SourceSpec } from '../edk2/source.js';
import { canonicalJson } from '../cache/key.js';

export const BUILDER_CONTEXT_DIR = fileURLToPath(new URL('../../containers/edk2-builder', import.meta.url));
export const BUILDER_REPOSITORY = 'localhost/ovmf-build/edk2-builder';
/** A git branch or tag is looked up again after this long. */
export const GIT_REF_TTL_MS = 10 * 60_000;
/** Debian's apt lists: their mtime changes on `apt-get update` (Debian policy, apt(8)). */
const APT_LISTS_DIR = '/var/lib/apt/lists';

/** A memo key for a source spec. */
export function sourceMemoKey(spec: Edk2SourceSpec): string {
  return canonicalJson(spec);
}

/**
 * The stamp a memoized source resolution must still carry to be used, or null when the
 * spec pins its digest (the resolution cannot change).
 */
export async function sourceStamp(spec: Edk2SourceSpec, now: number): Promise<string | null> {
  switch (spec.kind) {
    case 'tarball':
      return null;
    case 'git':
      return /^[0-9a-f]{40}$/.test(spec.ref) ? null : `ttl:${Math.floor(now / GIT_REF_TTL_MS)}`;
    case 'debian': {
      const info = await stat(APT_LISTS_DIR).catch(() => null);
      return `apt:${spec.version ?? 'candidate'}:${info === null ? 'none' : String(info.mtimeMs)}`;
    }
    default:
      return null;
  }
}

/** Digest of the builder recipe directory (every file's path and content). */
export async function builderContextDigest(dir: string = BUILDER_CONTEXT_DIR): Promise<string> {
  const hash = createHash('sha256');
  const walk = async (relative: string): Promise<void> => {
    const entries = await readdir(path.join(dir, relative), { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const child = relative === '' ? entry.name : `${relative}/${entry.name}`;
      if (entry.isDirectory()) await walk(child);
      else if (entry.isFile()) hash.update(`${child}\0${sha256(await readFile(path.join(dir, child)))}\n`);
    }
  };
  await walk('');
  return hash.digest('hex');
}

/** Digest of what we add to EDK2 for these flags: overlay files, patched DSC/FDF, build script. */
export async function overlayDigest(sourceDir: string, flags: BuildFlags): Promise<string> {
  const overlay = await loadOverlay();
  // Read here rather than through edk2/source.js, which pulls in the download stack.
  const platform = patchPlatform({
    dsc: await readFile(path.join(sourceDir, DSC_PATH), 'utf8'),
    fdf: await readFile(path.join(sourceDir, FDF_PATH), 'utf8'),
  });
  return sha256(
    canonicalJson({
      overlay: overlay.digest,
      dsc: sha256(platform.dsc),
      fdf: sha256(platform.fdf),
      script: sha256(buildScript({ flags, mode: 'clean' })),
    }),
  );
}
