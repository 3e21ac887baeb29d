// `ovmf-build nightly --queue`'s engine (issue 11 item 4): computes each recipe's cache key here
// (the same deterministic job id as the embedded runner, `<recipe>-<16 hex of the key>`),
// enqueues the matrix on BullMQ, waits for the workers to finish it and writes the same
// summary.json and summary.md. BullMQ deduplicates by job id: a night enqueued twice, or by two
// machines at once, runs each job once, and a job already completed within the retention
// (KEEP_FINISHED_JOBS_S) is reported as a cache hit without running again.
import { setTimeout as sleep } from 'node:timers/promises';
import { Job, Queue, QueueEvents } from 'bullmq';
import type { Logger } from 'pino';
import { AbortError } from '../core/errors.js';
import type { Recipe } from '../jobs/recipe.js';
import { DEFAULT_MAX_ATTEMPTS, defaultBackoffMs, isTransientExitCode } from '../nightly/retry.js';
import { errorFields, summarizeNight, writeSummaryFiles, type NightlyResult } from '../nightly/runner.js';
import { currentWriter, NightlyState } from '../nightly/state.js';
import type { NightlyEvent, NightlyJob, NightlyStageContext, RecipeReport } from '../nightly/types.js';
import { connectRedis, QUEUE_NAME } from './connection.js';
import { redactedQueueUrl } from './url.js';
import { addRecipeJob } from './add-job.js';
import { decodeFailure, nightlyJobId, type NightlyJobData, type NightlyJobResult } from './nightly-job.js';

export interface RunQueuedNightlyOptions {
  /** The Redis server (`--queue`). */
  readonly url: URL;
  readonly recipes: readonly Recipe[];
  /** Computes a recipe's cache key here (the job id needs it); the workers run the recipes. */
  readonly job: Pick<NightlyJob, 'key'>;
  /** The user's state directory: the run's record and summary go under `<stateDir>/nightly/runs`. */
  readonly stateDir: string;
  readonly exitCodeOf: (error: unknown) => number;
  readonly signal: AbortSignal;
  readonly logger: Logger;
  readonly runId: string;
  /**
   * Jobs at once over all workers (BullMQ global concurrency); unset leaves the queue's as it is.
   */
  readonly globalConcurrency?: number;
  /** Attempts per job (the first and the retries). @default 3 */
  readonly maxAttempts?: number;
  /** The wait before retry n. @default 30 s, then 90 s */
  readonly backoffMs?: (failedAttempt: number) => number;
  readonly onEvent?: (event: NightlyEvent) => void;
  /** @default Date.now */
  readonly now?: () => number;
}

const KEY = /^[0-9a-f]{64}$/;

type Keyed = { readonly key: string; readonly attempts: number } | { readonly report: RecipeReport };

