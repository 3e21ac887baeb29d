// Issue 11 item 4, the rest of a queued night's life with real parts (test/queue.int.test.ts has
// dedup, kill -9 and transient retries): a redis-server of the test's own, two `ovmf-build
// worker` processes (bin/ovmf-build.js) sharing one artifact store, inputs from a local corpus
// mirror, every job through the real pipeline on the warm or variant path. Here: a worker
// refuses a job with invalid input at once (exit 6, one attempt, nothing published); SIGTERM to
// a worker mid-job hands the job back (exit 143 within its bound, the other worker finishes
// it); and the cron schedule in Redis (BullMQ's upsertJobScheduler) enqueues the matrix, once
// per job however often it fires, leaving out (and reporting) a recipe it cannot key, until it
// is removed.
import { createHash } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runNightlyCommand } from '../src/cli/commands/nightly.js';
import { loadRecipe } from '../src/jobs/recipe.js';
import type { NightlySummary } from '../src/nightly/types.js';
import { verifyArtifact } from '../src/publish/index.js';
import {
  addRecipeJobAt,
  decodeFailure,
  listNightlySchedules,
  nightlyScheduleId,
  queueJobFacts,
  type NightlyScheduleInfo,
  type ScheduleJobResult,
} from '../src/queue/index.js';
import { captureContext } from './cli-harness.js';
import { REPO_ROOT } from './corpus.js';
import { type CorpusMirror } from './nightly-mirror.js';
import { startWorker, waitFor, type RedisServer, type WorkerProcess } from './queue-harness.js';
import { startQueueRig, type QueueRig } from './queue-rig.js';

let dir: string;
let redis: RedisServer;
let corpus: CorpusMirror;
let enqueuerEnv: NodeJS.ProcessEnv;
let workerEnv: NodeJS.ProcessEnv;
let artifacts: string;
let workerArgs: string[];
let workers: WorkerProcess[];
let rig: QueueRig;

/** What `ovmf-build worker` promises for a stop (README exit codes: within a second), with slack for load. */
const STOP_BOUND_MS = 5_000;

beforeAll(async () => {
  rig = await startQueueRig('ovmf-queue-life-', 10);
  ({ dir, redis, corpus, enqueuerEnv, workerEnv, artifacts, workerArgs, workers } = rig);
});

afterAll(async () => {
  await rig?.close();
});

/** A recipe directory of the test with copies of the repository's recipes. */
const recipeDir = (name: string, recipes: readonly string[]): Promise<string> => rig.recipeDir(name, recipes);

/** `ovmf-build nightly ARGS --queue URL --base-url MIRROR --json` in this process. */
async function nightly(args: readonly string[]): Promise<{ code: number; json: unknown; stderr: string }> {
  const captured = captureContext(
    [...args, '--queue', redis.url, '--base-url', corpus.baseUrl, '--json'],
    enqueuerEnv,
    dir,
  );
  const code = await runNightlyCommand(captured.ctx);
  return { code, json: JSON.parse(captured.stdout()) as unknown, stderr: captured.stderr() };
}

/**
 * `<target>/not-a-gop.json`: the Comet Lake recipe with its VBT pinned as the GOP. The bytes are
 * what the recipe pins, and they are not a GOP driver (exit 6).
 */
async function writeNotAGopRecipe(target: string): Promise<string> {
  const good = JSON.parse(await readFile(path.join(REPO_ROOT, 'recipes', 'cometlake.json'), 'utf8')) as {
    vbt: unknown;
  };
  const file = path.join(target, 'not-a-gop.json');
  await writeFile(
    file,
    JSON.stringify({ name: 'not-a-gop', gop: good.vbt, vbt: good.vbt, device: '8086:9b41' }),
  );
  return file;
}

/** Worker events of one job (or of every schedule job when jobId is undefined), from all workers. */
const eventsOf = (jobId: string | undefined, type: string) =>
  workers.flatMap((w) =>
    w.events.filter((e) => (jobId === undefined || e['jobId'] === jobId) && e['type'] === type),
  );

const alive = () => workers.filter((w) => w.child.exitCode === null && w.child.signalCode === null);

/** Every file and directory below `root`, relative, sorted. */
async function tree(root: string): Promise<string[]> {
  return (await readdir(root, { recursive: true })).sort();
}

