// EDK2 source acquisition: Debian's source package, a tarball with a pinned digest, or a
// git commit. Each is unpacked once per digest into the user cache dir, atomically: a temp
// dir next to the final one, quirk fixes applied, a marker written last, then one rename.
// A directory without the marker is never used.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { cp, mkdir, readdir, readFile, readlink, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { userCacheDir } from '../cache/paths.js';
import { throwIfAborted } from '../core/errors.js';
import { randomSuffix } from '../core/durable-fs.js';
import { isProcessAlive } from '../core/process-alive.js';
import { symlinkLeavesTree } from '../core/path-inside.js';
import type { ErrorCode } from '../core/error-codes.js';
import { download } from '../fetch/index.js';
import { Edk2Error } from './errors.js';
import { DSC_PATH, FDF_PATH } from './layout.js';

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

const COMPLETE_MARKER = '.ovmf-build-complete';
/**
 * Version of what an entry holds beyond the upstream files (the quirk fixes). An entry of
 * another version counts as absent and is unpacked again.
 */
const ENTRY_LAYOUT = 2;
const SOURCE_SUBDIR = 'src';
const INFO_FILE = 'source.json';
const SHA256_HEX = /^[0-9a-f]{64}$/;
const COMMIT_HEX = /^[0-9a-f]{40}$/;
const MAX_CHILD_OUTPUT_BYTES = 64 * 1024 * 1024;

export function edk2CacheDir(env: NodeJS.ProcessEnv): string {
  return path.join(userCacheDir(env), 'edk2');
}

interface ChildResult {
  readonly stdout: string;
  readonly stderr: string;
}

function runTool(
  file: string,
  args: readonly string[],
  options: { cwd?: string; env: NodeJS.ProcessEnv; signal?: AbortSignal | undefined; code: ErrorCode },
): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      {
        cwd: options.cwd,
        env: { ...options.env, LC_ALL: 'C' },
        maxBuffer: MAX_CHILD_OUTPUT_BYTES,
        ...(options.signal === undefined ? {} : { signal: options.signal }),
      },
      (error, stdout, stderr) => {
        if (error === null) {
          resolve({ stdout, stderr });
          return;
        }
        if (options.signal?.aborted === true) {
          try {
            throwIfAborted(options.signal);
          } catch (abort) {
            reject(abort);
            return;
          }
        }
        const tail = `${stderr}`.trim().split('\n').slice(-5).join('\n');
        reject(
          new Edk2Error(
            options.code,
            `\`${file} ${args.join(' ')}\` failed${tail === '' ? `: ${error.message}` : `:\n${tail}`}`,
            { command: [file, ...args], exitCode: (error as { code?: unknown }).code ?? null, stderr: tail },
            { cause: error },
          ),
        );
      },
    );
  });
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch {
    return false;
  }
}

async function sha256File(file: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, signal === undefined ? {} : { signal })) {
    hash.update(chunk as Buffer);
  }
  return hash.digest('hex');
}

/** Reads the description of a complete cache entry, or null when the entry is absent or incomplete. */
async function readEntry(entryDir: string): Promise<Edk2Source | null> {
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

/** Every complete source tree in the cache (tests read the real DSC/FDF from one when present). */
export async function listCachedEdk2Sources(cacheDir: string): Promise<Edk2Source[]> {
  let names: string[];
  try {
    names = await readdir(cacheDir);
  } catch {
    return [];
  }
  const entries: Edk2Source[] = [];
  for (const name of names.sort()) {
    if (name.startsWith('.')) continue;
    const entry = await readEntry(path.join(cacheDir, name));
    if (entry !== null) entries.push(entry);
  }
  return entries;
}

/** Temp dirs of crashed runs: `.tmp-<digest>-<pid>-<random>` whose pid is gone. */
async function removeStaleTemps(cacheDir: string): Promise<void> {
  for (const name of await readdir(cacheDir)) {
    const match = /^\.tmp-.+-(\d+)-[0-9a-f]+$/.exec(name);
    if (match === null) continue;
    if (!isProcessAlive(Number(match[1])))
      await rm(path.join(cacheDir, name), { recursive: true, force: true });
  }
}

/** Symlinks whose target is absolute or leaves the tree, workspace-relative, sorted. */
async function escapingSymlinks(root: string, relative = ''): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(path.join(root, relative), { withFileTypes: true })) {
    const child = relative === '' ? entry.name : `${relative}/${entry.name}`;
    if (entry.isSymbolicLink()) {
      const target = await readlink(path.join(root, child));
      if (symlinkLeavesTree(child, target)) found.push(child);
    } else if (entry.isDirectory()) {
      found.push(...(await escapingSymlinks(root, child)));
    }
  }
  return found.sort();
}

