// The IGD boot plan of the runIgdBoot tests (src/verify/igd-run.test.ts with a stand-in QEMU,
// igd-run.int.test.ts with real QEMU and tiny firmware): a Tiger Lake device (8086:9a49) from the
// device table, an empty 8 KiB OpRegion, no stolen memory, no SMM, 128 MiB, TCG.
import { lookupDevice } from '../src/igd/device-table.js';
import { loadIgdDeviceTable } from '../src/igd/load.js';
import type { IgdBootPlan } from '../src/verify/igd-run.js';

/** A plan with `varsPath` as its VARS template; the test adds the code image and the directory. */
export async function tigerLakeBootPlan(
  varsPath: string,
): Promise<Omit<IgdBootPlan, 'codePath' | 'directory'>> {
  const platform = lookupDevice(await loadIgdDeviceTable(), '9a49');
  if (platform === undefined) throw new Error('8086:9a49 is not in the device table');
  return {
    varsPath,
    opRegion: new Uint8Array(0x2000),
    bdsmSizeInBytes: 0,
    platform,
    deviceId: '9a49',
    smm: false,
    memoryMiB: 128,
    accelerator: 'tcg',
  };
}
