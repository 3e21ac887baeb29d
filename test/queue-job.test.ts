// The parts of the BullMQ scale-out that need no Redis: the --queue URL rule, the backoff the
// workers apply (the embedded runner's waits, carried in the job data), the failure that rides
// in BullMQ's failedReason, the --schedule cron rule and scheduler id, the queue-mode summary
// line, and the worker's and nightly's usage errors (exit 2 before any connection).
import { describe, expect, it } from 'vitest';
import { EXIT } from '../src/cli/exit-codes.js';
import { isOvmfBuildError } from '../src/core/errors.js';
import { defaultBackoffMs } from '../src/nightly/retry.js';
import { renderSummaryMarkdown } from '../src/nightly/summary.js';
import type { NightlySummary } from '../src/nightly/types.js';
import {
  nightlyJobId,
  nightlyScheduleId,
  parseCronSchedule,
  parseQueueUrl,
  redactedQueueUrl,
} from '../src/queue/index.js';
import { BACKOFF_TYPE, decodeFailure, encodeFailure, nightlyBackoff } from '../src/queue/nightly-job.js';
import { runCli } from './cli-harness.js';
import { REPO_ROOT } from './corpus.js';

function usageMessage(value: string): string | null {
  try {
    parseQueueUrl(value);
    return null;
  } catch (error) {
    return isOvmfBuildError(error) && error.code === 'E_USAGE'
      ? error.message
      : `unexpected ${String(error)}`;
  }
}

describe('--queue URL', () => {
  it.each([
    ['redis://127.0.0.1:6379', 'redis://127.0.0.1:6379'],
    ['redis://queue.example:6380/2', 'redis://queue.example:6380/2'],
    ['rediss://:secret@queue.example:6379', 'rediss://:***@queue.example:6379'],
  ])('accepts %s (shown as %s)', (value, shown) => {
    expect(redactedQueueUrl(parseQueueUrl(value))).toBe(shown);
  });

  it.each([
    '127.0.0.1:6379',
    'http://127.0.0.1:6379',
    'redis://',
    'redis://host:6379/db',
    'redis://host:6379/?x=1',
  ])('refuses %s with a usage error', (value) => {
    expect(usageMessage(value)).toMatch(/^--queue must be a redis:\/\/HOST:PORT/);
  });
});

describe('nightly jobs on the queue', () => {
  it('names a job as the embedded runner does', () => {
    expect(nightlyJobId('cometlake', `0123456789abcdef${'f'.repeat(48)}`)).toBe('cometlake-0123456789abcdef');
  });

  it("waits the data's backoff before each retry, the last one for later retries", () => {
    const job = { data: { backoffMs: [defaultBackoffMs(1), defaultBackoffMs(2)] } };
    expect([1, 2, 3].map((n) => nightlyBackoff(n, BACKOFF_TYPE, undefined, job))).toEqual([
      30_000, 90_000, 90_000,
    ]);
    // Another backoff type is not ours: -1 tells BullMQ not to retry.
    expect(nightlyBackoff(1, 'exponential', undefined, job)).toBe(-1);
  });

  it("carries our error code and exit code in failedReason; BullMQ's own reasons become E_QUEUE_JOB_FAILED", () => {
    const failure = { code: 'E_FETCH_HTTP_STATUS', exitCode: 7, message: 'GET x answered HTTP 503' };
    expect(decodeFailure(encodeFailure(failure))).toEqual(failure);
    expect(decodeFailure('job stalled more than allowable limit')).toEqual({
      code: 'E_QUEUE_JOB_FAILED',
      exitCode: 1,
      message: 'job stalled more than allowable limit',
    });
    expect(decodeFailure('{"code":7}')).toMatchObject({ code: 'E_QUEUE_JOB_FAILED' });
  });
});

describe('ovmf-build worker usage', () => {
  it.each([
    [[], 'give --queue redis://HOST:PORT'],
    [['--queue', 'http://127.0.0.1:6379'], '--queue must be a redis://HOST:PORT[/DB] URL'],
    [
      ['--queue', 'redis://127.0.0.1:6379', '--concurrency', '0'],
      '--concurrency must be a whole number from 1 to 64',
    ],
    [
      ['--queue', 'redis://127.0.0.1:6379', '--lock-seconds', '2'],
      '--lock-seconds must be a whole number from 5',
    ],
    [['--queue', 'redis://127.0.0.1:6379', 'extra'], 'unexpected argument `extra`'],
  ])('%j is a usage error', async (args, message) => {
    const { code, stdout } = await runCli(['worker', ...args, '--json']);
    expect(code).toBe(EXIT.usage);
    const error = (JSON.parse(stdout) as { error: { code: string; message: string } }).error;
    expect(error.code).toBe('E_USAGE');
    expect(error.message).toContain(message);
  });
});

