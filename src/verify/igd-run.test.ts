import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tigerLakeBootPlan } from '../../test/igd-boot-plan.js';
import { MiB } from './igd-trace.js';
import { isZeroFile, runIgdBoot } from './igd-run.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'igd-run-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function fileOf(bytes: Uint8Array): Promise<string> {
  const file = path.join(dir, `f${Math.random().toString(16).slice(2)}.bin`);
  await writeFile(file, bytes);
  return file;
}

describe('isZeroFile (the stolen-memory dump)', () => {
  const size = 3 * MiB + 5;

  it('is true for exactly the size, all zero (chunks of a MiB and a short last one)', async () => {
    expect(await isZeroFile(await fileOf(new Uint8Array(size)), size)).toBe(true);
    expect(await isZeroFile(await fileOf(new Uint8Array(0)), 0)).toBe(true);
  });

  it.each([0, MiB - 1, MiB, 2 * MiB + 7, size - 1])('is false for one non-zero byte at %i', async (at) => {
    const bytes = new Uint8Array(size);
    bytes[at] = 0x80;
    expect(await isZeroFile(await fileOf(bytes), size)).toBe(false);
  });

  it('is false for a dump shorter or longer than asked, even if zero', async () => {
    expect(await isZeroFile(await fileOf(new Uint8Array(size - 1)), size)).toBe(false);
    expect(await isZeroFile(await fileOf(new Uint8Array(size + 1)), size)).toBe(false);
    expect(await isZeroFile(await fileOf(new Uint8Array(0)), size)).toBe(false);
  });
});

/**
 * A stand-in for a QEMU that dies at once (real QEMU's tiny-firmware triple fault under
 * -no-reboot, igd-run.int.test.ts): it serves the QMP socket named by `-qmp`, sends the greeting,
 * closes the connection when `qmp_capabilities` arrives and only then, `exitAfterMs` later, exits
 * 0. Real QEMU does this in microseconds, so whether Node saw the exit before the close was
 * chance; here the order is fixed.
 */
async function monitorClosingQemu(name: string, exitAfterMs: number): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(
    file,
    `#!/usr/bin/env node
const net = require('node:net');
const spec = process.argv[process.argv.indexOf('-qmp') + 1];
const socketPath = spec.slice('unix:'.length, spec.lastIndexOf(',server=on'));
net.createServer((socket) => {
  socket.write('{"QMP": {"version": {}, "capabilities": []}}\\r\\n');
  socket.on('data', (chunk) => {
    if (!String(chunk).includes('qmp_capabilities')) return;
    socket.destroy();
    setTimeout(() => process.exit(0), ${exitAfterMs});
  });
}).listen(socketPath);
`,
  );
  await chmod(file, 0o755);
  return file;
}

describe('runIgdBoot when QEMU closes its monitor in the handshake', () => {
  async function run(binary: string, name: string): Promise<Awaited<ReturnType<typeof runIgdBoot>>> {
    const directory = path.join(dir, name);
    await mkdir(directory);
    const varsPath = path.join(dir, `${name}.vars.fd`);
    await writeFile(varsPath, new Uint8Array(0x1_0000).fill(0xff));
    return runIgdBoot(
      binary,
      { ...(await tigerLakeBootPlan(varsPath)), codePath: path.join(dir, 'unused.fd'), directory },
      { timeoutMs: 30_000, settleMs: 0, pollIntervalMs: 50, checkStolenZeroed: false },
      undefined,
      undefined,
    );
  }

  it('is the exit when QEMU exits right after (the race of a firmware that faults at once)', async () => {
    const result = await run(await monitorClosingQemu('qemu-exits', 300), 'exits');
    expect(result.outcome).toBe('exited');
    expect(result.exit).toEqual({ code: 0, signal: null });
  });

  it('is E_VERIFY_IGD_QMP_FAILED when QEMU goes on running', async () => {
    const error = await run(await monitorClosingQemu('qemu-runs', 60_000), 'runs').catch(
      (caught: unknown) => caught,
    );
    expect(error).toMatchObject({
      code: 'E_VERIFY_IGD_QMP_FAILED',
      message: 'QMP connection closed during qmp_capabilities',
    });
  });
});
