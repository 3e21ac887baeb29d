import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sha256 } from '../src/core/digest.js';
import { runCli } from './cli-harness.js';
import { corpusPath, firmwareEntries, readCorpus } from './corpus.js';
import { ffsFile, section, sections, utf16z, volume } from './ffs-builder.js';

const work = mkdtempSync(path.join(os.tmpdir(), 'ovmf-build-extract-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
let counter = 0;
const outDir = (): string => path.join(work, `out-${counter++}`);

describe('ovmf-build extract on every corpus image', () => {
  for (const entry of firmwareEntries()) {
    it(`${entry.path}`, async () => {
      const out = outDir();
      const result = await runCli(['extract', corpusPath(entry.path), '--out', out, '--json']);
      const json = JSON.parse(result.stdout) as Record<string, unknown>;
      const { gop, vbt } = entry.truth;
      const expectedCode = gop === null ? 4 : vbt === null ? 5 : 0;
      expect(result.code).toBe(expectedCode);
      const written = readdirSync(out).sort();
      if (gop === null) {
        expect(json['gop']).toBeNull();
        expect(result.stderr).toMatch(
          /this image ships no Intel GOP driver: searched \d+ volumes, \d+ files, \d+ PE32 sections .*\[E_GOP_NOT_FOUND\]/,
        );
      } else {
        const g = gop[0];
        expect(json['gop']).toEqual({
          sha256: g?.pe_sha256,
          size: g?.pe_size,
          guid: g?.file_guid,
          build: g?.gop_build,
          uiName: g?.ui_name,
          machine: 'x64',
          imagePath: expect.stringMatching(/\/PE32 image section$/),
          offset: null,
          path: path.join(out, 'IntelGopDriver.efi'),
        });
        expect(sha256(readFileSync(path.join(out, 'IntelGopDriver.efi')))).toBe(g?.pe_sha256);
      }
      if (vbt === null) {
        expect(json['vbt']).toBeNull();
        expect(result.stderr).toMatch(/this image ships no VBT: .*\[E_VBT_NOT_FOUND\]/);
      } else {
        const [first, ...rest] = vbt;
        expect(json['vbt']).toMatchObject({
          sha256: first?.body_sha256,
          size: first?.body_size,
          guid: first?.file_guid,
          uiName: first?.ui_name,
          signature: first?.signature,
          bdbVersion: first?.intel_vbt_decode.bdb_version,
          vbtSize: first?.vbt_size_field,
          path: path.join(out, 'Vbt.bin'),
        });
        expect(sha256(readFileSync(path.join(out, 'Vbt.bin')))).toBe(first?.body_sha256);
        expect((json['others'] as Record<string, unknown>[]).map((o) => [o['guid'], o['sha256']])).toEqual(
          rest.map((v) => [v.file_guid, v.body_sha256]),
        );
        for (const v of rest) {
          expect(sha256(readFileSync(path.join(out, `Vbt.${v.file_guid}.bin`)))).toBe(v.body_sha256);
        }
      }
      expect(written).toEqual(
        [
          ...(gop === null ? [] : ['IntelGopDriver.efi']),
          ...(vbt === null ? [] : ['Vbt.bin', ...vbt.slice(1).map((v) => `Vbt.${v.file_guid}.bin`)]),
        ].sort(),
      );
      expect((json['notGop'] as { guid: string }[]).map((r) => r.guid).sort()).toEqual(
        entry.truth.other_gop_named_files.map((o) => o.file_guid).sort(),
      );
    });
  }
});

describe('ovmf-build extract edge cases', () => {
  it('exits 5 and writes the GOP when an image has a GOP but no VBT', async () => {
    const gop = readCorpus('gop/skylake-kabylake-mrchromebox-skl.efi');
    const file = ffsFile(
      'FF0C8745-3270-4439-B74F-3E45F8C77064',
      0x07,
      sections(section(0x10, gop), section(0x15, utf16z('IntelGopDriver'))),
    );
    const image = path.join(work, 'gop-only.fd');
    writeFileSync(image, volume([file]));
    const out = outDir();
    const result = await runCli(['extract', image, '--out', out]);
    expect(result.code).toBe(5);
    expect(result.stdout).toMatch(
      /^GOP {2}.*IntelGopDriver\.efi {2}IntelGopDriver build 1080 {2}70272 bytes {2}sha256 42ffdfc2f732880ed59c5ebfc9cfde07344b65102c9178e8356f4bde84ce264b\n$/,
    );
    expect(result.stderr).toMatch(
      /^ovmf-build: this image ships no VBT: searched 1 volumes, 1 files, 1 PE32 sections/,
    );
    expect(readdirSync(out)).toEqual(['IntelGopDriver.efi']);
  });

  it('exits 3 (E_NOT_FIRMWARE) for a file with no firmware structure, writing nothing', async () => {
    const out = outDir();
    const result = await runCli(['extract', corpusPath('vbt/skylake-lenovo-m900.vbt'), '--out', out]);
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(/no firmware structure found.*\[E_NOT_FIRMWARE\]\n$/);
    expect(() => readdirSync(out)).toThrow(/ENOENT/);
  });

  it('exits 6 for a missing input and 2 for missing --out', async () => {
    const missing = await runCli(['extract', path.join(work, 'nope.fd'), '--out', outDir()]);
    expect(missing.code).toBe(6);
    expect(missing.stderr).toMatch(/\[E_INPUT_NOT_FOUND\]/);
    const usage = await runCli(['extract', corpusPath('images/coffeelake-intel-fsp.fd')]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/expected one <image> and --out <dir>/);
    const help = await runCli(['extract', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^usage: ovmf-build extract <image> --out <dir> \[--json\]/);
  });

  it('replaces existing outputs atomically and leaves no temp files', async () => {
    const out = outDir();
    const first = await runCli([
      'extract',
      corpusPath('images/geminilake-protectli-vp2410-ifwi.bin'),
      '--out',
      out,
    ]);
    expect(first.code).toBe(4);
    writeFileSync(path.join(out, 'Vbt.bin'), 'stale');
    const second = await runCli([
      'extract',
      corpusPath('images/geminilake-protectli-vp2410-ifwi.bin'),
      '--out',
      out,
    ]);
    expect(second.code).toBe(4);
    expect(readdirSync(out).sort()).toEqual(['Vbt.DBADD769-E86A-4819-8120-E991792C0BC1.bin', 'Vbt.bin']);
    expect(sha256(readFileSync(path.join(out, 'Vbt.bin')))).toBe(
      'a7faff7c4192a0d567be25582f3acaa5d9d15438efffb390c2044a4116562900',
    );
  });
});
