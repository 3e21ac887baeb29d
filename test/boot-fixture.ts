// Shared by the boot check's tests (src/verify): the DEBUG lines of a boot that dispatched our
// GOP driver and policy driver, in edk2-stable202211's formats (src/verify/debug-log.ts: `%g`
// prints lower-case hex, `%11p` upper-case hex padded to 11 digits), and the files a boot check
// runs with (a blank varstore and an empty scratch directory).
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_GOP_FILE_GUID, DEFAULT_POLICY_FILE_GUID } from '../src/verify/guids.js';

/** DxeCore's "Loading driver" lines of the GOP driver, then the policy driver. */
export const BOTH_DRIVERS_LOADED: readonly string[] = [
  `Loading driver ${DEFAULT_GOP_FILE_GUID.toLowerCase()}`,
  'Loading driver at 0x0007E86C000 EntryPoint=0x0007E86D2B8 ',
  `Loading driver ${DEFAULT_POLICY_FILE_GUID.toLowerCase()}`,
  'Loading driver at 0x0007E865000 EntryPoint=0x0007E8662A1 PlatformGopPolicyDxe.efi',
];

/** Both drivers loaded, then the policy driver's line about the VBT it found. */
export const DISPATCH_BOTH: readonly string[] = [
  ...BOTH_DRIVERS_LOADED,
  'OvmfGopPkg: VBT found, 5632 bytes at 0x7E85F018, signature "$VBT GEMINILAKE     "',
];

/**
 * A new temp dir `work` (remove it after the tests) holding `scratch`, an empty directory for a
 * boot check's tmpDir, and `vars`, a blank 64 KiB varstore.
 */
export async function makeBootWorkDir(
  prefix: string,
): Promise<{ readonly work: string; readonly scratch: string; readonly vars: string }> {
  const work = await mkdtemp(path.join(os.tmpdir(), prefix));
  const scratch = path.join(work, 'scratch');
  await mkdir(scratch);
  const vars = path.join(work, 'vars.fd');
  await writeFile(vars, new Uint8Array(0x1_0000).fill(0xff));
  return { work, scratch, vars };
}
