// `ovmf-build worker`'s engine (issue 11 item 4): a BullMQ Worker that runs queued recipes
// through the same per-recipe job as the embedded runner (cache, build, verify, publish) on
// this host's container engine. BullMQ does the distributed part: a lock per job renewed while
// it runs (lockDuration), stalled-job detection that returns the job of a killed worker to the
// queue (stalledInterval, maxStalledCount), retries with backoff for transient failures only
// (exit 7, 8, 9), UnrecoverableError for the rest.
import { hostname } from 'node:os';
import { Queue, UnrecoverableError, WaitingError, Worker, type Job } from 'bullmq';
import type { Logger } from 'pino';
import { isOvmfBuildError } from '../core/errors.js';
import { errorFields } from '../nightly/runner.js';
import { isTransientExitCode } from '../nightly/retry.js';
import type { NightlyJob, NightlyStageContext } from '../nightly/types.js';
import { connectRedis, QUEUE_NAME } from './connection.js';
import {
  encodeFailure,
  nightlyBackoff,
  SCHEDULE_JOB_NAME,
  type JobFailure,
  type NightlyJobData,
  type NightlyJobResult,
  type ScheduleJobData,
  type ScheduleJobResult,
} from './nightly-job.js';
import { enqueueScheduledNight } from './scheduled-night.js';

/** A worker's lock on its job; renewed at half of it while the job runs. */
export const DEFAULT_LOCK_DURATION_MS = 60_000;

/** What the worker reports as jobs come and go (the CLI prints a line per event). */
export type QueueWorkerEvent =
  | { readonly type: 'ready'; readonly name: string }
  | { readonly type: 'start'; readonly jobId: string; readonly recipe: string; readonly attempt: number }
  | { readonly type: 'phase'; readonly jobId: string; readonly phase: string }
  | { readonly type: 'completed'; readonly jobId: string; readonly result: NightlyJobResult }
  | { readonly type: 'scheduled'; readonly jobId: string; readonly result: ScheduleJobResult }
  | {
      readonly type: 'failed';
      readonly jobId: string;
      readonly failure: JobFailure;
      readonly retry: boolean;
    }
  | { readonly type: 'returned'; readonly jobId: string };

export interface QueueWorkerOptions {
  /** The Redis server (`--queue`). */
  readonly url: URL;
  /**
   * Runs one recipe (`run`: the nightly command's pipeline job), and computes a recipe's key
   * (`key`) for the jobs a job scheduler's firing enqueues.
   */
  readonly job: NightlyJob;
  /** The exit code an error maps to (the CLI's registry): 7, 8 and 9 are retried, others are not. */
  readonly exitCodeOf: (error: unknown) => number;
  /** Aborting it stops the worker: no new jobs, and the running ones are given back to the queue. */
  readonly signal: AbortSignal;
  readonly logger: Logger;
  /**
   * Jobs at once in this worker.
   * @default 1
   */
  readonly concurrency?: number;
  /**
   * How long a job's lock lasts without renewal; a killed worker's job returns to the queue
   * after about this plus `stalledIntervalMs`.
   * @default 60_000
   */
  readonly lockDurationMs?: number;
  /** How often this worker looks for stalled jobs. @default lockDurationMs / 2 */
  readonly stalledIntervalMs?: number;
  /**
   * How often a job may stall (its worker died) and still be returned to the queue.
   * @default 2
   */
  readonly maxStalledCount?: number;
  /** The name stored on every job this worker takes (BullMQ `processedBy`). @default `<host>:<pid>` */
  readonly name?: string;
  readonly onEvent?: (event: QueueWorkerEvent) => void;
}

/** Waits for the signal; resolves at once when it is already aborted. */
function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

/**
 * Runs a worker until `signal` aborts, then closes it: a job in progress is given back to the
 * queue at once (another worker starts it again; its partial work is in temp directories and
 * never published), and the function returns.
 */
