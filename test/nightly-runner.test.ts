// The nightly runner with a stand-in job (test/nightly-stand-in.ts) in this process: the
// p-queue limit, job ids and durable job state, retries by exit code, the summary files, a
// rerun that only reports cache hits, an interrupted run taken over by the next one, and the
// progress lines. Two runner processes and kill -9: test/nightly-processes.test.ts.
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createNightlyProgress } from '../src/nightly/progress.js';
import { runNightly, type RunNightlyOptions } from '../src/nightly/runner.js';
import type { NightlyEvent } from '../src/nightly/types.js';
import { exitCodeOf, silentLogger, StandInJob, standInRecipe } from './nightly-stand-in.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'ovmf-nightly-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const stateDir = (): string => path.join(dir, 'state');
const readJson = async (file: string): Promise<unknown> =>
  JSON.parse(await readFile(file, 'utf8')) as unknown;

function options(
  job: StandInJob,
  names: readonly string[],
  rest: Partial<RunNightlyOptions> = {},
): RunNightlyOptions {
  return {
    recipes: names.map((name) => standInRecipe(name)),
    job,
    stateDir: stateDir(),
    exitCodeOf,
    signal: new AbortController().signal,
    logger: silentLogger,
    runId: 'run-1',
    backoffMs: () => 1,
    ...rest,
  };
}

