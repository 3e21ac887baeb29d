// runIgdBoot against real QEMU (TCG) with tiny reset-vector firmware (tiny-firmware.ts): a first
// boot that ends in BDS's memory-type warm reset is booted again from the same VARS, as the VM
// would (an SMM build of ours with the IGD's stolen memory does this once on a fresh VARS store);
// any other reset is the boot's end. The tiny firmware prints the lines a real OVMF prints and
// then triple-faults, which QEMU (-no-reboot) turns into an exit with code 0, as it does a reset.
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeBootWorkDir } from '../../test/boot-fixture.js';
import { tigerLakeBootPlan } from '../../test/igd-boot-plan.js';
import { MEMORY_TYPE_RESET_RE, runIgdBoot, type IgdBootPlan } from './igd-run.js';
import { buildTinyFirmware } from './tiny-firmware.js';

/** The last lines a real secure-boot build of ours printed before its first-boot reset (2026-12-04). */
const RESET_TEXT =
  '  00    00000080  000020FF  0000293E\n' +
  'Memory Type Information settings change.\n' +
  '...Warm Reset!!!\n' +
  'DXE ResetSystem2: ResetType Warm, Call Depth = 1.\n';
const SETTINGS = { timeoutMs: 30_000, settleMs: 0, pollIntervalMs: 50, checkStolenZeroed: false };

let work: string;
let vars: string;
let base: Omit<IgdBootPlan, 'codePath' | 'directory'>;

beforeAll(async () => {
  ({ work, vars } = await makeBootWorkDir('igd-run-int-'));
  base = await tigerLakeBootPlan(vars);
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** Boots tiny firmware that writes `text` to `port` (default the debug console) and resets. */
async function boot(
  name: string,
  text: string,
  { smm = false, port = 0x402 }: { readonly smm?: boolean; readonly port?: number } = {},
): Promise<{ run: Awaited<ReturnType<typeof runIgdBoot>>; logs: string[] }> {
  const codePath = path.join(work, `${name}.fd`);
  await writeFile(codePath, buildTinyFirmware({ text, port, end: 'triple-fault' }));
  const directory = path.join(work, name);
  await rm(directory, { recursive: true, force: true });
  await mkdir(directory);
  const run = await runIgdBoot(
    'qemu-system-x86_64',
    { ...base, codePath, directory, smm },
    SETTINGS,
    undefined,
    undefined,
  );
  const logs = (await readdir(directory)).filter((file) => file.startsWith('debug.')).sort();
  return { run, logs };
}

describe('runIgdBoot and the first boot memory-type reset', () => {
  it('matches the reset lines exactly, not the same words elsewhere', () => {
    expect(MEMORY_TYPE_RESET_RE.test(RESET_TEXT)).toBe(true);
    expect(MEMORY_TYPE_RESET_RE.test('Memory Type Information settings change.\n')).toBe(false);
    expect(MEMORY_TYPE_RESET_RE.test('...Warm Reset!!!\n')).toBe(false);
  });

  it('boots a second time from the same VARS after the memory-type reset, and reports the first boot', async () => {
    const { run, logs } = await boot('memory-type', RESET_TEXT);
    // The tiny firmware resets again on its second boot, so the run still ends in an exit; a real
    // OVMF finds the stored sizes and boots on (checked with a secure-boot build, README).
    expect(run.outcome).toBe('exited');
    expect(run.exit?.code).toBe(0);
    expect(run.firstBootReset?.durationMs).toBeGreaterThan(0);
    expect(run.firstBootReset?.logged).toBe(true);
    expect(logs).toEqual(['debug.tcg.2.log', 'debug.tcg.log']);
    expect(run.debugText).toBe(RESET_TEXT);
    expect(run.args).toContain(`file:${path.join(work, 'memory-type', 'debug.tcg.2.log')}`);
  });

  it('any other reset ends the check after one boot', async () => {
    const { run, logs } = await boot(
      'other-reset',
      'PlatformPei: a reset of another kind\nDXE ResetSystem2: ResetType Cold, Call Depth = 1.\n',
    );
    expect(run.outcome).toBe('exited');
    expect(run.firstBootReset).toBeUndefined();
    expect(logs).toEqual(['debug.tcg.log']);
  });
  it('an SMM build whose first boot resets with a silent debug console (RELEASE) is booted again', async () => {
    // A RELEASE build writes nothing to the debug console (0x402); the text goes to COM1.
    const { run, logs } = await boot('silent-smm', 'BdsDxe\n', { smm: true, port: 0x3f8 });
    expect(run.args.slice(0, 2)).toEqual(['-machine', 'q35,smm=on']);
    expect([run.debugText, run.serialText]).toEqual(['', 'BdsDxe\n']);
    expect(run.firstBootReset?.logged).toBe(false);
    expect(logs).toEqual(['debug.tcg.2.log', 'debug.tcg.log']);
  });

  it('a build without SMM whose first boot resets silently is not booted again', async () => {
    const { run, logs } = await boot('silent', 'BdsDxe\n', { port: 0x3f8 });
    expect(run.outcome).toBe('exited');
    expect(run.firstBootReset).toBeUndefined();
    expect(logs).toEqual(['debug.tcg.log']);
  });

  it('an SMM build whose first boot printed other lines before a reset is not booted again', async () => {
    const { run, logs } = await boot('other-smm', 'PlatformPei: something else\n', { smm: true });
    expect(run.firstBootReset).toBeUndefined();
    expect(logs).toEqual(['debug.tcg.log']);
  });
});
