import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listCachedEdk2Sources } from '../../test/edk2-source-cache.js';
import { acquireEdk2Source } from './source.js';
import { resolveGitRef } from './source/git.js';
import { applySourceQuirks } from './source/tree.js';

const logger = pino({ level: 'silent' });
let work: string;

/** A minimal tree with the files acquisition checks for, and the brotli quirk. */
async function writeFakeEdk2(root: string, marker: string): Promise<void> {
  const files: Record<string, string> = {
    'edksetup.sh': '# fake edksetup\n',
    'BaseTools/GNUmakefile': 'all:\n',
    'OvmfPkg/OvmfPkgX64.dsc': `[Components]\r\n  OvmfPkg/PlatformDxe/Platform.inf\r\n# ${marker}\r\n`,
    'OvmfPkg/OvmfPkgX64.fdf': '[FV.DXEFV]\r\nINF  OvmfPkg/PlatformDxe/Platform.inf\r\n',
    'MdeModulePkg/Library/BrotliCustomDecompressLib/brotli/c/common/constants.h': '/* brotli */\n',
  };
  for (const [file, text] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(root, file)), { recursive: true });
    await writeFile(path.join(root, file), text);
  }
  await mkdir(path.join(root, 'BaseTools/Source/C/BrotliCompress/brotli'), { recursive: true });
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** A fake EDK2 tree under `<work>/<name>/<top>`, packed into `<work>/<file>` (gzip for .gz). */
async function packFakeEdk2(
  name: string,
  file: string,
  top = 'edk2',
): Promise<{ tarball: string; digest: string }> {
  const tree = path.join(work, name, top);
  await writeFakeEdk2(tree, name);
  const tarball = path.join(work, file);
  execFileSync('tar', [file.endsWith('.gz') ? '-czf' : '-cf', tarball, '-C', path.dirname(tree), top]);
  return { tarball, digest: sha256(await readFile(tarball)) };
}

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'ovmf-build-source-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('tarball source', () => {
  it('verifies the digest, unpacks once, fixes the brotli quirk and writes the marker last', async () => {
    const { tarball, digest } = await packFakeEdk2('tar-tree', 'edk2.tar.gz', 'edk2-test');
    const cacheDir = path.join(work, 'cache-tar');

    const source = await acquireEdk2Source(
      { kind: 'tarball', path: tarball, sha256: digest },
      { env: process.env, logger, cacheDir },
    );
    expect(source).toEqual({
      dir: path.join(cacheDir, `sha256-${digest}`, 'src'),
      digest: `sha256-${digest}`,
      description: `EDK2 tarball edk2.tar.gz (sha256 ${digest.slice(0, 12)})`,
      details: {
        kind: 'tarball',
        origin: tarball,
        sha256: digest,
        quirks:
          'BaseTools/Source/C/BrotliCompress/brotli <- MdeModulePkg/Library/BrotliCustomDecompressLib/brotli',
      },
    });
    expect(
      await readFile(
        path.join(source.dir, 'BaseTools/Source/C/BrotliCompress/brotli/c/common/constants.h'),
        'utf8',
      ),
    ).toBe('/* brotli */\n');
    expect((await readdir(cacheDir)).sort()).toEqual([`sha256-${digest}`]);
    expect((await readdir(path.dirname(source.dir))).sort()).toEqual([
      '.ovmf-build-complete',
      'source.json',
      'src',
    ]);

    // Second call: served from the cache even when the tarball is gone.
    await rm(tarball);
    const again = await acquireEdk2Source(
      { kind: 'tarball', path: tarball, sha256: digest },
      { env: process.env, logger, cacheDir },
    );
    expect(again).toEqual(source);
    expect(await listCachedEdk2Sources(cacheDir)).toEqual([source]);
  });

  it('rejects a wrong digest and leaves nothing in the cache', async () => {
    const { tarball } = await packFakeEdk2('tar-bad', 'bad.tar');
    const cacheDir = path.join(work, 'cache-bad');
    const wrong = '0'.repeat(64);
    await expect(
      acquireEdk2Source(
        { kind: 'tarball', path: tarball, sha256: wrong },
        { env: process.env, logger, cacheDir },
      ),
    ).rejects.toMatchObject({
      code: 'E_EDK2_SOURCE_DIGEST_MISMATCH',
      details: { path: tarball, expected: wrong, actual: sha256(await readFile(tarball)) },
    });
    expect(await readdir(cacheDir)).toEqual([]);
    await expect(
      acquireEdk2Source(
        { kind: 'tarball', path: tarball, sha256: 'ABC' },
        { env: process.env, logger, cacheDir },
      ),
    ).rejects.toThrow(new TypeError('Expected `sha256` to be 64 lower-case hex digits, got `ABC`'));
  });

  it('rejects a tarball that is not an EDK2 tree, leaving no half-unpacked entry', async () => {
    const dir = path.join(work, 'not-edk2', 'thing');
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'README'), 'hello\n');
    const tarball = path.join(work, 'not-edk2.tar');
    execFileSync('tar', ['-cf', tarball, '-C', path.dirname(dir), 'thing']);
    const cacheDir = path.join(work, 'cache-not');
    await expect(
      acquireEdk2Source(
        { kind: 'tarball', path: tarball, sha256: sha256(await readFile(tarball)) },
        { env: process.env, logger, cacheDir },
      ),
    ).rejects.toMatchObject({
      code: 'E_EDK2_NOT_A_SOURCE_TREE',
      details: {
        missing: ['edksetup.sh', 'BaseTools/GNUmakefile', 'OvmfPkg/OvmfPkgX64.dsc', 'OvmfPkg/OvmfPkgX64.fdf'],
      },
    });
    expect(await readdir(cacheDir)).toEqual([]);
  });

  it('ignores an entry without the completion marker and rebuilds it', async () => {
    const { tarball, digest } = await packFakeEdk2('tar-half', 'half.tar');
    const cacheDir = path.join(work, 'cache-half');
    const entry = path.join(cacheDir, `sha256-${digest}`);
    await mkdir(path.join(entry, 'src'), { recursive: true });
    await writeFile(path.join(entry, 'src', 'garbage'), 'half-written\n');
    expect(await listCachedEdk2Sources(cacheDir)).toEqual([]);
    const source = await acquireEdk2Source(
      { kind: 'tarball', path: tarball, sha256: digest },
      { env: process.env, logger, cacheDir },
    );
    expect((await readdir(source.dir)).sort()).toEqual([
      'BaseTools',
      'MdeModulePkg',
      'OvmfPkg',
      'edksetup.sh',
    ]);
  });
  it('gives one entry when two processes acquire the same tarball at once', async () => {
    const { tarball, digest } = await packFakeEdk2('tar-race', 'race.tar');
    const cacheDir = path.join(work, 'cache-race');
    const acquire = () =>
      acquireEdk2Source(
        { kind: 'tarball', path: tarball, sha256: digest },
        { env: process.env, logger, cacheDir },
      );
    const [a, b] = await Promise.all([acquire(), acquire()]);
    expect(b).toEqual(a);
    expect(a.dir).toBe(path.join(cacheDir, `sha256-${digest}`, 'src'));
    expect(await readdir(cacheDir)).toEqual([`sha256-${digest}`]);
    expect(await listCachedEdk2Sources(cacheDir)).toEqual([a]);
  });
});

