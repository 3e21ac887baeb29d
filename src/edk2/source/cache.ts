// The EDK2 source cache: one directory per source digest under <user cache dir>/edk2/, holding
// the tree in src/ and source.json. It is created through the directory store (core/dir-store:
// temp dir beside it, every file fsynced, marker written last, one rename), so a directory
// without the marker, or of another layout version, is never used.
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { userCacheDir } from '../../cache/paths.js';
import { writeDirAtomic } from '../../core/dir-store.js';
import { throwIfAborted } from '../../core/errors.js';
import type { Edk2Source } from '../source.js';
import { exists } from './files.js';
import { applySourceQuirks, assertEdk2Tree } from './tree.js';

const COMPLETE_MARKER = '.ovmf-build-complete';
/**
 * Version of what an entry holds beyond the upstream files (the quirk fixes). An entry of
 * another version counts as absent and is unpacked again.
 */
const ENTRY_LAYOUT = 2;
/** Where an acquirer leaves the unpacked tree inside the temp dir (and so inside the entry). */
export const SOURCE_SUBDIR = 'src';
const INFO_FILE = 'source.json';

export function edk2CacheDir(env: NodeJS.ProcessEnv): string {
  return path.join(userCacheDir(env), 'edk2');
}

/** What an acquirer says about the tree it unpacked. */
export interface Unpacked {
  readonly description: string;
  readonly details: Record<string, string>;
}

/** The source held by a complete cache entry, or null when the entry is absent, incomplete or of another layout. */
export async function readSourceEntry(entryDir: string): Promise<Edk2Source | null> {
  if (!(await exists(path.join(entryDir, COMPLETE_MARKER)))) return null;
  const info = JSON.parse(await readFile(path.join(entryDir, INFO_FILE), 'utf8')) as {
    layout?: number;
    digest: string;
    description: string;
    details: Record<string, string>;
  };
  if (info.layout !== ENTRY_LAYOUT) return null;
  return {
    dir: path.join(entryDir, SOURCE_SUBDIR),
    digest: info.digest,
    description: info.description,
    details: info.details,
  };
}

/**
 * The cached tree for `digest`, or else runs `unpack(tempDir)` (which must leave the tree in
 * `<tempDir>/src`), checks it, applies the quirks, writes source.json and stores it. When
 * another process stores the same digest first, its entry is used.
 */
export async function materialise(
  cacheDir: string,
  digest: string,
  options: { readonly logger: Logger; readonly signal?: AbortSignal | undefined },
  unpack: (tempDir: string) => Promise<Unpacked>,
): Promise<Edk2Source> {
  const entryDir = path.join(cacheDir, digest);
  const cached = await readSourceEntry(entryDir);
  if (cached !== null) {
    options.logger.debug({ digest, dir: cached.dir }, 'edk2 source: cached');
    return cached;
  }
  const started = Date.now();
  let quirks: string[] = [];
  const stored = await writeDirAtomic<Edk2Source>({
    target: entryDir,
    marker: COMPLETE_MARKER,
    fill: async (tempDir) => {
      const unpacked = await unpack(tempDir);
      throwIfAborted(options.signal);
      const root = path.join(tempDir, SOURCE_SUBDIR);
      await assertEdk2Tree(root, unpacked.description);
      quirks = await applySourceQuirks(root);
      const details = { ...unpacked.details, ...(quirks.length > 0 ? { quirks: quirks.join('; ') } : {}) };
      await writeFile(
        path.join(tempDir, INFO_FILE),
        `${JSON.stringify({ layout: ENTRY_LAYOUT, digest, description: unpacked.description, details }, null, 2)}\n`,
      );
      return { dir: path.join(entryDir, SOURCE_SUBDIR), digest, description: unpacked.description, details };
    },
    // A complete entry is another process's finished copy; an incomplete one is replaced.
    existing: readSourceEntry,
  });
  if (stored.created) {
    options.logger.info(
      { digest, dir: stored.value.dir, durationMs: Date.now() - started, quirks },
      'edk2 source: unpacked',
    );
  }
  return stored.value;
}
