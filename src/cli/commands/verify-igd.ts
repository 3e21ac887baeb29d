// `ovmf-build verify-igd`: the IGD assignment check of verify/igd-check.ts on the command line,
// with the device, the OpRegion (built around a VBT, or given) and the stolen size as options.
import path from 'node:path';
import { writeJson, writeLine } from '../context.js';
import { defineCommand } from '../command-args.js';
import { EXIT } from '../exit-codes.js';
import { userStateDir } from '../../cache/paths.js';
import { FormatError, UsageError } from '../../core/errors.js';
import { hex } from '../../core/hex.js';
import { buildOpRegion, parseOpRegion, type OpRegionVersion } from '../../formats/opregion.js';
import { lookupDevice, normalizeDeviceId } from '../../igd/device-table.js';
import { loadIgdDeviceTable } from '../../igd/load.js';
import { chooseAccelerator } from '../../verify/accel.js';
import { checkIgdAssignment, type IgdCheckResult } from '../../verify/igd-check.js';
import { findQemu } from '../../verify/qemu.js';
import { requiresSmm } from '../../verify/smm.js';
import {
  integerOption,
  QEMU_CHECK_OPTIONS,
  qemuCheckArgs,
  readCheckInput,
  seconds,
} from './verify-options.js';

const DEFAULT_STOLEN_MIB = 32;

const USAGE = [
  'usage: ovmf-build verify-igd <code.fd> <vars.fd> --device [8086:]XXXX (--vbt <file> | --opregion <file>)',
  '                             [--rom <file>] [--opregion-version 2.0|2.1] [--stolen-mib N]',
  '                             [--smm] [--timeout-ms N] [--accel auto|kvm|tcg] [--kvm-device <path>]',
  '                             [--keep-logs <dir>] [--json]',
  '',
  "Checks the firmware's half of QEMU's IGD assignment without an Intel GPU: boots the OVMF in QEMU",
  'with a display device at 00:02.0 (VGA, bus pcie.0, addr 02.0, optionally with the option ROM),',
  'the OpRegion as fw_cfg etc/igd-opregion, the stolen size as etc/igd-bdsm-size and the device ID',
  'as opt/ovmf-build/igd-device-id, and uses QEMU as the oracle: its pci_cfg_write trace, the',
  'registers read back through the monitor, and the guest memory at ASLS (pmemsave). It passes when',
  'ASLS holds a page-aligned address below 4 GiB whose memory is the OpRegion, BDSM is written at',
  "the device's register (0x5C, 0xC0/0xC4, or not at all from Meteor Lake on) with a 1 MiB aligned,",
  "zeroed stolen range below 4 GiB, and, when the debug console has our drivers' lines, the GOP",
  "policy names the OpRegion's VBT as its source. Stock OVMF plus our ROM is ROM mode.",
  '',
  '  --device <id>             the Intel iGPU to pose as (from containers/igd-devices.json), e.g. 3e9b',
  '  --vbt <file>              build an OpRegion around this VBT (mailbox 4, or RVDA when over 6 KiB)',
  '  --opregion <file>         use this OpRegion as it is (for instance a host dump of i915_opregion)',
  '  --opregion-version <v>    2.1 (default) or 2.0, for --vbt',
  `  --stolen-mib <n>          the stolen-memory size to hand over (default ${DEFAULT_STOLEN_MIB}; 0 leaves the file out)`,
  '  --rom <file>              an option ROM for the device (ROM mode)',
  '  --timeout-ms <n>          hard limit for the boot to reach the boot manager (default 120000)',
  '  --smm                     boot with SMM (smm=on, secure pflash, S3 off); without it, SMM builds',
  '                            (secure boot: the image holds the SMM core) are recognised and booted so',
  '  --accel <a>               auto (default), kvm or tcg, as for verify-boot',
  '  --kvm-device <path>       the KVM device (default /dev/kvm)',
  '  --keep-logs <dir>         keep trace.log, debug.log and serial.log in this directory',
  '  --json                    print the verdict as JSON',
  '',
  'Exit code 0 when it passes, 10 when it does not (E_VERIFY_IGD_*), 6 for an unknown device or a bad VBT.',
].join('\n');

