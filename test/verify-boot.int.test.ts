// End to end: a really built DEBUG OVMF (EDK2 in a container, through buildOvmf) with a
// corpus GOP and VBT is verified structurally by our parser and by booting it in QEMU (TCG),
// through the library and through `ovmf-build verify-boot`.
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.js';
import type { ContainerEngine } from '../src/container/index.js';
import { sha256 } from '../src/core/digest.js';
import { listFiles, parseFirmware } from '../src/formats/firmware-tree.js';
import { verifyBoot, type BootVerification } from '../src/verify/boot.js';
import { VerificationError } from '../src/verify/errors.js';
import {
  DEFAULT_GOP_FILE_GUID,
  DEFAULT_POLICY_FILE_GUID,
  DEFAULT_VBT_FILE_GUID,
} from '../src/verify/guids.js';
import { DXE_CORE_FILE_GUID, verifyStructure } from '../src/verify/structural.js';
import { corpusPath, readCorpus } from './corpus.js';
import { buildFromWorkspace, edk2Source, testEngine, warmWorkspace } from './harness.js';

const GOP_FILE = 'gop/cometlake-mrchromebox-cml.efi';
const GOP_SHA256 = '4593b31bcac5161697038d93fa83dc689e68d445accfe2fa5d35aaae23729517';
const VBT_FILE = 'vbt/cometlake-intel-nuc10i5fnh.vbt';
const GOP = DEFAULT_GOP_FILE_GUID;
const POLICY = DEFAULT_POLICY_FILE_GUID;
/** PI spec vol. 3, 2.1.4.1: EFI_FV_FILETYPE_DRIVER. */
const EFI_FV_FILETYPE_DRIVER = 0x07;

/**
 * FILE_GUIDs the DXE dispatcher loads, in order, for OvmfPkgX64 DEBUG (default flags: 4MB,
 * network) from Debian's edk2 2022.11 with OvmfGopPkg, booted on q35 and i440fx alike
 * (captured from a real boot; builds are reproducible, so the order is too). Our policy
 * IgdAssignmentDxe is #21 and our policy driver #22; the GOP driver, a UEFI_DRIVER without depex, is dispatched last.
 */
