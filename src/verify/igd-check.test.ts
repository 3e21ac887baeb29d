// The IGD check's thrown verdict: assertIgdCheckPassed.
import { describe, expect, it } from 'vitest';
import { assertIgdCheckPassed, type IgdCheckResult } from './igd-check.js';
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