describe('git source', () => {
  let repo: string;
  let commit: string;
  const git = (cwd: string, ...args: string[]): string =>
    execFileSync(
      'git',
      [
        '-c',
        'user.name=t',
        '-c',
        'user.email=t@example.invalid',
        '-c',
        'protocol.file.allow=always',
        ...args,
      ],
      {
        cwd,
        encoding: 'utf8',
      },
    ).trim();

  beforeAll(async () => {
    // A submodule carrying the brotli sources, as upstream EDK2 has.
    const sub = path.join(work, 'brotli-sub');
    await mkdir(path.join(sub, 'c/common'), { recursive: true });
    await writeFile(path.join(sub, 'c/common/constants.h'), '/* brotli from submodule */\n');
    git(sub, 'init', '-q', '-b', 'main');
    git(sub, 'add', '.');
    git(sub, 'commit', '-q', '-m', 'brotli');

    repo = path.join(work, 'edk2-repo');
    await writeFakeEdk2(repo, 'git');
    await rm(path.join(repo, 'BaseTools/Source/C/BrotliCompress/brotli'), { recursive: true });
    git(repo, 'init', '-q', '-b', 'main');
    git(repo, 'add', '.');
    git(repo, 'submodule', 'add', '-q', sub, 'BaseTools/Source/C/BrotliCompress/brotli');
    git(repo, 'commit', '-q', '-m', 'fake edk2');
    git(repo, 'tag', '-a', 'edk2-stable-test', '-m', 'annotated');
    commit = git(repo, 'rev-parse', 'HEAD');
    await writeFile(path.join(repo, 'later.txt'), 'later\n');
    git(repo, 'add', 'later.txt');
    git(repo, 'commit', '-q', '-m', 'later');
  });

  it('resolves branches, annotated tags and commit ids, and fails on unknown refs', async () => {
    const options = { env: process.env, logger };
    expect(await resolveGitRef(repo, 'edk2-stable-test', options)).toBe(commit);
    expect(await resolveGitRef(repo, 'main', options)).toBe(git(repo, 'rev-parse', 'main'));
    expect(await resolveGitRef(repo, commit, options)).toBe(commit);
    await expect(resolveGitRef(repo, 'no-such-ref', options)).rejects.toMatchObject({
      code: 'E_EDK2_GIT_REF_NOT_FOUND',
      details: { url: repo, ref: 'no-such-ref' },
    });
  });

  it('checks out the tag with submodules, drops .git, keys the entry by commit', async () => {
    const cacheDir = path.join(work, 'cache-git');
    const source = await acquireEdk2Source(
      { kind: 'git', url: repo, ref: 'edk2-stable-test' },
      { env: process.env, logger, cacheDir },
    );
    expect(source.digest).toBe(`git-${commit}`);
    expect(source.description).toBe(`EDK2 git ${repo} edk2-stable-test (commit ${commit.slice(0, 12)})`);
    expect(source.details).toMatchObject({ kind: 'git', url: repo, ref: 'edk2-stable-test', commit });
    expect(source.details).not.toHaveProperty('quirks');
    expect(
      await readFile(
        path.join(source.dir, 'BaseTools/Source/C/BrotliCompress/brotli/c/common/constants.h'),
        'utf8',
      ),
    ).toBe('/* brotli from submodule */\n');
    expect((await readdir(source.dir)).sort()).toEqual([
      '.gitmodules',
      'BaseTools',
      'MdeModulePkg',
      'OvmfPkg',
      'edksetup.sh',
    ]);
    expect(await readdir(path.join(source.dir, 'BaseTools/Source/C/BrotliCompress/brotli'))).toEqual(['c']);
  });
});

