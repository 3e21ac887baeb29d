// buildQemuArgs and findQemu: the one QEMU base command line, checked argument by argument.
import { mkdtemp, rm, writeFile, chmod } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { OvmfBuildError } from '../core/errors.js';
import { buildQemuArgs, escapeQemuOptionValue, findQemu, type QemuBootPlan } from './qemu.js';

const PLAN: QemuBootPlan = {
  codePath: '/in/OVMF_CODE.fd',
  varsPath: '/tmp/x/OVMF_VARS.fd',
  debugLogPath: '/tmp/x/debug.log',
  serialLogPath: '/tmp/x/serial.log',
  machine: 'q35',
  smm: false,
  accelerator: 'tcg',
  memoryMiB: 512,
};

// The exact command line is the assertion, so this mirrors buildQemuArgs on purpose.
const COMMON_TAIL = [
  '-m',
  '512',
  '-nographic',
  '-nodefaults',
  '-display',
  'none',
  '-monitor',
  'none',
  '-net',
  'none',
  '-no-reboot',
  '-drive',
  'if=pflash,format=raw,unit=0,readonly=on,file=/in/OVMF_CODE.fd',
  '-drive',
  'if=pflash,format=raw,unit=1,file=/tmp/x/OVMF_VARS.fd',
  '-debugcon',
  'file:/tmp/x/debug.log',
  '-global',
  'isa-debugcon.iobase=0x402',
  '-serial',
  'file:/tmp/x/serial.log',
];

describe('buildQemuArgs', () => {
  it('q35 under TCG: read-only code, private vars, debug console on 0x402, no disk, no network', () => {
    expect(buildQemuArgs(PLAN)).toEqual(['-machine', 'q35', '-accel', 'tcg', ...COMMON_TAIL]);
  });

  it('SMM builds: smm=on, the secure pflash and S3 off; exactly one accelerator', () => {
    expect(buildQemuArgs({ ...PLAN, smm: true, accelerator: 'kvm' })).toEqual([
      '-machine',
      'q35,smm=on',
      '-accel',
      'kvm',
      '-global',
      'driver=cfi.pflash01,property=secure,value=on',
      '-global',
      'ICH9-LPC.disable_s3=1',
      ...COMMON_TAIL,
    ]);
  });

  it('i440fx is QEMU machine `pc`; SMM on i440fx is refused', () => {
    expect(buildQemuArgs({ ...PLAN, machine: 'i440fx' }).slice(0, 2)).toEqual(['-machine', 'pc']);
    expect(() => buildQemuArgs({ ...PLAN, machine: 'i440fx', smm: true })).toThrow(
      new TypeError('Expected `machine` to be `q35` for an SMM build, got `i440fx`'),
    );
    expect(() => buildQemuArgs({ ...PLAN, accelerator: 'hvf' as 'tcg' })).toThrow(
      new TypeError('Expected `accelerator` to be `kvm` or `tcg`, got `hvf`'),
    );
  });

  it("appends a check's own devices after the base line (the IGD check's VGA, fw_cfg and trace)", () => {
    const extraArgs = ['-device', 'VGA,bus=pcie.0,addr=02.0', '-trace', 'pci_cfg_write'];
    expect(buildQemuArgs({ ...PLAN, extraArgs })).toEqual([
      '-machine',
      'q35',
      '-accel',
      'tcg',
      ...COMMON_TAIL,
      ...extraArgs,
    ]);
  });

  it('doubles commas in file names (QEMU option syntax)', () => {
    expect(escapeQemuOptionValue('/a,b/c,,d')).toBe('/a,,b/c,,,,d');
    expect(buildQemuArgs({ ...PLAN, codePath: '/in/a,b.fd' })).toContain(
      'if=pflash,format=raw,unit=0,readonly=on,file=/in/a,,b.fd',
    );
  });
});

describe('findQemu', () => {
  it('finds the binary on the given PATH and reports E_BOOT_QEMU_MISSING with what was searched', async () => {
    const directory = await mkdtemp(path.join(os.tmpdir(), 'find-qemu-'));
    try {
      const empty = path.join(directory, 'empty');
      const bin = path.join(directory, 'bin');
      await import('node:fs/promises').then((fs) => Promise.all([fs.mkdir(empty), fs.mkdir(bin)]));
      const error = await findQemu({ env: { PATH: empty } }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(OvmfBuildError);
      expect((error as OvmfBuildError).code).toBe('E_BOOT_QEMU_MISSING');
      expect((error as OvmfBuildError).details).toEqual({ binary: 'qemu-system-x86_64', searched: [empty] });

      const fake = path.join(bin, 'qemu-system-x86_64');
      await writeFile(fake, '#!/bin/sh\n');
      // Not executable yet: still missing.
      await expect(findQemu({ env: { PATH: `${empty}:${bin}` } })).rejects.toMatchObject({
        code: 'E_BOOT_QEMU_MISSING',
      });
      await chmod(fake, 0o755);
      await expect(findQemu({ env: { PATH: `${empty}:${bin}` } })).resolves.toBe(fake);
      await expect(findQemu({ qemuPath: path.join(bin, 'nope') })).rejects.toMatchObject({
        code: 'E_BOOT_QEMU_MISSING',
        details: { qemuPath: path.join(bin, 'nope') },
      });
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });
});
