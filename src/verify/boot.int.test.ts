// The boot runner against real QEMU: Debian's RELEASE OVMF, and tiny reset-vector firmware
// (tiny-firmware.ts) for the paths a real OVMF does not take on demand: hang before BDS,
// guest reset, silence, DEBUG text on the serial port, abort.
import { spawn } from 'node:child_process';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AbortError } from '../core/errors.js';
import { sha256 } from '../core/digest.js';
import { DISPATCH_BOTH, makeBootWorkDir } from '../../test/boot-fixture.js';
import { corpusPath } from '../../test/corpus.js';
import { errorOf } from '../../test/rejection.js';
import { verifyBoot, type VerifyBootOptions } from './boot.js';
import { findQemu } from './qemu.js';
import { VerificationError } from './errors.js';
import { DEFAULT_GOP_FILE_GUID, DEFAULT_POLICY_FILE_GUID } from './guids.js';
import { buildTinyFirmware, type TinyFirmwareOptions } from './tiny-firmware.js';

const GOP = DEFAULT_GOP_FILE_GUID;
const POLICY = DEFAULT_POLICY_FILE_GUID;

let work: string;
let scratch: string;
let vars: string;

/**
 * A boot check of `codePath` with the shared vars and scratch dir, under TCG: the tiny firmware's
 * paths (a reset, a hang, silence) are the subject, not the accelerator (accel.int). Under a KVM
 * that runs the tiny firmware the outcome could differ by host: on the 2026-12-02 host (kernel
 * 6.18), a triple fault under KVM left QEMU running instead of exiting (-no-reboot), and smm=on
 * was refused ("System Management Mode not supported by this hypervisor").
 */
function bootTiny(codePath: string, options: Partial<VerifyBootOptions> = {}): ReturnType<typeof verifyBoot> {
  return verifyBoot({ codePath, varsPath: vars, tmpDir: scratch, accel: 'tcg', ...options });
}

async function firmware(name: string, options: TinyFirmwareOptions): Promise<string> {
  const file = path.join(work, `${name}.fd`);
  await writeFile(file, buildTinyFirmware(options));
  return file;
}

async function expectFailure(boot: ReturnType<typeof verifyBoot>): Promise<VerificationError> {
  const error = await errorOf(boot);
  expect(error).toBeInstanceOf(VerificationError);
  return error as VerificationError;
}

