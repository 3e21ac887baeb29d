// Issue 11 item 4 with real parts: a redis-server of the test's own, two `ovmf-build worker`
// processes (bin/ovmf-build.js) sharing one artifact store, and `ovmf-build nightly --queue`
// enqueuing recipes whose inputs come from a local corpus mirror; every job runs the real
// pipeline (warm EDK2 build in a container, structural and QEMU checks, cache, signed publish).
// The enqueuer and the workers have cache directories of their own, as on separate hosts: the
// enqueuer downloads inputs to compute the keys, each worker downloads them again to build.
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runNightlyCommand } from '../src/cli/commands/nightly.js';
import type { NightlySummary } from '../src/nightly/types.js';
import { verifyArtifact } from '../src/publish/index.js';
import { queueJobFacts } from '../src/queue/index.js';
import { loadRecipe, type GopVbtRecipe } from '../src/jobs/recipe.js';
import { captureContext } from './cli-harness.js';
import { REPO_ROOT } from './corpus.js';
import type { CorpusMirror } from './nightly-mirror.js';
import {
  serveFlakyMirror,
  waitFor,
  type FlakyMirror,
  type RedisServer,
  type WorkerProcess,
} from './queue-harness.js';
import { startQueueRig, type QueueRig } from './queue-rig.js';

let dir: string;
let redis: RedisServer;
let corpus: CorpusMirror;
let mirror: FlakyMirror;
let enqueuerEnv: NodeJS.ProcessEnv;
let workers: WorkerProcess[];
let rig: QueueRig;

/** Lock of a job in the test: a killed worker's job is back in the queue within about 1.5 times it. */
const LOCK_SECONDS = 10;

beforeAll(async () => {
  rig = await startQueueRig('ovmf-queue-int-', LOCK_SECONDS);
  ({ dir, redis, corpus, enqueuerEnv, workers } = rig);
  mirror = await serveFlakyMirror(corpus.baseUrl);
});

afterAll(async () => {
  await mirror?.[Symbol.asyncDispose]();
  await rig?.close();
});

/** A recipe directory of the test with copies of the repository's recipes. */
const recipeDir = (name: string, recipes: readonly string[]): Promise<string> => rig.recipeDir(name, recipes);

/** `ovmf-build nightly DIR --queue URL --json` in this process (so the retry wait can be short). */
async function nightly(recipes: string): Promise<{ code: number; summary: NightlySummary; stderr: string }> {
  const captured = captureContext(
    [recipes, '--queue', redis.url, '--base-url', mirror.baseUrl, '--json'],
    enqueuerEnv,
    dir,
  );
  const code = await runNightlyCommand(captured.ctx, {}, { backoffMs: () => 1_000 });
  return { code, summary: JSON.parse(captured.stdout()) as NightlySummary, stderr: captured.stderr() };
}

/** The mirror path of a recipe input (its URL below the mirror's base). */
async function inputPath(file: string, field: 'gop' | 'vbt'): Promise<string> {
  const recipe = (await loadRecipe(path.join(REPO_ROOT, 'recipes', file), {
    baseUrl: mirror.baseUrl,
  })) as GopVbtRecipe;
  const spec = recipe[field];
  if (!('url' in spec)) throw new Error(`${file} ${field} is not a URL`);
  return spec.url.slice(mirror.baseUrl.length);
}

/** Worker events of one job, from both workers. */
const eventsOf = (jobId: string, type: string) =>
  workers.flatMap((w) => w.events.filter((e) => e['jobId'] === jobId && e['type'] === type));

const rows = (summary: NightlySummary) =>
  summary.recipes.map((r) => [r.recipe, r.status, r.cache, r.attempts, r.errorCode]);

