// The CLI as a real process (node --import tsx test/cli-entry.ts): SIGINT and SIGTERM end a
// command busy in a long synchronous parse at once (a small part of the parse's CPU), with 130 /
// 143 and one line;
// a closed pipe ends quietly; a full disk (/dev/full) is a coded error, not a stack.
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  startCli as start,
  cpuOfWholeRun,
  cpuSeconds,
  SIGNAL_CPU_BOUND,
  signalAndWait,
  signalCpuBound,
} from './cli-spawn.js';
import { corpusPath } from './corpus.js';

let dir: string;
let busyImage: string;
/** CPU seconds of a whole `inspect` of busyImage, and of a small image (start-up and little else). */
let wholeCpu: number;
let startupCpu: number;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'cli-process-'));
  // Ten copies of Debian's OVMF: ten volumes each with an LZMA-compressed DXE volume, all of it
  // in one call to parseFirmware (about 2.7 CPU seconds in all, 2026-12-02; 10 s earlier).
  const ovmf = readFileSync(corpusPath('ovmf/OVMF_CODE_4M.fd'));
  busyImage = path.join(dir, 'ten-ovmf.fd');
  await writeFile(busyImage, Buffer.concat(Array.from({ length: 10 }, () => ovmf)));
  const small = await cpuOfWholeRun(['inspect', corpusPath('ovmf/OVMF_VARS_4M.fd')]);
  const whole = await cpuOfWholeRun(['inspect', busyImage]);
  expect([small.status, whole.status]).toEqual([0, 0]);
  [startupCpu, wholeCpu] = [small.cpu, whole.cpu];
  // Enough parse after start-up that its second half is more than a signal may cost.
  expect((wholeCpu - startupCpu) / 2).toBeGreaterThan(SIGNAL_CPU_BOUND);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('signals', () => {
  it.each([
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const)(
    '%s ends inspect busy parsing a 35 MiB image at once (little CPU after it): exit %i and one line',
    async (signal, status) => {
      const run = start(['inspect', busyImage]);
      const pid = run.child.pid as number;
      // Halfway through the parse, measured in beforeAll (a fixed 2 CPU seconds was once most of
      // the run): the process is inside parseFirmware, where a signal handler on the parsing
      // thread could not run.
      const half = (wholeCpu - startupCpu) / 2;
      while (cpuSeconds(pid) < startupCpu + half) await sleep(20);
      const { result, cpuAfterSignal, wallMs } = await signalAndWait(run, signal);
      expect({ status: result.status, stdout: result.stdout, stderr: result.stderr }).toEqual({
        status,
        stdout: '',
        stderr: `ovmf-build: interrupted by ${signal}\n`,
      });
      // "At once" as work: less than the half of the parse still ahead of it (more than the bound,
      // checked in beforeAll), which a parse that ran on to its end would use; the bound grows
      // with the parse measured in this run (signalCpuBound). Wall time only catches a hang: on
      // CI it is the scheduler's (signalAndWait).
      expect(cpuAfterSignal).toBeLessThan(signalCpuBound(half, 0.6));
      expect(wallMs).toBeLessThan(15_000);
    },
  );
});

describe('output streams', () => {
  it('a reader that closes the pipe after one line (`| head -1`) ends it quietly, exit 0', async () => {
    const { child, exited } = start([
      'inspect',
      corpusPath('images/kabylake-platform-clevo-p870km-modded-spi.rom'),
    ]);
    let first = '';
    child.stdout?.once('data', (chunk: Buffer) => {
      first = chunk.toString().split('\n')[0] ?? '';
      child.stdout?.destroy();
    });
    const result = await exited;
    expect(first).toBe('Intel image (intel-descriptor) size 0x800000');
    expect({ status: result.status, stderr: result.stderr }).toEqual({ status: 0, stderr: '' });
  });

  it('stdout on a full device (`> /dev/full`) is E_OUTPUT_WRITE_FAILED, exit 1, one line', async () => {
    const full = openSync('/dev/full', 'w');
    try {
      const { exited } = start(
        ['inspect', corpusPath('gop/cometlake-mrchromebox-cml.efi')],
        ['ignore', full, 'pipe'],
      );
      const result = await exited;
      expect({ status: result.status, stderr: result.stderr }).toEqual({
        status: 1,
        stderr:
          'ovmf-build: cannot write the output: ENOSPC: no space left on device, write [E_OUTPUT_WRITE_FAILED]\n',
      });
    } finally {
      closeSync(full);
    }
  });
});
