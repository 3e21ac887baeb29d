// A worker's side of the job scheduler (issue 11 item 4): the scheduler's job says "enqueue this
// matrix", and the worker that takes it computes each recipe's cache key on its own engine (as
// `nightly --queue` does on its host) and adds the recipe jobs with their deterministic ids. It
// completes without waiting for them: a worker of concurrency 1 would otherwise wait for itself.
import type { Queue } from 'bullmq';
import { errorFields } from '../nightly/runner.js';
import type { NightlyJob, NightlyStageContext } from '../nightly/types.js';
import { addRecipeJob } from './add-job.js';
import type {
  JobFailure,
  NightlyJobData,
  NightlyJobResult,
  ScheduleJobData,
  ScheduleJobResult,
} from './nightly-job.js';

const KEY = /^[0-9a-f]{64}$/;

/**
 * Enqueues the matrix of a schedule job. A recipe whose key fails (its input is gone, or a
 * download fails) is reported in the result and left for the next firing; the others go ahead.
 */
export async function enqueueScheduledNight(
  queue: Queue<NightlyJobData, NightlyJobResult>,
  data: ScheduleJobData,
  job: Pick<NightlyJob, 'key'>,
  context: NightlyStageContext,
  exitCodeOf: (error: unknown) => number,
): Promise<ScheduleJobResult> {
  const jobs: ScheduleJobResult['jobs'][number][] = [];
  const failed: ScheduleJobResult['failed'][number][] = [];
  for (const recipe of data.recipes) {
    let key: string;
    try {
      key = await job.key(recipe, { ...context, logger: context.logger.child({ recipe: recipe.name }) });
      if (!KEY.test(key)) throw new Error(`job key for ${recipe.name} is not 64 hex digits`);
    } catch (error) {
      if (context.signal.aborted) throw error;
      const exitCode = exitCodeOf(error);
      const fields = errorFields(error, exitCode);
      const failure: JobFailure = {
        code: fields.errorCode as string,
        exitCode,
        message: fields.message as string,
      };
      context.logger.warn({ recipe: recipe.name, failure }, 'scheduled recipe not enqueued');
      failed.push({ recipe: recipe.name, failure });
      continue;
    }
    const added = await addRecipeJob(queue, recipe, key, data.maxAttempts, data.backoffMs);
    jobs.push({ recipe: recipe.name, jobId: added.jobId, before: added.before });
  }
  return { jobs, failed };
}
