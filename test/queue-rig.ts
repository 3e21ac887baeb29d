// The set-up both BullMQ integration files share (test/queue.int.test.ts, test/queue-lifecycle.int.test.ts):
// a temp dir, the warm workspace, a fresh dist/ for the worker processes, a redis-server of the
// file's own, the corpus mirror, separate CLI environments for the enqueuer and the workers (as on
// separate hosts), one artifact store and two `ovmf-build worker` processes; and its tear-down in
// the reverse order, with `cleanup` for the containers a killed worker left behind.
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ensureFreshDist, runCli } from './cli-harness.js';
import { REPO_ROOT } from './corpus.js';
import { isolatedCliEnv, warmWorkspace } from './harness.js';
import { serveCorpusMirror, type CorpusMirror } from './nightly-mirror.js';
import { startRedis, startWorker, type RedisServer, type WorkerProcess } from './queue-harness.js';

export interface QueueRig {
  readonly dir: string;
  readonly redis: RedisServer;
  readonly corpus: CorpusMirror;
  readonly enqueuerEnv: NodeJS.ProcessEnv;
  readonly workerEnv: NodeJS.ProcessEnv;
  readonly artifacts: string;
  /** The arguments the two workers were started with. */
  readonly workerArgs: string[];
  /** The running workers; a test may add or remove some, all left are stopped by close(). */
  readonly workers: WorkerProcess[];
  /** A recipe directory `name` in the rig's dir with copies of the repository's `recipes`. */
  recipeDir(name: string, recipes: readonly string[]): Promise<string>;
  close(): Promise<void>;
}

/** Starts the rig in a new temp dir named `prefix…`; workers hold a job's lock `lockSeconds`. */
export async function startQueueRig(prefix: string, lockSeconds: number): Promise<QueueRig> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  await warmWorkspace();
  ensureFreshDist();
  const redis = await startRedis();
  const corpus = await serveCorpusMirror();
  const enqueuerEnv = await isolatedCliEnv(path.join(dir, 'enqueuer'));
  const workerEnv = await isolatedCliEnv(path.join(dir, 'workers'));
  const artifacts = path.join(dir, 'artifacts');
  await mkdir(artifacts);
  const workerArgs = ['--queue', redis.url, '--out', artifacts, '--lock-seconds', String(lockSeconds)];
  const workers = await Promise.all([0, 1].map(() => startWorker(workerArgs, { cwd: dir, env: workerEnv })));
  return {
    dir,
    redis,
    corpus,
    enqueuerEnv,
    workerEnv,
    artifacts,
    workerArgs,
    workers,
    async recipeDir(name, recipes) {
      const target = path.join(dir, name);
      await mkdir(target);
      for (const file of recipes)
        await copyFile(path.join(REPO_ROOT, 'recipes', file), path.join(target, file));
      return target;
    },
    async close() {
      for (const worker of workers) await worker[Symbol.asyncDispose]();
      // Containers a killed worker left behind.
      await runCli(['cleanup'], dir, workerEnv);
      await corpus[Symbol.asyncDispose]();
      await redis[Symbol.asyncDispose]();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
