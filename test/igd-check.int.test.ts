// The IGD check harness against real QEMU: the QMP client and the config-space read through
// the monitor, and the whole check on Debian's stock OVMF, which has no IGD assignment driver:
// the harness must say "ASLS never written" cleanly, as soon as the boot manager runs.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AbortError, type OvmfBuildError } from '../src/core/errors.js';
import { buildOpRegion } from '../src/formats/opregion.js';
import { lookupDevice, type IgdPlatform } from '../src/igd/device-table.js';
import { loadIgdDeviceTable } from '../src/igd/load.js';
import { VerificationError } from '../src/verify/errors.js';
import { checkIgdAssignment, type IgdCheckOptions, type IgdCheckResult } from '../src/verify/igd-check.js';
import { QmpClient, readPciConfigDword } from '../src/verify/qmp.js';
import { findQemu } from '../src/verify/qemu.js';
import { dig, runCli } from './cli-harness.js';
import { CORPUS_DIR } from './corpus.js';

const STOCK_CODE = path.join(CORPUS_DIR, 'ovmf/OVMF_CODE_4M.fd');
const STOCK_VARS = path.join(CORPUS_DIR, 'ovmf/OVMF_VARS_4M.fd');
const VBT = path.join(CORPUS_DIR, 'vbt/coffeelake-lenovo-m720q.vbt');
const opRegion = buildOpRegion({ vbt: new Uint8Array(readFileSync(VBT)) });

let directory: string;
let cfl: IgdPlatform;
let mtl: IgdPlatform;
beforeAll(async () => {
  directory = mkdtempSync(path.join(os.tmpdir(), 'ovmf-build-igd-int-'));
  const table = await loadIgdDeviceTable();
  cfl = lookupDevice(table, '3e9b') as IgdPlatform;
  mtl = lookupDevice(table, '7d55') as IgdPlatform;
});
afterAll(() => {
  rmSync(directory, { recursive: true, force: true });
});

/**
 * The check of Debian's stock OVMF with the Coffee Lake VBT's OpRegion, as device 3e9b (cfl) and
 * no stolen memory size unless `options` says otherwise.
 */
function checkStock(options: Partial<IgdCheckOptions> = {}): Promise<IgdCheckResult> {
  return checkIgdAssignment({
    codePath: STOCK_CODE,
    varsPath: STOCK_VARS,
    deviceId: '3e9b',
    opRegion,
    bdsmSizeInBytes: 0,
    platform: cfl,
    ...options,
  });
}

