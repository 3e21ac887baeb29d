// The GOP driver and the VBT must fit the firmware's IGD volume (192 KiB at 2 MiB, 512 KiB at
// 4 MiB, src/edk2/layout.ts). The job refuses inputs that cannot fit in its first stage, with
// E_INPUT_IGD_VOLUME_FULL (exit 6) and the sizes, instead of failing in GenFv at the end of a
// build. The byte count it checks is compared with a real built volume in test/build.int.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { runMain } from '../src/cli/commands/ovmf.js';
import { exitCodeFor } from '../src/cli/exit-codes.js';
import type { OvmfBuildError } from '../src/core/errors.js';
import { GOP_INF, GOP_UI_NAME, IGD_VOLUME_SIZES, igdVolumeBytesUsed } from '../src/edk2/layout.js';
import { isolatedEnv, StandInBuild } from './cache-stand-in.js';
import { captureContext } from './cli-harness.js';
import { corpusPath } from './corpus.js';
import { tempDirPerTest } from './temp-dir.js';

/** The largest GOP driver and the largest VBT of the corpus. */
const GOP = corpusPath('gop/alderlake-n-twinlake-tianbei-n1pro.efi');
const VBT = corpusPath('vbt/alderlake-n-tianbei-n1pro.vbt');

const tempDir = tempDirPerTest('ovmf-igd-volume-');
let dir: string;
beforeEach(() => {
  dir = tempDir();
});

describe('igdVolumeBytesUsed', () => {
  it('is the layout GenFv made for a 73,312-byte GOP and a 4,608-byte VBT (a real IGDVOL.Fv: VBT file ends at 0x13144)', () => {
    expect(igdVolumeBytesUsed(73_312, 4_608)).toBe(0x13144);
  });

  it('counts section padding: a GOP one byte longer takes 4 more bytes, a VBT one byte longer 1', () => {
    expect(igdVolumeBytesUsed(73_313, 4_608)).toBe(0x13144 + 8);
    expect(igdVolumeBytesUsed(73_316, 4_608)).toBe(0x13144 + 8);
    expect(igdVolumeBytesUsed(73_312, 4_609)).toBe(0x13144 + 1);
  });

  it("rests on the GOP INF's BASE_NAME (UI section) and VERSION_STRING 1.0 (version section)", () => {
    const inf = readFileSync(path.join('containers/edk2-overlay', GOP_INF), 'utf8');
    expect(inf).toMatch(new RegExp(`^\\s*BASE_NAME\\s*=\\s*${GOP_UI_NAME}\\s*$`, 'm'));
    expect(inf).toMatch(/^\s*VERSION_STRING\s*=\s*1\.0\s*$/m);
  });

  it('leaves room at 2 MiB for the largest GOP and VBT of the corpus (165,888 and 9,216 bytes)', () => {
    const used = igdVolumeBytesUsed(readFileSync(GOP).length, readFileSync(VBT).length);
    expect(used).toBe(175_332);
    expect(IGD_VOLUME_SIZES[2048].igdVolume - used).toBe(21_276);
  });
});

describe('the job refuses a GOP and VBT that do not fit, before anything is built', () => {
  /** The largest corpus GOP with 24 KiB appended (as a signature would be): still a valid GOP driver. */
  function grownGop(): string {
    const gop = readFileSync(GOP);
    const grown = new Uint8Array(gop.length + 24 * 1024);
    grown.set(gop);
    const file = path.join(dir, 'grown.efi');
    writeFileSync(file, grown);
    return file;
  }

  it('--fd-size 2MB: E_INPUT_IGD_VOLUME_FULL (exit 6) with the sizes; no build, no output', async () => {
    const backend = new StandInBuild();
    const out = path.join(dir, 'out');
    const argv = ['--gop', grownGop(), '--vbt', VBT, '--fd-size', '2MB', '--out', out];
    const captured = captureContext(argv, isolatedEnv(dir), dir);
    const error = await runMain(captured.ctx, backend.stages).then(
      () => expect.unreachable('the job ran'),
      (thrown: unknown) => thrown as OvmfBuildError,
    );
    expect([error.code, exitCodeFor(error)]).toEqual(['E_INPUT_IGD_VOLUME_FULL', 6]);
    expect(error.message).toBe(
      "the GOP driver (190464 bytes) and the VBT (9216 bytes) need 199908 bytes in the firmware's IGD " +
        'volume, which holds 196608 bytes in a 2MB image; build a 4 MiB image (--fd-size 4MB)',
    );
    expect(backend.builds).toBe(0);
    expect(existsSync(out)).toBe(false);
  });

  it('the same inputs build at 4 MiB (512 KiB volume)', async () => {
    const backend = new StandInBuild();
    const argv = ['--gop', grownGop(), '--vbt', VBT, '--out', path.join(dir, 'out'), '--json'];
    const captured = captureContext(argv, isolatedEnv(dir), dir);
    expect(await runMain(captured.ctx, backend.stages)).toBe(0);
    expect(backend.builds).toBe(1);
  });
});
