// The QEMU supervisor with real processes (a shell stands in for QEMU: the supervision does not
// care what the binary is): output tails, the watch loop, the kill, the start-failure codes, and
// the growing-log reader.
import { execFileSync, spawn } from 'node:child_process';
import { appendFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../test/corpus.js';
import { isRunning } from '../../test/proc-state.js';
import { tempDirPerTest } from '../../test/temp-dir.js';
import { VerificationError } from './errors.js';
import { drainLogs, GrowingFile, parseSchedstat, QemuProcess, threadState } from './qemu-process.js';

const dir = tempDirPerTest('qemu-process-');

describe('QemuProcess', () => {
  it('keeps stdout and stderr, and reports the exit', async () => {
    const qemu = new QemuProcess('/bin/sh', ['-c', 'echo out; echo err >&2; exit 3']);
    await qemu.exited;
    expect(qemu.stdout()).toBe('out\n');
    expect(qemu.stderr()).toBe('err\n');
    expect(qemu.exit()).toEqual({ code: 3, signal: null });
    expect(qemu.spawnError()).toBeUndefined();
    expect(() => qemu.throwIfStartFailed('E_BOOT_QEMU_FAILED')).not.toThrow();
  });

  it('watches a log until decide answers, then stop() kills what still runs', async () => {
    const log = path.join(dir(), 'debug.log');
    const qemu = new QemuProcess('/bin/sh', [
      '-c',
      `echo one > '${log}'; sleep 0.2; echo '[Bds] Entry' >> '${log}'; exec sleep 30`,
    ]);
    const debug = new GrowingFile(log);
    const outcome = await qemu.pollUntil({
      logs: [debug],
      pollIntervalMs: 20,
      decide: (elapsedMs) =>
        debug.text.includes('[Bds] Entry') ? 'bds' : elapsedMs > 10_000 ? 'timeout' : undefined,
    });
    expect(outcome).toBe('bds');
    expect(qemu.exit()).toBeUndefined();
    await qemu.stop();
    await drainLogs([debug]);
    expect(qemu.exit()).toEqual({ code: null, signal: 'SIGKILL' });
    expect(debug.text).toBe('one\n[Bds] Entry\n');
    expect(qemu.durationMs()).toBeLessThan(10_000);
  });

  it('ends the watch with `aborted` on the signal, before decide is asked', async () => {
    const qemu = new QemuProcess('/bin/sh', ['-c', 'exec sleep 30']);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    let asked = 0;
    const outcome = await qemu.pollUntil({
      logs: [],
      pollIntervalMs: 10_000,
      signal: controller.signal,
      decide: () => {
        asked += 1;
        return undefined;
      },
    });
    expect(outcome).toBe('aborted');
    expect(asked).toBe(0);
    await qemu.stop();
    expect(qemu.exit()?.signal).toBe('SIGKILL');
  });

  it('runQueueDelayMs: a process that waits for a CPU shows the wait, an idle one and a gone one do not', async () => {
    // Four shells spin on CPU 0 at the same priority, so each waits about three quarters of the
    // time; a fifth runs there as SCHED_IDLE, so it gets the CPU a few times a second at most and
    // the kernel's own figure (added when the task next runs) lags: the calls at every poll see it.
    const spin = ['-c', '0', '/bin/sh', '-c', 'while :; do :; done'];
    const spinners = [0, 1, 2, 3].map(() => new QemuProcess('taskset', spin));
    const starved = new QemuProcess('chrt', ['-i', '0', 'taskset', ...spin]);
    const idle = new QemuProcess('/bin/sh', ['-c', 'exec sleep 30']);
    const [watched] = spinners as [QemuProcess];
    const all = [...spinners, starved, idle];
    try {
      // Measured over a window after the start, whose own waits a loaded machine makes long.
      await sleep(300);
      const before = all.map((process) => process.runQueueDelayMs());
      for (let polls = 0; polls < 20; polls += 1) {
        await sleep(50);
        for (const process of all) process.runQueueDelayMs();
      }
      const grown = all.map((process, i) => process.runQueueDelayMs() - (before[i] as number));
      expect(grown[0]).toBeGreaterThan(400);
      expect(grown[4]).toBeGreaterThan(600);
      expect(grown[5]).toBeLessThan(100);
    } finally {
      await Promise.all(all.map((process) => process.stop()));
    }
    expect(watched.runQueueDelayMs()).toBe(0);
  });

  it('parseSchedstat and threadState read /proc lines and nothing else', () => {
    expect(parseSchedstat('4732321 98765 12\n')).toEqual({ runNs: 4_732_321, waitNs: 98_765, runs: 12 });
    expect(parseSchedstat('')).toBeNull();
    expect(parseSchedstat('1 2\n')).toBeNull();
    expect(parseSchedstat('a 2 3\n')).toBeNull();
    expect(threadState('5221 (sh) R 5209 5133 3784 0 -1')).toBe('R');
    expect(threadState('77 (qemu) (x) S 1 77')).toBe('S');
    expect(threadState('')).toBe('');
  });

  it('a binary that does not exist is E_BOOT_QEMU_MISSING; the watch ends at once', async () => {
    const missing = path.join(dir(), 'qemu-system-x86_64');
    const qemu = new QemuProcess(missing, []);
    const outcome = await qemu.pollUntil({ logs: [], pollIntervalMs: 10, decide: () => 'never' });
    expect(outcome).toBeUndefined();
    await qemu.stop();
    let thrown: unknown;
    try {
      qemu.throwIfStartFailed('E_VERIFY_IGD_QEMU_FAILED');
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(VerificationError);
    expect((thrown as VerificationError).code).toBe('E_BOOT_QEMU_MISSING');
    expect((thrown as VerificationError).details).toEqual({ binary: missing, errno: 'ENOENT' });
  });

  it('a binary that cannot be executed is the given code', async () => {
    const notExecutable = path.join(dir(), 'qemu');
    await writeFile(notExecutable, '#!/bin/sh\n', { mode: 0o644 });
    const qemu = new QemuProcess(notExecutable, []);
    await qemu.exited;
    expect(() => qemu.throwIfStartFailed('E_VERIFY_IGD_QEMU_FAILED')).toThrow(
      expect.objectContaining({
        code: 'E_VERIFY_IGD_QEMU_FAILED',
        details: { binary: notExecutable, errno: 'EACCES' },
      }),
    );
  });
});

describe('GrowingFile', () => {
  it('reads what was appended since the last poll, waits for a file that does not exist yet, and stops past its cap', async () => {
    const file = path.join(dir(), 'trace.log');
    const log = new GrowingFile(file, { maxSizeInBytes: 4 });
    await log.poll();
    expect(log.text).toBe('');
    await writeFile(file, 'ab');
    await log.poll();
    expect([log.text, log.sizeInBytes]).toEqual(['ab', 2]);
    await appendFile(file, 'cdef');
    await log.poll();
    expect([log.text, log.sizeInBytes]).toEqual(['abcdef', 6]);
    await appendFile(file, 'gh');
    await log.poll();
    expect(log.sizeInBytes).toBe(6);
    await log.close();
  });

  it('a QEMU started by defaultSpawn dies with the process that started it, killed with SIGKILL', async () => {
    const qemu = execFileSync('sh', ['-c', 'command -v qemu-system-x86_64'], { encoding: 'utf8' }).trim();
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(REPO_ROOT, 'test', 'qemu-orphan-child.ts'), qemu],
      { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const line = await new Promise<string>((resolve) => {
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes('\n')) resolve(out.split('\n')[0] as string);
      });
    });
    const pids = JSON.parse(line) as { main: number; worker: number; plain: number };
    const running = isRunning;
    try {
      expect([running(pids.main), running(pids.worker), running(pids.plain)]).toEqual([true, true, true]);
      child.kill('SIGKILL');
      const deadline = Date.now() + 10_000;
      while ((running(pids.main) || running(pids.worker)) && Date.now() < deadline) await sleep(50);
      // The plain spawn is the control: its QEMU outlives the killed parent, ours do not.
      expect([running(pids.main), running(pids.worker), running(pids.plain)]).toEqual([false, false, true]);
    } finally {
      for (const pid of [pids.main, pids.worker, pids.plain]) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      child.kill('SIGKILL');
    }
  });
});