export async function runQueuedNightly(options: RunQueuedNightlyOptions): Promise<NightlyResult> {
  const now = options.now ?? Date.now;
  const maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
  const backoffMs = options.backoffMs ?? defaultBackoffMs;
  const { runId, signal, logger } = options;
  const emit = (event: NightlyEvent): void => options.onEvent?.(event);
  const names = options.recipes.map((r) => r.name);
  const state = new NightlyState(options.stateDir);
  await state.init();
  const startedMs = now();
  const startedAt = new Date(startedMs).toISOString();
  const writer = currentWriter();
  const connection = await connectRedis(options.url, signal);
  const queue = new Queue<NightlyJobData, NightlyJobResult>(QUEUE_NAME, { connection });
  const events = new QueueEvents(QUEUE_NAME, { connection: connection.duplicate() });
  const recipeOf = new Map<string, string>();
  events.on('progress', ({ jobId, data }) => {
    const recipe = recipeOf.get(jobId);
    const progress = data as { phase?: unknown; attempt?: unknown };
    if (recipe !== undefined && typeof progress.phase === 'string') {
      emit({ type: 'phase', recipe, phase: progress.phase, attempt: Number(progress.attempt) || 1 });
    }
  });
  try {
    await events.waitUntilReady();
    if (options.globalConcurrency !== undefined) await queue.setGlobalConcurrency(options.globalConcurrency);
    await state.writeRun({ runId, status: 'running', writer, startedAt, recipes: names });
    emit({ type: 'start', runId, recipes: names });

    /** The key, computed here with the embedded runner's retries for transient failures. */
    const keyOf = async (recipe: Recipe): Promise<Keyed> => {
      const started = now();
      const context: NightlyStageContext = {
        signal,
        logger: logger.child({ recipe: recipe.name }),
        onPhase: (phase) => emit({ type: 'phase', recipe: recipe.name, phase, attempt: 1 }),
      };
      for (let attempt = 1; ; attempt += 1) {
        try {
          const key = await options.job.key(recipe, context);
          if (!KEY.test(key)) throw new Error(`job key for ${recipe.name} is not 64 hex digits`);
          return { key, attempts: attempt };
        } catch (error) {
          if (signal.aborted) throw error;
          const exitCode = options.exitCodeOf(error);
          if (isTransientExitCode(exitCode) && attempt < maxAttempts) {
            await sleep(backoffMs(attempt), undefined, { signal });
            continue;
          }
          return {
            report: {
              recipe: recipe.name,
              jobId: null,
              status: 'failed',
              attempts: attempt,
              durationMs: Math.round(now() - started),
              cache: null,
              artifactVersion: null,
              artifactDir: null,
              buildPath: null,
              recovered: false,
              ...errorFields(error, exitCode),
            },
          };
        }
      }
    };

    /** Jobs that were in the queue before this run added them. */
    const joined = new Set<string>();
    /** Enqueues (or joins) the recipe's job and waits for it to finish. */
    const runRecipe = async (recipe: Recipe, key: string): Promise<RecipeReport> => {
      // Known before the add: a worker may report progress at once.
      recipeOf.set(nightlyJobId(recipe.name, key), recipe.name);
      const { jobId, job, before } = await addRecipeJob(
        queue,
        recipe,
        key,
        maxAttempts,
        Array.from({ length: maxAttempts - 1 }, (_, i) => backoffMs(i + 1)),
      );
      // A job that failed in an earlier night runs again: that is enqueued, not joined.
      if (before !== 'absent' && before !== 'failed') joined.add(jobId);
      const log = logger.child({ recipe: recipe.name, jobId });
      log.info({ before }, before === 'absent' ? 'job enqueued' : 'job already in the queue');
      emit({ type: 'phase', recipe: recipe.name, phase: 'queued', attempt: 1 });
      let failedReason: string | undefined;
      try {
        await job.waitUntilFinished(events);
      } catch (error) {
        failedReason = (error as Error).message;
      }
      const done = await Job.fromId<NightlyJobData, NightlyJobResult>(queue, jobId);
      const durationMs = Math.max(0, (done?.finishedOn ?? now()) - (done?.timestamp ?? now()));
      const common = {
        recipe: recipe.name,
        jobId,
        // A job an earlier enqueue completed is one look-up for this night, as a cache hit is.
        attempts: before === 'completed' ? 1 : Math.max(1, done?.attemptsMade ?? 1),
        durationMs: before === 'completed' ? 0 : durationMs,
        recovered: (done?.stalledCounter ?? 0) > 0,
        // A job completed by an earlier enqueue ran for another night.
        worker: before === 'completed' ? null : (done?.processedBy ?? null),
      };
      if (failedReason === undefined && done?.returnvalue) {
        const result = done.returnvalue;
        return {
          ...common,
          status: 'succeeded',
          // Completed by an earlier enqueue of the same inputs: nothing ran for this night.
          cache: before === 'completed' || result.cacheHit ? 'hit' : 'miss',
          artifactVersion: result.version,
          artifactDir: result.artifactDir,
          buildPath: before === 'completed' ? null : (result.buildPath ?? null),
          errorCode: null,
          exitCode: null,
          message: null,
        };
      }
      const failure = decodeFailure(failedReason ?? done?.failedReason);
      return {
        ...common,
        status: 'failed',
        cache: null,
        artifactVersion: null,
        artifactDir: null,
        buildPath: null,
        errorCode: failure.code,
        exitCode: failure.exitCode,
        message: failure.message,
      };
    };

    const stopped = new Promise<never>((_, reject) => {
      const fail = (): void => reject(new AbortError('nightly run aborted', { runId }));
      if (signal.aborted) fail();
      else signal.addEventListener('abort', fail, { once: true });
    });
    stopped.catch(() => undefined);
    let reports: RecipeReport[];
    try {
      reports = await Promise.race([
        stopped,
        Promise.all(
          options.recipes.map(async (recipe) => {
            const keyed = await keyOf(recipe);
            const report = 'report' in keyed ? keyed.report : await runRecipe(recipe, keyed.key);
            logger.info({ report }, 'recipe done');
            emit({ type: 'done', report });
            return report;
          }),
        ),
      ]);
    } catch (error) {
      // The queued jobs stay in Redis and keep running on the workers; the next run joins them.
      await state.writeRun({ runId, status: 'interrupted', writer, startedAt, recipes: names });
      throw error;
    }
    // No resumed runs: jobs a dead enqueuer left are still in Redis, and this run joined them.
    const summary = summarizeNight({
      reports,
      resumedRuns: [],
      // null: the workers' --concurrency decide, unless a global limit was set.
      concurrency: options.globalConcurrency ?? null,
      queue: {
        url: redactedQueueUrl(options.url),
        globalConcurrency: options.globalConcurrency ?? null,
        workers: [...new Set(reports.flatMap((r) => (r.worker ? [r.worker] : [])))].sort(),
        enqueued: reports.filter((r) => r.jobId !== null && !joined.has(r.jobId)).length,
        joined: joined.size,
      },
      runId,
      startedMs,
      finishedMs: now(),
    });
    const files = await writeSummaryFiles(state, summary);
    // Nothing of this run is left to take over: the queue holds the jobs, not this process.
    await state.writeRun({ runId, status: 'finished', writer, startedAt, recipes: names });
    emit({ type: 'end', summary });
    return { summary, files };
  } finally {
    await events.close();
    await queue.close();
    connection.disconnect();
  }
}
