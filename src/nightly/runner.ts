// The embedded nightly runner (issue 11, "one machine, no extra service"): every recipe goes
// through the job's key and run stages on a p-queue, with durable state per job, a
// cross-process lock per job id (two runners at once build each job once), retries for
// transient failures only, take-over of jobs left by a runner that died, and a summary.
import { setTimeout as sleep } from 'node:timers/promises';
import PQueue from 'p-queue';
import type { Logger } from 'pino';
import { acquireLock } from '../cache/lock.js';
import { AbortError, isOvmfBuildError, OvmfBuildError, UsageError } from '../core/errors.js';
import type { Recipe } from '../jobs/recipe.js';
import { DEFAULT_MAX_ATTEMPTS, defaultBackoffMs, isTransientExitCode } from './retry.js';
import { currentWriter, NightlyState, type JobState } from './state.js';
import { renderSummaryMarkdown } from './summary.js';
import type {
  NightlyEvent,
  NightlyJob,
  NightlyOutcome,
  NightlyStageContext,
  NightlySummary,
  QueueRunFacts,
  RecipeReport,
} from './types.js';

export interface RunNightlyOptions {
  readonly recipes: readonly Recipe[];
  readonly job: NightlyJob;
  /** The user's state directory; the runner keeps its files under `<stateDir>/nightly`. */
  readonly stateDir: string;
  /** The exit code an error maps to (the CLI's registry): it decides what is retried. */
  readonly exitCodeOf: (error: unknown) => number;
  readonly signal: AbortSignal;
  readonly logger: Logger;
  readonly runId: string;
  /**
   * Builds at once on this engine.
   * @default 1
   */
  readonly concurrency?: number;
  /** @default 3 */
  readonly maxAttempts?: number;
  /** @default 30 s, then 90 s */
  readonly backoffMs?: (failedAttempt: number) => number;
  /** How often a runner waiting for another runner's job looks again. @default 250 */
  readonly lockPollMs?: number;
  readonly onEvent?: (event: NightlyEvent) => void;
  /** The clock, passed in for tests. @default Date.now */
  readonly now?: () => number;
}

export interface NightlyResult {
  readonly summary: NightlySummary;
  readonly files: { readonly json: string; readonly markdown: string };
}

const KEY = /^[0-9a-f]{64}$/;

export function errorFields(
  error: unknown,
  exitCode: number,
): Pick<RecipeReport, 'errorCode' | 'exitCode' | 'message'> {
  return {
    errorCode: isOvmfBuildError(error) ? error.code : 'E_INTERNAL',
    exitCode,
    message: error instanceof Error ? error.message : String(error),
  };
}

/** A night's summary from its reports (the embedded runner's and the BullMQ queue's). */
export function summarizeNight(night: {
  readonly runId: string;
  readonly startedMs: number;
  readonly finishedMs: number;
  readonly concurrency: number | null;
  readonly queue?: QueueRunFacts;
  readonly resumedRuns: readonly string[];
  readonly reports: readonly RecipeReport[];
}): NightlySummary {
  const { reports } = night;
  const failed = reports.filter((r) => r.status === 'failed').length;
  return {
    runId: night.runId,
    status: failed === 0 ? 'succeeded' : 'failed',
    startedAt: new Date(night.startedMs).toISOString(),
    finishedAt: new Date(night.finishedMs).toISOString(),
    durationMs: Math.round(night.finishedMs - night.startedMs),
    concurrency: night.concurrency,
    ...(night.queue === undefined ? {} : { queue: night.queue }),
    resumedRuns: night.resumedRuns,
    counts: {
      recipes: reports.length,
      succeeded: reports.length - failed,
      failed,
      cacheHits: reports.filter((r) => r.cache === 'hit').length,
      built: reports.filter((r) => r.cache === 'miss').length,
    },
    recipes: reports,
  };
}

/** Writes summary.json and summary.md into the run's directory. */
export async function writeSummaryFiles(
  state: NightlyState,
  summary: NightlySummary,
): Promise<NightlyResult['files']> {
  const { runId } = summary;
  return {
    json: await state.writeRunFile(runId, 'summary.json', `${JSON.stringify(summary, null, 2)}\n`),
    markdown: await state.writeRunFile(runId, 'summary.md', renderSummaryMarkdown(summary)),
  };
}

