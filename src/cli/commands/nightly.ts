// `ovmf-build nightly`: every recipe of a directory through the same job as the main command
// (cache, build, verify, publish), on the embedded runner of src/nightly (issue 11). This file
// wires the runner to the real job; the runner itself knows nothing of EDK2.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgsOrHelp } from '../command-args.js';
import type { Command, CommandContext } from '../context.js';
import { writeJson, writeLine } from '../context.js';
import { isOvmfBuildError, UsageError } from '../../core/errors.js';
import { userStateDir } from '../../cache/paths.js';
import { openJobLog, newJobId } from '../../jobs/job-logger.js';
import type { ResolvedInputs } from '../../jobs/job-types.js';
import { runPipeline, STAGES, type PipelineStages } from '../../jobs/pipeline.js';
import { loadRecipeDir, type Recipe } from '../../jobs/recipe.js';
import { JobSession } from '../../jobs/session.js';
import { createNightlyProgress } from '../../nightly/progress.js';
import { MANIFEST_FILE } from '../../publish/index.js';
import { runNightly, type NightlyResult, type RunNightlyOptions } from '../../nightly/runner.js';
import { renderSystemdUnits } from '../../nightly/systemd.js';
import type { NightlyJob } from '../../nightly/types.js';
import { EXIT, exitCodeFor } from '../exit-codes.js';
import { jobRequest, parseJobOptions } from '../job-options.js';
import { checkOutputDirectory, outputDirLabel } from '../output-dir.js';
import type { RunQueuedNightlyOptions } from '../../queue/index.js';
import { parseCronSchedule } from '../../queue/cron.js';
import { parseQueueUrl } from '../../queue/url.js';

const OPTIONS = {
  'base-url': { type: 'string' },
  concurrency: { type: 'string' },
  out: { type: 'string' },
  json: { type: 'boolean' },
  'print-systemd': { type: 'boolean' },
  'on-calendar': { type: 'string' },
  queue: { type: 'string' },
  schedule: { type: 'string' },
  unschedule: { type: 'boolean' },
  tz: { type: 'string' },
} as const;

const USAGE = [
  'usage: ovmf-build nightly [RECIPE_DIR] [--base-url URL] [--concurrency N] [--out DIR] [--json]',
  '       ovmf-build nightly --print-systemd [RECIPE_DIR] [--base-url URL] [--out DIR] [--on-calendar SPEC] [--json]',
  '       ovmf-build nightly [RECIPE_DIR] --queue URL --schedule CRON [--tz ZONE] [--base-url URL] [--json]',
  '       ovmf-build nightly [RECIPE_DIR] --queue URL --unschedule [--json]',
  '',
  'Builds every recipe (*.json) of RECIPE_DIR (default: the recipes/ of this installation)',
  'like the main command: cache, build, verify, publish. Identical inputs are a cache hit, so',
  'a rerun of a finished night only reports cache hits. Job state, locks and each run',
  "(summary.json, summary.md) live under the state directory's nightly/. Two runs at once build",
  'each job once; a run after a crash finishes what the dead one left. Failures of download,',
  'engine or EDK2 build (exit 7, 8, 9) are retried up to 3 attempts; others are not.',
  'Exits 0 when every recipe succeeded, else with the exit code of the first failed recipe.',
  '',
  'options:',
  '  --base-url <url>          fetch recipe URLs from this mirror of raw.githubusercontent.com',
  '  --concurrency <n>         builds at once on this engine (default 2)',
  '  --out <dir>               artifact store (default ./artifacts)',
  '  --json                    print the summary as JSON on stdout, no progress',
  '  --print-systemd           print a service and a timer unit (systemctl --user) and exit',
  "  --on-calendar <spec>      the timer's OnCalendar= (default *-*-* 02:30:00)",
  '  --queue <redis-url>       enqueue the matrix on BullMQ (redis://HOST:PORT) for `ovmf-build worker`s',
  '                            and wait for them; keys are computed here; --concurrency is then the',
  '                            jobs at once over all workers',
  '  --schedule <cron>         with --queue: keep this schedule in Redis (BullMQ job scheduler, one per',
  '                            RECIPE_DIR; setting it again replaces it) and exit; at each firing a',
  '                            worker enqueues the matrix. 5 fields (minute hour day month weekday)',
  '                            or 6 (seconds first), e.g. "30 2 * * *"',
  "  --tz <zone>               the schedule's IANA time zone (default: this machine's)",
  "  --unschedule              with --queue: remove RECIPE_DIR's schedule and exit",
].join('\n');

