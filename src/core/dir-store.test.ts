// The directory store against real crashes and real races: a writer killed with SIGKILL in
// the middle of filling its temp dir, and writers racing for one target.
import { execFile, spawn } from 'node:child_process';
import { mkdir, readdir, readFile, symlink, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  findStaleTemps,
  fsyncTree,
  sweepStaleTemps,
  writeDirAtomic,
  type SweepOptions,
} from './dir-store.js';
import { tempDirPerTest } from '../../test/temp-dir.js';

/** A pid far above any pid_max, so never alive. */
const DEAD_PID = 2 ** 30;
const HOUR_MS = 3_600_000;
const STORE_MODULE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'dir-store.ts');

const tempDir = tempDirPerTest('ovmf-dir-store-');
let work: string;
beforeEach(() => {
  work = tempDir();
});

/** A reader's view: the target is complete when its marker is there. */
async function readComplete(target: string): Promise<string | null> {
  try {
    await readFile(path.join(target, 'DONE'));
    return await readFile(path.join(target, 'payload'), 'utf8');
  } catch {
    return null;
  }
}

/** Stores `payload` at `target` with the DONE marker; an existing complete entry wins. */
function writeEntry(target: string, payload: string, sweep?: SweepOptions) {
  return writeDirAtomic({
    target,
    marker: 'DONE',
    fill: async (dir) => writeFile(path.join(dir, 'payload'), payload).then(() => payload),
    existing: readComplete,
    ...(sweep === undefined ? {} : { sweep }),
  });
}

describe('writeDirAtomic', () => {
  it('makes the filled directory visible with its marker and leaves no temp dir', async () => {
    const target = path.join(work, 'store', 'entry');
    const result = await writeDirAtomic({
      target,
      marker: 'DONE',
      fill: async (dir) => {
        await mkdir(path.join(dir, 'sub'));
        await writeFile(path.join(dir, 'payload'), 'one');
        await writeFile(path.join(dir, 'sub', 'deep'), 'two');
        return 'mine';
      },
      existing: readComplete,
    });
    expect(result).toEqual({ created: true, value: 'mine' });
    expect(await readdir(path.join(work, 'store'))).toEqual(['entry']);
    expect((await readdir(target)).sort()).toEqual(['DONE', 'payload', 'sub']);
    expect(await readFile(path.join(target, 'DONE'), 'utf8')).toMatch(/^\d{4}-\d\d-\d\dT.*Z\n$/);
    expect(await readFile(path.join(target, 'sub', 'deep'), 'utf8')).toBe('two');
  });

  it('removes its temp dir and shows nothing when fill fails', async () => {
    const target = path.join(work, 'entry');
    await expect(
      writeDirAtomic({
        target,
        fill: async (dir) => {
          await writeFile(path.join(dir, 'payload'), 'half');
          throw new Error('disk on fire');
        },
        existing: readComplete,
      }),
    ).rejects.toThrow('disk on fire');
    expect(await readdir(work)).toEqual([]);
  });

  it('replaces an incomplete leftover at the target but keeps a complete winner', async () => {
    const target = path.join(work, 'entry');
    await mkdir(target);
    await writeFile(path.join(target, 'payload'), 'leftover without marker');
    expect(await writeEntry(target, 'first')).toEqual({ created: true, value: 'first' });
    const second = await writeEntry(target, 'second');
    expect(second).toEqual({ created: false, value: 'first' });
    expect(await readdir(work)).toEqual(['entry']);
    expect(await readFile(path.join(target, 'payload'), 'utf8')).toBe('first');
  });

  it('gives one complete entry when writers race for the same target', async () => {
    const target = path.join(work, 'entry');
    const results = await Promise.all(
      ['a', 'b', 'c', 'd'].map((name) =>
        writeDirAtomic({
          target,
          marker: 'DONE',
          fill: async (dir) => {
            // Each writer spends a different time so the renames interleave.
            await writeFile(path.join(dir, 'payload'), name);
            await sleep(name.charCodeAt(0) % 3);
            return name;
          },
          existing: readComplete,
        }),
      ),
    );
    const stored = await readComplete(target);
    expect(results.filter((result) => result.created).map((result) => result.value)).toEqual([stored]);
    expect(results.map((result) => result.value)).toEqual([stored, stored, stored, stored]);
    expect(await readdir(work)).toEqual(['entry']);
    expect((await readdir(target)).sort()).toEqual(['DONE', 'payload']);
  });
});

