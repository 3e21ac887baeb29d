// EDK2 from a git repository at a branch, tag or commit: the ref is resolved to a commit first
// (ls-remote, no clone), the commit names the cache entry, and a shallow fetch with submodules
// fills it; the checkout keeps no .git.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { Edk2Error } from '../errors.js';
import type { AcquireSourceOptions, Edk2Source } from '../source.js';
import { materialise, SOURCE_SUBDIR } from './cache.js';
import { runTool } from './run-tool.js';
import { removeGitMetadata } from './tree.js';

const COMMIT_HEX = /^[0-9a-f]{40}$/;

/** Resolves `ref` (branch, tag or commit) to a commit id with ls-remote, without cloning. */
export async function resolveGitRef(
  url: string,
  ref: string,
  options: Pick<AcquireSourceOptions, 'env' | 'signal'>,
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

export async function acquireGit(
  spec: { readonly url: string; readonly ref: string },
  cacheDir: string,
  options: AcquireSourceOptions,
): Promise<Edk2Source> {
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
