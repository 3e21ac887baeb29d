// The layer boundaries in eslint.config.js, run through ESLint itself on
// source text under the paths it would have: if a rule is dropped or its file
// globs stop matching, these fail (a boundary that silently vanished would
// otherwise look like a clean lint).
import path from 'node:path';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const repoRoot = path.resolve(import.meta.dirname, '..');
const eslint = new ESLint({ cwd: repoRoot });

/** The restricted-import messages ESLint reports for `source` as if it lived at `relativePath`. */
async function restricted(relativePath: string, source: string): Promise<string[]> {
  // lintText with a filePath applies the config for that path without writing a file into
  // a directory other people are editing.
  const [result] = await eslint.lintText(source, { filePath: path.join(repoRoot, relativePath) });
  expect(result?.fatalErrorCount).toBe(0);
  return (result?.messages ?? [])
    .filter((message) => message.ruleId === 'no-restricted-imports')
    .map((message) => message.message.split('\n')[0] ?? '');
}

/** Source text importing each module (namespace imports, all used, so only the boundary rule can fire). */
const importing = (...modules: string[]): string =>
  `${modules.map((name, index) => `import * as m${index} from '${name}';`).join('\n')}\nexport const probe = [${modules.map((_, index) => `m${index}`).join(', ')}];\n`;

const restrictedBy = (name: string, message: string): string =>
  `'${name}' import is restricted from being used. ${message}`;
const ENGINE = 'only src/container imports the engine client and tar-stream: use src/container/index.ts';
const HTTP = 'only src/fetch imports undici: use src/fetch/index.ts';
const IO = 'parsers and core types take bytes and do no I/O (STYLE.md)';
const S3 = 'only src/mirror/s3* imports @aws-sdk: use src/mirror/s3-push.ts';
const QUEUE = 'only src/queue imports bullmq and ioredis: use src/queue/index.ts';
const ZIP = 'only src/vendor imports yauzl: use src/vendor/open-package.ts';

describe('layer boundaries (eslint.config.js)', () => {
  it.each([
    ['src/formats/lint-probe.ts', ['node:fs'], [restrictedBy('node:fs', IO)]],
    [
      'test/lint-probe.test.ts',
      ['tar-stream', 'dockerode'],
      [restrictedBy('tar-stream', ENGINE), restrictedBy('dockerode', ENGINE)],
    ],
    [
      'src/cli/lint-probe.ts',
      ['undici', 'undici/types'],
      [
        restrictedBy('undici', HTTP),
        "'undici/types' import is restricted from being used by a pattern. see the layer rules in eslint.config.js",
      ],
    ],
    ['src/fetch/lint-probe.ts', ['undici', 'undici/types'], []],
    ['src/container/lint-probe.ts', ['tar-stream', 'dockerode'], []],
    ['src/mirror/lint-probe.ts', ['@aws-sdk/client-s3'], [restrictedBy('@aws-sdk/client-s3', S3)]],
    ['src/mirror/s3-lint-probe.ts', ['@aws-sdk/client-s3'], []],
    [
      'src/cli/lint-probe.ts',
      ['bullmq', 'ioredis'],
      [restrictedBy('bullmq', QUEUE), restrictedBy('ioredis', QUEUE)],
    ],
    ['src/queue/lint-probe.ts', ['bullmq', 'ioredis'], []],
    ['src/formats/lint-probe.ts', ['yauzl'], [restrictedBy('yauzl', ZIP)]],
    ['test/lint-probe.test.ts', ['yauzl'], [restrictedBy('yauzl', ZIP)]],
    ['src/vendor/lint-probe.ts', ['yauzl'], []],
    // Tests use the container layer's exports and may read files.
    ['test/lint-probe.test.ts', ['../src/container/index.js', 'node:fs'], []],
  ])('%s importing %j', async (relativePath, modules, expected) => {
    expect(await restricted(relativePath, importing(...modules))).toEqual(expected);
  });
});
