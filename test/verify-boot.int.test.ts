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
import { EXPECTED_DXE_DISPATCH_ORDER } from './igd-dxe-dispatch-order.js';
import { buildFromWorkspace, edk2Source, testEngine, warmWorkspace } from './harness.js';

const GOP_FILE = 'gop/cometlake-mrchromebox-cml.efi';
const GOP_SHA256 = '4593b31bcac5161697038d93fa83dc689e68d445accfe2fa5d35aaae23729517';
const VBT_FILE = 'vbt/cometlake-intel-nuc10i5fnh.vbt';
const GOP = DEFAULT_GOP_FILE_GUID;
const POLICY = DEFAULT_POLICY_FILE_GUID;
/** PI spec vol. 3, 2.1.4.1: EFI_FV_FILETYPE_DRIVER. */
const EFI_FV_FILETYPE_DRIVER = 0x07;

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
  it('finds exactly the corpus GOP and VBT in the plain IGD volume and our policy driver in the LZMA-compressed DXE volume', () => {
    expect(sha256(gop)).toBe(GOP_SHA256);
    const report = verifyStructure({ code, gop, vbt });
    expect(report.code).toEqual({ sizeInBytes: 0x37_c000, sha256: sha256(code) });
    expect(report.dxeVolume).toMatchObject({
      name: '7CB8BDC9-F8EB-4F34-AAEA-3EE4AF6516A1',
      compression: 'LZMA',
    });
    expect(report.igdVolume).toEqual({
      name: '2A7B5C3D-9E1F-4A60-8B2C-6D4E3F1A0B9C',
      path: '2A7B5C3D-9E1F-4A60-8B2C-6D4E3F1A0B9C',
      compression: null,
      fileCount: 2,
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

  it('the dispatched drivers are the DXE and IGD volume driver files our parser lists, less those whose depex failed', () => {
    const files = listFiles(parseFirmware(code));
    const dxeCore = files.find((file) => file.guid === DXE_CORE_FILE_GUID);
    const igdVolume = files.find((file) => file.guid === GOP)?.parent;
    expect(igdVolume).toMatchObject({ kind: 'volume', name: '2A7B5C3D-9E1F-4A60-8B2C-6D4E3F1A0B9C' });
    const dxeDrivers = files
      .filter(
        (file) =>
          (file.parent === dxeCore?.parent || file.parent === igdVolume) &&
          file.file.type === EFI_FV_FILETYPE_DRIVER,
      )
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