describe('QmpClient against QEMU', () => {
  it('negotiates, runs commands, reports QMP errors with a code and reads PCI config of the stopped guest', async () => {
    const qemu = await findQemu();
    const socketPath = path.join(directory, 'qmp.sock');
    // -S: the CPU never starts, so no firmware runs and config space is as QEMU made it.
    const child = spawn(
      qemu,
      [
        '-machine',
        'q35',
        '-accel',
        'tcg',
        '-S',
        '-nodefaults',
        '-display',
        'none',
        '-device',
        'VGA,bus=pcie.0,addr=02.0',
        '-qmp',
        `unix:${socketPath},server=on,wait=off`,
      ],
      { stdio: 'ignore' },
    );
    const exited = new Promise((resolve) => child.once('close', resolve));
    try {
      await using qmp = await QmpClient.connect({ socketPath });
      const version = (await qmp.execute('query-version')) as { qemu: { major: number } };
      expect(version.qemu.major).toBeGreaterThanOrEqual(7);
      const failure = await qmp.execute('no-such-command').catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(VerificationError);
      expect((failure as VerificationError).code).toBe('E_VERIFY_IGD_QMP_FAILED');
      expect((failure as VerificationError).details['qmpClass']).toBe('CommandNotFound');
      // QEMU's VGA: vendor 1234, device 1111; ASLS and BDSM start at 0.
      expect(await readPciConfigDword(qmp, { bus: 0, slot: 2, func: 0 }, 0x00)).toBe(0x1111_1234);
      expect(await readPciConfigDword(qmp, { bus: 0, slot: 2, func: 0 }, 0xfc)).toBe(0);
      // The Q35 host bridge (8086:29c0) at 00:00.0, and nothing at 00:03.0.
      expect(await readPciConfigDword(qmp, { bus: 0, slot: 0, func: 0 }, 0x00)).toBe(0x29c0_8086);
      expect(await readPciConfigDword(qmp, { bus: 0, slot: 3, func: 0 }, 0x00)).toBe(0xffff_ffff);
      await qmp.execute('quit');
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
  });

  it('gives up connecting with E_VERIFY_IGD_QMP_FAILED when nothing listens', async () => {
    const error = await QmpClient.connect({
      socketPath: path.join(directory, 'nobody.sock'),
      connectTimeoutMs: 200,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(VerificationError);
    expect((error as VerificationError).code).toBe('E_VERIFY_IGD_QMP_FAILED');
  });
});

describe('checkIgdAssignment on stock OVMF (no IGD driver)', () => {
  it('reports ASLS and BDSM never written, quickly, from the trace and the registers read back', async () => {
    const result = await checkStock({ bdsmSizeInBytes: 32 * 1_048_576 });
    expect(result.passed).toBe(false);
    expect(result.failures).toEqual([
      'ASLS (config 0xFC of 00:02.0) was never written: no firmware driver set up the OpRegion',
      'BDSM (0x5c, 32-bit) was never written on cfl',
    ]);
    expect(result.info).toEqual([
      'the debug console is empty (a RELEASE firmware and no DEBUG driver in a ROM): the trace is the only oracle',
    ]);
    expect(result.registers).toEqual({ id: 0x1111_1234, asls: 0, bdsm32: 0, bdsm64: 0 });
    expect(result).toMatchObject({
      asls: null,
      bdsm: null,
      vbtSource: null,
      traceLines: [],
      timeToAslsMs: null,
      mode: 'embedded',
      accelerator: 'tcg',
    });
    expect(result.timeToBootManagerMs).not.toBeNull();
    // Stopped at the boot manager, not at a timeout: well under the 120 s limit even on a loaded machine.
    expect(result.durationMs).toBeLessThan(90_000);
    expect(result.qemu.args).toContain(`name=opt/ovmf-build/igd-device-id,string=3e9b`);
  });

  it("boots a secure boot firmware with the boot check's SMM arguments (smm=on, secure flash, S3 off)", async () => {
    const result = await checkStock({
      codePath: '/usr/share/OVMF/OVMF_CODE_4M.secboot.fd',
      deviceId: '7d55',
      platform: mtl,
      smm: true,
    });
    expect(result.failures).toEqual([
      'ASLS (config 0xFC of 00:02.0) was never written: no firmware driver set up the OpRegion',
    ]);
    expect(result.qemu.args.slice(0, 2)).toEqual(['-machine', 'q35,smm=on']);
  });

  it('runs again under TCG when KVM fails (here: no /dev/kvm, so QEMU cannot open KVM at all)', async () => {
    const result = await checkStock({ deviceId: '7d55', platform: mtl, accelerator: 'kvm' });
    expect(result.failures).toEqual([
      'ASLS (config 0xFC of 00:02.0) was never written: no firmware driver set up the OpRegion',
    ]);
    if (existsSync('/dev/kvm')) {
      // A host with KVM: it ran under KVM, or fell back with the reason noted.
      expect(result.accelerator === 'kvm' || /^KVM failed \(/u.test(result.info[0] ?? '')).toBe(true);
    } else {
      expect(result.accelerator).toBe('tcg');
      expect(result.info[0]).toMatch(
        /^KVM failed \(could not access the KVM kernel module: .+\); the check ran again under TCG$/u,
      );
    }
  });

  it('is E_VERIFY_IGD_TIMEOUT when the boot manager does not run in time, and AbortError when aborted', async () => {
    const started = performance.now();
    const timeout = await checkStock({ timeoutMs: 1_500 }).catch((error: unknown) => error);
    expect(timeout).toBeInstanceOf(VerificationError);
    expect((timeout as VerificationError).code).toBe('E_VERIFY_IGD_TIMEOUT');
    expect(performance.now() - started).toBeLessThan(15_000);
    const aborted = await checkStock({ signal: AbortSignal.timeout(500) }).catch((error: unknown) => error);
    expect(aborted).toBeInstanceOf(AbortError);
  });

  it('refuses a missing firmware file (E_INPUT_NOT_FOUND) and an OpRegion that does not parse', async () => {
    const missing = await checkStock({ codePath: path.join(directory, 'none.fd') }).catch((e: unknown) => e);
    expect((missing as OvmfBuildError).code).toBe('E_INPUT_NOT_FOUND');
    const bad = await checkStock({ opRegion: new Uint8Array(8192) }).catch((e: unknown) => e);
    expect((bad as OvmfBuildError).code).toBe('E_OPREGION_BAD_SIGNATURE');
  });
});

describe('ovmf-build verify-igd', () => {
  it('exits 10 with the verdict as JSON on stock OVMF, and 6 for a device that is not an iGPU', async () => {
    const result = await runCli([
      'verify-igd',
      STOCK_CODE,
      STOCK_VARS,
      '--device',
      '8086:7d55',
      '--vbt',
      VBT,
      '--accel',
      'tcg',
      '--json',
    ]);
    expect(result.code).toBe(10);
    const json = JSON.parse(result.stdout) as unknown;
    expect(dig(json, 'failures')).toEqual([
      'ASLS (config 0xFC of 00:02.0) was never written: no firmware driver set up the OpRegion',
    ]);
    expect(dig(json, 'platform')).toBe('mtl');
    expect(dig(json, 'accel', 'reason')).toBe('forced by --accel tcg');
    const unknown = await runCli(['verify-igd', STOCK_CODE, STOCK_VARS, '--device', '1234', '--vbt', VBT]);
    expect(unknown.code).toBe(6);
    expect(unknown.stderr).toContain('device 1234 is not an Intel iGPU of the device table');
    const usage = await runCli(['verify-igd', STOCK_CODE, STOCK_VARS, '--device', '3e9b']);
    expect(usage.code).toBe(2);
  });
});