/** recipes/ beside src/ and dist/: the recipes shipped with the package. */
const DEFAULT_RECIPE_DIR = path.resolve(import.meta.dirname, '..', '..', '..', 'recipes');

/**
 * Builds at once when --concurrency is not given. 2, not 1: after the night's one clean EDK2
 * build (which uses every core by itself) the recipes take the variant path, whose time is
 * mostly QEMU boot checks under TCG, one core each; one job at a time leaves a core of a 2-core
 * engine idle (bench:nightly, 6-recipe matrix: its tail of 5 variants took 67 s at 2, about
 * 85 s estimated at 1).
 */
export const DEFAULT_NIGHTLY_CONCURRENCY = 2;

function concurrencyOf(value: string | undefined): number {
  if (value === undefined) return DEFAULT_NIGHTLY_CONCURRENCY;
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1 || n > 64) {
    throw new UsageError(`--concurrency must be a whole number from 1 to 64, got \`${value}\``, {
      concurrency: value,
    });
  }
  return n;
}

/**
 * The build path a fresh build took, from its published manifest's build facts: `buildPath`
 * when the build reports one (clean, warm or variant), else its `mode`; null when absent.
 */
async function buildPathOf(artifactDir: string): Promise<string | null> {
  const manifest = JSON.parse(await readFile(path.join(artifactDir, MANIFEST_FILE), 'utf8')) as {
    build?: { facts?: { buildPath?: unknown; mode?: unknown } };
  };
  const facts = manifest.build?.facts;
  const value = facts?.buildPath ?? facts?.mode;
  return typeof value === 'string' ? value : null;
}

/**
 * The per-recipe job: the main command's option parsing and pipeline, with one session (engine
 * connection, EDK2 tree) for the whole night. The key stage runs the pipeline up to `key`.
 */
export function pipelineJob(
  ctx: CommandContext,
  files: ReadonlyMap<string, string>,
  passThrough: readonly string[],
  session: JobSession,
  stages: Partial<PipelineStages>,
  runId: string,
): NightlyJob {
  const request = async (recipe: Recipe) => {
    const file = files.get(recipe.name) as string;
    const parsed = await parseJobOptions(['--recipe', file, ...passThrough], ctx.cwd, USAGE);
    return jobRequest(parsed.options, ctx, `${runId}-${recipe.name}`);
  };
  const resolveInputs = stages.resolveInputs ?? STAGES.resolveInputs;
  // The inputs the key stage resolved (downloaded, checked against their pins, parsed; for a
  // firmware recipe, extracted), handed to the run that follows it instead of resolving the
  // same pinned bytes again: the embedded runner runs `key` then `run` for every recipe. Weak:
  // a worker keys the recipes of a scheduled night and never runs those objects.
  const resolved = new WeakMap<Recipe, Promise<ResolvedInputs>>();
  return {
    key: async (recipe, stage) => {
      resolved.delete(recipe);
      const result = await runPipeline(await request(recipe), {
        until: 'key',
        signal: stage.signal,
        logger: stage.logger,
        session,
        stages: {
          ...stages,
          resolveInputs: (input, context) => {
            const inputs = resolveInputs(input, context);
            resolved.set(recipe, inputs);
            return inputs;
          },
        },
      });
      return result.key.value;
    },
    run: async (recipe, stage) => {
      const inputs = resolved.get(recipe);
      resolved.delete(recipe);
      const result = await runPipeline(await request(recipe), {
        signal: stage.signal,
        logger: stage.logger,
        session,
        stages: inputs === undefined ? stages : { ...stages, resolveInputs: () => inputs },
        onEvent: (event) => {
          if (event.type === 'phase') stage.onPhase(event.phase);
        },
      });
      return {
        cacheHit: result.cacheHit,
        version: result.version,
        artifactDir: result.artifactDir,
        buildPath: result.cacheHit ? null : await buildPathOf(result.artifactDir),
      };
    },
  };
}

