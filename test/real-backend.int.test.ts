// The real backend's builder-image lock: while another process holds it (here: this test, as
// a stand-in for a second `ovmf-build` started at the same time on a cold machine), resolving
// the build environment waits instead of building the same image a second time.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { acquireLock } from '../src/cache/lock.js';
import { buildCacheDir } from '../src/cache/paths.js';
import { DEFAULT_BUILD_FLAGS } from '../src/edk2/flags.js';
import { resolveEnvironment } from '../src/jobs/environment.js';
import { JobSession } from '../src/jobs/session.js';
import { testEnv } from './harness.js';

const WAITING = 'waiting for another process to finish the builder image';

describe('RealBackend', () => {
  it('waits for the builder-image lock of another process before checking the image', async () => {
    const messages: string[] = [];
    const logger = pino(
      { level: 'info' },
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          messages.push((JSON.parse(chunk.toString()) as { msg: string }).msg);
          done();
        },
      }),
    );
    const dir = path.join(buildCacheDir(process.env), 'locks');
    await mkdir(dir, { recursive: true });
    const held = await acquireLock(path.join(dir, 'builder-image.lock'));
    const session = new JobSession(testEnv());
    const holdMs = 1500;
    const started = performance.now();
    let resolvedAt = 0;
    let releasedAt: number | undefined;
    try {
      // The environment stage of the job (src/jobs/environment.ts), as a verified resolution runs it.
      const resolving = resolveEnvironment(
        {
          request: { env: testEnv(), source: { kind: 'debian' }, flags: DEFAULT_BUILD_FLAGS, offline: true },
          verify: true,
        },
        { logger, signal: new AbortController().signal, emit: () => undefined, session },
      ).then((environment) => {
        resolvedAt = performance.now();
        return environment;
      });
      // Source acquisition comes first; hold the lock until the backend is seen waiting, then a bit.
      for (let i = 0; !messages.includes(WAITING); i++) {
        if (i > 1200) throw new Error('the backend never waited for the builder-image lock');
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      await new Promise((resolve) => setTimeout(resolve, holdMs));
      releasedAt = performance.now();
      await held.release();
      const environment = await resolving;
      expect(environment.builderImageRef).toMatch(/^localhost\/ovmf-build\/edk2-builder:[0-9a-f]{16}$/);
      expect(environment.fromMemo).toBe(false);
    } finally {
      await held.release();
      await session[Symbol.asyncDispose]();
    }
    expect(messages.filter((m) => m === WAITING)).toHaveLength(1);
    expect(resolvedAt).toBeGreaterThanOrEqual(releasedAt ?? Number.POSITIVE_INFINITY);
    expect(resolvedAt - started).toBeGreaterThanOrEqual(holdMs);
  });
});
