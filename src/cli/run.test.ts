// The main thread's busy bound (run.ts): a command that keeps the thread from answering a
// signal for longer than the bound is told to move to a worker at its next abort check, and
// the CLI then reports nothing, so the worker's run is the only output.
import { existsSync } from 'node:fs';
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { corpusPath } from '../../test/corpus.js';
import { AbortError } from '../core/errors.js';
import { MAIN_THREAD_MAX_INPUT_BYTES, MOVED_TO_WORKER, MoveToWorker } from './context.js';
import { main } from './main.js';
import { busyBoundSignal } from './run.js';

/** Keeps the thread busy (no event loop turn) for `ms`. */
function busy(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // spin: what a long synchronous parse does to the event loop
  }
}

describe('busyBoundSignal', () => {
  it('is not aborted while the thread answers in time, and moves once it was busy past the bound', async () => {
    // The bound's own clock, moved by hand: a real busy loop on a loaded machine (CI runs this
    // niced beside EDK2 builds) can be kept off the CPU for longer than any bound.
    let clock = 1_000;
    const bound = busyBoundSignal(new AbortController().signal, 150, () => clock);
    try {
      clock += 60;
      expect(bound.signal.aborted).toBe(false);
      clock += 90; // busy for exactly the bound: not over it
      expect(bound.signal.aborted).toBe(false);
      // Waiting is no busyness: the timer notes each free moment (it fires every 20 ms, before
      // this sleep's own timer), so 300 ms that passed while the loop was free do not count.
      clock += 300;
      await sleep(60);
      expect(bound.signal.aborted).toBe(false);
      clock += 150;
      expect(bound.signal.aborted).toBe(false);
      clock += 1;
      expect(bound.signal.aborted).toBe(true);
      expect(bound.signal.reason).toBeInstanceOf(MoveToWorker);
      expect(() => bound.signal.throwIfAborted()).toThrow(MoveToWorker);
    } finally {
      bound.stop();
    }
  });

  it('measures real busyness with its default clock', () => {
    const bound = busyBoundSignal(new AbortController().signal, 30);
    try {
      busy(100);
      expect(bound.signal.aborted).toBe(true);
      expect(bound.signal.reason).toBeInstanceOf(MoveToWorker);
    } finally {
      bound.stop();
    }
  });

  it('never moves once disarmed (the command has begun its output)', () => {
    const bound = busyBoundSignal(new AbortController().signal, 20);
    try {
      bound.disarm();
      busy(80);
      expect(bound.signal.aborted).toBe(false);
      expect(bound.signal.reason).toBeUndefined();
    } finally {
      bound.stop();
    }
  });

  it('follows the outer signal (SIGINT, SIGTERM) with its reason, and then never moves', () => {
    const outer = new AbortController();
    const bound = busyBoundSignal(outer.signal, 20);
    try {
      const reason = new AbortError('interrupted by SIGINT', { signal: 'SIGINT' });
      outer.abort(reason);
      busy(80);
      expect(bound.signal.aborted).toBe(true);
      expect(bound.signal.reason).toBe(reason);
    } finally {
      bound.stop();
    }
  });
});

describe('main() on a moved command', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'run-test-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** main() with a busy bound that never fires by itself, as run.ts gives it on the main thread. */
  async function onMainThread(argv: readonly string[]) {
    const written: string[] = [];
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    stdout.on('data', (c: Buffer) => written.push(c.toString()));
    stderr.on('data', (c: Buffer) => written.push(c.toString()));
    // A clock that never moves: the bound cannot fire however long a loaded machine takes.
    const bound = busyBoundSignal(new AbortController().signal, 60_000, () => 0);
    const moves: string[] = [];
    try {
      const code = await main({
        argv,
        stdout,
        stderr,
        env: process.env,
        cwd: dir,
        signal: bound.signal,
        moveToWorker: (why: string): never => {
          moves.push(why);
          bound.move(why);
          throw bound.signal.reason;
        },
      });
      await sleep(10);
      return { code, moves, written: written.join('') };
    } finally {
      bound.stop();
    }
  }

  it('extract and inspect move an input over MAIN_THREAD_MAX_INPUT_BYTES before parsing, writing nothing', async () => {
    const large = path.join(dir, 'large.bin');
    await writeFile(large, new Uint8Array(0));
    await truncate(large, MAIN_THREAD_MAX_INPUT_BYTES + 1);
    for (const argv of [
      ['extract', large, '--out', path.join(dir, 'out'), '--json'],
      ['inspect', large, '--json'],
    ]) {
      expect(await onMainThread(argv)).toEqual({
        code: MOVED_TO_WORKER,
        moves: ['a large input'],
        written: '',
      });
    }
    expect(existsSync(path.join(dir, 'out'))).toBe(false);
  });

  it('extract moves what is no bare image, option ROM or VBT (a package is unpacked in the worker)', async () => {
    const zip = path.join(dir, 'package.zip');
    // An empty zip archive: the end-of-central-directory record alone.
    await writeFile(zip, Uint8Array.of(0x50, 0x4b, 0x05, 0x06, ...new Array<number>(18).fill(0)));
    expect(await onMainThread(['extract', zip, '--out', path.join(dir, 'out')])).toEqual({
      code: MOVED_TO_WORKER,
      moves: ['an input of kind unknown'],
      written: '',
    });
  });

  it('a small bare image stays on the main thread and is reported as usual', async () => {
    const result = await onMainThread([
      'extract',
      corpusPath('ovmf/OVMF_VARS_4M.fd'),
      '--out',
      path.join(dir, 'v'),
    ]);
    expect(result.moves).toEqual([]);
    expect(result.code).toBe(4);
    expect(result.written).toMatch(/ships no Intel GOP driver.*\[E_GOP_NOT_FOUND\]/);
  });

  it('once moved by the busy bound, a failing command reports nothing (also with --json)', async () => {
    const stdout = new PassThrough();
    const written: string[] = [];
    stdout.on('data', (c: Buffer) => written.push(c.toString()));
    const bound = busyBoundSignal(new AbortController().signal, 10);
    try {
      busy(50);
      expect(bound.signal.aborted).toBe(true);
      const code = await main({
        argv: ['extract', path.join(dir, 'missing.bin'), '--out', path.join(dir, 'o'), '--json'],
        stdout,
        stderr: stdout,
        env: process.env,
        cwd: dir,
        signal: bound.signal,
      });
      await sleep(10);
      expect({ code, written }).toEqual({ code: MOVED_TO_WORKER, written: [] });
    } finally {
      bound.stop();
    }
  });
});
