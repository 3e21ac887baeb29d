// The boot check's pure verdict: the DEBUG log's evaluation, which console carried it, and
// the coded error of a boot that never reached BDS.
import { describe, expect, it } from 'vitest';
import { DISPATCH_BOTH } from '../../test/boot-fixture.js';
import { bootLogOf, bootRunFailure, evaluateBootLog } from './boot-verdict.js';
import type { BootRun } from './boot-run.js';
import { parseDebugLog } from './debug-log.js';
import { VerificationError } from './errors.js';

const GOP = '1647B4F3-3E8A-4FDD-81C8-328ED647AB1A';
const POLICY = '6FE0ECC8-FDFF-490E-A0C6-B60B3A8E98A2';
const EXPECTED = [
  { role: 'GOP driver', guid: GOP },
  { role: 'policy driver', guid: POLICY },
];

function log(...lines: string[]): string {
  return `${lines.join('\n')}\n`;
}

describe('evaluateBootLog', () => {
  it('passes when both drivers loaded and BDS was reached; other drivers failing are info', () => {
    const summary = parseDebugLog(
      log(
        ...DISPATCH_BOTH,
        'Loading driver a19b1fe7-c1bc-49f8-875f-54a5d542443f',
        'Loading driver at 0x0007E85A000 EntryPoint=0x0007E85C0F1 CpuIo2Dxe.efi',
        'Error: Image at 0007E85A000 start failed: Unsupported',
        'Driver 2ec9da37-ee35-4de1-86f5-8bb4a7a22ab5 was discovered but not loaded!!',
        '[Bds] Entry...',
      ),
    );
    expect(evaluateBootLog(summary, EXPECTED, { vbtSizeInBytes: 5_632 })).toEqual({
      passed: true,
      failures: [],
      info: [
        'driver 2EC9DA37-EE35-4DE1-86F5-8BB4A7A22AB5 was discovered but not loaded (line 9)',
        'image A19B1FE7-C1BC-49F8-875F-54A5D542443F failed to start: Unsupported (line 8)',
        'policy driver: VBT found, 5632 bytes, signature "$VBT GEMINILAKE     "',
      ],
    });
  });

  it('fails for each of our drivers that was not dispatched, failed, or was not loaded, and without BDS', () => {
    const summary = parseDebugLog(
      log(
        `Loading driver ${GOP}`,
        'Loading driver at 0x0007E86C000 EntryPoint=0x0007E86D2B8 ',
        'Error: Image at 0007E86C000 start failed: Unsupported',
        `Driver ${POLICY.toLowerCase()} was discovered but not loaded!!`,
      ),
    );
    expect(evaluateBootLog(summary, EXPECTED)).toEqual({
      passed: false,
      failures: [
        `GOP driver ${GOP} failed to start: Unsupported (line 3)`,
        `policy driver ${POLICY} was not dispatched: no "Loading driver ${POLICY}" line`,
        `policy driver ${POLICY} was discovered but not loaded (line 4)`,
        'the boot did not reach BDS: no "[Bds] Entry" line',
      ],
      info: [],
    });
  });

  it('fails when the image of a dispatched driver did not load, on an ASSERT, and on a VBT problem', () => {
    const missingImage = parseDebugLog(
      log(`Loading driver ${GOP}`, ...DISPATCH_BOTH.slice(2), 'ASSERT Foo.c(12): x != 0', '[Bds] Entry...'),
    );
    expect(evaluateBootLog(missingImage, EXPECTED, { vbtSizeInBytes: 4_096 }).failures).toEqual([
      `GOP driver ${GOP} was dispatched (line 1) but its image did not load`,
      'ASSERT at line 5: ASSERT Foo.c(12): x != 0',
      'the policy driver found a VBT of 5632 bytes, expected 4096 (line 4)',
    ]);
    const noVbt = parseDebugLog(
      log(
        ...DISPATCH_BOTH.slice(0, 4),
        'OvmfGopPkg: VBT file 1647b4f3-3e8a-4fef-81c8-328ed647ab1a not found: Not Found',
        '[Bds] Entry...',
      ),
    );
    expect(evaluateBootLog(noVbt, EXPECTED).failures).toEqual([
      'the policy driver did not find VBT file 1647B4F3-3E8A-4FEF-81C8-328ED647AB1A: Not Found (line 5)',
    ]);
  });
});

