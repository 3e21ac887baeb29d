import { execFile, spawn } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { beforeEach, describe, expect, it } from 'vitest';
import { computeCacheKey, type CacheKeyDetails } from '../src/cache/key.js';
import { CacheStore } from '../src/cache/store.js';
import { SAMPLE_KEY_DETAILS } from './cache-key-details.js';
import { tempDirPerTest } from './temp-dir.js';

const run = promisify(execFile);
const CHILD = path.join(import.meta.dirname, 'cache-lock-child.ts');
const DETAILS: CacheKeyDetails = { ...SAMPLE_KEY_DETAILS, vbt: '1'.repeat(64) };

const tempDir = tempDirPerTest('ovmf-lock-');
let dir: string;
beforeEach(() => {
  dir = tempDir();
});

function child(...args: string[]): Promise<{ stdout: string }> {
  return run(process.execPath, ['--import', 'tsx', CHILD, ...args], {
    cwd: path.resolve(import.meta.dirname, '..'),
  });
}

describe('per-key lock across processes', () => {
  it('two processes with the same key build once; the other waits and hits', async () => {
    const root = path.join(dir, 'cache');
    const buildLog = path.join(dir, 'builds.log');
    await writeFile(buildLog, '');
    const outputs = await Promise.all([
      child(root, JSON.stringify(DETAILS), buildLog),
      child(root, JSON.stringify(DETAILS), buildLog),
    ]);
    const results = outputs
      .map((o) => JSON.parse(o.stdout) as { pid: number; cacheHit: boolean; waitedForLock: boolean })
      .sort((a, b) => Number(a.cacheHit) - Number(b.cacheHit));
    const builders = (await readFile(buildLog, 'utf8')).trim().split('\n');
    expect(builders).toHaveLength(1);
    expect(results.map((r) => ({ cacheHit: r.cacheHit, waitedForLock: r.waitedForLock }))).toEqual([
      { cacheHit: false, waitedForLock: false },
      { cacheHit: true, waitedForLock: true },
    ]);
    expect(String(results[0]?.pid)).toBe(builders[0]);
    expect(await readdir(path.join(root, 'locks'))).toEqual([]);
  });

  it('breaks the lock of a process killed with SIGKILL, then builds', async () => {
    const root = path.join(dir, 'cache');
    const buildLog = path.join(dir, 'builds.log');
    await writeFile(buildLog, '');
    const holder = spawn(
      process.execPath,
      ['--import', 'tsx', CHILD, root, JSON.stringify(DETAILS), buildLog, 'hold-forever'],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
        cwd: path.resolve(import.meta.dirname, '..'),
      },
    );
    await new Promise<void>((resolve) => holder.stdout.once('data', () => resolve()));
    const key = computeCacheKey(DETAILS);
    expect(await readdir(path.join(root, 'locks'))).toEqual([`${key.value}.lock`]);
    holder.kill('SIGKILL');
    await new Promise((resolve) => holder.once('exit', resolve));
    await writeFile(`${buildLog}.ready`, 'the holder\n');
    const { stdout } = await child(root, JSON.stringify(DETAILS), buildLog);
    expect(JSON.parse(stdout)).toMatchObject({ cacheHit: false, waitedForLock: false });
    expect((await new CacheStore({ root }).lookup(key)).hit).toBe(true);
    expect(await readdir(path.join(root, 'locks'))).toEqual([]);
  });
});
