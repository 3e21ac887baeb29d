import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { IgdModeSummary } from '../verify/igd-modes.js';
import { compiledInputsKey, EarlyRomChecks, type EarlyRomPlan } from './early-rom.js';
import type { BuildEnvironment } from './job-types.js';
import type { HelperDrivers } from './rom.js';

const logger = pino({ level: 'silent' });
const HELPERS: HelperDrivers = {
  igdAssignment: Uint8Array.of(0x4d, 0x5a, 1),
  gopPolicy: Uint8Array.of(0x4d, 0x5a, 2),
};
const SKIPPED: IgdModeSummary = { mode: 'rom', checked: false, reason: 'stand-in verdict' };

/** A plan whose run resolves when told to, recording what it was given. */
function recordingPlan(digest: string | null) {
  const seen: { helpers: HelperDrivers[]; signals: AbortSignal[] } = { helpers: [], signals: [] };
  let finish: (summary: IgdModeSummary) => void = () => undefined;
  const plan: EarlyRomPlan = async (helpers) => {
    seen.helpers.push(helpers);
    if (digest === null) return null;
    return {
      digest,
      run: (signal) => {
        seen.signals.push(signal);
        return new Promise<IgdModeSummary>((resolve, reject) => {
          finish = resolve;
          signal.addEventListener('abort', () => reject(signal.reason), { once: true });
        });
      },
    };
  };
  return { plan, seen, finish: (summary: IgdModeSummary) => finish(summary) };
}

const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A plan for `digest` that a build of its compiled inputs has started. */
async function startedPlan(checks: EarlyRomChecks, digest: string) {
  const job = recordingPlan(digest);
  checks.wait('compiled-1', job.plan, 'job');
  checks.offer('compiled-1', HELPERS, logger);
  await settle();
  return job;
}

