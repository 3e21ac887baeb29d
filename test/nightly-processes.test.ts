// Two real nightly runner processes (test/nightly-child.ts, stand-in job): run at once they
// build each job once; after kill -9 of one mid-matrix, the next run finishes the night without
// rebuilding what was published and with no partial artifact (issue 11, "embedded default").
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runNightly } from '../src/nightly/runner.js';
import type { NightlySummary } from '../src/nightly/types.js';
import { exitCodeOf, MARKER, silentLogger, StandInJob, standInRecipe } from './nightly-stand-in.js';

const run = promisify(execFile);
const CHILD = path.join(import.meta.dirname, 'nightly-child.ts');
const REPO = path.resolve(import.meta.dirname, '..');

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'ovmf-nightly-proc-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const childArgs = (buildMs: number, names: string, runId: string, barrier?: string): string[] => [
  '--import',
  'tsx',
  CHILD,
  path.join(dir, 'state'),
  path.join(dir, 'store'),
  String(buildMs),
  names,
  runId,
  ...(barrier === undefined ? [] : [barrier]),
];

async function builds(): Promise<string[]> {
  const text = await readFile(path.join(dir, 'store', 'builds.log'), 'utf8').catch(() => '');
  return text.split('\n').filter((line) => line !== '');
}

describe('nightly runner processes', () => {
  it('two runners at once build each job once; the other waits and reports a cache hit', async () => {
    const barrier = path.join(dir, 'ready');
    await writeFile(barrier, '');
    const outputs = await Promise.all([
      run(process.execPath, childArgs(400, 'a,b,c', 'run-x', barrier), { cwd: REPO }),
      run(process.execPath, childArgs(400, 'a,b,c', 'run-y', barrier), { cwd: REPO }),
    ]);
    const [x, y] = outputs.map((o) => JSON.parse(o.stdout) as NightlySummary);
    const lines = await builds();
    const recipesThat = (what: string): string[] =>
      lines
        .filter((l) => l.includes(` ${what} `))
        .map((l) => l.split(' ')[0] as string)
        .sort();
    expect([recipesThat('start'), recipesThat('published')]).toEqual([
      ['a', 'b', 'c'],
      ['a', 'b', 'c'],
    ]);
    for (const name of ['a', 'b', 'c']) {
      const caches = [x, y].map((s) => s?.recipes.find((r) => r.recipe === name)?.cache).sort();
      expect([name, caches]).toEqual([name, ['hit', 'miss']]);
    }
    expect([x?.status, y?.status, x?.counts.failed, y?.counts.failed]).toEqual([
      'succeeded',
      'succeeded',
      0,
      0,
    ]);
    // Same inputs, same job ids in both runs.
    expect(x?.recipes.map((r) => r.jobId)).toEqual(y?.recipes.map((r) => r.jobId));
    expect(await readdir(path.join(dir, 'state', 'nightly', 'locks'))).toEqual([]);
  });

  it('after kill -9 mid-matrix, the next run finishes the night, rebuilds nothing published, leaves nothing partial', async () => {
    const child = spawn(process.execPath, childArgs(1_500, 'a,b,c', 'run-killed'), {
      cwd: REPO,
      stdio: 'ignore',
    });
    const exited = new Promise<NodeJS.Signals | null>((resolve) =>
      child.on('exit', (_code, signal) => resolve(signal)),
    );
    // Kill once a is published and b's build is under way.
    const deadline = Date.now() + 60_000;
    while (!(await builds()).some((l) => l.startsWith('b start')) && Date.now() < deadline) await sleep(25);
    await sleep(300);
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    expect((await builds()).map((l) => l.split(' ').slice(0, 2).join(' '))).toEqual([
      'a start',
      'a published',
      'b start',
    ]);
    const job = new StandInJob({ root: path.join(dir, 'store'), buildMs: 20 });
    const bKey = await job.key(standInRecipe('b'));
    expect(
      JSON.parse(
        await readFile(path.join(dir, 'state', 'nightly', 'jobs', `b-${bKey.slice(0, 16)}.json`), 'utf8'),
      ),
    ).toMatchObject({
      status: 'running',
      runId: 'run-killed',
    });
    // The killed runner's lock on b is still there (its holder is dead, so it is broken later).
    expect(await readdir(path.join(dir, 'state', 'nightly', 'locks'))).toEqual([
      `b-${bKey.slice(0, 16)}.lock`,
    ]);

    const { summary } = await runNightly({
      recipes: ['a', 'b', 'c'].map((name) => standInRecipe(name)),
      job,
      stateDir: path.join(dir, 'state'),
      exitCodeOf,
      signal: new AbortController().signal,
      logger: silentLogger,
      runId: 'run-next',
      lockPollMs: 50,
    });
    expect(summary.resumedRuns).toEqual(['run-killed']);
    expect(summary.recipes.map((r) => [r.recipe, r.status, r.cache, r.recovered])).toEqual([
      ['a', 'succeeded', 'hit', false],
      ['b', 'succeeded', 'miss', true],
      ['c', 'succeeded', 'miss', false],
    ]);
    expect((await builds()).map((l) => l.split(' ').slice(0, 2).join(' '))).toEqual([
      'a start',
      'a published',
      'b start',
      'b start',
      'b published',
      'c start',
      'c published',
    ]);
    // Every visible entry is complete; the killed build left at most a hidden temp dir.
    const published = path.join(dir, 'store', 'published');
    const visible = (await readdir(published)).filter((name) => !name.startsWith('.'));
    const keys = await Promise.all(['a', 'b', 'c'].map((name) => job.key(standInRecipe(name))));
    expect(visible.sort()).toEqual([...keys].sort());
    for (const key of visible) {
      expect((await stat(path.join(published, key, MARKER))).isFile()).toBe(true);
      expect(await readFile(path.join(published, key, 'OVMF_CODE.fd'), 'utf8')).toBe(key);
    }
    expect(await readdir(path.join(dir, 'state', 'nightly', 'locks'))).toEqual([]);
    const killedRun = JSON.parse(
      await readFile(path.join(dir, 'state', 'nightly', 'runs', 'run-killed', 'run.json'), 'utf8'),
    ) as Record<string, unknown>;
    expect([killedRun['status'], killedRun['resumedBy']]).toEqual(['interrupted', 'run-next']);
  });
});
