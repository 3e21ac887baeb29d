// queueJobFacts against a real redis-server while a real BullMQ worker moves jobs under it: a CI
// run read a job's hash while it was active and its state after it had failed, and reported
// `failed` with `attemptsMade: 0`. Every snapshot taken here while jobs fail one after another
// must be one that existed: waiting or active with no attempt made, failed with one.
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue, Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type RedisServer } from '../../test/queue-harness.js';
import { connectRedis, QUEUE_NAME } from './connection.js';
import { queueJobFacts, type QueueJobFacts } from './inspect.js';

/** Jobs failed one after another: the old two-read snapshot came back torn 17 to 24 times in 150 here (3 runs). */
const JOBS = 150;

let redis: RedisServer;

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  await redis?.[Symbol.asyncDispose]();
});

describe('queueJobFacts', () => {
  it('returns null for a job the queue does not have', async () => {
    expect(await queueJobFacts(new URL(redis.url), 'no-such-job')).toBeNull();
  });

  it('never returns a torn snapshot while a worker fails jobs under it', async () => {
    const url = new URL(redis.url);
    const queueConnection = await connectRedis(url);
    const workerConnection = await connectRedis(url);
    const queue = new Queue(QUEUE_NAME, { connection: queueConnection });
    const ids = Array.from({ length: JOBS }, (_, i) => `torn-${i}`);
    await queue.addBulk(
      ids.map((jobId) => ({ name: 'night', data: {}, opts: { jobId, attempts: 1, removeOnFail: false } })),
    );
    const seenActive = new Set<string>();
    const worker = new Worker(
      QUEUE_NAME,
      async (job) => {
        // Fail once the loop below watches this job, at a random moment of its polling.
        while (!seenActive.has(job.id as string)) await sleep(1);
        await sleep(Math.random() * 8);
        throw new Error('fails at once');
      },
      { connection: workerConnection, concurrency: 1, autorun: false },
    );
    const snapshots: QueueJobFacts[] = [];
    try {
      const running = worker.run();
      // Follow the job the worker is at: the first one not yet seen failed.
      let next = 0;
      while (next < JOBS) {
        const facts = await queueJobFacts(url, ids[next] as string);
        if (facts === null) throw new Error(`${ids[next]} vanished`);
        snapshots.push(facts);
        if (facts.state === 'active') seenActive.add(facts.jobId);
        if (facts.state === 'failed') next++;
      }
      await worker.close();
      await running;
    } finally {
      await worker.close();
      await queue.obliterate({ force: true });
      await queue.close();
      queueConnection.disconnect();
      workerConnection.disconnect();
    }
    const torn = snapshots.filter((s) =>
      s.state === 'failed'
        ? s.attemptsMade !== 1 || s.failedReason !== 'fails at once'
        : s.attemptsMade !== 0,
    );
    expect(torn).toEqual([]);
    // The loop did watch every job move from active to failed.
    expect(snapshots.filter((s) => s.state === 'failed')).toHaveLength(JOBS);
    expect(seenActive.size).toBe(JOBS);
  });
});