export async function runQueueWorker(options: QueueWorkerOptions): Promise<void> {
  const { signal, logger } = options;
  const emit = (event: QueueWorkerEvent): void => options.onEvent?.(event);
  const lockDuration = options.lockDurationMs ?? DEFAULT_LOCK_DURATION_MS;
  const name = options.name ?? `${hostname()}:${process.pid}`;
  const connection = await connectRedis(options.url, signal);

  // The queue the schedule jobs add recipe jobs to (a Queue may share the worker's client).
  const queue = new Queue<NightlyJobData, NightlyJobResult>(QUEUE_NAME, { connection });

  /** A job scheduler's firing: enqueue its matrix (src/queue/scheduled-night.ts). */
  const schedule = async (
    job: Job<ScheduleJobData, ScheduleJobResult>,
    token: string | undefined,
  ): Promise<ScheduleJobResult> => {
    const jobId = job.id as string;
    const log = logger.child({ jobId, scheduler: job.repeatJobKey ?? null });
    const context: NightlyStageContext = { signal, logger: log, onPhase: () => undefined };
    let result: ScheduleJobResult;
    try {
      result = await enqueueScheduledNight(queue, job.data, options.job, context, options.exitCodeOf);
    } catch (error) {
      if (!signal.aborted) throw error;
      // Stopped mid-firing: another worker enqueues the matrix (the jobs added so far are joined).
      await job.moveToWait(token);
      emit({ type: 'returned', jobId });
      throw new WaitingError();
    }
    log.info({ result }, 'scheduled night enqueued');
    emit({ type: 'scheduled', jobId, result });
    return result;
  };

  const processor = async (
    anyJob: Job<NightlyJobData | ScheduleJobData, NightlyJobResult | ScheduleJobResult>,
    token?: string,
  ) => {
    if (anyJob.name === SCHEDULE_JOB_NAME) {
      return schedule(anyJob as Job<ScheduleJobData, ScheduleJobResult>, token);
    }
    const job = anyJob as Job<NightlyJobData, NightlyJobResult>;
    const { recipe } = job.data;
    const jobId = job.id as string;
    const log = logger.child({ jobId, attempt: job.attemptsMade + 1 });
    emit({ type: 'start', jobId, recipe: recipe.name, attempt: job.attemptsMade + 1 });
    const context: NightlyStageContext = {
      signal,
      logger: log,
      onPhase: (phase) => {
        emit({ type: 'phase', jobId, phase });
        // Progress is for people watching; a lost update changes nothing.
        job.updateProgress({ phase, attempt: job.attemptsMade + 1 }).catch(() => undefined);
      },
    };
    const run = options.job.run(recipe, context);
    try {
      // On a stop the job goes back at once; the pipeline unwinds (stops its container) meanwhile.
      const outcome = await Promise.race([run, aborted(signal).then(() => null)]);
      if (outcome === null) throw signal.reason;
      const result: NightlyJobResult = {
        cacheHit: outcome.cacheHit,
        version: outcome.version,
        artifactDir: outcome.artifactDir,
        buildPath: outcome.buildPath ?? null,
      };
      log.info({ result }, 'job completed');
      emit({ type: 'completed', jobId, result });
      return result;
    } catch (error) {
      if (signal.aborted) {
        run.catch(() => undefined);
        await job.moveToWait(token);
        log.warn('worker stopping: job given back to the queue');
        emit({ type: 'returned', jobId });
        throw new WaitingError();
      }
      const exitCode = options.exitCodeOf(error);
      const fields = errorFields(error, exitCode);
      const failure: JobFailure = {
        code: fields.errorCode as string,
        exitCode,
        message: fields.message as string,
      };
      const retry = isTransientExitCode(exitCode) && job.attemptsMade + 1 < (job.opts.attempts ?? 1);
      log.warn({ failure, retry, bug: !isOvmfBuildError(error) }, 'job attempt failed');
      emit({ type: 'failed', jobId, failure, retry });
      // Transient failures (download, engine, EDK2 build) are retried by BullMQ's attempts and
      // backoff; the same bytes fail the same way again, so everything else fails at once.
      throw isTransientExitCode(exitCode)
        ? new Error(encodeFailure(failure))
        : new UnrecoverableError(encodeFailure(failure));
    }
  };

  const worker = new Worker<NightlyJobData | ScheduleJobData, NightlyJobResult | ScheduleJobResult>(
    QUEUE_NAME,
    processor,
    {
      connection,
      name,
      concurrency: options.concurrency ?? 1,
      lockDuration,
      stalledInterval: options.stalledIntervalMs ?? Math.round(lockDuration / 2),
      maxStalledCount: options.maxStalledCount ?? 2,
      settings: { backoffStrategy: nightlyBackoff },
      autorun: false,
    },
  );
  worker.on('error', (error) => logger.warn({ error: error.message }, 'worker error'));
  const running = worker.run();
  try {
    await worker.waitUntilReady();
    emit({ type: 'ready', name });
    logger.info({ name, lockDuration }, 'worker ready');
    await aborted(signal);
  } finally {
    await worker.close();
    await running;
    await queue.close();
    connection.disconnect();
  }
}
