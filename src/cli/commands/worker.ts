// `ovmf-build worker --queue redis://HOST:PORT`: one per Docker or Podman host (issue 11 item
// 4). It takes recipes that `nightly --queue` enqueued and runs each through the nightly's own
// per-recipe job (cache, build, verify, publish) on the engine DOCKER_HOST names, publishing to
// a store all workers share. BullMQ does the distribution (src/queue).
import { createHash } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { userStateDir } from '../../cache/paths.js';
import { isOvmfBuildError, throwIfAborted, UsageError } from '../../core/errors.js';
import { writeFileAtomic } from '../../core/durable-fs.js';
import { newJobId, openJobLog } from '../../jobs/job-logger.js';
import { JobSession } from '../../jobs/session.js';
import type { Recipe } from '../../jobs/recipe.js';
import type { NightlyJob } from '../../nightly/types.js';
import { parseQueueUrl, redactedQueueUrl } from '../../queue/url.js';
import { defineCommand } from '../command-args.js';
import { writeLine } from '../context.js';
import { EXIT, exitCodeFor } from '../exit-codes.js';
import { checkOutputDirectory, outputDirLabel } from '../output-dir.js';
import { pipelineJob } from './nightly.js';

const OPTIONS = {
  queue: { type: 'string' },
  concurrency: { type: 'string' },
  out: { type: 'string' },
  'lock-seconds': { type: 'string' },
  json: { type: 'boolean' },
} as const;

const USAGE = [
  'usage: ovmf-build worker --queue redis://HOST:PORT[/DB] [--concurrency N] [--out DIR] [--lock-seconds S] [--json]',
  '',
  'Runs the recipes that `ovmf-build nightly --queue` enqueues, each like the main command',
  '(cache, build, verify, publish), on the container engine of this host (DOCKER_HOST, else the',
  'local Docker or Podman socket). Run one per engine host; point --out of all of them at one',
  'shared artifact store. Download, engine and EDK2 build failures (exit 7, 8, 9) are retried by',
  'the queue, on any worker; others fail at once. A worker killed mid-job loses its lock and the',
  'job goes back to the queue for another worker. SIGINT or SIGTERM stops it: the job in',
  'progress goes back to the queue at once.',
  '',
  'options:',
  '  --queue <url>             the Redis server of the queue (required)',
  '  --concurrency <n>         jobs at once in this worker (default 1)',
  '  --out <dir>               artifact store, shared by all workers (default ./artifacts)',
  "  --lock-seconds <s>        a job's lock; a dead worker's job returns to the queue after about",
  '                            1.5 times this (default 60)',
  '  --json                    one JSON object per line on stdout for each job event',
].join('\n');

/** A whole number from `min` to `max`, or the usage error naming the option. */
function wholeNumber(name: string, value: string | undefined, fallback: number, min: number, max: number) {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max) {
    throw new UsageError(`--${name} must be a whole number from ${min} to ${max}, got \`${value}\``, {
      [name]: value,
    });
  }
  return n;
}

export const command = defineCommand({
  name: 'worker',
  summary: 'run queued nightly recipes on this host (BullMQ on Redis)',
  usage: USAGE,
  options: OPTIONS,
  async run(ctx, { values, positionals }) {
    if (positionals.length > 0) throw new UsageError(`unexpected argument \`${positionals[0]}\``);
    if (values.queue === undefined) throw new UsageError('give --queue redis://HOST:PORT');
    const url = parseQueueUrl(values.queue);
    const concurrency = wholeNumber('concurrency', values.concurrency, 1, 1, 64);
    const lockSeconds = wholeNumber('lock-seconds', values['lock-seconds'], 60, 5, 3600);
    const outDir = path.resolve(ctx.cwd, values.out ?? 'artifacts');
    await checkOutputDirectory(outDir, outputDirLabel(values.out !== undefined, 'artifact store'));
    const json = values.json === true;
    const workerId = `worker-${newJobId()}`;
    const log = openJobLog(ctx.env, workerId);
    // The queue carries recipes as data; the job reads them back as recipe files from here.
    const recipeDir = path.join(userStateDir(ctx.env), 'queue', workerId);
    await mkdir(recipeDir, { recursive: true });
    await using session = new JobSession(ctx.env);
    const files = new Map<string, string>();
    const job: NightlyJob = pipelineJob(ctx, files, ['--out', outDir], session, {}, workerId);
    /** Writes the recipe as a file the job can read; returns its path. */
    const recipeFile = async (recipe: Recipe): Promise<string> => {
      // Named by content: two jobs of one recipe name at once never share a file.
      const text = `${JSON.stringify(recipe, null, 2)}\n`;
      const dir = path.join(recipeDir, createHash('sha256').update(text).digest('hex').slice(0, 16));
      const file = path.join(dir, `${recipe.name}.json`);
      await mkdir(dir, { recursive: true });
      await writeFileAtomic(file, text);
      return file;
    };
    const { runQueueWorker } = await import('../../queue/index.js');
    // Before the first job, not during it (src/jobs/preload.ts).
    await (await import('../../jobs/preload.js')).preloadJobModules();
    if (!json) writeLine(ctx.stderr, `log: ${log.logFile}`);
    try {
      await runQueueWorker({
        url,
        concurrency,
        lockDurationMs: lockSeconds * 1000,
        signal: ctx.signal,
        logger: log.logger,
        exitCodeOf: (error) => (isOvmfBuildError(error) ? exitCodeFor(error) : EXIT.bug),
        job: {
          key: async (recipe, context) => {
            files.set(recipe.name, await recipeFile(recipe));
            // Set and read in the same tick (the job looks its file up as it starts).
            return job.key(recipe, context);
          },
          run: async (recipe, context) => {
            files.set(recipe.name, await recipeFile(recipe));
            return job.run(recipe, context);
          },
        },
        onEvent: (event) => {
          if (json) writeLine(ctx.stdout, JSON.stringify(event));
          else if (event.type === 'phase') return;
          else if (event.type === 'ready')
            writeLine(ctx.stdout, `worker ${event.name} on ${redactedQueueUrl(url)}`);
          else if (event.type === 'start') writeLine(ctx.stdout, `${event.jobId}: attempt ${event.attempt}`);
          else if (event.type === 'completed')
            writeLine(
              ctx.stdout,
              `${event.jobId}: ${event.result.cacheHit ? 'cache hit' : 'built'} ${event.result.artifactDir}`,
            );
          else if (event.type === 'scheduled')
            writeLine(
              ctx.stdout,
              `${event.jobId}: scheduled night: ${event.result.jobs.length} jobs enqueued or joined` +
                (event.result.failed.length === 0
                  ? ''
                  : `, not enqueued: ${event.result.failed.map((f) => `${f.recipe} (${f.failure.code})`).join(', ')}`),
            );
          else if (event.type === 'failed')
            writeLine(
              ctx.stdout,
              `${event.jobId}: failed ${event.failure.code}: ${event.failure.message}${event.retry ? ' (will retry)' : ''}`,
            );
          else writeLine(ctx.stdout, `${event.jobId}: given back to the queue`);
        },
      });
    } finally {
      log.close();
      await rm(recipeDir, { recursive: true, force: true });
    }
    // The worker only ends when asked to: report the signal as every command does.
    throwIfAborted(ctx.signal);
    return EXIT.ok;
  },
});