const EXPECTED_DXE_DISPATCH_ORDER: readonly string[] = [
  '9B680FCE-AD6B-4F3A-B60B-F59899003443',
  '80CF7257-87AB-47F9-A3FE-D50B76D89541',
  '2EC9DA37-EE35-4DE9-86C5-6D9A81DC38A7',
  'E750224E-7BCE-40AF-B5BB-47E3611EB5C2',
  '733CBAC2-B23F-4B92-BC8E-FB01CE5907B7',
  'D93CE3D8-A7EB-4730-8C8E-CC466A9ECC3C',
  'B601F8C4-43B7-4784-95B1-F4226CB40CEE',
  'F80697E9-7FD6-4665-8646-88E33EF71DFC',
  '13AC6DD0-73D0-11D4-B06B-00AA00BD6DE7',
  'A19B1FE7-C1BC-49F8-875F-54A5D542443F',
  '1A1E4886-9517-440E-9FDE-3BE44CEE2136',
  'F6697AC4-A776-4EE1-B643-1FEFF2B615BB',
  '11A6EDF6-A9BE-426D-A6CC-B22FE51D9224',
  '4B28E4C7-FF36-4E10-93CF-A82159E777C5',
  'C8339973-A563-4561-B858-D8476F9DEFC4',
  '348C4D62-BFBD-4882-9ECE-C80BB1C4783B',
  '96B5C032-DF4C-4B6E-8232-438DCF448D0E',
  '9622E42C-8E38-4A08-9E8F-54F784652F6B',
  'BDCE85BB-FBAA-4F4E-9264-501A2C249581',
  'A210F973-229D-4F4D-AA37-9895E6C9EABA',
  '283B2335-ABD8-4B75-A8AA-004177A20A4B',
  '6FE0ECC8-FDFF-490E-A0C6-B60B3A8E98A2',
  '8657015B-EA43-440D-949A-AF3BE365C0FC',
  '22DC2B60-FE40-42AC-B01F-3AB1FAD9AAD8',
  'CBD2E4D5-7068-4FF5-B462-9822B4AD8D60',
  '6C2004EF-4E0E-4BE4-B14C-340EB4AA5891',
  '52FE8196-F9DE-4D07-B22F-51F77A0E7C41',
  '128FB770-5E79-4176-9E51-9BB268A17DD1',
  'EBF342FE-B1D3-4EF8-957C-8048606FF671',
  'F9D88642-0737-49BC-81B5-6889CD57D9EA',
  '17985E6F-E778-4D94-AEFA-C5DD2B77E186',
  'FA20568B-548B-4B2B-81EF-1BA08D4A3CEC',
  'A487A478-51EF-48AA-8794-7BEE2A0562F1',
  '19618BCE-55AE-09C6-37E9-4CE04084C7A1',
  '2F30DA26-F51B-4B6F-85C4-31873C281BCA',
  'F74D20EE-37E7-48FC-97F7-9B1047749C69',
  'DCE1B094-7DC6-45D0-9FDD-D7FC3CC3E4EF',
  'FE5CEA76-4F72-49E8-986F-2CD899DFFE5D',
  '378D7B65-8DA9-4773-B6E4-A47826A833E1',
  'F099D67F-71AE-4C36-B2A3-DCEB0EB2B7D8',
  'AD608272-D07F-4964-801E-7BD3B7888652',
  '42857F0A-13F2-4B21-8A23-53D3F714B840',
  'EBF8ED7C-0DD1-4787-84F1-F48D537DCACF',
  '6D33944A-EC75-4855-A54D-809C75241F6C',
  '28A03FF4-12B3-4305-A417-BB1A4F94081E',
  'E660EA85-058E-4B55-A54B-F02F83A24707',
  '4110465D-5FF3-4F4B-B580-24ED0D06747A',
  'D9DCC5DF-4007-435E-9098-8970935504B2',
  '93B80004-9FB3-11D4-9A3A-0090273FC14D',
  '83DD3B39-7CAF-4FAC-A542-E050B767E3A7',
  '0170F60C-1D40-4651-956D-F0BD9879D527',
  '11D92DFB-3CA9-4F93-BA2E-4780ED3E03B5',
  'FAB5D4F4-83C0-4AAF-8480-442D11DF6CEA',
  '58E26F0D-CBAC-4BBA-B70F-18221415665A',
  '51CCF399-4FDF-4E55-A45B-E123F84D456A',
  '408EDCEC-CF6D-477C-A5A8-B4844E3DE281',
  'CCCB0C28-4B24-11D5-9A5A-0090273FC14D',
  '9E863906-A40F-4875-977F-5B93FF237FC6',
  '806040CA-DAD9-4978-A3B4-2D2AB0C8A48F',
  '6B38F7B4-AD98-40E9-9093-ACA2B5A253C4',
  '1FA1F39E-FEFF-4AAE-BD7B-38A070A3B609',
  'CD3BAFB6-50FB-4FE8-8E4E-AB74D2C1A600',
  '0167CCC4-D0F7-4F21-A3EF-9E64B7CDCE8B',
  '0A66E322-3740-4CCE-AD62-BD172CECCA35',
  '021722D8-522B-4079-852A-FE44C2C13F49',
  '5E523CB4-D397-4986-87BD-A6DD8B22F455',
  '19DF145A-B1D4-453F-8507-38816676D7F6',
  '5BE3BDF4-53CF-46A3-A6A9-73C34A6E5EE3',
  '864E1CA8-85EB-4D63-9DCC-6E0FC90FFD55',
  'E2775B47-D453-4EE3-ADA7-391A1B05AC17',
  'C4D1F932-821F-4744-BF06-6D30F7730F8D',
  'B8E62775-BB0A-43F0-A843-5BE8B14F8CCD',
  '961578FE-B6B7-44C3-AF35-6BC705CD2B1F',
  '905F13B0-8F91-4B0A-BD76-E1E78F9422E4',
  '7BD9DDF7-8B83-488E-AEC9-24C78610289C',
  'A2F436EA-A127-4EF8-957C-8048606FF670',
  'E4F61863-FE2C-4B56-A8F4-08519BC439DF',
  '025BBFC7-E6A9-4B8B-82AD-6815A1AEAF4A',
  '529D3F93-E8E9-4E73-B1E1-BDF6A9D50113',
  '94734718-0BBC-47FB-96A5-EE7A5AE6A2AD',
  '9FB1A1F3-3B71-4324-B39A-745CBB015FFF',
  '6D6963AB-906D-4A65-A7CA-BD40E5D6AF2B',
  'DC3641B8-2FA8-4ED3-BC1F-F9962A03454B',
  '1A7E4468-2F55-4A56-903C-01265EB7622B',
  'B95E9FDA-26DE-48D2-8807-1F9107AC5E3A',
  '86CDDF93-4872-4597-8AF9-A35AE4D3725F',
  'A92CDB4B-82F1-4E0B-A516-8A655D371524',
  '2FB92EFA-2EE0-4BAE-9EB6-7464125E1EF7',
  'BDFE430E-8F2A-4DB0-9991-6F856594777E',
  'B7F50E91-A759-412C-ADE4-DCD03E7F7C28',
  '240612B7-A063-11D4-9A3A-0090273FC14D',
  '2D2E62CF-9ECF-43B7-8219-94E7FC713DFE',
  '9FB4B4A7-42C0-4BCD-8540-9BCC6711F83E',
  'E3752948-B9A1-4770-90C4-DF41C38986BE',
  'D6099B94-CD97-4CC5-8714-7F6312701A8A',
  '1647B4F3-3E8A-4FDD-81C8-328ED647AB1A',
];

