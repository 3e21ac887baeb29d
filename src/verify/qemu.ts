// How ovmf-build starts QEMU to boot an OVMF: finding the binary, checking the firmware files
// it is given, and the one base command line the boot check, the KVM probe and the IGD check
// share. The flags follow OvmfPkg/README ("pflash" setup, SMM builds) and the QEMU 7.2
// manual; the debug console on I/O port 0x402 is where OvmfPkg's PlatformDebugLibIoPort
// writes DEBUG() output.
import { constants as fsConstants } from 'node:fs';
import { access, chmod, copyFile } from 'node:fs/promises';
import path from 'node:path';
import { InputError } from '../core/errors.js';
import { VerificationError } from './errors.js';

export type QemuMachine = 'q35' | 'i440fx';
export type QemuAccelerator = 'kvm' | 'tcg';

export const QEMU_BINARY = 'qemu-system-x86_64';

export interface QemuBootPlan {
  /** OVMF_CODE.fd, attached read-only as pflash unit 0. */
  readonly codePath: string;
  /** A private, writable copy of OVMF_VARS.fd (pflash unit 1); never the caller's file. */
  readonly varsPath: string;
  /** Where the debug console (port 0x402) is written. */
  readonly debugLogPath: string;
  /** Where the serial console is written (RELEASE builds still print BdsDxe lines there). */
  readonly serialLogPath: string;
  readonly machine: QemuMachine;
  /** SMM_REQUIRE builds: `smm=on` and secure pflash. */
  readonly smm: boolean;
  /**
   * One accelerator per QEMU process: with `-accel kvm -accel tcg` QEMU falls back only when
   * KVM fails to initialise, not when KVM opens and then stops the vCPU (accel.ts).
   */
  readonly accelerator: QemuAccelerator;
  readonly memoryMiB: number;
  /** Devices, fw_cfg files, tracing and monitor of a particular check, after the base line. */
  readonly extraArgs?: readonly string[];
}

/** QEMU's option parser splits on `,`; a literal comma in a value is written `,,`. */
export function escapeQemuOptionValue(value: string): string {
  return value.replaceAll(',', ',,');
}

/** The complete argument list (without the binary) for a headless, disk-less, network-less boot. */
export function buildQemuArgs(plan: QemuBootPlan): string[] {
  if (plan.smm && plan.machine !== 'q35') {
    throw new TypeError(`Expected \`machine\` to be \`q35\` for an SMM build, got \`${plan.machine}\``);
  }
  if (plan.accelerator !== 'kvm' && plan.accelerator !== 'tcg') {
    throw new TypeError(
      `Expected \`accelerator\` to be \`kvm\` or \`tcg\`, got \`${String(plan.accelerator)}\``,
    );
  }
  const machine = plan.machine === 'q35' ? 'q35' : 'pc';
  const args = ['-machine', plan.smm ? `${machine},smm=on` : machine];
  args.push('-accel', plan.accelerator);
  if (plan.smm) {
    // OvmfPkg/README "SMM support": the varstore flash must only be writable from SMM.
    args.push('-global', 'driver=cfi.pflash01,property=secure,value=on');
    // OvmfPkg/README "SMM support": an X64 SMM build cannot resume from S3 and its PlatformPei
    // ASSERTs when QEMU offers S3 (S3Verification), so S3 is switched off on the ICH9 LPC.
    args.push('-global', 'ICH9-LPC.disable_s3=1');
  }
  // verify/qemu.test.ts spells this list out again on purpose (COMMON_TAIL): the exact argv is what it pins.
  args.push(
    '-m',
    String(plan.memoryMiB),
    '-nographic',
    '-nodefaults',
    '-display',
    'none',
    '-monitor',
    'none',
    '-net',
    'none',
    // A guest reset before BDS (triple fault, failed ASSERT with reset) ends QEMU
    // instead of looping until the timeout.
    '-no-reboot',
    '-drive',
    `if=pflash,format=raw,unit=0,readonly=on,file=${escapeQemuOptionValue(plan.codePath)}`,
    '-drive',
    `if=pflash,format=raw,unit=1,file=${escapeQemuOptionValue(plan.varsPath)}`,
    '-debugcon',
    `file:${plan.debugLogPath}`,
    '-global',
    'isa-debugcon.iobase=0x402',
    '-serial',
    `file:${plan.serialLogPath}`,
    ...(plan.extraArgs ?? []),
  );
  return args;
}

/** p-queue style argument check of numeric options that must be positive when given. */
export function checkPositiveOptions(options: Readonly<Record<string, number | undefined>>): void {
  for (const [name, value] of Object.entries(options)) {
    if (value !== undefined && (!Number.isFinite(value) || value <= 0)) {
      throw new TypeError(`Expected \`${name}\` to be a positive number, got \`${String(value)}\``);
    }
  }
}

/** E_INPUT_NOT_FOUND naming the role (`OVMF code image`, `option ROM`) of a file QEMU cannot read. */
export async function checkReadableInput(file: string, role: string): Promise<void> {
  try {
    await access(file, fsConstants.R_OK);
  } catch (error) {
    throw new InputError(
      'E_INPUT_NOT_FOUND',
      `${role} ${file} does not exist or cannot be read`,
      { path: file },
      { cause: error },
    );
  }
}

/**
 * A private copy of OVMF_VARS.fd for pflash unit 1: QEMU writes to it, and the copy of a
 * read-only input (as in the corpus) must be writable.
 */
export async function copyVarsStore(varsPath: string, target: string): Promise<void> {
  await copyFile(varsPath, target);
  await chmod(target, 0o600);
}

export interface FindQemuOptions {
  /** An explicit binary; when set, PATH is not searched. */
  readonly qemuPath?: string | undefined;
  /** Environment whose PATH is searched. @default process.env */
  readonly env?: NodeJS.ProcessEnv;
}

async function isExecutable(file: string): Promise<boolean> {
  try {
    await access(file, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The absolute path of qemu-system-x86_64: `qemuPath` if given, else the first match on
 * PATH. Throws E_BOOT_QEMU_MISSING naming what was searched.
 */
export async function findQemu(options: FindQemuOptions = {}): Promise<string> {
  if (options.qemuPath !== undefined) {
    if (await isExecutable(options.qemuPath)) return path.resolve(options.qemuPath);
    throw new VerificationError(
      'E_BOOT_QEMU_MISSING',
      `QEMU binary ${options.qemuPath} does not exist or is not executable`,
      {
        qemuPath: options.qemuPath,
      },
    );
  }
  const searchPath = (options.env ?? process.env)['PATH'] ?? '';
  const directories = searchPath.split(path.delimiter).filter((entry) => entry.length > 0);
  for (const directory of directories) {
    const candidate = path.join(directory, QEMU_BINARY);
    if (await isExecutable(candidate)) return candidate;
  }
  throw new VerificationError(
    'E_BOOT_QEMU_MISSING',
    `${QEMU_BINARY} was not found on PATH; install qemu-system-x86 (Debian) to verify by booting`,
    { binary: QEMU_BINARY, searched: directories },
  );
}
