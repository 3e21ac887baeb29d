// The job session's EDK2 source: a verified resolution before each build acquires Debian's
// package again (apt-get source --print-uris, about 1 s here) unless the apt lists are in the
// state this session acquired it under (environment.ts sourceStamp), so a nightly's recipes pay
// for it once per run. With Debian's real package and apt, as the global setup cached it;
// every acquisition logs `edk2 source: cached` (src/edk2/source/cache.ts), which counts them.
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { resolveBuildFlags } from '../src/edk2/flags.js';
import { resolveEnvironment, sourceStamp } from '../src/jobs/environment.js';
import { JobSession } from '../src/jobs/session.js';
import { testEnv } from './harness.js';

const SPEC = { kind: 'debian' } as const;

/** A debug logger into `lines`, and how many acquisitions the lines show. */
function countingLogger(): { logger: pino.Logger; acquisitions: () => number } {
  const lines: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(line) });
  return {
    logger,
    acquisitions: () => lines.filter((line) => line.includes('"msg":"edk2 source: cached"')).length,
  };
}

describe('JobSession.source for Debian', () => {
  it('a fresh acquisition under the same apt stamp reuses the tree; another stamp, or none, asks apt again', async () => {
    const { logger, acquisitions } = countingLogger();
    const signal = new AbortController().signal;
    await using session = new JobSession(testEnv());
    const first = await session.source(SPEC, logger, signal, true, 'apt:candidate:1');
    expect(acquisitions()).toBe(1);
    expect(await session.source(SPEC, logger, signal, true, 'apt:candidate:1')).toBe(first);
    expect(acquisitions()).toBe(1);
    const second = await session.source(SPEC, logger, signal, true, 'apt:candidate:2');
    expect(acquisitions()).toBe(2);
    expect(second.digest).toBe(first.digest);
    await session.source(SPEC, logger, signal, true);
    expect(acquisitions()).toBe(3);
    // Not fresh (the build stage): the session's tree, whatever the stamp.
    await session.source(SPEC, logger, signal);
    expect(acquisitions()).toBe(3);
  });

  it("a nightly's verified resolutions in one session ask apt once while the apt lists are unchanged", async () => {
    const { logger, acquisitions } = countingLogger();
    const env = testEnv();
    await using session = new JobSession(env);
    const request = { env, source: SPEC, flags: resolveBuildFlags({}), offline: false };
    const context = { signal: new AbortController().signal, logger, emit: () => undefined, session };
    const stamp = await sourceStamp(SPEC, Date.now());
    expect(stamp).toMatch(/^apt:candidate:/);
    const resolved = [];
    for (let job = 0; job < 3; job += 1)
      resolved.push(await resolveEnvironment({ request, verify: true }, context));
    expect(acquisitions()).toBe(1);
    expect(new Set(resolved.map((r) => r.edk2SourceDigest)).size).toBe(1);
  });
});
