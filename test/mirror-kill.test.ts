// A sync killed with SIGKILL at any point leaves the old mirror complete and serving: the child
// (the real CLI process) is killed before its first object, in the middle of a large object's
// body, after each committed object, and at several instants after the last download (version
// dirs, latest.json, index files being written). After every kill the tree is checked whole at
// the serial it reports (the old one, or the new one if the switch happened), and served by a
// real `serve`; the final sync completes and resumes the cut object with a Range request.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { MirrorIndex } from '../src/mirror/index-types.js';
import { writeMirrorIndex } from '../src/mirror/make-index.js';
import { syncMirror } from '../src/mirror/sync.js';
import { loadOrCreateSigningKey } from '../src/publish/signing.js';
import { startMirrorServer } from '../src/serve/server.js';
import { REPO_ROOT } from './corpus.js';
import {
  assertMirrorComplete,
  COMETLAKE_V1,
  COMETLAKE_V2,
  configDirOf,
  configEnv,
  publishFixture,
  serveWithProxy,
  TIGERLAKE_V1,
  type ProxyRecord,
  type RecordingProxy,
} from './mirror-fixture.js';

const ENTRY = path.join(REPO_ROOT, 'test', 'cli-entry.ts');
let work: string;
let proxy: RecordingProxy;
let fingerprint: string;
let publicKeyPem: string;
let local: string;
let newIndex: MirrorIndex;

function startSync(): { child: ChildProcess; done: Promise<number | null> } {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', ENTRY, 'mirror', 'sync', proxy.url, local, '--trust-key', fingerprint],
    { cwd: REPO_ROOT, env: configEnv(path.join(work, 'consumer')), stdio: 'ignore' },
  );
  const done = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, done };
}

/** Runs a sync and SIGKILLs it when `when` resolves; returns whether it was killed before it ended. */
async function killDuring(when: (child: ChildProcess) => Promise<void>): Promise<boolean> {
  const { child, done } = startSync();
  const ended = await Promise.race([when(child).then(() => false), done.then(() => true)]);
  if (!ended) child.kill('SIGKILL');
  await done;
  return !ended;
}

async function checkServing(): Promise<number> {
  const serial = await assertMirrorComplete(local, publicKeyPem, newIndex);
  await using server = await startMirrorServer({ root: local, port: 0 });
  const response = await fetch(new URL('index.signed.json', server.url));
  expect(response.status).toBe(200);
  expect((JSON.parse(await response.text()) as { payload: { serial: number } }).payload.serial).toBe(serial);
  return serial;
}

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'ovmf-mirror-kill-'));
  const publisher = configDirOf(path.join(work, 'publisher'));
  const key = await loadOrCreateSigningKey(publisher);
  fingerprint = key.fingerprint;
  publicKeyPem = key.publicKeyPem;
  const store = path.join(work, 'artifacts');
  const origin = path.join(work, 'origin');
  local = path.join(work, 'local');
  await publishFixture(store, publisher, { name: 'cometlake', ...COMETLAKE_V1 });
  await writeMirrorIndex({ storeDir: store, outDir: origin, configDir: publisher });
  proxy = await serveWithProxy(origin);
  await syncMirror({
    url: proxy.url,
    root: local,
    trustKey: fingerprint,
    configDir: configDirOf(path.join(work, 'consumer')),
  });
  // The origin moves on: two new versions with new large files.
  await publishFixture(store, publisher, { name: 'cometlake', ...COMETLAKE_V2 });
  await publishFixture(store, publisher, { name: 'tigerlake', ...TIGERLAKE_V1 });
  newIndex = (await writeMirrorIndex({ storeDir: store, outDir: origin, configDir: publisher })).index;
});

afterAll(async () => {
  await proxy?.close();
  await rm(work, { recursive: true, force: true });
});

it('leaves the old mirror complete and serving when the sync is killed at any point', async () => {
  expect(await checkServing()).toBe(1);
  const objectRequests = (): number => proxy.log.filter((r) => r.path.startsWith('/by-hash/')).length;
  const big = newIndex.artifacts[0]!.versions[0]!.files.find((f) => f.name === 'OVMF_CODE.fd')!;
  const kills: string[] = [];

  // 1. Before the first object: when the signed index has been answered.
  proxy.log.length = 0;
  if (
    await killDuring(async () => {
      while (objectRequests() === 0) await sleep(5);
    })
  )
    kills.push('before objects');
  expect(await checkServing()).toBe(1);

  // 2. In the middle of the large object's body (the proxy stalls after 1 MB).
  const bigRequests: ProxyRecord[] = [];
  let stalled!: () => void;
  const stall = new Promise<void>((resolve) => (stalled = resolve));
  proxy.decide = (r) => {
    if (r.path !== `/${big.by_hash}`) return { kind: 'pass' };
    bigRequests.push(r);
    return bigRequests.length === 1
      ? { kind: 'stall', afterBytes: 1_000_000, onStall: stalled }
      : { kind: 'pass' };
  };
  const part = path.join(local, '.mirror', 'staging', `${big.sha256}.part`);
  // Killed once the proxy has stalled and some of the body is on disk: a niced child under load
  // may not have written any of it 100 ms after the proxy sent it (bounded: 20 s).
  const partWritten = async (): Promise<void> => {
    await stall;
    for (const start = Date.now(); Date.now() - start < 20_000; await sleep(10)) {
      if (((await stat(part).catch(() => null))?.size ?? 0) > 0) return;
    }
  };
  if (await killDuring(partWritten)) kills.push('mid-object');
  expect(await checkServing()).toBe(1);
  // What reached the disk before the kill (at most what the proxy sent) is kept for the resume.
  const partBytes = (await readFile(part)).length;
  expect(partBytes).toBeGreaterThan(0);
  expect(partBytes).toBeLessThanOrEqual(1_000_000);

  // 3. After the n-th object request of a run, for a few n. The first of these runs resumes
  // the large object where the killed one stopped: Range from the part's length, If-Range its ETag.
  for (const n of [2, 4]) {
    proxy.log.length = 0;
    if (
      await killDuring(async () => {
        while (objectRequests() < n) await sleep(2);
      })
    )
      kills.push(`object ${n}`);
    expect([1, 2]).toContain(await checkServing());
  }
  expect(bigRequests[1]).toMatchObject({ range: `bytes=${partBytes}-`, ifRange: `"${big.sha256}"` });
  expect([206, 0]).toContain(bigRequests[1]!.status);

  // 5. At instants after the downloads: the renames and index writes.
  for (const delayMs of [0, 30, 80, 150, 300]) {
    proxy.log.length = 0;
    const wasKilled = await killDuring(async () => {
      // The last object of a fresh run, or the index fetch when every object is already here.
      while (!proxy.log.some((r) => r.path === '/index.signed.json' && r.status !== 0)) await sleep(2);
      await sleep(delayMs);
    });
    if (wasKilled) kills.push(`+${delayMs} ms`);
    expect([1, 2]).toContain(await checkServing());
  }

  // Finally a run to the end brings serial 2, complete.
  const { done } = startSync();
  expect(await done).toBe(0);
  expect(await checkServing()).toBe(2);
  // The child really was killed mid-way at least before objects, mid-object and at the resume.
  expect(kills.slice(0, 2)).toEqual(['before objects', 'mid-object']);
  proxy.decide = () => ({ kind: 'pass' });
}, 300_000);
