// The boot check's thrown verdict: assertBootPassed is what the build and the pipeline call.
import { describe, expect, it } from 'vitest';
import { assertBootPassed, type BootVerification } from './boot.js';
import { VerificationError } from './errors.js';

const GOP = '1647B4F3-3E8A-4FDD-81C8-328ED647AB1A';

describe('assertBootPassed', () => {
  it('throws E_BOOT_CHECK_FAILED with the failures, and nothing for a pass', () => {
    const result = {
      passed: false,
      failures: ['x'],
      loadedDrivers: [GOP],
      reachedBds: true,
    } as unknown as BootVerification;
    expect(() => assertBootPassed(result)).toThrow(VerificationError);
    expect(() => assertBootPassed(result)).toThrow('the OVMF boot did not pass verification: x');
    expect(() => assertBootPassed({ ...result, passed: true, failures: [] })).not.toThrow();
  });
});
