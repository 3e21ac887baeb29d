// `ovmf-build verify-boot`: boot a built OVMF in QEMU (and optionally check its structure
// first) and print the boot check's verdict; the command line of verify/boot.ts.
import path from 'node:path';
import { writeJson, writeLine } from '../context.js';
import { defineCommand } from '../command-args.js';
import { EXIT } from '../exit-codes.js';
import { UsageError } from '../../core/errors.js';
import { isGuidString } from '../../core/guid.js';
import { verifyBoot, type BootVerification } from '../../verify/boot.js';
import { DEFAULT_GOP_FILE_GUID, DEFAULT_POLICY_FILE_GUID } from '../../verify/guids.js';
import { verifyStructure, type StructureReport } from '../../verify/structural.js';
import { requiresSmm } from '../../verify/smm.js';
import { QEMU_CHECK_OPTIONS, qemuCheckArgs, readCheckInput, seconds } from './verify-options.js';

const USAGE = [
  'usage: ovmf-build verify-boot <code.fd> <vars.fd> [--gop-guid G] [--policy-guid G] [--machine q35|i440fx]',
  '                              [--smm] [--timeout-ms N] [--gop <file> --vbt <file>] [--log <file>]',
  '                              [--accel auto|kvm|tcg] [--kvm-device <path>] [--json]',
  '',
  'Boots a DEBUG OVMF in QEMU with the code image read-only and a copy of the variable store, and',
  'passes when the debug log (port 0x402) shows the DXE dispatcher loading the GOP driver and the',
  'policy driver and the boot reaching BDS. QEMU stops right after BDS. A RELEASE build prints no',
  'debug log and fails with E_BOOT_NO_DEBUG_OUTPUT.',
  '',
  `  --gop-guid <G>      FILE_GUID of the GOP driver (default ${DEFAULT_GOP_FILE_GUID})`,
  `  --policy-guid <G>   FILE_GUID of the GOP policy driver (default ${DEFAULT_POLICY_FILE_GUID})`,
  '  --machine <m>       q35 (default) or i440fx',
  '  --smm               boot with SMM (smm=on, secure pflash); without it, SMM builds (secure boot:',
  '                      the image holds the SMM core) are recognised and booted so',
  '  --timeout-ms <n>    hard limit for the boot (default 120000)',
  '  --gop <file>        also check structurally that the IGD (else DXE) volume holds exactly this GOP driver ...',
  '  --vbt <file>        ... and this VBT (both needed), before booting',
  '  --log <file>        keep the debug log here',
  '  --accel <a>         auto (default): KVM if the device opens and KVM ran a probe firmware (verdict',
  '                      kept per QEMU and kernel in the state dir), else TCG; a KVM failure during the',
  '                      boot retries under TCG at once. kvm or tcg force one (a failing KVM: exit 10)',
  '  --kvm-device <path> the KVM device (default /dev/kvm)',
  '  --json              print the verdict as JSON',
  '',
  'Exit code 0 when it passes, 10 when it does not (E_BOOT_*, E_VERIFY_*).',
].join('\n');

function guidOption(name: string, value: string | undefined, fallback: string): string {
  if (value === undefined) return fallback;
  if (!isGuidString(value))
    throw new UsageError(`--${name} must be a GUID, got \`${value}\``, { [name]: value });
  return value.toUpperCase();
}

function printHuman(
  write: (text: string) => void,
  result: BootVerification,
  guids: { gop: string; policy: string },
  structure: StructureReport | undefined,
): void {
  const accel = result.accel.accelerator;
  write(
    `${result.passed ? 'PASS' : 'FAIL'}  ${result.reachedBds ? `reached BDS in ${seconds(result.timeToBdsMs, '?')}` : 'did not reach BDS'}` +
      ` (QEMU ran ${seconds(result.durationMs, '?')}, ${accel}, log from ${result.logSource})`,
  );
  if (structure !== undefined) {
    write(
      `  structure       GOP ${structure.gop.sha256.slice(0, 16)}.. and VBT ${structure.vbt.sha256.slice(0, 16)}.. in ${(structure.igdVolume ?? structure.dxeVolume).name}`,
    );
  }
  const position = (guid: string): string => {
    const index = result.loadedDrivers.indexOf(guid);
    return index < 0 ? 'NOT loaded' : `loaded (#${index + 1} of ${result.loadedDrivers.length})`;
  };
  write(`  GOP driver      ${guids.gop} ${position(guids.gop)}`);
  write(`  policy driver   ${guids.policy} ${position(guids.policy)}`);
  const vbt = result.summary.policyVbt;
  if (vbt?.found === true)
    write(`  VBT             ${vbt.sizeInBytes} bytes, signature "${vbt.signature.trimEnd()}"`);
  for (const failure of result.failures) write(`  failure: ${failure}`);
  for (const note of result.info.filter((text) => !text.startsWith('policy driver: VBT found')))
    write(`  info: ${note}`);
  write(`  drivers loaded in order (${result.loadedDrivers.length}):`);
  result.summary.loadedDrivers.forEach((driver, index) => {
    write(
      `    ${String(index + 1).padStart(3)}  ${driver.guid}${driver.name === undefined ? '' : `  ${driver.name}`}`,
    );
  });
  write(`  accelerator     ${result.accel.accelerator}: ${result.accel.reason}`);
  if (result.logPath !== undefined) write(`  debug log kept at ${result.logPath}`);
}

