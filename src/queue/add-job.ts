// Putting one recipe's job on the nightly queue, the one way both enqueuers do it (issue 11
// item 4): `nightly --queue` on the enqueuing host, and a worker running the job scheduler's
// "enqueue this matrix" job. BullMQ's jobId deduplicates: a job already waiting, running or
// completed (within KEEP_FINISHED_JOBS_S) is joined, not added again; one that failed in an
// earlier night is not this night's answer and is run again.
import { Queue, type Job } from 'bullmq';
import type { Recipe } from '../jobs/recipe.js';
import { DEFAULT_MAX_ATTEMPTS, defaultBackoffMs } from '../nightly/retry.js';
import { connectRedis, QUEUE_NAME } from './connection.js';
import {
  nightlyJobId,
  nightlyJobOptions,
  type NightlyJobData,
  type NightlyJobResult,
} from './nightly-job.js';

export interface AddedRecipeJob {
  readonly jobId: string;
  readonly job: Job<NightlyJobData, NightlyJobResult>;
  /** The job's state before this call ('absent' when it was not in the queue). */
  readonly before: string;
}

/**
 * Adds (or joins) the job of `recipe` under its deterministic id `<recipe>-<16 hex of key>`.
 * @param backoffMs the wait before retry n at index n - 1
 */
export async function addRecipeJob(
  queue: Queue<NightlyJobData, NightlyJobResult>,
  recipe: Recipe,
  key: string,
  maxAttempts: number,
  backoffMs: readonly number[],
): Promise<AddedRecipeJob> {
  const jobId = nightlyJobId(recipe.name, key);
  const existing = await queue.getJob(jobId);
  const before = existing === undefined ? 'absent' : await existing.getState();
  if (before === 'failed') {
    await (existing as Job).retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
  }
  const data: NightlyJobData = { recipe, key, backoffMs };
  const job = await queue.add(recipe.name, data, nightlyJobOptions(jobId, maxAttempts));
  return { jobId, job, before };
}

/**
 * Adds one recipe's job under a key computed elsewhere, on its own connection: for a tool that
 * keys recipes its own way, and for tests of what a worker does with a job another client
 * queued (the enqueuer of this package refuses invalid input before it becomes a job).
 */
export async function addRecipeJobAt(
  url: URL,
  recipe: Recipe,
  key: string,
  maxAttempts = DEFAULT_MAX_ATTEMPTS,
): Promise<{ readonly jobId: string; readonly before: string }> {
  const connection = await connectRedis(url);
  const queue = new Queue<NightlyJobData, NightlyJobResult>(QUEUE_NAME, { connection });
  try {
    const backoff = Array.from({ length: maxAttempts - 1 }, (_, i) => defaultBackoffMs(i + 1));
    const { jobId, before } = await addRecipeJob(queue, recipe, key, maxAttempts, backoff);
    return { jobId, before };
  } finally {
    await queue.close();
    connection.disconnect();
  }
}
