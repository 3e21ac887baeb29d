// `rom --gop` with a header-mutated real GOP: refused with E_INPUT_NOT_GOP (exit 6) before
// anything is written, where it used to build a ROM around an unloadable driver.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from './cli-harness.js';
import { corpusPath } from './corpus.js';

const work = mkdtempSync(path.join(os.tmpdir(), 'ovmf-build-gop-validation-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('rom --gop refuses a GOP that is not a loadable PE', () => {
  const gop = new Uint8Array(readFileSync(corpusPath('gop/cometlake-mrchromebox-cml.efi')));
  const dv = new DataView(gop.buffer);
  const coff = dv.getUint32(0x3c, true) + 4;
  const cases: readonly (readonly [string, number, number, 2 | 4, string])[] = [
    ['0 sections', coff + 2, 0, 2, 'E_PE_NO_SECTIONS'],
    ['SizeOfImage 0xFFFFFFFF', coff + 20 + 56, 0xffff_ffff, 4, 'E_PE_BAD_SIZE_OF_IMAGE'],
    ['AddressOfEntryPoint 0xFFFFFFFF', coff + 20 + 16, 0xffff_ffff, 4, 'E_PE_BAD_ENTRY_POINT'],
    ['Characteristics 0', coff + 18, 0, 2, 'E_PE_NOT_EXECUTABLE'],
  ];
  for (const [name, offset, value, width, peCode] of cases) {
    it(name, async () => {
      const bytes = new Uint8Array(gop);
      const view = new DataView(bytes.buffer);
      if (width === 2) view.setUint16(offset, value, true);
      else view.setUint32(offset, value, true);
      const input = path.join(work, `${peCode}.efi`);
      writeFileSync(input, bytes);
      const out = path.join(work, `${peCode}.rom`);
      const result = await runCli([
        'rom',
        '--gop',
        input,
        '--device',
        '8086:9b41',
        '--gop-only',
        '--out',
        out,
      ]);
      expect(result.code).toBe(6);
      expect(result.stderr).toContain(`not an Intel GOP driver: not a loadable PE/COFF image (${peCode}: `);
      expect(result.stderr).toContain('[E_INPUT_NOT_GOP]');
      expect(existsSync(out)).toBe(false);
    });
  }

  it('still builds a ROM from the unmodified driver', async () => {
    const out = path.join(work, 'ok.rom');
    const result = await runCli([
      'rom',
      '--gop',
      corpusPath('gop/cometlake-mrchromebox-cml.efi'),
      '--device',
      '8086:9b41',
      '--gop-only',
      '--out',
      out,
    ]);
    expect(result.code).toBe(0);
    expect(readFileSync(out).subarray(0, 2)).toEqual(Buffer.from([0x55, 0xaa]));
  });
});