describe('EarlyRomChecks', () => {
  it('starts a waiting plan with the helper drivers of a build of the same compiled inputs, and hands its verdict out once', async () => {
    await using checks = new EarlyRomChecks();
    const job = await startedPlan(checks, 'digest-a');
    expect(job.seen.helpers).toEqual([HELPERS]);
    const taken = checks.take('digest-a');
    expect(taken).toBeInstanceOf(Promise);
    expect(checks.take('digest-a')).toBeUndefined();
    job.finish(SKIPPED);
    await expect(taken).resolves.toBe(SKIPPED);
  });

  it("stops a taken check when the taker's signal aborts (its embedded mode failed), with that reason", async () => {
    await using checks = new EarlyRomChecks();
    const job = await startedPlan(checks, 'digest-s');
    const taker = new AbortController();
    const taken = checks.take('digest-s', taker.signal);
    expect(job.seen.signals[0]?.aborted).toBe(false);
    const reason = new Error('embedded mode failed');
    taker.abort(reason);
    expect(job.seen.signals[0]?.aborted).toBe(true);
    await expect(taken).rejects.toBe(reason);
  });

  it('stops a check taken with a signal that had already aborted', async () => {
    await using checks = new EarlyRomChecks();
    await startedPlan(checks, 'digest-t');
    const taker = new AbortController();
    taker.abort(new Error('gone'));
    await expect(checks.take('digest-t', taker.signal)).rejects.toThrow('gone');
  });

  it('leaves plans of other compiled inputs waiting, runs each plan at most once and never under a digest nobody asks for', async () => {
    await using checks = new EarlyRomChecks();
    const other = recordingPlan('digest-b');
    const once = recordingPlan('digest-c');
    checks.wait('compiled-2', other.plan, 'other');
    checks.wait('compiled-1', once.plan, 'once');
    checks.offer('compiled-1', HELPERS, logger);
    checks.offer('compiled-1', HELPERS, logger);
    await settle();
    expect(other.seen.helpers).toHaveLength(0);
    expect(once.seen.helpers).toHaveLength(1);
    expect(once.seen.signals).toHaveLength(1);
    expect(checks.take('digest-b')).toBeUndefined();
    expect(checks.take('not-a-digest')).toBeUndefined();
    checks.offer('compiled-2', HELPERS, logger);
    await settle();
    expect(other.seen.helpers).toHaveLength(1);
  });

  it('does not start a withdrawn plan, nor a plan that has no ROM mode to run', async () => {
    await using checks = new EarlyRomChecks();
    const withdrawn = recordingPlan('digest-d');
    const none = recordingPlan(null);
    const ticket = checks.wait('compiled-1', withdrawn.plan, 'withdrawn');
    checks.wait('compiled-1', none.plan, 'none');
    ticket.withdraw();
    checks.offer('compiled-1', HELPERS, logger);
    await settle();
    expect(withdrawn.seen.helpers).toHaveLength(0);
    expect(none.seen.helpers).toHaveLength(1);
    expect(checks.take('digest-d')).toBeUndefined();
  });

  it('release stops and drops the check of a job that no longer needs it, and leaves the others', async () => {
    await using checks = new EarlyRomChecks();
    const done = recordingPlan('digest-g');
    const other = recordingPlan('digest-h');
    const ticket = checks.wait('compiled-1', done.plan, 'done');
    checks.wait('compiled-1', other.plan, 'other');
    checks.offer('compiled-1', HELPERS, logger);
    await settle();
    ticket.release();
    expect(done.seen.signals[0]?.aborted).toBe(true);
    expect(other.seen.signals[0]?.aborted).toBe(false);
    expect(checks.take('digest-g')).toBeUndefined();
    const taken = checks.take('digest-h');
    other.finish(SKIPPED);
    await expect(taken).resolves.toBe(SKIPPED);
  });

  it('on dispose, aborts the checks nobody took and waits until they are over', async () => {
    const checks = new EarlyRomChecks();
    const job = recordingPlan('digest-e');
    checks.wait('compiled-1', job.plan, 'job');
    checks.offer('compiled-1', HELPERS, logger);
    await settle();
    expect(job.seen.signals[0]?.aborted).toBe(false);
    await checks[Symbol.asyncDispose]();
    expect(job.seen.signals[0]?.aborted).toBe(true);
    expect(checks.take('digest-e')).toBeUndefined();
    // After dispose nothing starts.
    const late = recordingPlan('digest-f');
    checks.wait('compiled-1', late.plan, 'late');
    checks.offer('compiled-1', HELPERS, logger);
    await settle();
    expect(late.seen.helpers).toHaveLength(0);
  });
});

describe('compiledInputsKey', () => {
  const environment: BuildEnvironment = {
    edk2SourceDigest: 'sha256-aa',
    edk2SourceDescription: 'Debian edk2',
    overlayDigest: 'bb',
    builderImageId: 'cc',
    builderImageRef: 'localhost/ovmf-build/edk2-builder:x',
    fromMemo: true,
  };

  it('changes with what is compiled (source, overlay, builder image, flags) and not with descriptions', () => {
    const base = compiledInputsKey(environment, { target: 'DEBUG' });
    expect(base).toMatch(/^[0-9a-f]{64}$/);
    expect(
      compiledInputsKey({ ...environment, fromMemo: false, builderImageRef: 'other' }, { target: 'DEBUG' }),
    ).toBe(base);
    expect(
      compiledInputsKey({ ...environment, edk2SourceDigest: 'sha256-ab' }, { target: 'DEBUG' }),
    ).not.toBe(base);
    expect(compiledInputsKey({ ...environment, overlayDigest: 'bc' }, { target: 'DEBUG' })).not.toBe(base);
    expect(compiledInputsKey({ ...environment, builderImageId: 'cd' }, { target: 'DEBUG' })).not.toBe(base);
    expect(compiledInputsKey(environment, { target: 'RELEASE' })).not.toBe(base);
  });
});