const logger = pino({ level: process.env['OVMF_BUILD_TEST_LOG'] ?? 'warn' });
let engine: ContainerEngine;
let work: string;
let codePath: string;
let varsPath: string;
let code: Uint8Array;
let vars: Uint8Array;
let gop: Uint8Array;
let vbt: Uint8Array;
let boot: BootVerification;

function thrown(action: () => unknown): unknown {
  try {
    action();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

function sink(): { stream: Writable; text: () => string } {
  const chunks: Buffer[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(Buffer.from(chunk));
      callback();
    },
  });
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

async function cli(argv: string[]): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const stdout = sink();
  const stderr = sink();
  const exitCode = await main({
    argv,
    stdout: stdout.stream,
    stderr: stderr.stream,
    env: process.env,
    cwd: work,
    signal: new AbortController().signal,
  });
  return { exitCode, stdout: stdout.text(), stderr: stderr.text() };
}

beforeAll(async () => {
  gop = readCorpus(GOP_FILE);
  vbt = readCorpus(VBT_FILE);
  await warmWorkspace(logger);
  engine = await testEngine(logger);
  // Verification is what this file tests; buildOvmf itself verifies nothing (the job's verify stage does).
  const build = await buildFromWorkspace({
    gop,
    vbt,
    source: edk2Source(),
    engine,
    logger,
    jobId: `verify-boot-int-${process.pid}`,
    flags: { target: 'DEBUG' },
  });
  code = build.code;
  vars = build.vars;
  work = await mkdtemp(path.join(os.tmpdir(), 'verify-boot-int-'));
  codePath = path.join(work, 'OVMF_CODE.fd');
  varsPath = path.join(work, 'OVMF_VARS.fd');
  await writeFile(codePath, code);
  await writeFile(varsPath, vars);
});

afterAll(async () => {
  if (work !== undefined) await rm(work, { recursive: true, force: true });
  await engine?.[Symbol.asyncDispose]();
});

describe('structural verification of a built OVMF', () => {
  it('finds exactly the corpus GOP and VBT and our policy driver in the LZMA-compressed DXE volume', () => {
    expect(sha256(gop)).toBe(GOP_SHA256);
    const report = verifyStructure({ code, gop, vbt });
    expect(report.code).toEqual({ sizeInBytes: 0x37_c000, sha256: sha256(code) });
    expect(report.dxeVolume).toMatchObject({
      name: '7CB8BDC9-F8EB-4F34-AAEA-3EE4AF6516A1',
      compression: 'LZMA',
    });
    expect(report.gop).toMatchObject({
      fileGuid: GOP,
      fileType: 'DXE driver',
      sizeInBytes: gop.length,
      sha256: GOP_SHA256,
      machine: 'x64',
      subsystem: 'EFI_BOOT_SERVICE_DRIVER',
    });
    expect(report.vbt).toMatchObject({
      fileGuid: DEFAULT_VBT_FILE_GUID,
      fileType: 'Freeform',
      sizeInBytes: vbt.length,
      sha256: sha256(vbt),
    });
    expect(report.policy).toMatchObject({
      fileGuid: POLICY,
      fileType: 'DXE driver',
      machine: 'x64',
      subsystem: 'EFI_BOOT_SERVICE_DRIVER',
    });
  });

  it('rejects the build for another GOP or VBT than the one that went in', () => {
    const otherGop = readCorpus('gop/tigerlake-mrchromebox-tgl.efi');
    const gopError = thrown(() => verifyStructure({ code, gop: otherGop, vbt }));
    expect(gopError).toBeInstanceOf(VerificationError);
    expect(gopError).toMatchObject({
      code: 'E_VERIFY_GOP_MISMATCH',
      details: { expectedSha256: sha256(otherGop), actualSha256: GOP_SHA256 },
    });
    const otherVbt = readCorpus('vbt/kabylake-lenovo-t480.vbt');
    expect(thrown(() => verifyStructure({ code, gop, vbt: otherVbt }))).toMatchObject({
      code: 'E_VERIFY_VBT_MISMATCH',
      details: { expectedSha256: sha256(otherVbt), actualSha256: sha256(vbt) },
    });
  });
});