export async function runNightly(options: RunNightlyOptions): Promise<NightlyResult> {
  const now = options.now ?? Date.now;
  const concurrency = options.concurrency ?? 1;
  if (!Number.isSafeInteger(concurrency) || concurrency < 1) {
    throw new TypeError(`Expected \`concurrency\` to be an integer of at least 1, got \`${concurrency}\``);
  }
  const maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
  const backoffMs = options.backoffMs ?? defaultBackoffMs;
  const names = options.recipes.map((r) => r.name);
  const duplicate = names.find((name, i) => names.indexOf(name) !== i);
  if (duplicate !== undefined) {
    throw new UsageError(`two recipes are named ${duplicate}`, { recipe: duplicate });
  }
  const { runId, signal, logger } = options;
  const emit = (event: NightlyEvent): void => options.onEvent?.(event);
  const state = new NightlyState(options.stateDir);
  await state.init();
  const startedMs = now();
  const startedAt = new Date(startedMs).toISOString();
  const writer = currentWriter();
  const resumed = await state.deadRuns();
  await state.writeRun({ runId, status: 'running', writer, startedAt, recipes: names });
  for (const dead of resumed) {
    logger.warn({ deadRun: dead.runId, pid: dead.writer.pid }, 'taking over the jobs of a run that died');
    await state.writeRun({ ...dead, status: 'interrupted', resumedBy: runId });
  }
  emit({ type: 'start', runId, recipes: names });

  const runRecipe = async (recipe: Recipe): Promise<RecipeReport> => {
    const started = now();
    const log = logger.child({ recipe: recipe.name });
    let attempt = 0;
    let jobId: string | null = null;
    let recovered = false;
    const phase = (name: string): void => emit({ type: 'phase', recipe: recipe.name, phase: name, attempt });
    const context: NightlyStageContext = { signal, logger: log, onPhase: phase };
    const jobState = (
      key: string,
      status: JobState['status'],
      rest: Pick<JobState, 'version' | 'errorCode'>,
    ): JobState => ({
      jobId: jobId as string,
      recipe: recipe.name,
      key,
      status,
      runId,
      attempts: attempt,
      writer,
      updatedAt: new Date(now()).toISOString(),
      ...rest,
    });
    /** One attempt: key, lock, run; the job's state is written under its lock. */
    const attemptOnce = async (): Promise<NightlyOutcome> => {
      phase('key');
      const key = await options.job.key(recipe, context);
      if (!KEY.test(key))
        throw new OvmfBuildError('E_INTERNAL', `job key for ${recipe.name} is not 64 hex digits`);
      jobId = `${recipe.name}-${key.slice(0, 16)}`;
      phase('lock');
      const lock = await acquireLock(state.lockFile(jobId), {
        signal,
        pollMs: options.lockPollMs ?? 250,
        onWait: (owner) => {
          log.info({ jobId, owner }, 'another runner has this job; waiting for it');
          phase('waiting for another runner');
        },
      });
      try {
        const previous = await state.readJob(jobId);
        // Under the lock, "running" can only be left by a runner that died or was stopped.
        if (previous?.status === 'running') {
          recovered = true;
          log.warn(
            { jobId, previous },
            'job left running by a runner that died or was stopped; running it again',
          );
        }
        await state.writeJob(jobState(key, 'running', { version: null, errorCode: null }));
        phase('run');
        try {
          const outcome = await options.job.run(recipe, context);
          await state.writeJob(jobState(key, 'succeeded', { version: outcome.version, errorCode: null }));
          return outcome;
        } catch (error) {
          // Aborted: leave it "running" for the next run to take over, as after a crash.
          if (!signal.aborted) {
            const code = isOvmfBuildError(error) ? error.code : 'E_INTERNAL';
            await state.writeJob(jobState(key, 'failed', { version: null, errorCode: code }));
          }
          throw error;
        }
      } finally {
        await lock.release();
      }
    };
    const finish = (
      result: Omit<RecipeReport, 'recipe' | 'jobId' | 'attempts' | 'durationMs' | 'recovered'>,
    ) => {
      const report: RecipeReport = {
        recipe: recipe.name,
        jobId,
        attempts: attempt,
        durationMs: Math.round(now() - started),
        recovered,
        ...result,
      };
      log.info({ report }, 'recipe done');
      emit({ type: 'done', report });
      return report;
    };
    for (;;) {
      attempt += 1;
      if (signal.aborted) throw new AbortError('nightly run aborted', { recipe: recipe.name });
      try {
        const outcome = await attemptOnce();
        return finish({
          status: 'succeeded',
          cache: outcome.cacheHit ? 'hit' : 'miss',
          artifactVersion: outcome.version,
          artifactDir: outcome.artifactDir,
          buildPath: outcome.cacheHit ? null : (outcome.buildPath ?? null),
          errorCode: null,
          exitCode: null,
          message: null,
        });
      } catch (error) {
        if (signal.aborted) throw error;
        const exitCode = options.exitCodeOf(error);
        const retry = isTransientExitCode(exitCode) && attempt < maxAttempts;
        // The details too (a build's output list, a download's URL): a retried failure leaves
        // nothing else behind to explain it.
        const details = isOvmfBuildError(error) ? error.details : undefined;
        log.warn(
          { error: { ...errorFields(error, exitCode), details }, attempt, retry },
          'recipe attempt failed',
        );
        if (retry) {
          const waitMs = backoffMs(attempt);
          phase(`retry in ${(waitMs / 1000).toFixed(1)} s (exit ${exitCode})`);
          try {
            await sleep(waitMs, undefined, { signal });
          } catch {
            throw new AbortError('nightly run aborted', { recipe: recipe.name });
          }
          continue;
        }
        return finish({
          status: 'failed',
          cache: null,
          artifactVersion: null,
          artifactDir: null,
          buildPath: null,
          ...errorFields(error, exitCode),
        });
      }
    }
  };

  // On abort, queued recipes still start and throw at once (runRecipe checks the signal first):
  // clearing the queue instead would leave their promises pending and the run hanging.
  const queue = new PQueue({ concurrency });
  let reports: RecipeReport[];
  try {
    reports = await Promise.all(options.recipes.map((recipe) => queue.add(() => runRecipe(recipe))));
  } catch (error) {
    await queue.onIdle();
    await state.writeRun({ runId, status: 'interrupted', writer, startedAt, recipes: names });
    throw error;
  }
  const summary = summarizeNight({
    runId,
    startedMs,
    finishedMs: now(),
    concurrency,
    resumedRuns: resumed.map((r) => r.runId),
    reports,
  });
  const files = await writeSummaryFiles(state, summary);
  await state.writeRun({ runId, status: 'finished', writer, startedAt, recipes: names });
  emit({ type: 'end', summary });
  return { summary, files };
}
