// What travels through Redis for one recipe of a queued night (issue 11 item 4), and the BullMQ
// job options both sides agree on. Failures travel as BullMQ's failedReason, which is a string,
// so our error code and exit code ride in it as JSON; BullMQ's own reasons (a job stalled too
// often) are not JSON and become E_QUEUE_JOB_FAILED.
import type { Recipe } from '../jobs/recipe.js';
import type { NightlyOutcome } from '../nightly/types.js';

/** A job's data: the recipe itself (inputs pinned by digest), so a worker needs no recipe files. */
export interface NightlyJobData {
  readonly recipe: Recipe;
  /** The cache key the enqueuer computed: the job id is `<recipe>-<its first 16 hex digits>`. */
  readonly key: string;
  /** The wait before retry n at index n - 1: the embedded runner's backoff (30 s, then 90 s). */
  readonly backoffMs: readonly number[];
}

/**
 * The job scheduler's template job (`nightly --queue --schedule`): "enqueue this matrix". A
 * worker that takes it computes each recipe's key on its own engine and adds the recipe jobs
 * with their usual ids, then completes; it does not wait for them (with --concurrency 1 it would
 * wait for itself).
 */
export interface ScheduleJobData {
  /** The recipes as they were when the schedule was set (inputs pinned by digest). */
  readonly recipes: readonly Recipe[];
  /** Where they were read from, for people reading the queue. */
  readonly recipeDir: string;
  readonly maxAttempts: number;
  /** The recipe jobs' waits before retry n, at index n - 1. */
  readonly backoffMs: readonly number[];
}

/** What a schedule job did: the jobs it added or joined, and the recipes whose key failed. */
export interface ScheduleJobResult {
  readonly jobs: readonly { readonly recipe: string; readonly jobId: string; readonly before: string }[];
  readonly failed: readonly { readonly recipe: string; readonly failure: JobFailure }[];
}

/** The name of the scheduler's jobs; recipe jobs are named after their recipe (no ':' there). */
export const SCHEDULE_JOB_NAME = 'ovmf-build:schedule';

/** A completed job's return value. */
export type NightlyJobResult = NightlyOutcome;

/** Our error of a failed attempt, as the failedReason string carries it. */
export interface JobFailure {
  readonly code: string;
  readonly exitCode: number;
  readonly message: string;
}

/** Completed and failed jobs stay this long, so a night enqueued again within it is deduplicated. */
export const KEEP_FINISHED_JOBS_S = 7 * 24 * 3600;

/** The custom backoff type whose waits come from the job's data (NightlyJobData.backoffMs). */
export const BACKOFF_TYPE = 'ovmf-nightly';

export function nightlyJobId(recipe: string, key: string): string {
  return `${recipe}-${key.slice(0, 16)}`;
}

/** BullMQ options of every nightly job: retries (only thrown errors that are not UnrecoverableError) and retention. */
export function nightlyJobOptions(jobId: string, maxAttempts: number) {
  return {
    jobId,
    attempts: maxAttempts,
    backoff: { type: BACKOFF_TYPE },
    removeOnComplete: { age: KEEP_FINISHED_JOBS_S },
    removeOnFail: { age: KEEP_FINISHED_JOBS_S },
  } as const;
}

/**
 * The worker's backoff strategy (BullMQ `settings.backoffStrategy`): after failed attempt n the
 * job waits `backoffMs[n - 1]` (the last entry for later ones).
 */
export function nightlyBackoff(
  attemptsMade: number,
  type: string | undefined,
  _error: Error | undefined,
  job: { readonly data: unknown } | undefined,
): number {
  if (type !== BACKOFF_TYPE) return -1;
  const waits = (job?.data as Partial<NightlyJobData> | undefined)?.backoffMs ?? [];
  return waits[Math.min(attemptsMade, waits.length) - 1] ?? 0;
}

export function encodeFailure(failure: JobFailure): string {
  return JSON.stringify(failure);
}

/** The failure a failedReason names: ours when it is our JSON, else BullMQ's own reason. */
export function decodeFailure(failedReason: string | undefined): JobFailure {
  try {
    const value = JSON.parse(failedReason ?? '') as Partial<JobFailure>;
    if (
      typeof value.code === 'string' &&
      typeof value.exitCode === 'number' &&
      typeof value.message === 'string'
    ) {
      return { code: value.code, exitCode: value.exitCode, message: value.message };
    }
  } catch {
    // not ours
  }
  return { code: 'E_QUEUE_JOB_FAILED', exitCode: 1, message: failedReason ?? 'the job failed' };
}
