// `ovmf-build nightly` over the shipped recipes with the real pipeline (inputs fetched from a
// local mirror and checked against their pins, key, cache, lock, publish, signature) and a
// stand-in build and verify stage (test/cache-stand-in.ts): every recipe is published once, a
// rerun is all cache hits, and a mirror serving wrong bytes fails each recipe with exit 7 after
// 3 attempts. Real EDK2 builds and QEMU boots: test/nightly.int.test.ts.
import { copyFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runNightlyCommand } from '../src/cli/commands/nightly.js';
import { STAGES, type PipelineStages } from '../src/jobs/pipeline.js';
import { verifyArtifact } from '../src/publish/index.js';
import type { NightlySummary } from '../src/nightly/types.js';
import { isolatedEnv, StandInBuild } from './cache-stand-in.js';
import { captureContext } from './cli-harness.js';
import { REPO_ROOT } from './corpus.js';
import { serveCorpusMirror, type CorpusMirror } from './nightly-mirror.js';

let mirror: CorpusMirror;
let dir: string;
let env: NodeJS.ProcessEnv;
beforeAll(async () => {
  mirror = await serveCorpusMirror();
  dir = await mkdtemp(path.join(tmpdir(), 'ovmf-nightly-cmd-'));
  env = isolatedEnv(dir);
});
afterAll(async () => {
  await mirror[Symbol.asyncDispose]();
  await rm(dir, { recursive: true, force: true });
});

type Printed = NightlySummary & { files: { json: string; markdown: string } };

async function nightly(
  build: StandInBuild,
  argv: readonly string[],
  environment: NodeJS.ProcessEnv = env,
): Promise<{ code: number; summary: Printed }> {
  const captured = captureContext(['--base-url', mirror.baseUrl, '--json', ...argv], environment, dir);
  const code = await runNightlyCommand(captured.ctx, build.stages, { backoffMs: () => 10 });
  return { code, summary: JSON.parse(captured.stdout()) as Printed };
}

describe('ovmf-build nightly (stand-in build)', () => {
  it('publishes a signed artifact per recipe, then reruns as all cache hits', async () => {
    const build = new StandInBuild();
    const recipesDir = path.join(REPO_ROOT, 'recipes');
    const first = await nightly(build, [recipesDir]);
    expect(first.code).toBe(0);
    expect(first.summary.counts).toEqual({ recipes: 13, succeeded: 13, failed: 0, cacheHits: 0, built: 13 });
    expect(build.builds).toBe(13);
    for (const r of first.summary.recipes) {
      expect([r.recipe, r.status, r.attempts, r.jobId?.startsWith(`${r.recipe}-`), r.jobId?.length]).toEqual([
        r.recipe,
        'succeeded',
        1,
        true,
        r.recipe.length + 17,
      ]);
      // verifyArtifact throws unless the signature and every digest check out.
      await verifyArtifact(r.artifactDir as string);
      const dirName = r.artifactDir as string;
      expect([path.basename(path.dirname(dirName)), path.basename(dirName)]).toEqual([
        r.recipe,
        r.artifactVersion,
      ]);
      expect(path.dirname(path.dirname(r.artifactDir as string))).toBe(path.join(dir, 'artifacts'));
    }
    expect(JSON.parse(await readFile(first.summary.files.json, 'utf8'))).toEqual(
      Object.fromEntries(Object.entries(first.summary).filter(([k]) => k !== 'files' && k !== 'logFile')),
    );

    const second = await nightly(build, [recipesDir]);
    expect(second.code).toBe(0);
    expect(second.summary.counts).toEqual({ recipes: 13, succeeded: 13, failed: 0, cacheHits: 13, built: 0 });
    expect(build.builds).toBe(13);
    expect(second.summary.recipes.map((r) => [r.jobId, r.artifactDir])).toEqual(
      first.summary.recipes.map((r) => [r.jobId, r.artifactDir]),
    );
  });

  it("resolves each recipe's inputs once: the key stage's inputs serve the run that follows it", async () => {
    const build = new StandInBuild();
    const recipes = path.join(dir, 'recipes-once');
    await mkdir(recipes);
    // A GOP and VBT recipe, and a vendor firmware one (its extraction is the costly part).
    for (const file of ['cometlake.json', 'geminilake.json']) {
      await copyFile(path.join(REPO_ROOT, 'recipes', file), path.join(recipes, file));
    }
    const resolved: string[] = [];
    const stages: Partial<PipelineStages> = {
      ...build.stages,
      resolveInputs: async (request, context) => {
        const inputs = await STAGES.resolveInputs(request, context);
        resolved.push(inputs.name);
        return inputs;
      },
    };
    // A cache and state of its own: the first test's entries would make these cache hits.
    const fresh = {
      ...env,
      XDG_CACHE_HOME: path.join(dir, 'cache-once'),
      XDG_STATE_HOME: path.join(dir, 'state-once'),
    };
    const captured = captureContext(
      ['--base-url', mirror.baseUrl, '--json', recipes, '--out', 'artifacts-once'],
      fresh,
      dir,
    );
    expect(await runNightlyCommand(captured.ctx, stages)).toBe(0);
    const summary = JSON.parse(captured.stdout()) as Printed;
    expect(summary.recipes.map((r) => [r.recipe, r.status, r.cache])).toEqual([
      ['cometlake', 'succeeded', 'miss'],
      ['geminilake', 'succeeded', 'miss'],
    ]);
    // Once per recipe (key and run), not twice.
    expect(resolved.sort()).toEqual(['cometlake', 'geminilake']);
    expect(build.builds).toBe(2);
  });

  it('a mirror serving wrong bytes: E_DOWNLOAD_DIGEST_MISMATCH, 3 attempts each, exit 7, nothing published', async () => {
    mirror.corrupt = true;
    try {
      const build = new StandInBuild();
      // A fresh download cache: the pinned downloads of the first test would be reused.
      const fresh = {
        ...env,
        XDG_CACHE_HOME: path.join(dir, 'cache-fresh'),
        XDG_STATE_HOME: path.join(dir, 'state-fresh'),
      };
      const { code, summary } = await nightly(
        build,
        [path.join(REPO_ROOT, 'recipes'), '--out', 'other'],
        fresh,
      );
      expect(code).toBe(7);
      expect(build.builds).toBe(0);
      expect(summary.status).toBe('failed');
      expect(
        new Set(
          summary.recipes.map((r) => `${r.status} ${r.attempts} ${r.errorCode} ${r.exitCode} ${r.jobId}`),
        ),
      ).toEqual(new Set(['failed 3 E_DOWNLOAD_DIGEST_MISMATCH 7 null']));
      await expect(readFile(path.join(dir, 'other'))).rejects.toMatchObject({ code: 'ENOENT' });
    } finally {
      mirror.corrupt = false;
    }
  });
});
