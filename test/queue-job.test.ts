// The parts of the BullMQ scale-out that need no Redis: the --queue URL rule, the backoff the
// workers apply (the embedded runner's waits, carried in the job data), the failure that rides
// in BullMQ's failedReason, and the worker command's usage errors (exit 2 before any connection).
import { describe, expect, it } from 'vitest';
import { EXIT } from '../src/cli/exit-codes.js';
import { isOvmfBuildError } from '../src/core/errors.js';
import { defaultBackoffMs } from '../src/nightly/retry.js';
import { nightlyJobId, parseQueueUrl, redactedQueueUrl } from '../src/queue/index.js';
import { BACKOFF_TYPE, decodeFailure, encodeFailure, nightlyBackoff } from '../src/queue/nightly-job.js';
import { runCli } from './cli-harness.js';

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
