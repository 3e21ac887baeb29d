// EDK2 source acquisition: Debian's source package, a tarball with a pinned digest, or a git
// commit (source/debian.ts, source/tarball.ts, source/git.ts). Each is unpacked once per
// digest into the user cache dir through the directory store (source/cache.ts), so a tree is
// either complete or not there.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { throwIfAborted } from '../core/errors.js';
import { DSC_PATH, FDF_PATH } from './layout.js';
import { edk2CacheDir } from './source/cache.js';
import { acquireDebian } from './source/debian.js';
import { acquireGit } from './source/git.js';
import { acquireTarball } from './source/tarball.js';

export type Edk2SourceSpec =
  | {
      readonly kind: 'debian';
      /** A version of Debian's `edk2` source package. @default the candidate apt-get picks */
      readonly version?: string;
    }
  | { readonly kind: 'tarball'; readonly path: string; readonly sha256: string }
  | { readonly kind: 'tarball'; readonly url: string; readonly sha256: string }
  | { readonly kind: 'git'; readonly url: string; readonly ref: string };

export interface Edk2Source {
  /** The EDK2 workspace root (holds edksetup.sh). Read only: builds copy it. */
  readonly dir: string;
  /** `sha256-<hex>` (Debian .dsc or tarball) or `git-<commit>`. */
  readonly digest: string;
  /** One line for humans, e.g. "Debian edk2 2022.11-6+deb12u2 (.dsc sha256 3129d7...)". */
  readonly description: string;
  readonly details: Readonly<Record<string, string>>;
}

export interface AcquireSourceOptions {
  /** Environment for XDG_CACHE_HOME/HOME and the child processes (apt-get, git, tar). */
  readonly env: NodeJS.ProcessEnv;
  readonly logger: Logger;
  readonly signal?: AbortSignal;
  /** Directory holding the unpacked sources. @default `<user cache dir>/edk2` */
  readonly cacheDir?: string;
}

/**
 * Returns an unpacked EDK2 tree for `spec`, acquiring it the first time. The tree is shared by
 * every build with the same digest; never write into it.
 */
export async function acquireEdk2Source(
  spec: Edk2SourceSpec,
  options: AcquireSourceOptions,
): Promise<Edk2Source> {
  throwIfAborted(options.signal);
  const cacheDir = options.cacheDir ?? edk2CacheDir(options.env);
  switch (spec.kind) {
    case 'debian':
      return acquireDebian(spec.version, cacheDir, options);
    case 'tarball':
      if ('url' in spec && typeof spec.url === 'string') {
        if (!/^https?:\/\//.test(spec.url)) {
          throw new TypeError(`Expected \`url\` to be an http(s) URL, got \`${spec.url}\``);
        }
        return acquireTarball({ url: spec.url, sha256: spec.sha256 }, cacheDir, options);
      }
      if (!('path' in spec) || typeof spec.path !== 'string' || spec.path === '') {
        throw new TypeError('Expected a tarball source to have `path` or `url`');
      }
      return acquireTarball({ path: spec.path, sha256: spec.sha256 }, cacheDir, options);
    case 'git':
      if (typeof spec.url !== 'string' || spec.url === '' || spec.url.startsWith('-')) {
        throw new TypeError(`Expected \`url\` to be a git URL, got \`${String(spec.url)}\``);
      }
      if (typeof spec.ref !== 'string' || spec.ref === '' || spec.ref.startsWith('-')) {
        throw new TypeError(`Expected \`ref\` to be a branch, tag or commit, got \`${String(spec.ref)}\``);
      }
      return acquireGit(spec, cacheDir, options);
    default:
      throw new TypeError(
        `Expected \`source.kind\` to be 'debian', 'tarball' or 'git', got \`${String((spec as { kind: unknown }).kind)}\``,
      );
  }
}

/** Reads the platform DSC and FDF of a source tree (the patcher's input). */
export async function readPlatformFiles(sourceDir: string): Promise<{ dsc: string; fdf: string }> {
  return {
    dsc: await readFile(path.join(sourceDir, DSC_PATH), 'utf8'),
    fdf: await readFile(path.join(sourceDir, FDF_PATH), 'utf8'),
  };
}
