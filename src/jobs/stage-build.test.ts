import { describe, expect, it } from 'vitest';
import { buildCpuShares } from './stage-build.js';

describe('OVMF_BUILD_CPU_SHARES', () => {
  it('is the engine default when unset or empty', () => {
    expect(buildCpuShares({})).toBeUndefined();
    expect(buildCpuShares({ OVMF_BUILD_CPU_SHARES: '' })).toBeUndefined();
  });

  it('takes an integer in the engine range (2 to 262144)', () => {
    expect(buildCpuShares({ OVMF_BUILD_CPU_SHARES: '2' })).toBe(2);
    expect(buildCpuShares({ OVMF_BUILD_CPU_SHARES: '128' })).toBe(128);
    expect(buildCpuShares({ OVMF_BUILD_CPU_SHARES: '262144' })).toBe(262_144);
  });

  it.each(['1', '262145', '0x80', '12.5', '-4', ' 128', 'lots'])('refuses %j as a usage error', (text) => {
    expect(() => buildCpuShares({ OVMF_BUILD_CPU_SHARES: text })).toThrow(
      expect.objectContaining({
        code: 'E_USAGE',
        message: `OVMF_BUILD_CPU_SHARES must be an integer from 2 to 262144, not ${JSON.stringify(text)}`,
      }),
    );
  });
});