describe('boot verification of a built OVMF (QEMU, TCG)', () => {
  beforeAll(async () => {
    boot = await verifyBoot({ codePath, varsPath, vbtSizeInBytes: vbt.length, logger });
    // The figure the project reports: QEMU (TCG) start to `[Bds] Entry`.
    console.info(
      `q35 TCG boot: [Bds] Entry after ${String(boot.timeToBdsMs)} ms, QEMU ran ${boot.durationMs} ms, ` +
        `${boot.loadedDrivers.length} drivers dispatched`,
    );
  });

  it('passes: GOP and policy driver dispatched, BDS reached, the policy driver found our VBT', () => {
    expect(boot.passed).toBe(true);
    expect(boot.failures).toEqual([]);
    expect(boot.reachedBds).toBe(true);
    expect(boot.logSource).toBe('debugcon');
    expect(boot.summary.asserts).toEqual([]);
    expect(boot.summary.policyVbt).toMatchObject({ found: true, sizeInBytes: vbt.length });
    expect(
      boot.summary.policyVbt?.found === true && boot.summary.policyVbt.signature.startsWith('$VBT'),
    ).toBe(true);
    expect(boot.loadedDrivers.filter((guid) => guid === GOP)).toEqual([GOP]);
    expect(boot.loadedDrivers.filter((guid) => guid === POLICY)).toEqual([POLICY]);
    // Early exit at BDS: QEMU never waits for the shell.
    expect(boot.timeToBdsMs).toBeLessThan(60_000);
    expect(boot.durationMs).toBeLessThan((boot.timeToBdsMs as number) + 5_000);
  });

  it('dispatches exactly the expected drivers, in order', () => {
    expect(boot.loadedDrivers).toEqual(EXPECTED_DXE_DISPATCH_ORDER);
  });

  it('the dispatched drivers are the DXE volume driver files our parser lists, less those whose depex failed', () => {
    const files = listFiles(parseFirmware(code));
    const dxeCore = files.find((file) => file.guid === DXE_CORE_FILE_GUID);
    const dxeDrivers = files
      .filter((file) => file.parent === dxeCore?.parent && file.file.type === EFI_FV_FILETYPE_DRIVER)
      .map((file) => file.guid);
    const notLoaded = new Set(boot.summary.notLoaded.map((entry) => entry.guid));
    expect([...boot.loadedDrivers].sort()).toEqual(dxeDrivers.filter((guid) => !notLoaded.has(guid)).sort());
  });

  it('the OVMF_VARS file given to QEMU is left unchanged', async () => {
    expect(sha256(await readFile(varsPath))).toBe(sha256(vars));
  });

  it('boots on i440fx (QEMU `pc`) too', async () => {
    const result = await verifyBoot({ codePath, varsPath, machine: 'i440fx', logger });
    expect(result).toMatchObject({ passed: true, failures: [], reachedBds: true });
    expect(result.qemu.args.slice(0, 2)).toEqual(['-machine', 'pc']);
  });

  it('a RELEASE-like silence is not confused with a pass: the corpus RELEASE OVMF is E_BOOT_NO_DEBUG_OUTPUT', async () => {
    const error = await verifyBoot({
      codePath: corpusPath('images/geminilake-ovmf-with-gop-vbt-gk41.fd'),
      varsPath: corpusPath('ovmf/OVMF_VARS_4M.fd'),
      policyFileGuid: '9737D7CA-D869-46E5-A5EF-75D9538688DE',
    }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(VerificationError);
    expect((error as VerificationError).code).toBe('E_BOOT_NO_DEBUG_OUTPUT');
  });
});

describe('ovmf-build verify-boot', () => {
  it('exits 0 with the verdict, the structural check and the driver list as JSON, and keeps the log', async () => {
    const gopPath = corpusPath(GOP_FILE);
    const vbtPath = corpusPath(VBT_FILE);
    const { exitCode, stdout, stderr } = await cli([
      'verify-boot',
      codePath,
      varsPath,
      '--gop',
      gopPath,
      '--vbt',
      vbtPath,
      '--json',
      '--log',
      'debug.log',
    ]);
    expect(stderr).toBe('');
    expect(exitCode).toBe(0);
    const verdict = JSON.parse(stdout) as Record<string, unknown>;
    expect(verdict).toMatchObject({
      passed: true,
      reachedBds: true,
      gopFileGuid: GOP,
      policyFileGuid: POLICY,
      loadedDrivers: EXPECTED_DXE_DISPATCH_ORDER,
      failures: [],
      logSource: 'debugcon',
      logPath: path.join(work, 'debug.log'),
      structure: { gop: { sha256: GOP_SHA256 }, vbt: { sha256: sha256(vbt) } },
    });
    // Auto: TCG with the reason where /dev/kvm is absent; elsewhere whatever the probe decided.
    const accel = verdict['accel'] as { accelerator: string; reason: string };
    if (existsSync('/dev/kvm')) expect(['kvm', 'tcg']).toContain(accel.accelerator);
    else expect(accel).toEqual({ accelerator: 'tcg', reason: 'no /dev/kvm' });
    const log = await readFile(path.join(work, 'debug.log'), 'latin1');
    expect(log).toMatch(new RegExp(`^Loading driver ${GOP}$`, 'mi'));
    expect(log).toMatch(new RegExp(`^Loading driver ${POLICY}$`, 'mi'));
    expect(log).toContain('[Bds] Entry');
  });

  it('prints the verdict for humans', async () => {
    const { exitCode, stdout } = await cli(['verify-boot', codePath, varsPath, '--accel', 'tcg']);
    expect(exitCode).toBe(0);
    const lines = stdout.split('\n');
    expect(lines).toContain('  accelerator     tcg: forced by --accel tcg');
    expect(lines[0]).toMatch(
      /^PASS {2}reached BDS in \d+\.\d s \(QEMU ran \d+\.\d s, tcg, log from debugcon\)$/,
    );
    expect(lines[1]).toMatch(
      new RegExp(`^ {2}GOP driver {6}${GOP} loaded \\(#\\d+ of ${EXPECTED_DXE_DISPATCH_ORDER.length}\\)$`),
    );
    expect(lines[2]).toMatch(new RegExp(`^ {2}policy driver {3}${POLICY} loaded \\(#\\d+ of \\d+\\)$`));
    expect(lines[3]).toMatch(/^ {2}VBT {13}\d+ bytes, signature "\$VBT .+"$/);
  });

  it('exits 10 when a driver it was told to expect did not load', async () => {
    const missing = '00000000-1111-2222-3333-444444444444';
    const { exitCode, stdout } = await cli(['verify-boot', codePath, varsPath, '--policy-guid', missing]);
    expect(exitCode).toBe(10);
    expect(stdout).toContain(
      `  failure: policy driver ${missing} was not dispatched: no "Loading driver ${missing}" line`,
    );
  });

  it('exits 10 for a structural mismatch before booting, and 2 for bad usage', async () => {
    const mismatch = await cli([
      'verify-boot',
      codePath,
      varsPath,
      '--gop',
      corpusPath('gop/tigerlake-mrchromebox-tgl.efi'),
      '--vbt',
      corpusPath(VBT_FILE),
    ]);
    expect(mismatch.exitCode).toBe(10);
    expect(mismatch.stderr).toMatch(/\[E_VERIFY_GOP_MISMATCH\]\n$/);
    expect((await cli(['verify-boot', codePath])).exitCode).toBe(2);
    expect((await cli(['verify-boot', codePath, varsPath, '--machine', 'arm'])).exitCode).toBe(2);
    expect((await cli(['verify-boot', codePath, varsPath, '--gop', 'x.efi'])).exitCode).toBe(2);
    expect((await cli(['verify-boot', codePath, varsPath, '--accel', 'hvf'])).exitCode).toBe(2);
  });
});