describe('the life of a queued night (BullMQ on a real Redis, two workers)', () => {
  it('a worker refuses a job with invalid input: exit 6 at once, one attempt, nothing published', async () => {
    // Our enqueuer refuses this recipe before it becomes a job, so it is queued here as another
    // client (or an older enqueuer) would.
    const file = await writeNotAGopRecipe(dir);
    const recipe = await loadRecipe(file, { baseUrl: corpus.baseUrl });
    const key = createHash('sha256').update('not-a-gop').digest('hex');
    const url = new URL(redis.url);
    const { jobId, before } = await addRecipeJobAt(url, recipe, key);
    expect([jobId, before]).toEqual([`not-a-gop-${key.slice(0, 16)}`, 'absent']);
    const facts = await waitFor(
      'the job to fail',
      async () => {
        const now = await queueJobFacts(url, jobId);
        return now?.state === 'failed' ? now : undefined;
      },
      180_000,
    );
    // Failed for good on its first attempt: BullMQ did not retry it (UnrecoverableError).
    expect(facts).toMatchObject({ attemptsMade: 1, attemptsStarted: 1, stalledCounter: 0 });
    const failure = decodeFailure(facts.failedReason ?? undefined);
    expect(failure.exitCode).toBe(6);
    expect(failure.code).toMatch(/^E_(GOP|INPUT)_/);
    expect(eventsOf(jobId, 'start')).toHaveLength(1);
    expect(
      eventsOf(jobId, 'failed').map((e) => [(e['failure'] as { code: string }).code, e['retry']]),
    ).toEqual([[failure.code, false]]);
    // Still failed a retry window later (the default backoff is 30 s; nothing is pending).
    await sleep(2_000);
    expect((await queueJobFacts(url, jobId))?.state).toBe('failed');
    expect(eventsOf(jobId, 'start')).toHaveLength(1);
    expect(await tree(artifacts)).toEqual([]);
  });

  it('SIGTERM mid-job: the worker hands the job back and exits 143, the other worker finishes it', async () => {
    const recipes = await recipeDir('recipes-term', ['tigerlake.json']);
    let settled = false;
    const run = nightly([recipes]).finally(() => (settled = true));
    const [victim, jobId] = await waitFor(
      'a worker to start building',
      () => {
        if (settled) return [null, null] as const;
        for (const worker of alive()) {
          const phase = worker.events.find(
            (e) =>
              e['type'] === 'phase' && e['phase'] === 'build' && String(e['jobId']).startsWith('tigerlake-'),
          );
          if (phase !== undefined) return [worker, phase['jobId'] as string] as const;
        }
        return undefined;
      },
      300_000,
    );
    if (victim === null)
      throw new Error(`the night ended before a build started: ${JSON.stringify(await run)}`);
    const survivor = alive().find((w) => w !== victim) as WorkerProcess;
    const survivorName = survivor.events.find((e) => e['type'] === 'ready')?.['name'] as string;
    const stoppedAt = Date.now();
    victim.child.kill('SIGTERM');
    const exitCode = await victim.exited;
    const stopMs = Date.now() - stoppedAt;
    // 143 as a shell sees it: the CLI exits 143 once the worker is closed, or, when the given-back
    // job's container is still stopping after the graceful window, dies by SIGTERM itself
    // (src/cli/run.ts), which a shell also reports as 143.
    const status = exitCode ?? (victim.child.signalCode === 'SIGTERM' ? 143 : victim.child.signalCode);
    expect(
      { status, fast: stopMs < STOP_BOUND_MS },
      `stopped in ${stopMs} ms; stderr: ${victim.stderr().slice(-3000)}`,
    ).toEqual({ status: 143, fast: true });
    expect(victim.stderr()).toContain('ovmf-build: interrupted by SIGTERM');
    // Handed back, not lost to the stalled-job check and not failed.
    expect(
      victim.events.filter((e) => e['jobId'] === jobId).map((e) => e['type']),
      `events: ${JSON.stringify(victim.events)}; stderr: ${victim.stderr().slice(-3000)}`,
    ).toContain('returned');
    expect(
      victim.events.filter(
        (e) => e['jobId'] === jobId && ['failed', 'completed'].includes(String(e['type'])),
      ),
    ).toEqual([]);

    const { code, json } = await run;
    const summary = json as NightlySummary & { files: { markdown: string } };
    expect(code).toBe(0);
    expect(
      summary.recipes.map((r) => [
        r.recipe,
        r.status,
        r.cache,
        r.attempts,
        r.errorCode,
        r.recovered,
        r.worker,
      ]),
    ).toEqual([['tigerlake', 'succeeded', 'miss', 1, null, false, survivorName]]);
    expect(await queueJobFacts(new URL(redis.url), jobId)).toMatchObject({
      state: 'completed',
      stalledCounter: 0,
      attemptsStarted: 2,
      attemptsMade: 1,
      processedBy: survivorName,
    });
    expect(survivor.events.filter((e) => e['jobId'] === jobId && e['type'] === 'completed')).toHaveLength(1);
    const artifactDir = summary.recipes[0]?.artifactDir as string;
    const entries = (await readdir(path.dirname(artifactDir)))
      .filter((name) => !name.startsWith('.tmp-'))
      .sort();
    expect(entries).toEqual([path.basename(artifactDir), 'latest'].sort());
    await verifyArtifact(artifactDir);

    // The queue-mode summary says what is true: no "concurrency 0".
    expect([summary.concurrency, summary.queue]).toEqual([
      null,
      { url: redis.url, globalConcurrency: null, workers: [survivorName], enqueued: 1, joined: 0 },
    ]);
    const markdown = await readFile(summary.files.markdown, 'utf8');
    expect(markdown).toContain(
      `on the BullMQ queue ${redis.url}: 1 jobs enqueued, 0 already in the queue and joined; ` +
        `run by 1 worker (${survivorName}), each at its own --concurrency, no global limit.`,
    );
    expect(markdown).not.toMatch(/concurrency 0/);

    // Two workers again for the next test.
    workers.push(await startWorker(workerArgs, { cwd: dir, env: workerEnv }));
  });

  it('the cron schedule in Redis enqueues the matrix once per job, however often it fires, without a recipe it cannot key, until removed', async () => {
    const recipes = await recipeDir('recipes-scheduled', ['haswell.json', 'broadwell.json']);
    // And the first test's not-a-GOP recipe: a firing's worker cannot key it, reports it and
    // enqueues the others.
    await writeNotAGopRecipe(recipes);
    const id = nightlyScheduleId(recipes);
    // Every 4 seconds (6 fields: seconds first), set twice: one scheduler, replaced.
    for (const pattern of ['0 3 * * *', '*/4 * * * * *']) {
      const { code, json, stderr } = await nightly([recipes, '--schedule', pattern, '--tz', 'UTC']);
      expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
      expect(json).toMatchObject({ id, pattern, tz: 'UTC', recipes: ['broadwell', 'haswell', 'not-a-gop'] });
    }
    const url = new URL(redis.url);
    expect((await listNightlySchedules(url)).map((s: NightlyScheduleInfo) => [s.id, s.pattern])).toEqual([
      [id, '*/4 * * * * *'],
    ]);

    // A firing enqueues both recipe jobs; later firings join them. Wait for both to complete.
    const scheduled = () => eventsOf(undefined, 'scheduled').map((e) => e['result'] as ScheduleJobResult);
    const jobIds = await waitFor(
      'a firing to enqueue the matrix',
      () =>
        scheduled()
          .find((r) => r.jobs.length === 2)
          ?.jobs.map((j) => j.jobId),
      240_000,
    ).catch(async (error: Error) => {
      const seen = workers.map((w) => w.events.filter((e) => e['type'] !== 'phase'));
      const schedules = await listNightlySchedules(url);
      throw new Error(
        `${error.message}; worker events: ${JSON.stringify(seen)}; schedules: ${JSON.stringify(schedules)}`,
      );
    });
    expect(jobIds.map((j) => j.replace(/-[0-9a-f]{16}$/, ''))).toEqual(['broadwell', 'haswell']);
    await waitFor(
      'both scheduled jobs to complete',
      () => (jobIds.every((jobId) => eventsOf(jobId, 'completed').length > 0) ? true : undefined),
      900_000,
    );
    // At least one more firing after the jobs were queued, all naming the same jobs.
    await waitFor('another firing', () => (scheduled().length >= 2 ? true : undefined), 60_000);
    for (const result of scheduled()) {
      expect(result.jobs.map((j) => j.jobId)).toEqual(jobIds);
      expect(
        result.failed.map((f) => [f.recipe, f.failure.exitCode, /^E_(GOP|INPUT)_/.test(f.failure.code)]),
      ).toEqual([['not-a-gop', 6, true]]);
    }
    for (const jobId of jobIds) {
      // Built once: one start, one completion, over both workers and every firing.
      expect([eventsOf(jobId, 'start').length, eventsOf(jobId, 'completed').length]).toEqual([1, 1]);
      expect(await queueJobFacts(url, jobId)).toMatchObject({ state: 'completed', attemptsStarted: 1 });
      const done = eventsOf(jobId, 'completed')[0]?.['result'] as { artifactDir: string; cacheHit: boolean };
      expect(done.cacheHit).toBe(false);
      await verifyArtifact(done.artifactDir);
    }

    // Removed: no scheduler, and no firing after the one that may be running now.
    const removed = await nightly([recipes, '--unschedule']);
    expect([removed.code, removed.json]).toEqual([0, { schedule: id, removed: true }]);
    expect(await listNightlySchedules(url)).toEqual([]);
    await sleep(3_000);
    const firings = scheduled().length;
    await sleep(10_000);
    expect(scheduled()).toHaveLength(firings);
    const again = await nightly([recipes, '--unschedule']);
    expect([again.code, again.json]).toEqual([0, { schedule: id, removed: false }]);
  });
});
