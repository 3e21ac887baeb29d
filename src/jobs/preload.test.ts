import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = path.resolve(import.meta.dirname, '..');
/** A dynamic import of one of our modules (not `typeof import(…)`, which loads nothing). */
const LAZY = /(?<!typeof )\bimport\('(\.{1,2}\/[^']+)'\)/g;

/** The modules a file loads with `import('./…')`, as paths relative to src/. */
async function lazyImports(file: string): Promise<string[]> {
  const text = await readFile(file, 'utf8');
  return [...text.matchAll(LAZY)].map((m) =>
    path.relative(SRC, path.resolve(path.dirname(file), m[1] as string)),
  );
}

describe('preloadJobModules', () => {
  it('loads exactly the modules the job pipeline imports on first use', async () => {
    // The job pipeline: src/jobs and the input resolver it calls (src/fetch/resolve-input.ts).
    const jobFiles = (await readdir(path.join(SRC, 'jobs')))
      .filter((name) => name.endsWith('.ts') && !name.endsWith('.test.ts') && name !== 'preload.ts')
      .map((name) => path.join(SRC, 'jobs', name));
    jobFiles.push(path.join(SRC, 'fetch', 'resolve-input.ts'));
    const used = new Set((await Promise.all(jobFiles.map(lazyImports))).flat());
    const preloaded = await lazyImports(path.join(SRC, 'jobs', 'preload.ts'));
    expect(used.size).toBeGreaterThan(10);
    expect([...new Set(preloaded)].sort()).toEqual([...used].sort());
    expect(preloaded).toHaveLength(new Set(preloaded).size);
  });

  it('resolves once every module is evaluated', async () => {
    const { preloadJobModules } = await import('./preload.js');
    await expect(preloadJobModules()).resolves.toBeUndefined();
  });
});
