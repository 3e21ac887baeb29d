// The boot check's verdict taken from an embedded-mode IGD boot (boot-igd.ts): each way that
// boot can end gives the verdict and the code a boot check of its own gives for the same
// consoles (E_BOOT_CHECK_FAILED for a driver that did not load, E_BOOT_ASSERT, ...).
import { describe, expect, it } from 'vitest';
import { assertBootPassed, bootVerdictOf, type BootCheckSetup } from './boot.js';
import { bootRunOfIgdRun } from './boot-igd.js';
import type { IgdRun } from './igd-run.js';
import { DEFAULT_GOP_FILE_GUID as GOP, DEFAULT_POLICY_FILE_GUID as POLICY } from './guids.js';

const IGD = '283B2335-ABD8-4B75-A8AA-004177A20A4B';

const SETUP: BootCheckSetup = {
  binary: '/usr/bin/qemu-system-x86_64',
  settings: {
    timeoutMs: 120_000,
    bdsGraceMs: 1_000,
    noDebugOutputMs: 30_000,
    pollIntervalMs: 50,
    maxLogBytes: 16 * 1_048_576,
    kvmNoOutputMs: 10_000,
  },
  mode: 'auto',
  choice: { accelerator: 'tcg', reason: 'no /dev/kvm' },
  stateDir: '/nonexistent',
  expected: [
    { role: 'GOP driver', guid: GOP },
    { role: 'policy driver', guid: POLICY },
    { role: 'IGD assignment driver', guid: IGD },
  ],
  machine: 'q35',
  smm: false,
  memoryMiB: 512,
};

const loaded = (guid: string, name: string): string[] => [
  `Loading driver ${guid}`,
  `Loading driver at 0x0007E86C000 EntryPoint=0x0007E86D2B8 ${name}.efi`,
];
const OUR_DRIVERS = [
  ...loaded(IGD, 'IgdAssignmentDxe'),
  ...loaded(POLICY, 'PlatformGopPolicyDxe'),
  'OvmfGopPkg: VBT found, 4608 bytes at 0x7E85F018, signature "$VBT COMETLAKE      "',
  ...loaded(GOP, 'IntelGopDriver'),
];
const BOOT_MANAGER = ['[Bds] Entry...', 'IgdAssignmentDxe: OpRegion 8192 bytes at 0x7E8F1000, ASLS written'];

function igdRun(outcome: IgdRun['outcome'], debug: readonly string[], more: Partial<IgdRun> = {}): IgdRun {
  const debugText = debug.length === 0 ? '' : `${debug.join('\n')}\n`;
  return {
    outcome,
    accelerator: 'tcg',
    traceText: '',
    debugText,
    serialText: '',
    stderr: '',
    exit: undefined,
    durationMs: 41_000,
    timeToAslsMs: null,
    timeToBootManagerMs: null,
    timeToBdsMs: debugText.includes('[Bds] Entry') ? 30_000 : null,
    args: ['-machine', 'q35'],
    registers: null,
    memoryAtAsls: null,
    ...more,
  };
}

const verdict = (run: IgdRun) =>
  bootVerdictOf(bootRunOfIgdRun(run), undefined, SETUP, { vbtSizeInBytes: 4608 });

