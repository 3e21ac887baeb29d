// Child process for test/cache-lock.test.ts: one contender for a cache key. Prints one JSON
// line with what happened. The "build" is a stand-in (a sleep and fixed bytes), because
// this test is about the lock; test/ovmf-e2e.int.test.ts proves it with real builds.
import { appendFile, readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { computeCacheKey, type CacheKeyDetails } from '../src/cache/key.js';
import { getOrBuild } from '../src/cache/get-or-build.js';
import { CacheStore } from '../src/cache/store.js';

const [root, detailsJson, buildLog, mode] = process.argv.slice(2) as [
  string,
  string,
  string,
  string | undefined,
];
const key = computeCacheKey(JSON.parse(detailsJson) as CacheKeyDetails);
const store = new CacheStore({ root });

if (mode === 'hold-forever') {
  await store.lock(key);
  process.stdout.write('locked\n');
  await sleep(600_000);
}

// Start line: both contenders look up the key only once both are running, so the test
// does not depend on process start-up times.
const barrier = `${buildLog}.ready`;
await appendFile(barrier, `${process.pid}\n`);
while ((await readFile(barrier, 'utf8')).trim().split('\n').length < 2) await sleep(20);

const result = await getOrBuild(
  store,
  key,
  async () => {
    await appendFile(buildLog, `${process.pid}\n`);
    await sleep(1_500);
    return { files: { 'OVMF_CODE.fd': new TextEncoder().encode('built by the stand-in') } };
  },
  { lock: { pollMs: 50 } },
);
process.stdout.write(
  `${JSON.stringify({ pid: process.pid, cacheHit: result.cacheHit, waitedForLock: result.waitedForLock })}\n`,
);
