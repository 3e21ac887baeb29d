import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  checkKvmDevice,
  chooseAccelerator,
  findKvmFailure,
  KVM_NO_SMM,
  kvmProbeFirmware,
  KVM_PROBE_MARKER,
  KVM_VERDICT_FILE,
  readKvmVerdict,
  writeKvmVerdict,
  type KvmVerdict,
} from './accel.js';
import type { SpawnProcess } from './qemu-process.js';
import { onBootKvmFailure, type BootCheckSetup } from './boot.js';

/**
 * What QEMU 7.2 printed on stderr on the CI hosts whose KVM cannot run OVMF (issue 8):
 * kvm_handle_internal_error, then cpu_dump_state with the vCPU stopped in SEC at an fninit.
 */
const KVM_EMULATION_FAILURE_STDERR = [
  'KVM internal error. Suberror: 1',
  'extra data[0]: 0x0000000000000001',
  'extra data[1]: 0x000000000000db0f',
  'extra data[2]: 0x0000000000000000',
  'extra data[3]: 0x0000000000000000',
  'emulation failure',
  'RAX=0000000000000000 RBX=0000000000000000 RCX=000000000081fd00 RDX=0000000000000000',
  'RSI=000000000081fd00 RDI=0000000000000000 RBP=000000000081fce0 RSP=000000000081fcb8',
  'RIP=00000000fffcd8e8 RFL=00010002 [-------] CPL=0 II=0 A20=1 SMM=0 HLT=0',
  'ES =0008 0000000000000000 ffffffff 00c09300 DPL=0 DS   [-WA]',
  'CS =0018 0000000000000000 ffffffff 00a09b00 DPL=0 CS64 [-RA]',
  'EFER=0000000000000500',
  'Code=00 00 00 c3 cc cc cc cc cc cc cc cc cc cc cc cc cc cc cc cc <db> e3 c3 cc cc cc cc',
  '',
].join('\n');

/**
 * What QEMU 7.2 printed on 2026-12-02 on a host (kernel 6.18) whose KVM ran FNINIT alone and
 * stopped OVMF's SEC at the FWAIT of `finit` (instruction bytes 9b db e3 d9 2d ..., 32-bit SEC).
 */
const KVM_FWAIT_FAILURE_STDERR = [
  "qemu-system-x86_64: warning: host doesn't support requested feature: CPUID.01H:ECX.pni [bit 0]",
  'KVM internal error. Suberror: 1',
  'extra data[0]: 0x0000000000000001',
  'extra data[1]: 0xed742dd9e3db9b0f',
  'extra data[2]: 0x0f00000001b8fffc',
  'extra data[3]: 0x0000000000001000',
  'emulation failure',
  'EAX=00000000 EBX=00807000 ECX=00000001 EDX=00807154',
  'EIP=fffced45 EFL=00000046 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=0',
  '',
].join('\n');

let work: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'accel-unit-'));
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('findKvmFailure', () => {
  it('names the emulation failure in real QEMU stderr of a KVM that cannot run OVMF', () => {
    expect(findKvmFailure(KVM_EMULATION_FAILURE_STDERR)).toBe('emulation failure');
    expect(findKvmFailure(KVM_FWAIT_FAILURE_STDERR)).toBe('emulation failure');
    // Read before QEMU printed the "emulation failure" line: the same reason.
    expect(findKvmFailure('KVM internal error. Suberror: 1\nextra data[0]: 0x0000000000000001\n')).toBe(
      'emulation failure',
    );
    // Other suberrors (KVM_INTERNAL_ERROR_SIMUL_EX = 2) print no "emulation failure" line.
    expect(findKvmFailure('KVM internal error. Suberror: 2\nextra data[0]: 0x80000b0e\n')).toBe(
      'KVM internal error, suberror 2',
    );
  });

  it('names KVM init and run failures, as QEMU prints them', () => {
    // QEMU 7.2 on a machine without /dev/kvm (this one), given -accel kvm.
    expect(
      findKvmFailure(
        'Could not access KVM kernel module: No such file or directory\n' +
          'qemu-system-x86_64: -accel kvm: failed to initialize kvm: No such file or directory\n',
      ),
    ).toBe('could not access the KVM kernel module: No such file or directory');
    expect(
      findKvmFailure('qemu-system-x86_64: -accel kvm: failed to initialize kvm: Permission denied\n'),
    ).toBe('failed to initialize kvm: Permission denied');
    expect(findKvmFailure('KVM: entry failed, hardware error 0x80000021\n\nIf you are')).toBe(
      'KVM entry failed, hardware error 0x80000021',
    );
    expect(findKvmFailure('error: kvm run failed Bad address\n')).toBe('kvm run failed: Bad address');
    // QEMU 7.2 with smm=on on the 2026-12-02 host: the whole stderr, then exit 1.
    expect(
      findKvmFailure(
        "qemu-system-x86_64: warning: host doesn't support requested feature: CPUID.01H:ECX.pni [bit 0]\n" +
          'qemu-system-x86_64: System Management Mode not supported by this hypervisor.\n',
      ),
    ).toBe(KVM_NO_SMM);
  });

  it('is silent on stderr without a KVM failure', () => {
    expect(findKvmFailure('')).toBeUndefined();
    expect(
      findKvmFailure(
        'qemu-system-x86_64: -fw_cfg name=etc/igd-opregion,file=x: warning: externally provided fw_cfg item names should be prefixed with "opt/"\n',
      ),
    ).toBeUndefined();
    expect(findKvmFailure('qemu-system-x86_64: could not load PC BIOS\n')).toBeUndefined();
  });
});