describe('applySourceQuirks', () => {
  it('removes symlinks that leave the tree and keeps those inside it', async () => {
    const root = path.join(work, 'quirk-links');
    await writeFakeEdk2(root, 'links');
    await writeFile(path.join(root, 'BaseTools/Source/C/BrotliCompress/brotli/own.h'), 'own\n');
    await mkdir(path.join(root, 'EmulatorPkg/Unix/Host'), { recursive: true });
    await symlink('/opt/X11/include', path.join(root, 'EmulatorPkg/Unix/Host/X11IncludeHack'));
    await symlink('../../../edksetup.sh', path.join(root, 'EmulatorPkg/Unix/Host/escape'));
    await symlink('../../../../edksetup.sh', path.join(root, 'EmulatorPkg/Unix/Host/escape-more'));
    await symlink('../../Unix', path.join(root, 'EmulatorPkg/Unix/Host/inside'));
    expect(await applySourceQuirks(root)).toEqual([
      'removed symlink EmulatorPkg/Unix/Host/X11IncludeHack (points outside the tree)',
      'removed symlink EmulatorPkg/Unix/Host/escape-more (points outside the tree)',
    ]);
    expect((await readdir(path.join(root, 'EmulatorPkg/Unix/Host'))).sort()).toEqual(['escape', 'inside']);
  });

  it('leaves a tree with brotli in place untouched', async () => {
    const root = path.join(work, 'quirk-none');
    await writeFakeEdk2(root, 'q');
    await writeFile(path.join(root, 'BaseTools/Source/C/BrotliCompress/brotli/own.h'), 'own\n');
    expect(await applySourceQuirks(root)).toEqual([]);
    expect(await readdir(path.join(root, 'BaseTools/Source/C/BrotliCompress/brotli'))).toEqual(['own.h']);
  });
});

describe('argument validation', () => {
  it('throws TypeError for malformed specs', async () => {
    const options = { env: process.env, logger, cacheDir: path.join(work, 'cache-args') };
    await expect(
      acquireEdk2Source({ kind: 'git', url: '--upload-pack=x', ref: 'main' }, options),
    ).rejects.toThrow(TypeError);
    await expect(acquireEdk2Source({ kind: 'git', url: 'x', ref: '-x' }, options)).rejects.toThrow(TypeError);
    await expect(
      acquireEdk2Source({ kind: 'tarball', url: 'ftp://x/y', sha256: '0'.repeat(64) }, options),
    ).rejects.toThrow(new TypeError('Expected `url` to be an http(s) URL, got `ftp://x/y`'));
    await expect(acquireEdk2Source({ kind: 'svn' } as never, options)).rejects.toThrow(
      new TypeError("Expected `source.kind` to be 'debian', 'tarball' or 'git', got `svn`"),
    );
  });
});
