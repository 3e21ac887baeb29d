// The QEMU oracle of issue 9 as assertions, shared by the embedded-mode and ROM-mode tests:
// what the trace, the registers read back over QMP and pmemsave must show after the
// firmware did IGD assignment for one device.
import { expect } from 'vitest';
import type { IgdCheckResult } from '../src/verify/igd-check.js';

const MiB = 1_048_576;
const FOUR_GIB = 0x1_0000_0000;

export interface ExpectedIgdAssignment {
  /** BDSM register and width for the device's platform; null when nothing may be written (MTL on). */
  readonly expectedBdsm: { readonly offset: number; readonly width: 32 | 64 } | null;
  readonly bdsmSizeInBytes: number;
}

/**
 * ASLS written, page aligned, below 4 GiB, with the OpRegion's bytes behind it; BDSM at the
 * platform's register and width, 1 MiB aligned and below 4 GiB, or not written at all.
 */
export function expectIgdAssignment(
  result: IgdCheckResult,
  expected: ExpectedIgdAssignment,
  opRegionSizeInBytes: number,
): void {
  expect(result.asls).not.toBeNull();
  const asls = result.asls as number;
  expect(asls % 4096).toBe(0);
  expect(asls).toBeGreaterThan(0);
  expect(asls + opRegionSizeInBytes).toBeLessThanOrEqual(FOUR_GIB);
  expect(result.opRegionMatches).toBe(true);
  expect(result.registers?.asls).toBe(asls);
  expect(result.traceLines).toContain(`pci_cfg_write VGA 00:02.0 @0xfc <- 0x${asls.toString(16)}`);

  if (expected.expectedBdsm === null) {
    expect(result.bdsm).toBeNull();
    expect(result.traceLines.filter((line) => /@0x(5c|c0|c4) /u.test(line))).toEqual([]);
    expect(result.registers?.bdsm32).toBe(0);
    expect(result.registers?.bdsm64).toBe(0);
    return;
  }
  expect(result.bdsm).toMatchObject(expected.expectedBdsm);
  const base = result.bdsm?.value as number;
  expect(base % MiB).toBe(0);
  expect(base + expected.bdsmSizeInBytes).toBeLessThanOrEqual(FOUR_GIB);
  const register = `@0x${expected.expectedBdsm.offset.toString(16)} <- 0x${base.toString(16)}`;
  expect(result.traceLines).toContain(`pci_cfg_write VGA 00:02.0 ${register}`);
  if (expected.expectedBdsm.width === 64) {
    expect(result.traceLines).toContain('pci_cfg_write VGA 00:02.0 @0xc4 <- 0x0');
    expect(result.traceLines.filter((line) => line.includes('@0x5c '))).toEqual([]);
  } else {
    expect(result.traceLines.filter((line) => /@0xc[04] /u.test(line))).toEqual([]);
  }
}
