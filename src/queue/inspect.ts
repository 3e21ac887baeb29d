// A queued job's facts as BullMQ keeps them (state, attempts, stalls, which worker took it):
// for `ovmf-build worker`'s tests and for people asking what the queue did with a night's job,
// without importing BullMQ outside src/queue.
import { Job, Queue } from 'bullmq';
import { connectRedis, QUEUE_NAME } from './connection.js';
import type { NightlyJobData, NightlyJobResult } from './nightly-job.js';

export interface QueueJobFacts {
  readonly jobId: string;
  /** 'waiting', 'active', 'delayed', 'completed', 'failed'... */
  readonly state: string;
  /** Attempts that ended (failed or completed). */
  readonly attemptsMade: number;
  /** Times a worker took the job, including attempts that a dead worker left. */
  readonly attemptsStarted: number;
  /** Times the job's worker died and the job went back to the queue. */
  readonly stalledCounter: number;
  /** The name (`<host>:<pid>`) of the worker that took it last. */
  readonly processedBy: string | null;
  readonly failedReason: string | null;
  readonly returnvalue: NightlyJobResult | null;
}

/** The facts of one nightly job, or null when the queue has no such job. */
export async function queueJobFacts(url: URL, jobId: string): Promise<QueueJobFacts | null> {
  const connection = await connectRedis(url);
  const queue = new Queue<NightlyJobData, NightlyJobResult>(QUEUE_NAME, { connection });
  try {
    const job = await Job.fromId<NightlyJobData, NightlyJobResult>(queue, jobId);
    if (job === undefined) return null;
    return {
      jobId,
      state: await job.getState(),
      attemptsMade: job.attemptsMade,
      attemptsStarted: job.attemptsStarted,
      stalledCounter: job.stalledCounter,
      processedBy: job.processedBy ?? null,
      failedReason: job.failedReason ?? null,
      returnvalue: job.returnvalue ?? null,
    };
  } finally {
    await queue.close();
    connection.disconnect();
  }
}