describe('writers in separate processes', () => {
  it('two processes storing the same target at once leave one complete entry', async () => {
    const target = path.join(work, 'store', 'entry');
    const script = path.join(work, 'racer.mts');
    await writeFile(
      script,
      [
        `import { readFile, writeFile } from 'node:fs/promises';`,
        `import path from 'node:path';`,
        `import { writeDirAtomic } from ${JSON.stringify(STORE_MODULE)};`,
        `const name = process.argv[2];`,
        `const result = await writeDirAtomic({`,
        `  target: ${JSON.stringify(target)},`,
        `  marker: 'DONE',`,
        `  fill: async (dir) => {`,
        `    await writeFile(path.join(dir, 'payload'), name);`,
        // Both fills overlap, so both reach the rename with a complete temp dir.
        `    await new Promise((resolve) => setTimeout(resolve, 300));`,
        `    return name;`,
        `  },`,
        `  existing: async (dir) => readFile(path.join(dir, 'DONE')).then(() => readFile(path.join(dir, 'payload'), 'utf8'), () => null),`,
        `});`,
        `process.stdout.write(JSON.stringify(result));`,
      ].join('\n'),
    );
    const racer = (name: string): Promise<{ created: boolean; value: string }> =>
      new Promise((resolve, reject) => {
        execFile(process.execPath, ['--import', 'tsx', script, name], (error, stdout, stderr) => {
          if (error === null) resolve(JSON.parse(stdout) as { created: boolean; value: string });
          else reject(new Error(`racer ${name} failed: ${stderr}`));
        });
      });
    const results = await Promise.all([racer('a'), racer('b')]);
    const stored = await readComplete(target);
    expect(stored === 'a' || stored === 'b').toBe(true);
    expect(results.map((result) => result.created).sort()).toEqual([false, true]);
    expect(results.map((result) => result.value)).toEqual([stored, stored]);
    expect(await readdir(path.join(work, 'store'))).toEqual(['entry']);
    expect((await readdir(target)).sort()).toEqual(['DONE', 'payload']);
  });
});

describe('a writer killed mid-write', () => {
  it('leaves no visible entry, and its temp dir is swept once stale', async () => {
    const parent = path.join(work, 'store');
    const target = path.join(parent, 'entry');
    const script = path.join(work, 'writer.mts');
    await writeFile(
      script,
      [
        `import { writeFile } from 'node:fs/promises';`,
        `import path from 'node:path';`,
        `import { writeDirAtomic } from ${JSON.stringify(STORE_MODULE)};`,
        `await writeDirAtomic({`,
        `  target: ${JSON.stringify(target)},`,
        `  marker: 'DONE',`,
        `  existing: async () => null,`,
        `  fill: async (dir) => {`,
        `    await writeFile(path.join(dir, 'payload'), 'half');`,
        `    process.stdout.write('filling\\n');`,
        `    await new Promise(() => setInterval(() => {}, 1000));`,
        `  },`,
        `});`,
      ].join('\n'),
    );
    const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('filling')) resolve();
      });
      child.on('exit', (code) => reject(new Error(`writer exited ${String(code)} early: ${stderr}`)));
    });
    const exited = new Promise((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');

    const temps = await readdir(parent);
    expect(temps).toHaveLength(1);
    expect(temps[0]).toMatch(new RegExp(`^\\.tmp-${String(child.pid)}-[0-9a-f]{12}$`));
    expect(await readComplete(target)).toBeNull();
    // Just killed: too fresh for the default sweep (its owner could live in another pid namespace).
    expect(await sweepStaleTemps(parent)).toEqual([]);
    const tempDir = path.join(parent, temps[0] as string);
    expect(await readFile(path.join(tempDir, 'payload'), 'utf8')).toBe('half');

    // The next writer, eleven minutes later, sweeps it and writes the entry.
    const later = Date.now() + 11 * 60_000;
    expect(await findStaleTemps(parent, { now: later })).toEqual([
      { path: tempDir, pid: child.pid, reason: `writer process ${child.pid} is gone` },
    ]);
    expect(await writeEntry(target, 'whole', { now: later })).toEqual({ created: true, value: 'whole' });
    expect(await readdir(parent)).toEqual(['entry']);
  });
});

describe('sweep rules', () => {
  it('keeps live writers and foreign names, removes dead ones past the grace and anything past 24 h', async () => {
    const now = Date.now();
    const make = async (name: string, ageMs: number): Promise<string> => {
      const dir = path.join(work, name);
      await mkdir(dir);
      const when = new Date(now - ageMs);
      await utimes(dir, when, when);
      return dir;
    };
    const deadOld = await make(`.tmp-${DEAD_PID}-aa`, HOUR_MS);
    await make(`.tmp-${DEAD_PID}-bb`, 60_000);
    await make(`.tmp-${process.pid}-cc`, HOUR_MS);
    const liveAncient = await make(`.tmp-${process.pid}-dd`, 25 * HOUR_MS);
    await make('.tmp-not-ours', 25 * HOUR_MS);
    await make('entry', 25 * HOUR_MS);
    expect(await sweepStaleTemps(work, { now })).toEqual([
      { path: deadOld, pid: DEAD_PID, reason: `writer process ${DEAD_PID} is gone` },
      { path: liveAncient, pid: process.pid, reason: 'older than 24 h' },
    ]);
    expect((await readdir(work)).sort()).toEqual([
      `.tmp-${DEAD_PID}-bb`,
      `.tmp-${process.pid}-cc`,
      '.tmp-not-ours',
      'entry',
    ]);
    expect(
      (await findStaleTemps(work, { now, deadOwnerAfterMs: 0 })).map((t) => path.basename(t.path)),
    ).toEqual([`.tmp-${DEAD_PID}-bb`]);
  });

  it('fsyncTree walks files, symlinks and nested directories without following links', async () => {
    await mkdir(path.join(work, 'a', 'b'), { recursive: true });
    await writeFile(path.join(work, 'a', 'b', 'f'), 'x');
    await symlink('/nonexistent/target', path.join(work, 'a', 'dangling'));
    await expect(fsyncTree(work)).resolves.toBeUndefined();
  });
});