describe('nightly runner', () => {
  it('runs at most --concurrency builds at once, names jobs <recipe>-<16 hex of the key> and records them', async () => {
    const names = ['a', 'b', 'c', 'd'];
    const serial = new StandInJob({ root: path.join(dir, 'serial'), buildMs: 150 });
    await runNightly(options(serial, names));
    expect(serial.maxRunning).toBe(1);
    const parallel = new StandInJob({ root: path.join(dir, 'parallel'), buildMs: 150 });
    const { summary } = await runNightly(options(parallel, names, { concurrency: 2, runId: 'run-2' }));
    expect(parallel.maxRunning).toBe(2);
    const keys = await Promise.all(names.map((name) => parallel.key(standInRecipe(name))));
    expect(summary.recipes.map((r) => r.jobId)).toEqual(
      names.map((name, i) => `${name}-${keys[i]?.slice(0, 16)}`),
    );
    const jobFiles = (await readdir(path.join(stateDir(), 'nightly', 'jobs'))).sort();
    expect(jobFiles).toEqual(names.map((name, i) => `${name}-${keys[i]?.slice(0, 16)}.json`));
    expect(await readJson(path.join(stateDir(), 'nightly', 'jobs', jobFiles[0] as string))).toMatchObject({
      jobId: `a-${keys[0]?.slice(0, 16)}`,
      recipe: 'a',
      key: keys[0],
      status: 'succeeded',
      runId: 'run-2',
      attempts: 1,
      version: keys[0]?.slice(0, 8),
      errorCode: null,
      writer: { pid: process.pid },
    });
    expect(await readdir(path.join(stateDir(), 'nightly', 'locks'))).toEqual([]);
    await expect(runNightly(options(parallel, names, { concurrency: 0 }))).rejects.toThrow(
      'Expected `concurrency` to be an integer of at least 1, got `0`',
    );
  });

  it('a rerun of a finished night builds nothing and reports only cache hits', async () => {
    const job = new StandInJob({ root: path.join(dir, 'store') });
    const first = await runNightly(options(job, ['a', 'b', 'c']));
    expect(first.summary.counts).toEqual({ recipes: 3, succeeded: 3, failed: 0, cacheHits: 0, built: 3 });
    const second = await runNightly(options(job, ['a', 'b', 'c'], { runId: 'run-2' }));
    expect(second.summary.counts).toEqual({ recipes: 3, succeeded: 3, failed: 0, cacheHits: 3, built: 0 });
    expect(second.summary.recipes.map((r) => [r.recipe, r.cache, r.attempts, r.recovered])).toEqual([
      ['a', 'hit', 1, false],
      ['b', 'hit', 1, false],
      ['c', 'hit', 1, false],
    ]);
    // The build path is reported for what this run built, never for a hit.
    expect([first, second].map((run) => run.summary.recipes.map((r) => r.buildPath))).toEqual([
      ['stand-in', 'stand-in', 'stand-in'],
      [null, null, null],
    ]);
    expect((await job.builds()).filter((line) => line.includes(' start '))).toHaveLength(3);
  });

  it('retries download, engine and build failures (exit 7, 8, 9) up to 3 attempts, never invalid input (6)', async () => {
    const backoffs: string[] = [];
    const job = new StandInJob({
      root: path.join(dir, 'store'),
      failures: {
        flaky: ['E_DOWNLOAD_TRUNCATED', 'E_BUILD_FAILED'],
        corrupt: ['E_INPUT_CORRUPT'],
        engine: ['E_ENGINE_NOT_FOUND', 'E_ENGINE_NOT_FOUND', 'E_ENGINE_NOT_FOUND', 'E_ENGINE_NOT_FOUND'],
      },
    });
    const { summary } = await runNightly(
      options(job, ['flaky', 'corrupt', 'engine', 'fine'], {
        backoffMs: (n) => {
          backoffs.push(String(n));
          return 5 * n;
        },
      }),
    );
    expect(
      summary.recipes.map((r) => ({
        recipe: r.recipe,
        status: r.status,
        attempts: r.attempts,
        cache: r.cache,
        errorCode: r.errorCode,
        exitCode: r.exitCode,
      })),
    ).toEqual([
      { recipe: 'flaky', status: 'succeeded', attempts: 3, cache: 'miss', errorCode: null, exitCode: null },
      {
        recipe: 'corrupt',
        status: 'failed',
        attempts: 1,
        cache: null,
        errorCode: 'E_INPUT_CORRUPT',
        exitCode: 6,
      },
      {
        recipe: 'engine',
        status: 'failed',
        attempts: 3,
        cache: null,
        errorCode: 'E_ENGINE_NOT_FOUND',
        exitCode: 8,
      },
      { recipe: 'fine', status: 'succeeded', attempts: 1, cache: 'miss', errorCode: null, exitCode: null },
    ]);
    // Backoff after failed attempts 1 and 2, for flaky and for engine; none for corrupt.
    expect(backoffs).toEqual(['1', '2', '1', '2']);
    expect(summary.status).toBe('failed');
    const engineState = (await readJson(
      path.join(stateDir(), 'nightly', 'jobs', `${summary.recipes[2]?.jobId}.json`),
    )) as Record<string, unknown>;
    expect([engineState['status'], engineState['attempts'], engineState['errorCode']]).toEqual([
      'failed',
      3,
      'E_ENGINE_NOT_FOUND',
    ]);
  });

  it('writes summary.json and summary.md with status, attempts, duration, cache, version and error code', async () => {
    let clock = Date.parse('2026-12-02T02:30:00.000Z');
    const job = new StandInJob({ root: path.join(dir, 'store'), failures: { bad: ['E_INPUT_CORRUPT'] } });
    const { summary, files } = await runNightly(
      options(job, ['good', 'bad'], {
        runId: 'night-1',
        now: () => {
          clock += 500;
          return clock;
        },
      }),
    );
    expect(files).toEqual({
      json: path.join(stateDir(), 'nightly', 'runs', 'night-1', 'summary.json'),
      markdown: path.join(stateDir(), 'nightly', 'runs', 'night-1', 'summary.md'),
    });
    expect(await readJson(files.json)).toEqual(summary);
    const goodKey = await job.key(standInRecipe('good'));
    const badKey = await job.key(standInRecipe('bad'));
    expect(summary).toEqual({
      runId: 'night-1',
      status: 'failed',
      startedAt: '2026-12-02T02:30:00.500Z',
      finishedAt: summary.finishedAt,
      durationMs: Date.parse(summary.finishedAt) - Date.parse('2026-12-02T02:30:00.500Z'),
      concurrency: 1,
      resumedRuns: [],
      counts: { recipes: 2, succeeded: 1, failed: 1, cacheHits: 0, built: 1 },
      recipes: [
        {
          recipe: 'good',
          jobId: `good-${goodKey.slice(0, 16)}`,
          status: 'succeeded',
          attempts: 1,
          durationMs: summary.recipes[0]?.durationMs,
          cache: 'miss',
          artifactVersion: goodKey.slice(0, 8),
          artifactDir: path.join(dir, 'store', 'published', goodKey),
          buildPath: 'stand-in',
          errorCode: null,
          exitCode: null,
          message: null,
          recovered: false,
        },
        {
          recipe: 'bad',
          jobId: `bad-${badKey.slice(0, 16)}`,
          status: 'failed',
          attempts: 1,
          durationMs: summary.recipes[1]?.durationMs,
          cache: null,
          artifactVersion: null,
          artifactDir: null,
          buildPath: null,
          errorCode: 'E_INPUT_CORRUPT',
          exitCode: 6,
          message: 'stand-in failure E_INPUT_CORRUPT',
          recovered: false,
        },
      ],
    });
    // The fake clock ticks 500 ms per reading, so every duration is a positive multiple of it.
    for (const ms of [summary.durationMs, summary.recipes[0]?.durationMs, summary.recipes[1]?.durationMs]) {
      expect([ms !== undefined && ms > 0, (ms ?? 1) % 500]).toEqual([true, 0]);
    }
    const seconds = (ms: number | undefined): string => `${((ms ?? 0) / 1000).toFixed(1)} s`;
    expect(await readFile(files.markdown, 'utf8')).toBe(
      [
        '# ovmf-build nightly night-1',
        '',
        `**failed**: 1 of 2 recipes succeeded (0 cache hits, 1 built), 1 failed, in ${seconds(summary.durationMs)}.`,
        '',
        `Started 2026-12-02T02:30:00.500Z, finished ${summary.finishedAt}, concurrency 1.`,
        '',
        '| recipe | status | attempts | duration | cache | build path | artifact version | error |',
        '|---|---|---|---|---|---|---|---|',
        `| good | succeeded | 1 | ${seconds(summary.recipes[0]?.durationMs)} | miss | stand-in | ${goodKey.slice(0, 8)} |  |`,
        `| bad | failed | 1 | ${seconds(summary.recipes[1]?.durationMs)} | - | - | - | E_INPUT_CORRUPT (exit 6): stand-in failure E_INPUT_CORRUPT |`,
        '',
      ].join('\n'),
    );
    expect(await readJson(path.join(stateDir(), 'nightly', 'runs', 'night-1', 'run.json'))).toMatchObject({
      runId: 'night-1',
      status: 'finished',
      recipes: ['good', 'bad'],
    });
  });

  it('an interrupted run leaves its job running; the next run takes it over and finishes the night', async () => {
    const job = new StandInJob({ root: path.join(dir, 'store'), buildMs: 5_000 });
    const controller = new AbortController();
    const interrupted = runNightly(
      options(job, ['a', 'b'], {
        signal: controller.signal,
        onEvent: (event) => {
          if (event.type === 'phase' && event.phase === 'build') controller.abort();
        },
      }),
    );
    await expect(interrupted).rejects.toMatchObject({ code: 'E_ABORTED' });
    expect(await readJson(path.join(stateDir(), 'nightly', 'runs', 'run-1', 'run.json'))).toMatchObject({
      status: 'interrupted',
    });
    const aKey = await job.key(standInRecipe('a'));
    expect(
      await readJson(path.join(stateDir(), 'nightly', 'jobs', `a-${aKey.slice(0, 16)}.json`)),
    ).toMatchObject({
      status: 'running',
      runId: 'run-1',
    });
    const next = new StandInJob({ root: path.join(dir, 'store'), buildMs: 10 });
    const { summary } = await runNightly(options(next, ['a', 'b'], { runId: 'run-2' }));
    expect(summary.resumedRuns).toEqual(['run-1']);
    expect(summary.recipes.map((r) => [r.recipe, r.status, r.cache, r.recovered])).toEqual([
      ['a', 'succeeded', 'miss', true],
      ['b', 'succeeded', 'miss', false],
    ]);
    expect(await readJson(path.join(stateDir(), 'nightly', 'runs', 'run-1', 'run.json'))).toMatchObject({
      status: 'interrupted',
      resumedBy: 'run-2',
    });
    // Taken over once: the run after that resumes nothing.
    const third = await runNightly(options(next, ['a', 'b'], { runId: 'run-3' }));
    expect([third.summary.resumedRuns, third.summary.counts.cacheHits]).toEqual([[], 2]);
  });

  it('an abort between two recipes ends the run (the queued ones start, see the abort and stop)', async () => {
    const job = new StandInJob({ root: path.join(dir, 'store') });
    const controller = new AbortController();
    const run = runNightly(
      options(job, ['a', 'b', 'c'], {
        signal: controller.signal,
        onEvent: (event) => {
          if (event.type === 'done') controller.abort();
        },
      }),
    );
    await expect(run).rejects.toMatchObject({ code: 'E_ABORTED' });
    expect((await job.builds()).map((line) => line.split(' ').slice(0, 2).join(' '))).toEqual([
      'a start',
      'a published',
    ]);
    expect(await readJson(path.join(stateDir(), 'nightly', 'runs', 'run-1', 'run.json'))).toMatchObject({
      status: 'interrupted',
    });
  });

  it('refuses two recipes with one name', async () => {
    const job = new StandInJob({ root: path.join(dir, 'store') });
    await expect(runNightly(options(job, ['a', 'a']))).rejects.toMatchObject({ code: 'E_USAGE' });
  });
});

