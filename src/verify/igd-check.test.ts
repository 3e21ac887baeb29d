// The IGD check's thrown verdict (assertIgdCheckPassed), and a failed embedded mode stopping a
// ROM-mode check that was run ahead (verifyIgdModes with precomputedRom).
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { corpusPath } from '../../test/corpus.js';
import { lookupDevice, type IgdPlatform } from '../igd/device-table.js';
import { loadIgdDeviceTable } from '../igd/load.js';
import { assertIgdCheckPassed, type IgdCheckResult } from './igd-check.js';
import { verifyIgdModes, type IgdModeSummary } from './igd-modes.js';
import { VerificationError } from './errors.js';

describe('assertIgdCheckPassed', () => {
  it('throws E_VERIFY_IGD_CHECK_FAILED with the failures, and nothing for a pass', () => {
    const failed = {
      passed: false,
      failures: ['ASLS never written'],
      mode: 'rom',
      deviceId: '3e9b',
      platform: 'cfl',
      traceLines: [],
      debugLines: [],
    } as unknown as IgdCheckResult;
    let thrown: unknown;
    try {
      assertIgdCheckPassed(failed);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(VerificationError);
    expect((thrown as VerificationError).code).toBe('E_VERIFY_IGD_CHECK_FAILED');
    expect((thrown as VerificationError).details['failures']).toEqual(['ASLS never written']);
    expect(() => assertIgdCheckPassed({ ...failed, passed: true })).not.toThrow();
  });
});

describe('verifyIgdModes with a ROM-mode check run ahead', () => {
  it('stops that check when embedded mode fails, and reports the embedded failure at once', async () => {
    const platform = lookupDevice(await loadIgdDeviceTable(), '3e9b') as IgdPlatform;
    const given: AbortSignal[] = [];
    // A check run ahead that only ends when it is stopped (a TCG boot takes seconds).
    const precomputedRom = (_digest: string, signal: AbortSignal): Promise<IgdModeSummary> => {
      given.push(signal);
      return new Promise((_resolve, reject) =>
        signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true }),
      );
    };
    const error: unknown = await verifyIgdModes({
      code: Uint8Array.of(0),
      vars: Uint8Array.of(0),
      rom: Uint8Array.of(0x55, 0xaa),
      vbt: await readFile(corpusPath('vbt/kabylake-lenovo-t480.vbt')),
      deviceId: '3e9b',
      platform,
      deviceReason: 'test',
      accelerator: 'tcg',
      // Embedded mode fails before it boots: no QEMU on this PATH.
      env: { PATH: '' },
      precomputedRom,
    }).catch((thrown: unknown) => thrown);
    expect(given).toHaveLength(1);
    expect(given[0]?.aborted).toBe(true);
    expect(error).toBeInstanceOf(VerificationError);
    expect((error as VerificationError).code).toBe('E_BOOT_QEMU_MISSING');
  });
});