/** The BullMQ night (src/queue), loaded only with --queue. */
async function runQueued(options: RunQueuedNightlyOptions): Promise<NightlyResult> {
  const { runQueuedNightly } = await import('../../queue/index.js');
  return runQueuedNightly(options);
}

/**
 * `--schedule` / `--unschedule`: sets or removes the recipe directory's job scheduler in Redis
 * (src/queue/schedule.ts) and exits; the workers run the night when it fires.
 */
async function runScheduleCommand(
  ctx: CommandContext,
  values: {
    schedule?: string;
    unschedule?: boolean;
    tz?: string;
    queue?: string;
    concurrency?: string;
    json?: boolean;
  },
  recipeDir: string,
  baseUrl: string | undefined,
): Promise<number> {
  if (values.schedule !== undefined && values.unschedule === true) {
    throw new UsageError('give --schedule or --unschedule, not both');
  }
  if (values.tz !== undefined && values.schedule === undefined)
    throw new UsageError('--tz goes with --schedule');
  if (values.concurrency !== undefined) {
    throw new UsageError("--concurrency does not go with --schedule: each worker's --concurrency decides");
  }
  const schedule = values.schedule === undefined ? undefined : parseCronSchedule(values.schedule, values.tz);
  if (values.queue === undefined) {
    throw new UsageError(
      '--schedule and --unschedule need --queue redis://HOST:PORT: the schedule lives in Redis',
    );
  }
  const url = parseQueueUrl(values.queue);
  const queue = await import('../../queue/index.js');
  const id = queue.nightlyScheduleId(recipeDir);
  if (schedule === undefined) {
    const removed = await queue.removeNightlySchedule(url, id);
    if (values.json === true) writeJson(ctx.stdout, { schedule: id, removed });
    else writeLine(ctx.stdout, removed ? `removed schedule ${id}` : `no schedule ${id} to remove`);
    return EXIT.ok;
  }
  const recipes = await loadRecipeDir(recipeDir, baseUrl === undefined ? {} : { baseUrl });
  const info = await queue.upsertNightlySchedule({
    url,
    id,
    schedule,
    recipes: recipes.map((r) => r.recipe),
    recipeDir,
  });
  if (values.json === true) writeJson(ctx.stdout, info);
  else {
    const next = info.nextMs === null ? 'not planned' : new Date(info.nextMs).toISOString();
    writeLine(
      ctx.stdout,
      `scheduled ${id}: "${info.pattern}" (${info.tz}), ${info.recipes.length} recipes, next ${next}; ` +
        'each firing is run by an `ovmf-build worker` of the queue',
    );
  }
  return EXIT.ok;
}