beforeAll(async () => {
  ({ work, scratch, vars } = await makeBootWorkDir('boot-int-'));
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('verifyBoot with tiny firmware', () => {
  it('passes when the log shows both drivers and [Bds] Entry, stops early, keeps the log, leaves vars alone', async () => {
    const code = await firmware('pass', {
      text: `${[...DISPATCH_BOTH, '[Bds] Entry...'].join('\n')}\n`,
      port: 0x402,
      end: 'hang',
    });
    const varsBefore = sha256(await readFile(vars));
    const logPath = path.join(work, 'kept.log');
    const result = await bootTiny(code, {
      logPath,
      bdsGraceMs: 300,
    });
    expect(result).toMatchObject({
      passed: true,
      loadedDrivers: [GOP, POLICY],
      reachedBds: true,
      failures: [],
      info: ['policy driver: VBT found, 5632 bytes, signature "$VBT GEMINILAKE     "'],
      logPath,
      logSource: 'debugcon',
    });
    // Early exit: QEMU is stopped right after BDS + grace, long before the 120 s timeout.
    expect(result.durationMs).toBeLessThan(10_000);
    expect(result.timeToBdsMs).toBeLessThanOrEqual(result.durationMs);
    expect(await readFile(logPath, 'latin1')).toBe(`${[...DISPATCH_BOTH, '[Bds] Entry...'].join('\n')}\n`);
    expect(sha256(await readFile(vars))).toBe(varsBefore);
    expect(await readdir(scratch)).toEqual([]);
    expect(result.qemu.args).toContain('tcg');
  });

  it('QEMU accepts the SMM command line (smm=on, secure pflash); secureBoot implies it', async () => {
    const code = await firmware('smm', {
      text: `${[...DISPATCH_BOTH, '[Bds] Entry...'].join('\n')}\n`,
      port: 0x402,
      end: 'hang',
    });
    const result = await bootTiny(code, {
      bdsGraceMs: 200,
      secureBoot: true,
    });
    expect(result.passed).toBe(true);
    expect(result.qemu.args.slice(0, 2)).toEqual(['-machine', 'q35,smm=on']);
    expect(result.qemu.args).toContain('driver=cfi.pflash01,property=secure,value=on');
    // An X64 SMM OVMF ASSERTs in PlatformPei when QEMU offers S3 (S3Verification).
    expect(result.qemu.args).toContain('ICH9-LPC.disable_s3=1');
  });

  it('returns passed: false with the failures when the policy driver is missing', async () => {
    const code = await firmware('no-policy', {
      text: `${[...DISPATCH_BOTH.slice(0, 2), '[Bds] Entry...'].join('\n')}\n`,
      port: 0x402,
      end: 'hang',
    });
    const result = await bootTiny(code, { bdsGraceMs: 200 });
    expect(result.passed).toBe(false);
    expect(result.failures).toEqual([
      `policy driver ${POLICY} was not dispatched: no "Loading driver ${POLICY}" line`,
    ]);
    expect(result.loadedDrivers).toEqual([GOP]);
    expect(result.logPath).toBeUndefined();
    expect(await readdir(scratch)).toEqual([]);
  });

  it('the GUIDs to check are parameters', async () => {
    const code = await firmware('other-guids', {
      text:
        'Loading driver 9737d7ca-d869-46e5-a5ef-75d9538688de\nLoading driver at 0x1000 EntryPoint=0x1010\n' +
        `Loading driver ${GOP}\nLoading driver at 0x2000 EntryPoint=0x2010\n[Bds] Entry...\n`,
      port: 0x402,
      end: 'hang',
    });
    const result = await bootTiny(code, {
      bdsGraceMs: 200,
      policyFileGuid: '9737D7CA-D869-46E5-A5EF-75D9538688DE',
    });
    expect(result.passed).toBe(true);
    expect(result.loadedDrivers).toEqual(['9737D7CA-D869-46E5-A5EF-75D9538688DE', GOP]);
  });

  it('E_BOOT_TIMEOUT with the last log lines when BDS never comes', async () => {
    const code = await firmware('hang', {
      text: `${DISPATCH_BOTH.slice(0, 3).join('\n')}\nstuck here\n`,
      port: 0x402,
      end: 'hang',
    });
    const logPath = path.join(work, 'timeout.log');
    const started = performance.now();
    const error = await expectFailure(
      bootTiny(code, {
        // Long enough for QEMU under TCG to print the log on a loaded machine (2.5 s was not, at
        // load ~8 under nice 10: the log was still empty at the timeout).
        timeoutMs: 10_000,
        logPath,
      }),
    );
    expect(performance.now() - started).toBeLessThan(30_000);
    expect(error.code).toBe('E_BOOT_TIMEOUT');
    expect(error.details['timeoutMs']).toBe(10_000);
    expect(error.details['lastLines']).toEqual([...DISPATCH_BOTH.slice(0, 3), 'stuck here']);
    expect(error.details['logPath']).toBe(logPath);
    expect(error.message).toMatch(/did not reach BDS within 10000 ms; last log lines:\n.*stuck here$/s);
    expect(await readdir(scratch)).toEqual([]);
  });

  it('E_BOOT_ASSERT at once when the firmware ASSERTs before BDS (it dead-loops, so no timeout wait)', async () => {
    const assertion = 'ASSERT /edk2/OvmfPkg/PlatformPei/Platform.c(255): ((BOOLEAN)(0==1))';
    const code = await firmware('assert', {
      text: `${DISPATCH_BOTH.slice(0, 2).join('\n')}\n${assertion}\n`,
      port: 0x402,
      end: 'hang',
    });
    const started = performance.now();
    const error = await expectFailure(bootTiny(code, { timeoutMs: 60_000 }));
    expect(performance.now() - started).toBeLessThan(15_000);
    expect(error.code).toBe('E_BOOT_ASSERT');
    expect(error.details['assertion']).toBe(assertion);
    expect(error.details['lastLines']).toEqual([...DISPATCH_BOTH.slice(0, 2), assertion]);
    expect(error.message).toBe(
      `the OVMF stopped at an assertion before BDS: ${assertion}; last log lines:\n${[...DISPATCH_BOTH.slice(0, 2), assertion].join('\n')}`,
    );
    expect(await readdir(scratch)).toEqual([]);
  });

  it('E_BOOT_QEMU_FAILED when the guest resets (triple fault) before BDS', async () => {
    const code = await firmware('crash', { text: 'about to crash\n', port: 0x402, end: 'triple-fault' });
    const error = await expectFailure(bootTiny(code));
    expect(error.code).toBe('E_BOOT_QEMU_FAILED');
    expect(error.details).toMatchObject({ exitCode: 0, signal: null, lastLines: ['about to crash'] });
    expect(await readdir(scratch)).toEqual([]);
  });

  it('E_BOOT_QEMU_FAILED with QEMU stderr when QEMU refuses to start (code image of a bad size)', async () => {
    const code = path.join(work, 'odd-size.fd');
    await writeFile(code, new Uint8Array(1_000));
    const error = await expectFailure(bootTiny(code));
    expect(error.code).toBe('E_BOOT_QEMU_FAILED');
    expect(error.details['exitCode']).toBe(1);
    expect(String(error.details['stderr'])).toMatch(/qemu-system-x86_64: .+/);
    expect(await readdir(scratch)).toEqual([]);
  });

  it('E_BOOT_NO_DEBUG_OUTPUT when the debug console stays silent', async () => {
    const code = await firmware('silent', { text: '', port: 0x402, end: 'hang' });
    const error = await expectFailure(bootTiny(code, { noDebugOutputMs: 1_500 }));
    expect(error.code).toBe('E_BOOT_NO_DEBUG_OUTPUT');
    expect(error.details).toMatchObject({
      detectedBy: 'silence',
      serialReachedBds: false,
      serialLastLines: [],
    });
    // The halted guest waits for no CPU; a loaded CI machine can still delay QEMU a little.
    expect(error.details['heldBackMs']).toBeTypeOf('number');
    expect(error.details['durationMs']).toBeLessThan(1_500 + Number(error.details['heldBackMs']) + 5_000);
  });

  it('a DEBUG build starved of CPU is not called silent: the time QEMU waited for a CPU does not count', async () => {
    const code = await firmware('starved', {
      text: `${[...DISPATCH_BOTH, '[Bds] Entry...'].join('\n')}\n`,
      port: 0x402,
      end: 'hang',
    });
    // QEMU runs on CPU 0 ten nice levels below three spinning shells (as a CI run's niced tests
    // beside its builds), so it gets about 3% of it and is picked rarely: the kernel's wait
    // figure lags by up to a second there, so the boot check adds the wait it sees at its polls.
    // Alone, this boot reaches BDS in about 110 ms of wall time here; starved, in seconds.
    const limitMs = 500;
    const wrapper = path.join(work, 'starved-qemu');
    const qemu = await findQemu({ env: process.env });
    await writeFile(wrapper, `#!/bin/sh\nexec nice -n 10 taskset -c 0 '${qemu}' "$@"\n`, { mode: 0o755 });
    const spinners = [0, 1, 2].map(() =>
      spawn('taskset', ['-c', '0', '/bin/sh', '-c', 'while :; do :; done']),
    );
    try {
      const result = await bootTiny(code, { bdsGraceMs: 200, noDebugOutputMs: limitMs, qemuPath: wrapper });
      expect(result).toMatchObject({ passed: true, loadedDrivers: [GOP, POLICY], logSource: 'debugcon' });
      // The proof that a wall-clock limit would have answered "silent": BDS came after it.
      expect(result.timeToBdsMs).toBeGreaterThan(limitMs);
    } finally {
      for (const spinner of spinners) spinner.kill('SIGKILL');
    }
  });

  it('reads DEBUG output from the serial port when the debug console is silent (DEBUG_ON_SERIAL_PORT)', async () => {
    const code = await firmware('serial-debug', {
      text: `${[...DISPATCH_BOTH, '[Bds] Entry...'].join('\r\n')}\r\n`,
      port: 0x3f8,
      end: 'hang',
    });
    const result = await bootTiny(code, { bdsGraceMs: 200 });
    expect(result).toMatchObject({ passed: true, logSource: 'serial', loadedDrivers: [GOP, POLICY] });
  });

  it('an AbortSignal kills QEMU and removes the temp dir', async () => {
    const code = await firmware('abort', {
      text: 'Loading driver 1647b4f3-3e8a-4fdd-81c8-328ed647ab1a\n',
      port: 0x402,
      end: 'hang',
    });
    const controller = new AbortController();
    const started = performance.now();
    setTimeout(() => controller.abort(new Error('user pressed ^C')), 1_000);
    const error = await errorOf(bootTiny(code, { signal: controller.signal }));
    expect(error).toBeInstanceOf(AbortError);
    expect(error.code).toBe('E_ABORTED');
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(await readdir(scratch)).toEqual([]);
  });

  it('missing inputs and a missing QEMU are coded errors before anything starts', async () => {
    await expect(verifyBoot({ codePath: path.join(work, 'nope.fd'), varsPath: vars })).rejects.toMatchObject({
      code: 'E_INPUT_NOT_FOUND',
    });
    await expect(
      verifyBoot({ codePath: vars, varsPath: vars, env: { PATH: path.join(work, 'no-bin') } }),
    ).rejects.toMatchObject({ code: 'E_BOOT_QEMU_MISSING' });
    await expect(verifyBoot({ codePath: vars, varsPath: vars, gopFileGuid: 'x' })).rejects.toThrow(TypeError);
    expect(await readdir(scratch)).toEqual([]);
  });
});

describe("verifyBoot with Debian's RELEASE OVMF", () => {
  it('E_BOOT_NO_DEBUG_OUTPUT: a RELEASE build prints nothing on 0x402, the serial console shows BdsDxe', async () => {
    const error = await expectFailure(
      verifyBoot({
        codePath: corpusPath('ovmf/OVMF_CODE_4M.fd'),
        varsPath: corpusPath('ovmf/OVMF_VARS_4M.fd'),
        tmpDir: scratch,
      }),
    );
    expect(error.code).toBe('E_BOOT_NO_DEBUG_OUTPUT');
    expect(error.message).toContain('build with target DEBUG to verify by booting');
    expect(error.details['serialReachedBds']).toBe(true);
    expect(error.details['serialLastLines']).toContain(
      'BdsDxe: loading Boot0001 "EFI Internal Shell" from Fv(7CB8BDC9-F8EB-4F34-AAEA-3EE4AF6516A1)/FvFile(7C04A583-9E3E-4F1C-AD65-E05268D0B4D1)',
    );
    // Decided by the boot manager on the serial console, not by the 30 s silence limit (a
    // timed assertion here failed in CI at load ~8, where TCG took 29.9 s to reach it).
    expect(error.details['detectedBy']).toBe('serial-boot-manager');
    expect(await readdir(scratch)).toEqual([]);
  });
});
