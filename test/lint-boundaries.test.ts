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

const ENGINE_MESSAGE =
  'only src/container imports the engine client and tar-stream: use src/container/index.ts';

describe('layer boundaries (eslint.config.js)', () => {
  it('src/formats may not import node:fs', async () => {
    expect(
      await restricted(
        'src/formats/lint-probe.ts',
        "import { readFileSync } from 'node:fs';\nexport const probe = readFileSync;\n",
      ),
    ).toEqual([
      "'node:fs' import is restricted from being used. parsers and core types take bytes and do no I/O (STYLE.md)",
    ]);
  });

  it('a test in test/ may not import tar-stream or dockerode', async () => {
    expect(
      await restricted(
        'test/lint-probe.test.ts',
        "import * as tar from 'tar-stream';\nimport Docker from 'dockerode';\nexport const probe = [tar, Docker];\n",
      ),
    ).toEqual([
      `'tar-stream' import is restricted from being used. ${ENGINE_MESSAGE}`,
      `'dockerode' import is restricted from being used. ${ENGINE_MESSAGE}`,
    ]);
  });

  it('only src/fetch imports undici, also by subpath', async () => {
    const source =
      "import { request } from 'undici';\nimport { Agent } from 'undici/types';\nexport const probe = [request, Agent];\n";
    expect(await restricted('src/cli/lint-probe.ts', source)).toEqual([
      "'undici' import is restricted from being used. only src/fetch imports undici: use src/fetch/index.ts",
      "'undici/types' import is restricted from being used by a pattern. see the layer rules in eslint.config.js",
    ]);
    expect(await restricted('src/fetch/lint-probe.ts', source)).toEqual([]);
  });

  it('the container layer may import dockerode and tar-stream; tests use its exports', async () => {
    expect(
      await restricted(
        'src/container/lint-probe.ts',
        "import * as tar from 'tar-stream';\nimport Docker from 'dockerode';\nexport const probe = [tar, Docker];\n",
      ),
    ).toEqual([]);
    expect(
      await restricted(
        'test/lint-probe.test.ts',
        "import { connectEngine } from '../src/container/index.js';\nimport { readFileSync } from 'node:fs';\nexport const probe = [connectEngine, readFileSync];\n",
      ),
    ).toEqual([]);
  });
});
