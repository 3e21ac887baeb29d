// SMM builds are recognised by their SMM core: Debian's IA32 secure boot OVMF (an SMM_REQUIRE
// build) is one, its plain X64 OVMF and a third-party OVMF are not.
import { describe, expect, it } from 'vitest';
import { runCli } from '../../test/cli-harness.js';
import { corpusPath, readCorpus } from '../../test/corpus.js';
import { requiresSmm } from './smm.js';

describe('requiresSmm', () => {
  it("is true for Debian's OVMF32_CODE_4M.secboot.fd", () => {
    expect(requiresSmm(readCorpus('ovmf/OVMF32_CODE_4M.secboot.fd'))).toBe(true);
  });

  it("is false for Debian's OVMF_CODE_4M.fd and the gk41 OVMF", () => {
    expect(requiresSmm(readCorpus('ovmf/OVMF_CODE_4M.fd'))).toBe(false);
    expect(requiresSmm(readCorpus('images/geminilake-ovmf-with-gop-vbt-gk41.fd'))).toBe(false);
  });

  it('is false for bytes that are not firmware', () => {
    expect(requiresSmm(new Uint8Array(4096).fill(0xff))).toBe(false);
    expect(requiresSmm(new Uint8Array(0))).toBe(false);
  });
});

describe('verify-boot and verify-igd recognise an SMM build without --smm', () => {
  const secboot = corpusPath('ovmf/OVMF32_CODE_4M.secboot.fd');
  const vars = corpusPath('ovmf/OVMF_VARS_4M.fd');

  it('verify-boot --machine i440fx of an SMM build is a usage error that says why (exit 2), before QEMU', async () => {
    const result = await runCli(['verify-boot', secboot, vars, '--machine', 'i440fx']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(
      'the image is an SMM build (it holds the SMM core), which QEMU emulates only on q35; use --machine q35',
    );
    const forced = await runCli([
      'verify-boot',
      corpusPath('ovmf/OVMF_CODE_4M.fd'),
      vars,
      '--machine',
      'i440fx',
      '--smm',
    ]);
    expect([forced.code, forced.stderr.includes('--smm needs --machine q35')]).toEqual([2, true]);
  });

  it('both list --smm in their usage', async () => {
    for (const command of ['verify-boot', 'verify-igd']) {
      const help = await runCli([command, '--help']);
      expect(help.stdout).toMatch(/^ {2}--smm +boot with SMM \(smm=on, secure pflash/m);
    }
  });
});
