import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { OvmfBuildError } from '../core/errors.js';
import { assertGopDriver, classifyGopDriver, INTEL_GOP_DRIVER_NAME } from './gop.js';
import { CORPUS_DIR as corpus, loadManifest } from '../../test/corpus.js';
import { cpuNow } from '../../test/cpu-time.js';

interface GopEntry {
  path: string;
  kind: string;
  sha256: string;
  size: number;
  ground_truth: {
    has_intel_gop_driver_utf16: boolean;
    gop_build: string | null;
    controller_name_string?: string;
  };
}
const manifest = loadManifest() as unknown as {
  entries: GopEntry[];
};
const gops = manifest.entries.filter((e) => e.kind === 'gop');
const read = (p: string): Uint8Array => new Uint8Array(readFileSync(path.join(corpus, p)));

describe('classifyGopDriver on every corpus gop/ file (manifest ground truth)', () => {
  it('covers the 14 gop/ files of the manifest', () => {
    expect(gops.length).toBe(14);
  });

  for (const entry of gops) {
    it(entry.path, () => {
      const bytes = read(entry.path);
      expect(bytes.length).toBe(entry.size);
      const result = classifyGopDriver(bytes);
      expect(result.isGop).toBe(entry.ground_truth.has_intel_gop_driver_utf16);
      if (result.isGop) {
        expect(result.info.build).toBe(entry.ground_truth.gop_build);
        expect(result.info.sha256).toBe(entry.sha256);
        expect(result.info.sizeInBytes).toBe(entry.size);
        expect(result.info.controllerName).toBe(entry.ground_truth.controller_name_string);
        expect(result.info.pe.machineName).toBe('x64');
        expect(assertGopDriver(bytes)).toEqual(result.info);
      }
    });
  }

  it('explains the Alder Lake-N driver whose build slot holds a single digit', () => {
    const result = classifyGopDriver(read('gop/alderlake-n-twinlake-tianbei-n1pro.efi'));
    expect(result.isGop).toBe(true);
    if (!result.isGop) return;
    // The CHAR16 build slot right after the CHAR16[68] name buffer holds "6" where other
    // Gen12 drivers hold "1066"/"1087"; "21" is the major version further on.
    expect(result.info.build).toBeNull();
    expect(result.info.digitFields).toEqual(['6', '21']);
    expect(result.info.nameOffset).toBe(149_344);
    expect(result.info.buildNote).toBe(
      'no 4-digit build within 384 bytes after the driver name at 0x24760; the digit fields there hold "6", "21" (the build slot is incomplete in this binary)',
    );
  });

  it('reads the old (Haswell/Skylake) layout: major, minor, then build', () => {
    const skl = classifyGopDriver(read('gop/skylake-kabylake-mrchromebox-skl.efi'));
    expect(skl.isGop && skl.info.digitFields.slice(0, 3)).toEqual(['9', '0', '1080']);
    const hsw = classifyGopDriver(read('gop/haswell-broadwell-anbeen-pc-4-5.efi'));
    expect(hsw.isGop && hsw.info.digitFields.slice(0, 3)).toEqual(['5', '0', '1025']);
  });

  it('rejects the mis-named 4800-byte ASRock module with a reason', () => {
    const bytes = read('gop/not-a-gop-asrock-b85pro4-IntelGopDriver.efi');
    const result = classifyGopDriver(bytes);
    expect(result).toMatchObject({
      isGop: false,
      reason:
        'x64 EFI boot-service driver of 4800 bytes without the UTF-16LE "Intel(R) GOP Driver" string (a policy, helper or debug module, whatever its file name)',
    });
    expect(result.isGop ? null : result.pe?.timestamp).toBe(1_401_196_162);
    try {
      assertGopDriver(bytes);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(OvmfBuildError);
      expect((error as OvmfBuildError).code).toBe('E_INPUT_NOT_GOP');
      expect((error as OvmfBuildError).details).toEqual({
        reason: result.isGop ? '' : result.reason,
        sizeInBytes: 4800,
        sha256: createHash('sha256').update(bytes).digest('hex'),
      });
    }
  });

  it('gives a reason for non-PE, non-x64, and non-driver inputs', () => {
    expect(classifyGopDriver(new Uint8Array([1, 2, 3]))).toEqual({
      isGop: false,
      reason:
        'not a PE/COFF image (E_PE_BAD_DOS_SIGNATURE: no "MZ" or "VZ" signature at 0x0 (found 0x201): not a PE/COFF or TE image)',
      pe: null,
      malformed: true,
    });
    const gop = read('gop/cometlake-mrchromebox-cml.efi');
    const lfanew = new DataView(gop.buffer).getUint32(0x3c, true);
    const ia32 = new Uint8Array(gop);
    new DataView(ia32.buffer).setUint16(lfanew + 4, 0x14c, true);
    expect(classifyGopDriver(ia32)).toMatchObject({
      isGop: false,
      reason: 'machine is ia32; an Intel GOP driver is x64',
    });
    const app = new Uint8Array(gop);
    new DataView(app.buffer).setUint16(lfanew + 24 + 68, 10, true);
    expect(classifyGopDriver(app)).toMatchObject({
      isGop: false,
      reason: 'subsystem is EFI_APPLICATION; an Intel GOP driver is EFI_BOOT_SERVICE_DRIVER (11)',
    });
  });

  it('finds the name at a non-zero byteOffset', () => {
    const bytes = read('gop/tigerlake-mrchromebox-tgl.efi');
    const big = new Uint8Array(bytes.length + 0x101);
    big.set(bytes, 0x101);
    const result = classifyGopDriver(big.subarray(0x101));
    expect(result.isGop && result.info.build).toBe('1064');
    expect(result.isGop && result.info.nameOffset).toBe(151_984);
  });

  it('scans a 160 KB driver in well under 1 ms', () => {
    const bytes = read('gop/alderlake-dasharo-novacustom-ns5x.efi');
    expect(bytes.length).toBeGreaterThan(160_000);
    let best = Infinity;
    for (let i = 0; i < 30; i++) {
      const started = cpuNow();
      classifyGopDriver(bytes);
      best = Math.min(best, cpuNow() - started);
    }
    expect(best).toBeLessThan(1);
  });

  it('the driver name constant is the UTF-16 string searched for', () => {
    expect(INTEL_GOP_DRIVER_NAME).toBe('Intel(R) GOP Driver');
  });

  it('fuzz: classify never throws on mutated drivers', () => {
    const seed = read('gop/haswell-broadwell-mrchromebox-hsw.efi').subarray(0, 0x1000);
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(0xfff), fc.nat(255)), { maxLength: 32 }),
        fc.nat(0x1000),
        (edits, cut) => {
          const bytes = new Uint8Array(seed);
          for (const [at, value] of edits) bytes[at] = value;
          const result = classifyGopDriver(bytes.subarray(0, cut));
          expect(typeof result.isGop).toBe('boolean');
        },
      ),
      { numRuns: 1000 },
    );
  });
});
