// The queued night's cron schedule in Redis (issue 11 item 4: BullMQ's upsertJobScheduler). One
// job scheduler per recipe directory, under a stable id, makes an "enqueue this matrix" job at
// each firing; whichever worker takes it enqueues the recipe jobs with their usual ids, so
// BullMQ's jobId dedup still holds (a firing while the last night's jobs run, or a second
// scheduler host, adds nothing twice). Unlike the systemd timer, no machine of ours has to be up
// at the time: Redis keeps the schedule and any worker runs it.
import { createHash } from 'node:crypto';
import path from 'node:path';
import { Queue } from 'bullmq';
import type { Recipe } from '../jobs/recipe.js';
import { DEFAULT_MAX_ATTEMPTS, defaultBackoffMs } from '../nightly/retry.js';
import { connectRedis, QUEUE_NAME } from './connection.js';
import type { CronSchedule } from './cron.js';
import {
  KEEP_FINISHED_JOBS_S,
  SCHEDULE_JOB_NAME,
  type ScheduleJobData,
  type ScheduleJobResult,
} from './nightly-job.js';

/** A job scheduler as the queue holds it. */
export interface NightlyScheduleInfo {
  readonly id: string;
  readonly pattern: string | null;
  readonly tz: string | null;
  /** When it fires next (ms since the epoch), null when Redis has no next job for it. */
  readonly nextMs: number | null;
  /** The recipe names its template job enqueues. */
  readonly recipes: readonly string[];
  readonly recipeDir: string | null;
}

/**
 * The scheduler id of a recipe directory: `nightly-<dir name>-<12 hex of its absolute path>`,
 * the same every time the same directory is scheduled, so scheduling again replaces it.
 */
export function nightlyScheduleId(recipeDir: string): string {
  const absolute = path.resolve(recipeDir);
  const slug = path.basename(absolute).replace(/[^A-Za-z0-9._-]/g, '_') || 'root';
  return `nightly-${slug}-${createHash('sha256').update(absolute).digest('hex').slice(0, 12)}`;
}

/** Runs `use` with a queue on its own connection, closed afterwards. */
async function withQueue<T>(
  url: URL,
  use: (queue: Queue<ScheduleJobData, ScheduleJobResult>) => Promise<T>,
): Promise<T> {
  const connection = await connectRedis(url);
  const queue = new Queue<ScheduleJobData, ScheduleJobResult>(QUEUE_NAME, { connection });
  try {
    return await use(queue);
  } finally {
    await queue.close();
    connection.disconnect();
  }
}

function infoOf(
  id: string,
  json: Awaited<ReturnType<Queue<ScheduleJobData>['getJobScheduler']>>,
): NightlyScheduleInfo | null {
  if (json === undefined) return null;
  return {
    id,
    pattern: json.pattern ?? null,
    tz: json.tz ?? null,
    nextMs: json.next ?? null,
    recipes: (json.template?.data?.recipes ?? []).map((r) => r.name),
    recipeDir: json.template?.data?.recipeDir ?? null,
  };
}

export interface UpsertNightlyScheduleOptions {
  readonly url: URL;
  readonly id: string;
  readonly schedule: CronSchedule;
  readonly recipes: readonly Recipe[];
  readonly recipeDir: string;
  /** Attempts per recipe job. @default 3 */
  readonly maxAttempts?: number;
  /** The recipe jobs' wait before retry n. @default 30 s, then 90 s */
  readonly backoffMs?: (failedAttempt: number) => number;
}

/** Creates or replaces the scheduler `id` (one per id however often this runs). */
export async function upsertNightlySchedule(
  options: UpsertNightlyScheduleOptions,
): Promise<NightlyScheduleInfo> {
  const maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
  const backoffMs = options.backoffMs ?? defaultBackoffMs;
  const data: ScheduleJobData = {
    recipes: options.recipes,
    recipeDir: path.resolve(options.recipeDir),
    maxAttempts,
    backoffMs: Array.from({ length: maxAttempts - 1 }, (_, i) => backoffMs(i + 1)),
  };
  return withQueue(options.url, async (queue) => {
    await queue.upsertJobScheduler(
      options.id,
      { pattern: options.schedule.pattern, tz: options.schedule.tz },
      {
        name: SCHEDULE_JOB_NAME,
        data,
        // Enqueueing is retried by the next firing, not by attempts; keep a week of firings.
        opts: {
          attempts: 1,
          removeOnComplete: { age: KEEP_FINISHED_JOBS_S },
          removeOnFail: { age: KEEP_FINISHED_JOBS_S },
        },
      },
    );
    return infoOf(options.id, await queue.getJobScheduler(options.id)) as NightlyScheduleInfo;
  });
}

/** Removes the scheduler `id` and its next job; false when there was none. */
export async function removeNightlySchedule(url: URL, id: string): Promise<boolean> {
  return withQueue(url, (queue) => queue.removeJobScheduler(id));
}

/** Every nightly scheduler of the queue. */
export async function listNightlySchedules(url: URL): Promise<NightlyScheduleInfo[]> {
  return withQueue(url, async (queue) => {
    const all = await queue.getJobSchedulers(0, -1, true);
    return all.map((json) => infoOf(json.id ?? json.key, json) as NightlyScheduleInfo);
  });
}