function printHuman(write: (text: string) => void, result: IgdCheckResult, reason: string): void {
  write(
    `${result.passed ? 'PASS' : 'FAIL'}  IGD assignment, ${result.mode} mode, device ${result.deviceId} (${result.platform}), ` +
      `QEMU ${seconds(result.durationMs, '-')} (${result.accelerator})`,
  );
  write(
    `  ASLS            ${result.asls === null ? 'never written' : hex(result.asls)}${result.asls === null ? '' : result.opRegionMatches ? ', memory holds the OpRegion' : ', memory does NOT hold the OpRegion'}`,
  );
  write(
    `  BDSM            ${result.bdsm === null ? 'not written' : `${hex(result.bdsm.value)} at ${hex(result.bdsm.offset)} (${result.bdsm.width}-bit)`}`,
  );
  write(`  VBT source      ${result.vbtSource ?? '(not reported on the debug console)'}`);
  write(
    `  time to ASLS    ${seconds(result.timeToAslsMs, '-')}, to the boot manager ${seconds(result.timeToBootManagerMs, '-')}`,
  );
  write(`  accelerator     ${result.accelerator}: ${reason}`);
  write(`  trace (${result.traceLines.length} IGD register writes):`);
  for (const line of result.traceLines) write(`    ${line}`);
  if (result.debugLines.length > 0) {
    write(`  debug console:`);
    for (const line of result.debugLines) write(`    ${line}`);
  }
  for (const failure of result.failures) write(`  failure: ${failure}`);
  for (const note of result.info) write(`  info: ${note}`);
}

export const command = defineCommand({
  name: 'verify-igd',
  summary: "check in QEMU that a firmware (or stock OVMF with a ROM) does QEMU's IGD assignment",
  usage: USAGE,
  options: {
    ...QEMU_CHECK_OPTIONS,
    device: { type: 'string' },
    vbt: { type: 'string' },
    opregion: { type: 'string' },
    'opregion-version': { type: 'string' },
    'stolen-mib': { type: 'string' },
    rom: { type: 'string' },
    'keep-logs': { type: 'string' },
    smm: { type: 'boolean' },
  },
  async run(ctx, args) {
    const { values } = args;
    const { codePath, varsPath, timeoutMs, accel, kvmDevice } = qemuCheckArgs(ctx, args, USAGE);
    if (values.device === undefined)
      throw new UsageError('--device is required (the Intel device ID to pose as)');
    const deviceText = values.device.replace(/^8086:/iu, '');
    const deviceId = normalizeDeviceId(deviceText);
    if (deviceId === null) {
      throw new UsageError(`--device must be [8086:]XXXX with 1-4 hex digits, got \`${values.device}\``, {
        device: values.device,
      });
    }
    if ((values.vbt === undefined) === (values.opregion === undefined)) {
      throw new UsageError('give exactly one of --vbt and --opregion');
    }
    const version = values['opregion-version'] ?? '2.1';
    if (version !== '2.0' && version !== '2.1') {
      throw new UsageError(`--opregion-version must be 2.0 or 2.1, got \`${version}\``, { version });
    }
    if (values.opregion !== undefined && values['opregion-version'] !== undefined) {
      throw new UsageError('--opregion-version goes with --vbt (an --opregion file carries its own version)');
    }
    const stolenMiB = integerOption('stolen-mib', values['stolen-mib'], true) ?? DEFAULT_STOLEN_MIB;

    const table = await loadIgdDeviceTable();
    const platform = lookupDevice(table, deviceId);
    if (platform === undefined) {
      throw new FormatError(
        'E_INPUT_UNKNOWN_DEVICE',
        `device ${deviceId} is not an Intel iGPU of the device table (containers/igd-devices.json)`,
        { deviceId },
      );
    }
    let opRegion: Uint8Array;
    if (values.vbt !== undefined) {
      const vbt = await readCheckInput(ctx, values.vbt, 'VBT');
      opRegion = buildOpRegion({ vbt, version: version as OpRegionVersion });
    } else {
      opRegion = await readCheckInput(ctx, values.opregion as string, 'OpRegion');
      parseOpRegion(opRegion);
    }
    const env = ctx.env;
    const qemuPath = await findQemu({ env });
    const choice = await chooseAccelerator({
      mode: accel,
      qemuBinary: qemuPath,
      stateDir: userStateDir(env),
      ...(kvmDevice === undefined ? {} : { kvmDevice }),
      signal: ctx.signal,
    });
    // An SMM build booted without SMM stops at an ASSERT in PlatformPei: recognise it (verify/smm.ts).
    const smm = values.smm === true || requiresSmm(await readCheckInput(ctx, codePath, 'OVMF code image'));
    const result = await checkIgdAssignment({
      codePath,
      varsPath,
      smm,
      ...(values.rom === undefined ? {} : { romPath: path.resolve(ctx.cwd, values.rom) }),
      deviceId,
      opRegion,
      bdsmSizeInBytes: stolenMiB * 1_048_576,
      platform,
      accelerator: choice.accelerator,
      ...(timeoutMs === undefined ? {} : { timeoutMs }),
      ...(values['keep-logs'] === undefined
        ? {}
        : { keepLogsIn: path.resolve(ctx.cwd, values['keep-logs']) }),
      qemuPath,
      env,
      signal: ctx.signal,
    });
    if (values.json === true) {
      writeJson(ctx.stdout, { ...result, accel: { accelerator: choice.accelerator, reason: choice.reason } });
    } else {
      printHuman((text) => writeLine(ctx.stdout, text), result, choice.reason);
    }
    return result.passed ? EXIT.ok : EXIT.verification;
  },
});