/** Runs the command; `stages` stand in for some of the job's stages (tests give a stand-in build). */
export async function runNightlyCommand(
  ctx: CommandContext,
  stages: Partial<PipelineStages> = {},
  runner: Pick<RunNightlyOptions, 'backoffMs'> = {},
): Promise<number> {
  const parsed = parseArgsOrHelp(ctx, OPTIONS, USAGE);
  if (parsed === undefined) return EXIT.ok;
  const { values, positionals } = parsed;
  if (positionals.length > 1) throw new UsageError('give at most one recipe directory');
  const json = values.json === true;
  const recipeDir = positionals[0] === undefined ? DEFAULT_RECIPE_DIR : path.resolve(ctx.cwd, positionals[0]);
  const baseUrl = values['base-url'];
  if (baseUrl !== undefined && !/^https?:\/\/[^/]/.test(baseUrl)) {
    throw new UsageError(`--base-url must be an http(s) URL, got \`${baseUrl}\``);
  }
  const outDir = path.resolve(ctx.cwd, values.out ?? 'artifacts');
  const passThrough = [...(baseUrl === undefined ? [] : ['--source-base-url', baseUrl]), '--out', outDir];
  if (values['print-systemd'] === true) {
    const units = renderSystemdUnits({
      execStart: [
        process.execPath,
        path.resolve(process.argv[1] ?? 'ovmf-build'),
        'nightly',
        recipeDir,
        ...(baseUrl === undefined ? [] : ['--base-url', baseUrl]),
        '--out',
        outDir,
      ],
      workingDirectory: ctx.cwd,
      ...(values['on-calendar'] === undefined ? {} : { onCalendar: values['on-calendar'] }),
    });
    if (json) writeJson(ctx.stdout, units);
    else {
      writeLine(ctx.stdout, `# ~/.config/systemd/user/${units.serviceName}`);
      writeLine(ctx.stdout, units.service);
      writeLine(ctx.stdout, `# ~/.config/systemd/user/${units.timerName}`);
      writeLine(ctx.stdout, units.timer);
      writeLine(
        ctx.stdout,
        `# then: systemctl --user daemon-reload && systemctl --user enable --now ${units.timerName}`,
      );
      writeLine(ctx.stdout, '#       loginctl enable-linger $USER   (run while you are logged out)');
    }
    return EXIT.ok;
  }
  if (values.schedule !== undefined || values.unschedule === true || values.tz !== undefined) {
    return runScheduleCommand(ctx, values, recipeDir, baseUrl);
  }
  const concurrency = concurrencyOf(values.concurrency);
  const queueUrl = values.queue === undefined ? undefined : parseQueueUrl(values.queue);
  // Each recipe's job publishes there: checked once, before any job (a queued night's workers
  // publish into a store of their own, on their machines).
  if (queueUrl === undefined) {
    await checkOutputDirectory(outDir, outputDirLabel(values.out !== undefined, 'artifact store'));
  }
  const recipes = await loadRecipeDir(recipeDir, baseUrl === undefined ? {} : { baseUrl });
  const runId = newJobId();
  const log = openJobLog(ctx.env, `nightly-${runId}`);
  // One engine connection for every recipe of the run.
  await using session = new JobSession(ctx.env);
  const progress = json ? undefined : createNightlyProgress({ stream: ctx.stderr });
  if (!json) writeLine(ctx.stderr, `log: ${log.logFile}`);
  try {
    const night: RunNightlyOptions = {
      recipes: recipes.map((r) => r.recipe),
      job: pipelineJob(
        ctx,
        new Map(recipes.map((r) => [r.recipe.name, r.file])),
        passThrough,
        session,
        stages,
        runId,
      ),
      stateDir: userStateDir(ctx.env),
      exitCodeOf: (error) => (isOvmfBuildError(error) ? exitCodeFor(error) : EXIT.bug),
      signal: ctx.signal,
      logger: log.logger,
      runId,
      concurrency,
      ...runner,
      ...(progress === undefined ? {} : { onEvent: progress.onEvent }),
    };
    // With --queue, the workers run the jobs (src/queue); BullMQ is loaded only then.
    const { summary, files } =
      queueUrl === undefined
        ? await runNightly(night)
        : await runQueued({
            ...night,
            url: queueUrl,
            ...(values.concurrency === undefined ? {} : { globalConcurrency: concurrency }),
          });
    if (json) writeJson(ctx.stdout, { ...summary, files, logFile: log.logFile });
    else {
      for (const r of summary.recipes) {
        const what =
          r.status === 'failed'
            ? `failed ${r.errorCode}: ${r.message}`
            : `${r.cache === 'hit' ? 'cache hit' : 'built'} ${r.artifactDir}`;
        writeLine(ctx.stdout, `${r.recipe.padEnd(14)} ${what}`);
      }
      writeLine(ctx.stdout, `summary: ${files.markdown}`);
    }
    const firstFailed = summary.recipes.find((r) => r.status === 'failed');
    return firstFailed === undefined ? EXIT.ok : (firstFailed.exitCode ?? EXIT.failure);
  } finally {
    progress?.stop();
    log.close();
  }
}

export const command: Command = {
  name: 'nightly',
  summary: 'build, verify and publish every recipe (the nightly matrix)',
  usage: USAGE,
  run: (ctx) => runNightlyCommand(ctx),
};
