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

/** Snapshots tried before giving up on a job whose state keeps moving under the read. */
const SNAPSHOT_TRIES = 20;

/**
 * The facts of one nightly job, or null when the queue has no such job.
 *
 * BullMQ keeps a job's state (which list holds its id) apart from its hash (attempts, reason), and
 * `Job.fromId` then `getState` are two reads: a job read while active and seen failed a moment
 * later came back as `failed` with `attemptsMade: 0` (a CI run). So the hash is read between two
 * reads of the state until the two agree (a worker moves a job with one Lua script, so the hash
 * between them belongs to that state); a job still moving after SNAPSHOT_TRIES gives its last read.
 */
export async function queueJobFacts(url: URL, jobId: string): Promise<QueueJobFacts | null> {
  const connection = await connectRedis(url);
  const queue = new Queue<NightlyJobData, NightlyJobResult>(QUEUE_NAME, { connection });
  try {
    for (let attempt = 1; ; attempt++) {
      const before = await queue.getJobState(jobId);
      const job = await Job.fromId<NightlyJobData, NightlyJobResult>(queue, jobId);
      const after = await queue.getJobState(jobId);
      if (before !== after && attempt < SNAPSHOT_TRIES) continue;
      if (job === undefined) return null;
      return {
        jobId,
        state: after,
        attemptsMade: job.attemptsMade,
        attemptsStarted: job.attemptsStarted,
        stalledCounter: job.stalledCounter,
        processedBy: job.processedBy ?? null,
        failedReason: job.failedReason ?? null,
        returnvalue: job.returnvalue ?? null,
      };
    }
  } finally {
    await queue.close();
    connection.disconnect();
  }
}