/**
 * EDK2 quirk fixes applied to the unpacked copy (never to the user's files):
 * - Debian's orig tarball ships BaseTools/Source/C/BrotliCompress/brotli empty (a git submodule
 *   in upstream); the same brotli sources are in MdeModulePkg's BrotliCustomDecompressLib.
 * - Symlinks that point outside the tree (EmulatorPkg/Unix/Host/X11IncludeHack -> /opt/X11/include)
 *   are removed: no OvmfPkg module uses them and the container layer refuses to copy them.
 */
export async function applySourceQuirks(root: string): Promise<string[]> {
  const applied: string[] = [];
  for (const link of await escapingSymlinks(root)) {
    await rm(path.join(root, link));
    applied.push(`removed symlink ${link} (points outside the tree)`);
  }
  const target = path.join(root, 'BaseTools/Source/C/BrotliCompress/brotli');
  const donor = path.join(root, 'MdeModulePkg/Library/BrotliCustomDecompressLib/brotli');
  const targetEmpty = !(await exists(target)) || (await readdir(target)).length === 0;
  if (targetEmpty && (await exists(donor)) && (await readdir(donor)).length > 0) {
    await cp(donor, target, { recursive: true });
    applied.push(
      'BaseTools/Source/C/BrotliCompress/brotli <- MdeModulePkg/Library/BrotliCustomDecompressLib/brotli',
    );
  }
  return applied;
}

async function assertEdk2Tree(root: string, origin: string): Promise<void> {
  const missing: string[] = [];
  for (const file of ['edksetup.sh', 'BaseTools/GNUmakefile', DSC_PATH, FDF_PATH]) {
    if (!(await exists(path.join(root, file)))) missing.push(file);
  }
  if (missing.length > 0) {
    throw new Edk2Error(
      'E_EDK2_NOT_A_SOURCE_TREE',
      `${origin} is not an EDK2 tree: missing ${missing.join(', ')}`,
      {
        origin,
        missing,
      },
    );
  }
}

/** Removes `.git` files and directories (the commit id is recorded; builds need no history). */
async function removeGitMetadata(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.name === '.git') await rm(full, { recursive: true, force: true });
    else if (entry.isDirectory()) await removeGitMetadata(full);
  }
}

interface Unpacked {
  readonly description: string;
  readonly details: Record<string, string>;
}

/**
 * Runs `unpack(tempDir)` (which must leave the tree in `<tempDir>/src`) unless a complete entry
 * for `digest` exists; then applies the quirks, writes source.json and the marker, renames.
 */
async function materialise(
  cacheDir: string,
  digest: string,
  options: AcquireSourceOptions,
  unpack: (tempDir: string) => Promise<Unpacked>,
): Promise<Edk2Source> {
  const entryDir = path.join(cacheDir, digest);
  const cached = await readEntry(entryDir);
  if (cached !== null) {
    options.logger.debug({ digest, dir: cached.dir }, 'edk2 source: cached');
    return cached;
  }
  await mkdir(cacheDir, { recursive: true });
  await removeStaleTemps(cacheDir);
  const tempDir = path.join(cacheDir, `.tmp-${digest}-${process.pid}-${randomSuffix()}`);
  await mkdir(tempDir);
  try {
    const started = Date.now();
    const unpacked = await unpack(tempDir);
    throwIfAborted(options.signal);
    const root = path.join(tempDir, SOURCE_SUBDIR);
    await assertEdk2Tree(root, unpacked.description);
    const quirks = await applySourceQuirks(root);
    const details = { ...unpacked.details, ...(quirks.length > 0 ? { quirks: quirks.join('; ') } : {}) };
    await writeFile(
      path.join(tempDir, INFO_FILE),
      `${JSON.stringify({ layout: ENTRY_LAYOUT, digest, description: unpacked.description, details }, null, 2)}\n`,
    );
    await writeFile(path.join(tempDir, COMPLETE_MARKER), `${new Date().toISOString()}\n`);
    if (await exists(entryDir)) {
      // An entry without marker (an interrupted older layout or a manual copy): replace it.
      if ((await readEntry(entryDir)) === null) await rm(entryDir, { recursive: true, force: true });
    }
    try {
      await rename(tempDir, entryDir);
    } catch (error) {
      // Another process finished the same digest first: use its entry.
      const other = await readEntry(entryDir);
      if (other === null) throw error;
      await rm(tempDir, { recursive: true, force: true });
      return other;
    }
    options.logger.info(
      { digest, dir: path.join(entryDir, SOURCE_SUBDIR), durationMs: Date.now() - started, quirks },
      'edk2 source: unpacked',
    );
    return {
      dir: path.join(entryDir, SOURCE_SUBDIR),
      digest,
      description: unpacked.description,
      details,
    };
  } catch (error) {
    await rm(tempDir, { recursive: true, force: true });
    throw error;
  }
}