describe('checkKvmDevice', () => {
  it('a missing path, a directory and a regular file (even readable) cannot be the KVM device', async () => {
    const missing = path.join(work, 'no-such-kvm');
    await expect(checkKvmDevice(missing)).resolves.toEqual({ usable: false, reason: `no ${missing}` });
    const directory = path.join(work, 'dir-kvm');
    await mkdir(directory);
    await expect(checkKvmDevice(directory)).resolves.toEqual({
      usable: false,
      reason: `cannot open ${directory}: EISDIR`,
    });
    const locked = path.join(work, 'locked-kvm');
    await writeFile(locked, '');
    await chmod(locked, 0o000);
    const lockedCheck = await checkKvmDevice(locked);
    // root opens a mode-000 file anyway; it is still no character device.
    expect(lockedCheck).toEqual({
      usable: false,
      reason:
        process.getuid?.() === 0 ? `${locked} is not a character device` : `cannot open ${locked}: EACCES`,
    });
  });

  it('a character device that opens read-write passes the device check', async () => {
    await expect(checkKvmDevice('/dev/null')).resolves.toEqual({ usable: true });
  });
});

describe('kvmProbeFirmware', () => {
  it("enters through SEC's first instructions (finit, fldcw) at 0x80, jumps to the tiny firmware at 0, and carries the marker", () => {
    const image = kvmProbeFirmware();
    expect(image.length).toBe(0x1_0000);
    // Reset vector 0xfff0: E9 rel16, relative to 0xfff3, wrapping in the 64 KiB segment.
    expect([...image.subarray(0xfff0, 0xfff3)]).toEqual([0xe9, 0x8d, 0x00]);
    expect((0xfff3 + 0x008d) & 0xffff).toBe(0x80);
    // 0x80: finit (9b db e3); fldcw cs:[0x00f0] (2e d9 2e f0 00); jmp 0x0000 (rel16 from 0x8b).
    expect([...image.subarray(0x80, 0x8b)]).toEqual([
      0x9b, 0xdb, 0xe3, 0x2e, 0xd9, 0x2e, 0xf0, 0x00, 0xe9, 0x75, 0xff,
    ]);
    expect((0x8b + 0xff75) & 0xffff).toBe(0x0000);
    // The control word SEC loads (mFpuControlWord).
    expect([...image.subarray(0xf0, 0xf2)]).toEqual([0x7f, 0x02]);
    // The tiny firmware's program (cld; mov si, 0x100; mov dx, 0x402) and text are untouched.
    expect([...image.subarray(0, 7)]).toEqual([0xfc, 0xbe, 0x00, 0x01, 0xba, 0x02, 0x04]);
    expect(Buffer.from(image.subarray(0x100, 0x100 + KVM_PROBE_MARKER.length + 1)).toString('latin1')).toBe(
      `${KVM_PROBE_MARKER}\n`,
    );
  });
});

describe('the verdict file', () => {
  const verdict: KvmVerdict = {
    formatVersion: 1,
    key: {
      qemuBinary: '/usr/bin/qemu-system-x86_64',
      qemuVersion: 'QEMU emulator version 7.2.22',
      kernelRelease: '6.1.0-28-amd64',
      kvmDevice: '/dev/kvm',
    },
    binary: { sizeInBytes: 1, mtimeMs: 2, inode: 3 },
    kvmWorks: false,
    reason: 'emulation failure',
    from: 'probe',
    probedAt: '2026-12-02T01:00:00.000Z',
    probeMs: 412,
  };

  it('is written atomically (no temp file left) and read back as written', async () => {
    const stateDir = path.join(work, 'state', 'nested');
    await writeKvmVerdict(stateDir, verdict);
    expect(await readdir(stateDir)).toEqual([KVM_VERDICT_FILE]);
    expect(JSON.parse(await readFile(path.join(stateDir, KVM_VERDICT_FILE), 'utf8'))).toEqual(verdict);
    await expect(readKvmVerdict(stateDir)).resolves.toEqual(verdict);
  });

  it('a missing, corrupt or foreign file is no verdict (the probe runs again)', async () => {
    const stateDir = path.join(work, 'state-bad');
    await expect(readKvmVerdict(stateDir)).resolves.toBeUndefined();
    await mkdir(stateDir);
    for (const text of ['{', 'null', '[]', JSON.stringify({ ...verdict, formatVersion: 2 })]) {
      await writeFile(path.join(stateDir, KVM_VERDICT_FILE), text);
      await expect(readKvmVerdict(stateDir)).resolves.toBeUndefined();
    }
    const { binary: _binary, ...withoutBinary } = verdict;
    await writeFile(path.join(stateDir, KVM_VERDICT_FILE), JSON.stringify(withoutBinary));
    await expect(readKvmVerdict(stateDir)).resolves.toBeUndefined();
  });
});