describe('--schedule cron pattern', () => {
  // 2026-12-02T10:00:00Z, a Wednesday.
  const from = Date.UTC(2026, 11, 2, 10, 0, 0);

  it.each([
    ['0 3 * * *', 'UTC', '2026-12-03T03:00:00.000Z'],
    [' 30 2 * * 1-5 ', 'UTC', '2026-12-03T02:30:00.000Z'],
    // Read in the zone given: 03:00 in Berlin (UTC+1 in December) is 02:00 UTC.
    ['0 3 * * *', 'Europe/Berlin', '2026-12-03T02:00:00.000Z'],
    ['*/5 * * * * *', 'UTC', '2026-12-02T10:00:05.000Z'],
    ['@daily', 'UTC', '2026-12-03T00:00:00.000Z'],
  ])('%j in %s fires next at %s', (pattern, tz, next) => {
    const schedule = parseCronSchedule(pattern, tz, from);
    expect([schedule.pattern, schedule.tz, new Date(schedule.nextMs).toISOString()]).toEqual([
      pattern.trim(),
      tz,
      next,
    ]);
  });

  it.each([
    ['61 3 * * *', /got value 61 expected range 0-59/],
    ['0 3 * *', /4 fields/],
    ['', /0 fields/],
    ['* * * * * * *', /7 fields/],
    ['every night', /2 fields/],
    ['0 25 * * *', /expected range 0-23/],
  ])('refuses %j with a usage error naming --schedule', (pattern, reason) => {
    let error: unknown;
    try {
      parseCronSchedule(pattern, 'UTC', from);
    } catch (caught) {
      error = caught;
    }
    expect(isOvmfBuildError(error) && error.code).toBe('E_USAGE');
    expect((error as Error).message).toMatch(/^--schedule must be a cron pattern of 5 fields/);
    expect((error as Error).message).toMatch(reason);
  });

  it('refuses an unknown time zone', () => {
    expect(() => parseCronSchedule('0 3 * * *', 'Mars/Olympus', from)).toThrow(
      /^--tz must be an IANA time zone/,
    );
  });

  it('gives one scheduler id per recipe directory, the same every time', () => {
    const id = nightlyScheduleId('/srv/ovmf/recipes');
    expect(id).toMatch(/^nightly-recipes-[0-9a-f]{12}$/);
    expect(nightlyScheduleId('/srv/ovmf/recipes/')).toBe(id);
    expect(nightlyScheduleId('/srv/ovmf/other/../recipes')).toBe(id);
    expect(nightlyScheduleId('/srv/other/recipes')).not.toBe(id);
  });
});

describe('ovmf-build nightly --schedule usage', () => {
  const recipes = `${REPO_ROOT}/recipes`;
  it.each([
    [
      ['--queue', 'redis://127.0.0.1:1', '--schedule', '0 3 * *'],
      '--schedule must be a cron pattern of 5 fields',
    ],
    [
      ['--queue', 'redis://127.0.0.1:1', '--schedule', '0 3 * * *', '--tz', 'Nowhere/X'],
      '--tz must be an IANA',
    ],
    [['--schedule', '0 3 * * *'], '--schedule and --unschedule need --queue'],
    [['--unschedule'], '--schedule and --unschedule need --queue'],
    [['--queue', 'redis://127.0.0.1:1', '--schedule', '0 3 * * *', '--unschedule'], 'not both'],
    [['--queue', 'redis://127.0.0.1:1', '--unschedule', '--tz', 'UTC'], '--tz goes with --schedule'],
    [['--queue', 'redis://127.0.0.1:1', '--schedule', '0 3 * * *', '--concurrency', '2'], 'does not go with'],
  ])('%j is a usage error before any connection', async (args, message) => {
    // Port 1 has no Redis: a usage error must come first, not E_QUEUE_UNREACHABLE.
    const { code, stdout } = await runCli(['nightly', recipes, ...args, '--json']);
    expect(code).toBe(EXIT.usage);
    const error = (JSON.parse(stdout) as { error: { code: string; message: string } }).error;
    expect(error.code).toBe('E_USAGE');
    expect(error.message).toContain(message);
  });
});

describe('summary.md of a queued night', () => {
  const summary = (queue: NightlySummary['queue'], concurrency: number | null): NightlySummary => ({
    runId: 'q-1',
    status: 'succeeded',
    startedAt: '2026-12-02T02:30:00.000Z',
    finishedAt: '2026-12-02T02:31:00.000Z',
    durationMs: 60_000,
    concurrency,
    ...(queue === undefined ? {} : { queue }),
    resumedRuns: [],
    counts: { recipes: 2, succeeded: 2, failed: 0, cacheHits: 1, built: 1 },
    recipes: [],
  });
  const line = (s: NightlySummary): string | undefined =>
    renderSummaryMarkdown(s)
      .split('\n')
      .find((l) => l.startsWith('Started '));

  it('says where the jobs ran and that each worker sets its own concurrency, never "concurrency 0"', () => {
    const queue = {
      url: 'redis://:***@queue.example:6379',
      globalConcurrency: null,
      workers: ['a:1', 'b:2'],
      enqueued: 1,
      joined: 1,
    };
    expect(line(summary(queue, null))).toBe(
      'Started 2026-12-02T02:30:00.000Z, finished 2026-12-02T02:31:00.000Z, on the BullMQ queue ' +
        'redis://:***@queue.example:6379: 1 jobs enqueued, 1 already in the queue and joined; ' +
        'run by 2 workers (a:1, b:2), each at its own --concurrency, no global limit.',
    );
    expect(line(summary({ ...queue, globalConcurrency: 3, workers: ['a:1'] }, 3))).toMatch(
      /run by 1 worker \(a:1\), at most 3 jobs at once over all workers\.$/,
    );
    expect(line(summary({ ...queue, workers: [], enqueued: 0, joined: 2 }, null))).toMatch(
      /0 jobs enqueued, 2 already in the queue and joined; no worker ran a job \(all were finished before\)/,
    );
    expect(line(summary(undefined, 2))).toBe(
      'Started 2026-12-02T02:30:00.000Z, finished 2026-12-02T02:31:00.000Z, concurrency 2.',
    );
  });
});