async function singleTopDir(dir: string): Promise<string> {
  const entries = (await readdir(dir, { withFileTypes: true })).filter(
    (entry) => entry.name !== 'pax_global_header',
  );
  if (entries.length === 1 && entries[0]?.isDirectory() === true) return path.join(dir, entries[0].name);
  return dir;
}

/** Debian's `edk2` source package via apt-get (a deb-src entry is needed; scripts/install.sh adds one). */
async function acquireDebian(version: string | undefined, cacheDir: string, options: AcquireSourceOptions) {
  const pkg = version === undefined ? 'edk2' : `edk2=${version}`;
  const { stdout } = await runTool('apt-get', ['source', '--print-uris', '-qq', pkg], {
    env: options.env,
    signal: options.signal,
    code: 'E_EDK2_SOURCE_UNAVAILABLE',
  });
  // Lines: 'uri' filename size SHA256:hex
  const dscLine = stdout
    .split('\n')
    .map((line) => /^'[^']+'\s+(\S+\.dsc)\s+\d+\s+SHA256:([0-9a-f]{64})\s*$/.exec(line.trim()))
    .find((match) => match !== null);
  if (dscLine === undefined || dscLine === null) {
    throw new Edk2Error(
      'E_EDK2_SOURCE_UNAVAILABLE',
      `apt-get knows no source package ${pkg} with a SHA256 .dsc; is a deb-src entry configured (scripts/install.sh)?`,
      { package: pkg, output: stdout.slice(0, 2000) },
    );
  }
  const dscName = dscLine[1] as string;
  const dscSha256 = dscLine[2] as string;
  const debVersion = /^edk2_(.+)\.dsc$/.exec(dscName)?.[1] ?? 'unknown';
  const digest = `sha256-${dscSha256}`;
  const description = `Debian edk2 ${debVersion} (.dsc sha256 ${dscSha256.slice(0, 12)})`;
  return materialise(cacheDir, digest, options, async (tempDir) => {
    const work = path.join(tempDir, 'apt');
    await mkdir(work);
    options.logger.info({ package: `edk2=${debVersion}` }, 'edk2 source: apt-get source');
    await runTool('apt-get', ['source', '-qq', `edk2=${debVersion}`], {
      cwd: work,
      env: options.env,
      signal: options.signal,
      code: 'E_EDK2_SOURCE_UNAVAILABLE',
    });
    const actual = await sha256File(path.join(work, dscName), options.signal);
    if (actual !== dscSha256) {
      throw new Edk2Error(
        'E_EDK2_SOURCE_DIGEST_MISMATCH',
        `${dscName}: sha256 ${actual}, apt index says ${dscSha256}`,
        {
          file: dscName,
          expected: dscSha256,
          actual,
        },
      );
    }
    const unpackedName = (await readdir(work, { withFileTypes: true })).find(
      (entry) => entry.isDirectory() && entry.name.startsWith('edk2-'),
    );
    if (unpackedName === undefined) {
      throw new Edk2Error('E_EDK2_SOURCE_UNAVAILABLE', `apt-get source ${pkg} left no edk2-* directory`, {
        package: pkg,
      });
    }
    await rename(path.join(work, unpackedName.name), path.join(tempDir, SOURCE_SUBDIR));
    await rm(work, { recursive: true, force: true });
    return { description, details: { kind: 'debian', version: debVersion, dsc: dscName, dscSha256 } };
  });
}