describe('chooseAccelerator without a usable KVM device', () => {
  const starts: string[][] = [];
  const counting: SpawnProcess = (file, args) => {
    starts.push([file, ...args]);
    throw new Error('no process may be started here');
  };

  it('TCG with the reason, no QEMU started, no verdict written; --accel kvm is E_BOOT_KVM_UNAVAILABLE', async () => {
    const stateDir = path.join(work, 'state-nodev');
    const missing = path.join(work, 'missing-kvm');
    const common = { qemuBinary: '/usr/bin/qemu-system-x86_64', stateDir, spawnProcess: counting };
    await expect(chooseAccelerator({ ...common, kvmDevice: missing })).resolves.toEqual({
      accelerator: 'tcg',
      reason: `no ${missing}`,
    });
    await expect(chooseAccelerator({ ...common, kvmDevice: work })).resolves.toEqual({
      accelerator: 'tcg',
      reason: `cannot open ${work}: EISDIR`,
    });
    await expect(chooseAccelerator({ ...common, mode: 'tcg', kvmDevice: '/dev/null' })).resolves.toEqual({
      accelerator: 'tcg',
      reason: 'forced by --accel tcg',
    });
    await expect(chooseAccelerator({ ...common, mode: 'kvm', kvmDevice: missing })).rejects.toMatchObject({
      code: 'E_BOOT_KVM_UNAVAILABLE',
      message: `--accel kvm, but KVM cannot be used: no ${missing}; use --accel auto or --accel tcg`,
      details: { kvmDevice: missing, reason: `no ${missing}` },
    });
    await expect(chooseAccelerator({ ...common, mode: 'kvm', kvmDevice: '/dev/null' })).resolves.toEqual({
      accelerator: 'kvm',
      reason: 'forced by --accel kvm',
    });
    await expect(
      chooseAccelerator({ ...common, mode: 'fast' as 'auto', kvmDevice: missing }),
    ).rejects.toThrow(TypeError);
    expect(starts).toEqual([]);
    await expect(readdir(stateDir)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe("the boot check's KVM failure handler (boot.ts onBootKvmFailure)", () => {
  /** A setup as prepareBootCheck leaves it in auto mode after a passed probe; `stateDir` its own. */
  const setupIn = async (stateDir: string): Promise<BootCheckSetup> => ({
    binary: process.execPath,
    settings: {
      timeoutMs: 1,
      bdsGraceMs: 1,
      noDebugOutputMs: 1,
      pollIntervalMs: 1,
      maxLogBytes: 1,
      kvmNoOutputMs: 1,
    },
    mode: 'auto',
    choice: {
      accelerator: 'kvm',
      reason: 'kvm probe passed',
      verdictKey: {
        // Any existing file serves as the binary: the verdict records its identity.
        qemuBinary: process.execPath,
        qemuVersion: 'QEMU emulator version 7.2.22',
        kernelRelease: os.release(),
        kvmDevice: '/dev/kvm',
      },
    },
    stateDir,
    expected: [],
    machine: 'q35',
    smm: true,
    memoryMiB: 512,
  });
  const first = { durationMs: 12, stderr: '', args: [] };

  it('records a KVM that failed a boot, so later boots go straight to TCG', async () => {
    const stateDir = path.join(work, 'kvm-failure-recorded');
    await onBootKvmFailure(await setupIn(stateDir), undefined)('emulation failure', first);
    expect(await readKvmVerdict(stateDir)).toMatchObject({
      kvmWorks: false,
      reason: 'emulation failure',
      from: 'boot-check',
    });
  });

  it('records nothing for a KVM without SMM: that boot alone runs under TCG', async () => {
    const stateDir = path.join(work, 'kvm-no-smm');
    await onBootKvmFailure(await setupIn(stateDir), undefined)(KVM_NO_SMM, first);
    await expect(readdir(stateDir)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('a forced KVM is E_BOOT_KVM_FAILED, recorded nowhere', async () => {
    const stateDir = path.join(work, 'kvm-forced');
    const setup = { ...(await setupIn(stateDir)), mode: 'kvm' as const };
    await expect(onBootKvmFailure(setup, undefined)(KVM_NO_SMM, first)).rejects.toMatchObject({
      code: 'E_BOOT_KVM_FAILED',
      details: { reason: KVM_NO_SMM },
    });
    await expect(readdir(stateDir)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
