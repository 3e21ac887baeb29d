// The VBT differential (scripts/vbt-differential.ts) as a test: `ovmf-build inspect` against the
// real intel_vbt_decode (Debian intel-gpu-tools) on every corpus VBT, the regression fixtures
// and crafted edge cases. Verdict, signature, BDB version and the blocks found must agree, except
// where intel_vbt_decode is knowingly more lenient than i915, which we follow; those cases are
// asserted as differences, each with its reason.
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareFile, findIntelVbtDecode } from '../scripts/vbt-differential.js';
import { corpusPath, loadManifest, REPO_ROOT } from './corpus.js';

const binary = findIntelVbtDecode();
if (binary === null) {
  console.warn('vbt-differential: skipped, intel_vbt_decode is not on PATH (Debian package intel-gpu-tools)');
}

const FIXTURES = path.join(REPO_ROOT, 'test/fixtures/vbt');
const corpusVbts = loadManifest()
  .entries.filter((entry) => entry.kind === 'vbt')
  .map((entry) => corpusPath(entry.path));
const fixtureVbts = readdirSync(FIXTURES)
  .filter((name) => name.endsWith('.vbt'))
  .map((name) => path.join(FIXTURES, name));

describe.skipIf(binary === null)('inspect agrees with intel_vbt_decode', () => {
  const bin = binary ?? 'intel_vbt_decode';
  // Made in beforeAll, not at collection: a skipped run must leave nothing behind.
  let tmp = '';
  beforeAll(() => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'vbt-differential-'));
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('covers 15 corpus VBTs and 3 regression fixtures', () => {
    expect([corpusVbts.length, fixtureVbts.length]).toEqual([15, 3]);
  });

  for (const file of [...corpusVbts, ...fixtureVbts]) {
    it(path.relative(path.dirname(path.dirname(file)), file), async () => {
      const comparison = await compareFile(file, bin);
      expect(comparison.differences).toEqual([]);
      expect([comparison.ours.accepted, comparison.theirs.accepted]).toEqual([true, true]);
      expect(comparison.ours.signature).toMatch(/^\$VBT /);
      expect(comparison.ours.blockIds?.length).toBeGreaterThan(10);
    });
  }

  /** A copy of a real VBT with one change, written to the temp dir. */
  function crafted(name: string, edit: (bytes: Uint8Array, dv: DataView) => Uint8Array | void): string {
    const bytes = new Uint8Array(readFileSync(corpusPath('vbt/skylake-lenovo-m900.vbt')));
    const result = edit(bytes, new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)) ?? bytes;
    const file = path.join(tmp, name);
    writeFileSync(file, result);
    return file;
  }

  /** Compares a crafted copy: what each case asserts, [ours accepts, theirs accepts, differences], and our note. */
  async function compareCrafted(
    kind: string,
    name: string,
    edit: Parameters<typeof crafted>[1],
  ): Promise<{ verdicts: unknown[]; note: string | undefined }> {
    const comparison = await compareFile(crafted(`${kind}-${name.replace(/\W+/g, '-')}`, edit), bin);
    return {
      verdicts: [comparison.ours.accepted, comparison.theirs.accepted, comparison.differences],
      note: comparison.ours.note,
    };
  }

  it.each([
    ['no $VBT anywhere', (b: Uint8Array) => void (b[0] = 0x25)],
    ['bdb_offset past the end of the file', (_b: Uint8Array, dv: DataView) => dv.setUint32(28, 0xfff0, true)],
  ])('both refuse: %s', async (name, edit) => {
    expect((await compareCrafted('refuse', name, edit)).verdicts).toEqual([false, false, []]);
  });

  it.each([
    ['a wrong BDB signature', (b: Uint8Array) => void (b[48] = 0x62), 'no "BIOS_DATA_BLOCK " signature'],
    [
      'VBT header_size 0xffff',
      (_b: Uint8Array, dv: DataView) => dv.setUint16(22, 0xffff, true),
      'VBT header_size',
    ],
    [
      'the second block claiming 0xffff bytes',
      (b: Uint8Array, dv: DataView) =>
        dv.setUint16(48 + 22 + 3 + dv.getUint16(48 + 22 + 1, true) + 1, 0xffff, true),
      'i915 ignores it and any block after it',
    ],
  ])('both accept, we warn: %s', async (name, edit, warning) => {
    const { verdicts, note } = await compareCrafted('accept', name, edit);
    expect(verdicts).toEqual([true, true, []]);
    expect(note).toContain(warning);
  });

  // intel_vbt_decode only looks for "$VBT" and a BDB header inside the file (tools/
  // intel_vbt_decode.c main); i915 (intel_bios_is_valid_vbt) also bounds vbt_size by the data
  // and the BDB by vbt_size, and we follow i915. inspect also wants the VBT at offset 0, as the
  // GOP gets it; intel_vbt_decode scans for the first "$VBT".
  it.each([
    [
      'vbt_size past the end of the file',
      (_b: Uint8Array, dv: DataView) => dv.setUint16(24, 0xffff, true),
      'E_VBT_TRUNCATED',
    ],
    [
      'bdb_size past vbt_size',
      (_b: Uint8Array, dv: DataView) => dv.setUint16(48 + 20, 0xfff0, true),
      'E_VBT_BDB_OVERFLOW',
    ],
    [
      'the VBT 16 bytes into the file',
      (b: Uint8Array) => {
        const moved = new Uint8Array(b.length + 16);
        moved.set(b, 16);
        return moved;
      },
      'inspect says kind "unknown"',
    ],
  ])('known difference, intel_vbt_decode is more lenient than i915: %s', async (name, edit, why) => {
    const { verdicts, note } = await compareCrafted('lenient', name, edit);
    expect(verdicts).toEqual([false, true, ['verdict']]);
    expect(note).toContain(why);
  });

  /** i915 intel_bios_is_valid_vbt, written out from intel_bios.c for the fuzz below. */
  function i915Accepts(b: Uint8Array): boolean {
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    if (b.length < 48 || String.fromCharCode(...b.subarray(0, 4)) !== '$VBT') return false;
    const vbtSize = dv.getUint16(24, true);
    const bdbOffset = dv.getUint32(28, true);
    if (vbtSize > b.length || bdbOffset + 22 > vbtSize) return false;
    return bdbOffset + dv.getUint16(bdbOffset + 20, true) <= vbtSize;
  }
  /** intel_vbt_decode main: "$VBT" at 0 here, then bdb_off (an int) >= size - 22 refuses. */
  function intelVbtDecodeAccepts(b: Uint8Array): boolean {
    const bdbOffset = new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(28, true);
    return (bdbOffset | 0) >= 0 && bdbOffset < b.length - 22;
  }

  it('fuzz: header-field mutants of a real VBT get the i915 verdict from us and the documented one from intel_vbt_decode', async () => {
    const seed = new Uint8Array(readFileSync(corpusPath('vbt/skylake-lenovo-m900.vbt')));
    // vbt header_size, vbt_size, bdb_offset; BDB version, header_size, bdb_size; the first block's size.
    const fields = [22, 24, 28, 30, 64, 66, 68, 71];
    let n = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.tuple(fc.constantFrom(...fields), fc.oneof(fc.nat(0xffff), fc.integer({ min: 0, max: 200 }))),
          {
            minLength: 1,
            maxLength: 3,
          },
        ),
        async (edits) => {
          const bytes = new Uint8Array(seed);
          const dv = new DataView(bytes.buffer);
          for (const [at, value] of edits) dv.setUint16(at, value, true);
          const file = path.join(tmp, `fuzz-${n++}.vbt`);
          writeFileSync(file, bytes);
          const comparison = await compareFile(file, bin);
          expect(comparison.ours.accepted).toBe(i915Accepts(bytes));
          expect(comparison.theirs.accepted).toBe(intelVbtDecodeAccepts(bytes));
          if (comparison.ours.accepted && comparison.theirs.accepted) {
            expect([comparison.ours.signature, comparison.ours.bdbVersion]).toEqual([
              comparison.theirs.signature,
              comparison.theirs.bdbVersion,
            ]);
          }
        },
      ),
      { numRuns: 40, seed: 8 },
    );
    // intel_vbt_decode takes 0.2 s a run on a loaded 2-core machine.
  }, 180_000);
});