describe('nightly progress', () => {
  const events = (): NightlyEvent[] => {
    const report = {
      recipe: 'haswell',
      jobId: 'haswell-0123456789abcdef',
      status: 'succeeded' as const,
      attempts: 2,
      durationMs: 2_000,
      cache: 'miss' as const,
      artifactVersion: 'v1',
      artifactDir: '/a',
      buildPath: 'warm',
      errorCode: null,
      exitCode: null,
      message: null,
      recovered: false,
    };
    return [
      { type: 'start', runId: 'r', recipes: ['haswell', 'skylake'] },
      { type: 'phase', recipe: 'haswell', phase: 'build', attempt: 1 },
      { type: 'phase', recipe: 'haswell', phase: 'key', attempt: 2 },
      { type: 'done', report },
    ];
  };

  /** Feeds the events, setting the clock (ms) before each. */
  const feed = (onEvent: (event: NightlyEvent) => void, setClock: (ms: number) => void): void => {
    const timed = events();
    [0, 1_000, 2_500, 4_000].forEach((ms, i) => {
      setClock(ms);
      onEvent(timed[i] as NightlyEvent);
    });
  };

  it('prints one plain line per change when stderr is not a terminal', () => {
    const stream = new PassThrough();
    let t = 0;
    const progress = createNightlyProgress({ stream, now: () => t });
    feed(progress.onEvent, (ms) => (t = ms));
    progress.stop();
    expect(String(stream.read())).toBe(
      [
        '[    0.0s] nightly r: 2 recipes',
        '[    1.0s] haswell: build',
        '[    2.5s] haswell: key (attempt 2)',
        '[    4.0s] haswell: done (cache miss, 2 attempts) in 2.0s',
        '',
      ].join('\n'),
    );
  });

  it('redraws one line per recipe and a bar for the matrix on a terminal', () => {
    const stream = Object.assign(new PassThrough(), { isTTY: true, columns: 100 });
    let t = 0;
    const progress = createNightlyProgress({ stream, now: () => t, tickMs: 60_000 });
    feed(progress.onEvent, (ms) => (t = ms));
    progress.stop();
    const frames = String(stream.read()).split('\u001b[3F');
    expect(frames).toHaveLength(4);
    expect(frames.at(-1)?.split('\n')).toEqual([
      `\u001b[2K  haswell  ${'done (cache miss, 2 attempts)'.padEnd(28)}     3.0s`,
      `\u001b[2K  skylake  ${'queued'.padEnd(28)}         `,
      `\u001b[2K[${'#'.repeat(15)}${'-'.repeat(15)}] 1/2 done, 0 failed, 4.0s`,
      '',
    ]);
  });
});