describe('nightly --queue with two workers (BullMQ on a real Redis)', () => {
  it('enqueuing the same matrix twice builds each job once', async () => {
    const recipes = await recipeDir('recipes-twice', ['cometlake.json', 'alderlake-n.json']);
    const [first, second] = await Promise.all([nightly(recipes), nightly(recipes)]);
    for (const run of [first, second]) {
      expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 0, stderr: '' });
    }
    // Each job runs once, but for retries of a transient failure (exit 7, 8 or 9) that its worker
    // reported: under load a build can fail that way (a rehearsal beside two clean builds once
    // retried cometlake) and BullMQ's attempts run it again; that is a retry, not a second build
    // of a joined job. What failed is printed.
    const retriesOf = (jobId: string): Record<string, unknown>[] =>
      eventsOf(jobId, 'failed').filter((e) => e['retry'] === true);
    const attemptsOf = (jobId: string): number => 1 + retriesOf(jobId).length;
    for (const r of first.summary.recipes) {
      for (const event of retriesOf(r.jobId as string)) {
        console.log(`${r.recipe}: transient failure retried: ${JSON.stringify(event['failure'])}`);
        expect([7, 8, 9]).toContain((event['failure'] as { exitCode: number }).exitCode);
      }
    }
    const firstRows = rows(first.summary);
    expect(firstRows).toEqual(
      first.summary.recipes.map((r) => [r.recipe, 'succeeded', 'miss', attemptsOf(r.jobId as string), null]),
    );
    expect(firstRows.map((row) => row[0])).toEqual(['alderlake-n', 'cometlake']);
    // Both enqueues joined the same two jobs: same ids, same published versions.
    expect(second.summary.recipes.map((r) => [r.jobId, r.artifactDir])).toEqual(
      first.summary.recipes.map((r) => [r.jobId, r.artifactDir]),
    );
    for (const r of first.summary.recipes) {
      const jobId = r.jobId as string;
      expect(jobId).toMatch(new RegExp(`^${r.recipe}-[0-9a-f]{16}$`));
      // One start per attempt and one completion over both workers, never a stalled job.
      const attempts = attemptsOf(jobId);
      expect([eventsOf(jobId, 'start').length, eventsOf(jobId, 'completed').length]).toEqual([attempts, 1]);
      expect(await queueJobFacts(new URL(redis.url), jobId)).toMatchObject({
        state: 'completed',
        attemptsStarted: attempts,
        attemptsMade: attempts,
        stalledCounter: 0,
      });
      await verifyArtifact(r.artifactDir as string);
    }
    // A third enqueue of the finished night runs nothing and reports cache hits.
    const third = await nightly(recipes);
    expect(third.code).toBe(0);
    expect(third.summary.counts).toEqual({ recipes: 2, succeeded: 2, failed: 0, cacheHits: 2, built: 0 });
    for (const r of first.summary.recipes) {
      expect(eventsOf(r.jobId as string, 'start')).toHaveLength(attemptsOf(r.jobId as string));
    }
  });

  it('kill -9 of a worker mid-job: the other worker completes it, nothing partial is published', async () => {
    const recipes = await recipeDir('recipes-kill', ['kabylake.json']);
    let settled = false;
    const run = nightly(recipes).finally(() => (settled = true));
    // The job's build has started on one worker: kill that worker.
    const [victim, jobId] = await waitFor(
      'a worker to start building',
      () => {
        if (settled) return [null, null] as const;
        for (const worker of workers) {
          const phase = worker.events.find(
            (e) =>
              e['type'] === 'phase' && e['phase'] === 'build' && String(e['jobId']).startsWith('kabylake-'),
          );
          if (phase !== undefined) {
            return [worker, phase['jobId'] as string] as const;
          }
        }
        return undefined;
      },
      300_000,
    );
    if (victim === null)
      throw new Error(`the night ended before a build started: ${JSON.stringify(await run)}`);
    const survivor = workers.find((w) => w !== victim) as WorkerProcess;
    victim.child.kill('SIGKILL');
    expect(await victim.exited).toBeNull();
    const { code, summary } = await run;
    expect(code).toBe(0);
    expect(rows(summary)).toEqual([['kabylake', 'succeeded', 'miss', 1, null]]);
    expect(summary.recipes[0]?.recovered).toBe(true);
    const facts = await queueJobFacts(new URL(redis.url), jobId);
    expect(facts).toMatchObject({
      state: 'completed',
      stalledCounter: 1,
      attemptsStarted: 2,
      processedBy: expect.stringMatching(new RegExp(`:${survivor.pid}$`)) as unknown,
    });
    expect(survivor.events.filter((e) => e['jobId'] === jobId && e['type'] === 'completed')).toHaveLength(1);
    // The store holds the survivor's version and `latest`, and it verifies; a killed writer's
    // temp dir (.tmp-<pid>-...) is never a version.
    const artifactDir = summary.recipes[0]?.artifactDir as string;
    const nameDir = path.dirname(artifactDir);
    const entries = (await readdir(nameDir)).filter((name) => !name.startsWith('.tmp-')).sort();
    expect(entries).toEqual([path.basename(artifactDir), 'latest'].sort());
    await verifyArtifact(artifactDir);
  });

  it('a job that fails transiently twice succeeds on its third attempt', async () => {
    const recipes = await recipeDir('recipes-flaky', ['skylake.json']);
    // Request 1 is the enqueuer's (its key); the workers' first two downloads get 503.
    const vbt = await inputPath('skylake.json', 'vbt');
    mirror.failRequests(vbt, [2, 3]);
    const { code, summary } = await nightly(recipes);
    expect(code).toBe(0);
    expect(rows(summary)).toEqual([['skylake', 'succeeded', 'miss', 3, null]]);
    expect(mirror.answers.get(vbt)).toEqual([200, 503, 503, 200]);
    const jobId = summary.recipes[0]?.jobId as string;
    expect(
      eventsOf(jobId, 'failed').map((e) => [(e['failure'] as { code: string }).code, e['retry']]),
    ).toEqual([
      ['E_FETCH_HTTP_STATUS', true],
      ['E_FETCH_HTTP_STATUS', true],
    ]);
    expect(await queueJobFacts(new URL(redis.url), jobId)).toMatchObject({
      state: 'completed',
      attemptsMade: 3,
    });
    await verifyArtifact(summary.recipes[0]?.artifactDir as string);
  });

  it('invalid input fails once, without retries, with its error code in the summary', async () => {
    const recipes = path.join(dir, 'recipes-invalid');
    await mkdir(recipes);
    // The Comet Lake recipe with its GOP driver pinned as the VBT: the bytes are what the
    // recipe pins, and they are not a VBT.
    const good = JSON.parse(await readFile(path.join(REPO_ROOT, 'recipes', 'cometlake.json'), 'utf8')) as {
      gop: unknown;
    };
    await writeFile(
      path.join(recipes, 'not-a-vbt.json'),
      JSON.stringify({ name: 'not-a-vbt', gop: good.gop, vbt: good.gop, device: '8086:9b41' }),
    );
    const { code, summary } = await nightly(recipes);
    expect(code).toBe(6);
    expect(summary.counts).toEqual({ recipes: 1, succeeded: 0, failed: 1, cacheHits: 0, built: 0 });
    const [report] = summary.recipes;
    expect([report?.status, report?.attempts, report?.exitCode, report?.jobId]).toEqual([
      'failed',
      1,
      6,
      null,
    ]);
    expect(report?.errorCode).toMatch(/^E_(VBT|INPUT)_/);
    // Invalid input never reaches the queue: the enqueuer refuses it while computing its key, so
    // no worker ever started a job of it.
    expect(
      workers.flatMap((w) => w.events.filter((e) => String(e['jobId']).startsWith('not-a-vbt-'))),
    ).toEqual([]);
  });
});
