// Issue 11, "Done means", with real parts: `ovmf-build nightly` over two recipes whose pinned
// inputs come from a local mirror of the corpus, each through the real pipeline (warm EDK2
// build in a container, structural and QEMU checks, cache, signed publish); the rerun of the
// finished night builds nothing and reports only cache hits. The runner's queue, locks, retries
// and crash recovery are covered with a stand-in job in test/nightly-*.test.ts.
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NightlySummary } from '../src/nightly/types.js';
import { verifyArtifact } from '../src/publish/index.js';
import { loadRecipe } from '../src/jobs/recipe.js';
import { REPO_ROOT } from './corpus.js';
import { runCli } from './cli-harness.js';
import { isolatedCliEnv, warmWorkspace } from './harness.js';
import { serveCorpusMirror, type CorpusMirror } from './nightly-mirror.js';

/** The warm workspace's own GOP and VBT, and a variant with another generation's GOP and VBT. */
const RECIPES = ['cometlake.json', 'alderlake-n.json'];

let dir: string;
let env: NodeJS.ProcessEnv;
let mirror: CorpusMirror;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'ovmf-nightly-int-'));
  await warmWorkspace();
  mirror = await serveCorpusMirror();
  // A fresh build cache, but the user's unpacked EDK2 sources (read-only input keyed by digest).
  env = await isolatedCliEnv(dir);
  await mkdir(path.join(dir, 'recipes'));
  for (const file of RECIPES)
    await copyFile(path.join(REPO_ROOT, 'recipes', file), path.join(dir, 'recipes', file));
});

afterAll(async () => {
  await mirror[Symbol.asyncDispose]();
  await rm(dir, { recursive: true, force: true });
});

async function nightly(): Promise<{ code: number; summary: NightlySummary; stderr: string }> {
  const {
    code,
    stdout: text,
    stderr,
  } = await runCli(['nightly', 'recipes', '--base-url', mirror.baseUrl, '--json'], dir, env);
  return {
    code,
    summary: (code === 0 ? JSON.parse(text) : { text }) as NightlySummary,
    stderr,
  };
}

describe('ovmf-build nightly (real builds)', () => {
  let first: NightlySummary;

  it('builds, verifies and publishes a signed artifact per recipe', async () => {
    const run = await nightly();
    expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 0, stderr: '' });
    first = run.summary;
    expect(first.counts).toEqual({ recipes: 2, succeeded: 2, failed: 0, cacheHits: 0, built: 2 });
    expect(first.recipes.map((r) => [r.recipe, r.status, r.cache, r.attempts])).toEqual([
      ['alderlake-n', 'succeeded', 'miss', 1],
      ['cometlake', 'succeeded', 'miss', 1],
    ]);
    for (const r of first.recipes) {
      const dirName = r.artifactDir as string;
      expect(path.dirname(path.dirname(dirName))).toBe(path.join(dir, 'artifacts'));
      // Throws unless the signature and every digest check out.
      const check = await verifyArtifact(dirName);
      const recipe = await loadRecipe(path.join(dir, 'recipes', `${r.recipe}.json`), {
        baseUrl: mirror.baseUrl,
      });
      const inputs = check.manifest['inputs'] as Record<'gop' | 'vbt', { sha256: string; origin: unknown }>;
      const pinned = (input: { sha256: string; origin: unknown }) => ({
        sha256: input.sha256,
        origin: input.origin,
      });
      expect([r.recipe, pinned(inputs.gop), pinned(inputs.vbt)]).toEqual([
        r.recipe,
        {
          sha256: recipe.gop.sha256,
          origin: { kind: 'url', url: 'url' in recipe.gop ? recipe.gop.url : null },
        },
        {
          sha256: recipe.vbt.sha256,
          origin: { kind: 'url', url: 'url' in recipe.vbt ? recipe.vbt.url : null },
        },
      ]);
    }
  });

  it('a rerun of the finished night only reports cache hits', async () => {
    const run = await nightly();
    expect(run.code).toBe(0);
    expect(run.summary.counts).toEqual({ recipes: 2, succeeded: 2, failed: 0, cacheHits: 2, built: 0 });
    expect(run.summary.recipes.map((r) => [r.recipe, r.jobId, r.artifactDir])).toEqual(
      first.recipes.map((r) => [r.recipe, r.jobId, r.artifactDir]),
    );
  });
});