function run(overrides: Partial<BootRun>): BootRun {
  return {
    outcome: 'bds',
    debugText: '',
    serialText: '',
    stderr: '',
    exitCode: null,
    exitSignal: null,
    durationMs: 1_234,
    args: ['-machine', 'q35'],
    ...overrides,
  };
}

const CONTEXT = {
  settings: { timeoutMs: 5_000, maxLogBytes: 1_024 },
  common: { durationMs: 1_234 },
  accel: { accelerator: 'tcg', reason: 'forced by --accel tcg' },
};

describe('bootLogOf', () => {
  it('takes the debug console, or the serial port when only it carries DEBUG lines', () => {
    expect(bootLogOf(run({ debugText: 'a\n', serialText: `Loading driver ${GOP}\n` }))).toEqual({
      text: 'a\n',
      source: 'debugcon',
    });
    expect(bootLogOf(run({ serialText: `Loading driver ${GOP}\n` }))).toEqual({
      text: `Loading driver ${GOP}\n`,
      source: 'serial',
    });
    expect(bootLogOf(run({ serialText: 'BdsDxe: loading Boot0001\n' }))).toEqual({
      text: '',
      source: 'debugcon',
    });
  });
});

describe('bootRunFailure', () => {
  it('is nothing for a boot that reached BDS', () => {
    expect(bootRunFailure(run({ outcome: 'bds' }), CONTEXT)).toBeUndefined();
  });

  it('names the assertion and the last non-blank lines of the log', () => {
    const error = bootRunFailure(
      run({ outcome: 'assert', debugText: 'one\n\ntwo\nASSERT Foo.c(12): x != 0\n' }),
      CONTEXT,
    );
    expect(error).toBeInstanceOf(VerificationError);
    expect(error?.code).toBe('E_BOOT_ASSERT');
    expect(error?.message).toBe(
      'the OVMF stopped at an assertion before BDS: ASSERT Foo.c(12): x != 0; last log lines:\none\ntwo\nASSERT Foo.c(12): x != 0',
    );
    expect(error?.details).toEqual({
      durationMs: 1_234,
      accel: CONTEXT.accel,
      assertion: 'ASSERT Foo.c(12): x != 0',
      lastLines: ['one', 'two', 'ASSERT Foo.c(12): x != 0'],
      args: ['-machine', 'q35'],
    });
  });

  it('gives each other ending its own code', () => {
    const code = (overrides: Partial<BootRun>): string | undefined =>
      bootRunFailure(run(overrides), CONTEXT)?.code;
    expect(code({ outcome: 'timeout' })).toBe('E_BOOT_TIMEOUT');
    expect(code({ outcome: 'too-large' })).toBe('E_BOOT_LOG_TOO_LARGE');
    expect(code({ outcome: 'exited' })).toBe('E_BOOT_QEMU_FAILED');
    expect(code({ outcome: 'kvm-failed', kvmFailure: 'emulation failure' })).toBe('E_BOOT_KVM_FAILED');
    expect(code({ outcome: 'aborted' })).toBe('E_ABORTED');
    const silent = bootRunFailure(
      run({
        outcome: 'no-debug-output',
        noDebugOutputBy: 'serial-boot-manager',
        serialText: '\x1b[1mBdsDxe: loading Boot0001 "UEFI Shell"\x1b[0m\n',
      }),
      CONTEXT,
    );
    expect(silent?.code).toBe('E_BOOT_NO_DEBUG_OUTPUT');
    expect(silent?.details).toMatchObject({
      detectedBy: 'serial-boot-manager',
      serialReachedBds: true,
      serialLastLines: ['BdsDxe: loading Boot0001 "UEFI Shell"'],
    });
    const exited = bootRunFailure(
      run({ outcome: 'exited', exitCode: 1, stderr: 'qemu: bad option\n' }),
      CONTEXT,
    );
    expect(exited?.message).toBe(
      'QEMU exited (code 1, signal null) before the OVMF reached BDS: qemu: bad option',
    );
  });
});