async function acquireTarball(
  spec: { readonly path?: string; readonly url?: string; readonly sha256: string },
  cacheDir: string,
  options: AcquireSourceOptions,
) {
  if (typeof spec.sha256 !== 'string' || !SHA256_HEX.test(spec.sha256)) {
    throw new TypeError(`Expected \`sha256\` to be 64 lower-case hex digits, got \`${String(spec.sha256)}\``);
  }
  const digest = `sha256-${spec.sha256}`;
  const origin = spec.path ?? spec.url ?? '';
  return materialise(cacheDir, digest, options, async (tempDir) => {
    let tarball: string;
    if (spec.path !== undefined) {
      tarball = path.resolve(spec.path);
      const actual = await sha256File(tarball, options.signal).catch((error: unknown) => {
        throw new Edk2Error(
          'E_EDK2_SOURCE_UNAVAILABLE',
          `cannot read ${tarball}: ${(error as Error).message}`,
          {
            path: tarball,
          },
        );
      });
      if (actual !== spec.sha256) {
        throw new Edk2Error(
          'E_EDK2_SOURCE_DIGEST_MISMATCH',
          `${tarball}: sha256 ${actual}, expected ${spec.sha256}`,
          { path: tarball, expected: spec.sha256, actual },
        );
      }
    } else {
      tarball = path.join(tempDir, 'source.tar');
      // download() verifies the digest while streaming (E_DOWNLOAD_DIGEST_MISMATCH).
      await download({
        url: spec.url as string,
        sha256: spec.sha256,
        dest: tarball,
        ...(options.signal === undefined ? {} : { signal: options.signal }),
      });
    }
    const unpackDir = path.join(tempDir, 'unpack');
    await mkdir(unpackDir);
    await runTool('tar', ['-xf', tarball, '-C', unpackDir, '--no-same-owner', '--no-same-permissions'], {
      env: options.env,
      signal: options.signal,
      code: 'E_EDK2_SOURCE_UNPACK_FAILED',
    });
    await rename(await singleTopDir(unpackDir), path.join(tempDir, SOURCE_SUBDIR));
    await rm(unpackDir, { recursive: true, force: true });
    if (spec.path === undefined) await rm(tarball, { force: true });
    return {
      description: `EDK2 tarball ${path.basename(origin)} (sha256 ${spec.sha256.slice(0, 12)})`,
      details: { kind: 'tarball', origin, sha256: spec.sha256 },
    };
  });
}

/** Resolves `ref` (branch, tag or commit) to a commit id with ls-remote, without cloning. */
export async function resolveGitRef(
  url: string,
  ref: string,
  options: AcquireSourceOptions,
): Promise<string> {
  if (COMMIT_HEX.test(ref)) return ref;
  const { stdout } = await runTool('git', ['ls-remote', '--', url, ref, `${ref}^{}`], {
    env: options.env,
    signal: options.signal,
    code: 'E_EDK2_GIT_FAILED',
  });
  const refs = new Map(
    stdout
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => {
        const [commit, name] = line.split('\t');
        return [name ?? '', commit ?? ''] as const;
      }),
  );
  // A peeled annotated tag names the commit; the plain tag names the tag object.
  for (const name of [`refs/tags/${ref}^{}`, `refs/tags/${ref}`, `refs/heads/${ref}`, ref]) {
    const commit = refs.get(name);
    if (commit !== undefined && COMMIT_HEX.test(commit)) return commit;
  }
  throw new Edk2Error('E_EDK2_GIT_REF_NOT_FOUND', `${url} has no branch or tag \`${ref}\``, { url, ref });
}

function isLocalGitUrl(url: string): boolean {
  return url.startsWith('file://') || url.startsWith('/') || url.startsWith('.');
}

async function acquireGit(
  spec: { readonly url: string; readonly ref: string },
  cacheDir: string,
  options: AcquireSourceOptions,
) {
  const commit = await resolveGitRef(spec.url, spec.ref, options);
  const digest = `git-${commit}`;
  return materialise(cacheDir, digest, options, async (tempDir) => {
    const src = path.join(tempDir, SOURCE_SUBDIR);
    const git = (args: string[], cwd = src) =>
      runTool('git', args, { cwd, env: options.env, signal: options.signal, code: 'E_EDK2_GIT_FAILED' });
    // Submodules of a local repository are local too; git >= 2.38.1 refuses file:// for them unless allowed.
    const fileProtocol = isLocalGitUrl(spec.url) ? ['-c', 'protocol.file.allow=always'] : [];
    await mkdir(src);
    await git(['init', '-q']);
    await git(['remote', 'add', 'origin', spec.url]);
    options.logger.info({ url: spec.url, ref: spec.ref, commit }, 'edk2 source: git fetch');
    await git([
      ...fileProtocol,
      'fetch',
      '-q',
      '--depth',
      '1',
      'origin',
      COMMIT_HEX.test(spec.ref) ? commit : spec.ref,
    ]);
    const fetched = (await git(['rev-parse', 'FETCH_HEAD^{commit}'])).stdout.trim();
    if (fetched !== commit) {
      throw new Edk2Error(
        'E_EDK2_GIT_FAILED',
        `${spec.url} ${spec.ref} moved while fetching: ${commit} -> ${fetched}; run again`,
        { url: spec.url, ref: spec.ref, expected: commit, actual: fetched },
      );
    }
    await git(['-c', 'advice.detachedHead=false', 'checkout', '-q', '--detach', commit]);
    await git([...fileProtocol, 'submodule', 'update', '-q', '--init', '--recursive', '--depth', '1']);
    const committedAt = (await git(['log', '-1', '--format=%cI', commit])).stdout.trim();
    await removeGitMetadata(src);
    return {
      description: `EDK2 git ${spec.url} ${spec.ref} (commit ${commit.slice(0, 12)})`,
      details: { kind: 'git', url: spec.url, ref: spec.ref, commit, committedAt },
    };
  });
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