export const command = defineCommand({
  name: 'verify-boot',
  summary: 'boot an OVMF in QEMU and check the GOP and policy drivers load',
  usage: USAGE,
  options: {
    ...QEMU_CHECK_OPTIONS,
    'gop-guid': { type: 'string' },
    'policy-guid': { type: 'string' },
    machine: { type: 'string' },
    smm: { type: 'boolean' },
    gop: { type: 'string' },
    vbt: { type: 'string' },
    log: { type: 'string' },
  },
  async run(ctx, args) {
    const { values } = args;
    const { codePath, varsPath, timeoutMs, accel, kvmDevice } = qemuCheckArgs(ctx, args, USAGE);
    const gop = guidOption('gop-guid', values['gop-guid'], DEFAULT_GOP_FILE_GUID);
    const policy = guidOption('policy-guid', values['policy-guid'], DEFAULT_POLICY_FILE_GUID);
    const machine = values.machine ?? 'q35';
    if (machine !== 'q35' && machine !== 'i440fx') {
      throw new UsageError(`--machine must be q35 or i440fx, got \`${machine}\``, { machine });
    }
    if ((values.gop === undefined) !== (values.vbt === undefined)) {
      throw new UsageError('--gop and --vbt go together: the structural check needs both');
    }
    // Read once: the SMM check and the structural check both look at it.
    const code = await readCheckInput(ctx, codePath, 'OVMF code image');
    // An SMM build booted without SMM stops at an ASSERT in PlatformPei: recognise it (verify/smm.ts).
    const smm = values.smm === true || requiresSmm(code);
    if (smm && machine !== 'q35') {
      throw new UsageError(
        values.smm === true
          ? '--smm needs --machine q35'
          : 'the image is an SMM build (it holds the SMM core), which QEMU emulates only on q35; use --machine q35',
        { machine },
      );
    }

    let structure: StructureReport | undefined;
    if (values.gop !== undefined && values.vbt !== undefined) {
      structure = verifyStructure({
        code,
        gop: await readCheckInput(ctx, values.gop, 'GOP driver'),
        vbt: await readCheckInput(ctx, values.vbt, 'VBT'),
        gopFileGuid: gop,
        policyFileGuid: policy,
      });
    }

    const result = await verifyBoot({
      codePath,
      varsPath,
      gopFileGuid: gop,
      policyFileGuid: policy,
      machine,
      smm,
      ...(timeoutMs === undefined ? {} : { timeoutMs }),
      ...(structure === undefined ? {} : { vbtSizeInBytes: structure.vbt.sizeInBytes }),
      ...(values.log === undefined ? {} : { logPath: path.resolve(ctx.cwd, values.log) }),
      accel,
      ...(kvmDevice === undefined ? {} : { kvmDevice }),
      env: ctx.env,
      signal: ctx.signal,
    });
    if (values.json === true) {
      writeJson(ctx.stdout, {
        passed: result.passed,
        durationMs: result.durationMs,
        timeToBdsMs: result.timeToBdsMs ?? null,
        reachedBds: result.reachedBds,
        gopFileGuid: gop,
        policyFileGuid: policy,
        loadedDrivers: result.loadedDrivers,
        failures: result.failures,
        info: result.info,
        policyVbt: result.summary.policyVbt ?? null,
        logSource: result.logSource,
        logPath: result.logPath ?? null,
        structure: structure ?? null,
        qemu: result.qemu,
        accel: result.accel,
      });
    } else {
      printHuman((text) => writeLine(ctx.stdout, text), result, { gop, policy }, structure);
    }
    return result.passed ? EXIT.ok : EXIT.verification;
  },
});
