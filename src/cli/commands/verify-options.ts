// What `verify-boot` and `verify-igd` share: both boot a <code.fd> <vars.fd> pair in QEMU with
// the same --timeout-ms, --accel, --kvm-device, --json and --help, so the two commands check
// those once, here, and read their input files the same way.
import path from 'node:path';
import type { CommandArgs } from '../command-args.js';
import type { CommandContext } from '../context.js';
import { UsageError } from '../../core/errors.js';
import { readInputFile } from '../../fetch/read-input.js';
import { ACCEL_MODES, isAccelMode, type AccelMode } from '../../verify/accel.js';

/** The options of both commands; each adds its own. */
export const QEMU_CHECK_OPTIONS = {
  'timeout-ms': { type: 'string' },
  accel: { type: 'string' },
  'kvm-device': { type: 'string' },
  json: { type: 'boolean' },
} as const;

/** A non-negative (`allowZero`) or positive decimal integer option, or undefined when not given. */
export function integerOption(name: string, text: string | undefined, allowZero = false): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!/^[0-9]+$/u.test(text) || !Number.isSafeInteger(value) || (!allowZero && value === 0)) {
    throw new UsageError(
      `--${name} must be a ${allowZero ? 'non-negative' : 'positive'} integer, got \`${text}\``,
      { [name]: text },
    );
  }
  return value;
}

export interface QemuCheckArgs {
  /** <code.fd> and <vars.fd>, resolved against the command's cwd. */
  readonly codePath: string;
  readonly varsPath: string;
  readonly timeoutMs: number | undefined;
  readonly accel: AccelMode;
  /** --kvm-device resolved against the cwd, when given. */
  readonly kvmDevice?: string;
}

/**
 * The shared part of a QEMU check's command line, parsed by defineCommand with QEMU_CHECK_OPTIONS
 * among the command's options: exactly two files, and the shared options checked.
 */
export function qemuCheckArgs(
  ctx: CommandContext,
  { values: shared, positionals }: CommandArgs<typeof QEMU_CHECK_OPTIONS>,
  usage: string,
): QemuCheckArgs {
  const [codeArg, varsArg, ...extra] = positionals;
  if (codeArg === undefined || varsArg === undefined || extra.length > 0) {
    throw new UsageError(`expected exactly two files, <code.fd> and <vars.fd>\n${usage}`, { positionals });
  }
  const accel = shared.accel ?? 'auto';
  if (!isAccelMode(accel)) {
    throw new UsageError(`--accel must be ${ACCEL_MODES.join(', ')}, got \`${accel}\``, { accel });
  }
  const kvmDevice = shared['kvm-device'];
  return {
    codePath: path.resolve(ctx.cwd, codeArg),
    varsPath: path.resolve(ctx.cwd, varsArg),
    timeoutMs: integerOption('timeout-ms', shared['timeout-ms']),
    accel,
    ...(kvmDevice === undefined ? {} : { kvmDevice: path.resolve(ctx.cwd, kvmDevice) }),
  };
}

/** Reads an input file of the check (E_INPUT_* naming its role). */
export function readCheckInput(ctx: CommandContext, file: string, role: string): Promise<Uint8Array> {
  return readInputFile(path.resolve(ctx.cwd, file), { what: `the ${role}` });
}

/** `1.2 s`, or `fallback` for a time that was not measured. */
export function seconds(ms: number | null | undefined, fallback: string): string {
  return ms === null || ms === undefined ? fallback : `${(ms / 1000).toFixed(1)} s`;
}