describe('the boot check verdict from the embedded-mode IGD boot', () => {
  it('passes with our three drivers loaded and BDS reached: the same BootVerification fields, BDS time from that boot', async () => {
    const boot = await verdict(igdRun('boot-manager', [...OUR_DRIVERS, ...BOOT_MANAGER]));
    expect({
      passed: boot.passed,
      failures: boot.failures,
      loadedDrivers: boot.loadedDrivers,
      reachedBds: boot.reachedBds,
      timeToBdsMs: boot.timeToBdsMs,
      durationMs: boot.durationMs,
      logSource: boot.logSource,
      accel: boot.accel,
      qemu: boot.qemu,
    }).toEqual({
      passed: true,
      failures: [],
      loadedDrivers: [IGD, POLICY, GOP],
      reachedBds: true,
      timeToBdsMs: 30_000,
      durationMs: 41_000,
      logSource: 'debugcon',
      accel: { accelerator: 'tcg', reason: 'no /dev/kvm' },
      qemu: { binary: '/usr/bin/qemu-system-x86_64', args: ['-machine', 'q35'] },
    });
  });

  it('a driver that did not load fails with E_BOOT_CHECK_FAILED, as the boot check of its own does', async () => {
    const boot = await verdict(
      igdRun('boot-manager', [...OUR_DRIVERS.filter((line) => !line.includes(GOP)), ...BOOT_MANAGER]),
    );
    expect(boot.failures).toEqual([`GOP driver ${GOP} was not dispatched: no "Loading driver ${GOP}" line`]);
    expect(() => assertBootPassed(boot)).toThrow(expect.objectContaining({ code: 'E_BOOT_CHECK_FAILED' }));
  });

  it('a VBT of another size than the build got fails the verdict', async () => {
    const boot = await bootVerdictOf(
      bootRunOfIgdRun(igdRun('boot-manager', [...OUR_DRIVERS, ...BOOT_MANAGER])),
      undefined,
      SETUP,
      { vbtSizeInBytes: 5000 },
    );
    expect(boot.failures).toEqual(['the policy driver found a VBT of 4608 bytes, expected 5000 (line 5)']);
  });

  it('an ASSERT before BDS is E_BOOT_ASSERT; one after BDS fails the verdict (E_BOOT_CHECK_FAILED)', async () => {
    const assertLine = 'ASSERT /edk2/MdePkg/Foo.c(12): Bar != NULL';
    await expect(verdict(igdRun('assert', [...OUR_DRIVERS, assertLine]))).rejects.toMatchObject({
      code: 'E_BOOT_ASSERT',
      details: expect.objectContaining({ assertion: assertLine }),
    });
    const after = await verdict(igdRun('assert', [...OUR_DRIVERS, '[Bds] Entry...', assertLine]));
    expect(after.passed).toBe(false);
    expect(after.failures).toEqual([`ASSERT at line 9: ${assertLine}`]);
  });

  it('no BDS: QEMU gone is E_BOOT_QEMU_FAILED, a silent debug console E_BOOT_NO_DEBUG_OUTPUT, the limit E_BOOT_TIMEOUT', async () => {
    await expect(
      verdict(igdRun('exited', OUR_DRIVERS, { exit: { code: 1, signal: null }, stderr: 'qemu: bad' })),
    ).rejects.toMatchObject({
      code: 'E_BOOT_QEMU_FAILED',
      details: expect.objectContaining({ exitCode: 1 }),
    });
    await expect(
      verdict(igdRun('boot-manager', [], { serialText: 'BdsDxe: loading Boot0001 "UEFI Shell"\n' })),
    ).rejects.toMatchObject({ code: 'E_BOOT_NO_DEBUG_OUTPUT' });
    await expect(verdict(igdRun('timeout', OUR_DRIVERS))).rejects.toMatchObject({ code: 'E_BOOT_TIMEOUT' });
  });

  it('a KVM boot given up and run again under TCG is reported in accel; an aborted boot is an AbortError', async () => {
    const first = igdRun('kvm-failed', [], {
      accelerator: 'kvm',
      durationMs: 10_050,
      kvmFailure: 'no output',
    });
    const boot = await bootVerdictOf(
      bootRunOfIgdRun(igdRun('boot-manager', [...OUR_DRIVERS, ...BOOT_MANAGER])),
      { reason: 'no output', run: first },
      { ...SETUP, choice: { accelerator: 'kvm', reason: 'kvm probe passed', probeMs: 120 } },
      {},
    );
    expect(boot.accel).toEqual({
      accelerator: 'tcg',
      reason: 'kvm failed during the boot check: no output; retried under tcg',
      probeMs: 120,
      failedKvmBootMs: 10_050,
    });
    expect(bootRunOfIgdRun(first).outcome).toBe('kvm-failed');
    await expect(verdict(igdRun('aborted', OUR_DRIVERS))).rejects.toMatchObject({ code: 'E_ABORTED' });
  });
});
