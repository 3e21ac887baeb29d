// The structural check on real firmware from the corpus: exact codes, digests and paths for
// each way a built OVMF can be wrong.
import { beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../core/digest.js';
import { listFiles, parseFirmware } from '../formats/firmware-tree.js';
import { EFI_SECTION_PE32, EFI_SECTION_RAW } from '../formats/section.js';
import { corpusEntries, readCorpus, type ManifestImageTruth } from '../../test/corpus.js';
import { VerificationError } from './errors.js';
import {
  DEFAULT_GOP_FILE_GUID,
  DEFAULT_IGD_ASSIGNMENT_FILE_GUID,
  DEFAULT_POLICY_FILE_GUID,
  DEFAULT_VBT_FILE_GUID,
} from './guids.js';
import {
  DXE_CORE_FILE_GUID,
  inspectStructure,
  verifyStructure,
  type VerifyStructureInput,
} from './structural.js';

const GK41 = 'images/geminilake-ovmf-with-gop-vbt-gk41.fd';
const GK41_POLICY = '9737D7CA-D869-46E5-A5EF-75D9538688DE';
// gk41 carries no IGD assignment driver: where a test needs that check to pass, the policy
// driver (a real x64 DXE driver) stands in for it.
const DXE_PATH =
  '48DB5E17-707C-472D-91CD-1613E7EF51B0/9E21FD93-9C72-4C15-8C4B-E77F1DB2D792/' +
  'EE4E5898-3914-4259-9D6E-DC7BD79403CF/Volume image section/7CB8BDC9-F8EB-4F34-AAEA-3EE4AF6516A1';
/** What the structural check reports for gk41's policy driver. */
const GK41_POLICY_REPORT = {
  fileGuid: GK41_POLICY,
  path: `${DXE_PATH}/PlatformGOPPolicy`,
  fileType: 'DXE driver',
  sizeInBytes: 1_408,
  sha256: 'cffa713e0d83dc634f1e2342ed10ea061c2e1c684da375c4a5c4f50cdc73164e',
  machine: 'x64',
  subsystem: 'EFI_BOOT_SERVICE_DRIVER',
};

/** The thrown VerificationError, for exact assertions on code and details. */
function failureOf(input: VerifyStructureInput): VerificationError {
  try {
    verifyStructure(input);
  } catch (error) {
    if (error instanceof VerificationError) return error;
    throw error;
  }
  throw new Error('verifyStructure passed, a failure was expected');
}

/** A file of ours that is nowhere in gk41: the failure's code and exact details. */
function expectNotInDxe(error: VerificationError, code: string, fileGuid: string): void {
  expect(error.code).toBe(code);
  expect(error.details).toEqual({
    fileGuid,
    dxeVolume: DXE_PATH,
    foundElsewhere: [],
    failures: [{ code, message: error.message }],
  });
}

/** The DXE core named as one of our drivers: refused, since the dispatcher never loads it. */
function expectDxeCoreRefused(error: VerificationError, code: string): void {
  expect(error.code).toBe(code);
  expect(error.details['problems']).toEqual(['file type is DXE core, which the DXE dispatcher never loads']);
}

/** The GOP PE32 body and VBT RAW body of an image, taken out with our parser. */
function extractBodies(code: Uint8Array): { gop: Uint8Array; vbt: Uint8Array } {
  const files = listFiles(parseFirmware(code));
  const gopFile = files.find((file) => file.guid === DEFAULT_GOP_FILE_GUID);
  const vbtFile = files.find((file) => file.guid === DEFAULT_VBT_FILE_GUID);
  const gop = gopFile?.children.find((n) => n.kind === 'section' && n.section.type === EFI_SECTION_PE32);
  const vbt = vbtFile?.children.find((n) => n.kind === 'section' && n.section.type === EFI_SECTION_RAW);
  if (gop === undefined || vbt === undefined) throw new Error('corpus image lacks the GOP or the VBT');
  // Copies, so a test that flips a byte cannot touch the image.
  return { gop: gop.body.slice(), vbt: vbt.body.slice() };
}

/** The PE32 body of gk41's policy driver. */
function readPolicyBody(code: Uint8Array): Uint8Array {
  const file = listFiles(parseFirmware(code)).find((candidate) => candidate.guid === GK41_POLICY);
  const pe32 = file?.children.find((n) => n.kind === 'section' && n.section.type === EFI_SECTION_PE32);
  if (pe32 === undefined) throw new Error('gk41 lacks its policy driver');
  return pe32.body.slice();
}

describe('verifyStructure on the gk41 OVMF (GOP + VBT + PlatformGOPPolicy)', () => {
  let code: Uint8Array;
  let gop: Uint8Array;
  let vbt: Uint8Array;
  let truth: ManifestImageTruth;

  beforeAll(() => {
    code = readCorpus(GK41);
    ({ gop, vbt } = extractBodies(code));
    const entry = corpusEntries('image').find((e) => e.path === GK41);
    truth = entry?.ground_truth as unknown as ManifestImageTruth;
  });

  /** gk41 with its own GOP and VBT, and its policy driver standing in for both of our drivers. */
  const gk41Input = (overrides: Partial<VerifyStructureInput> = {}): VerifyStructureInput => ({
    code,
    gop,
    vbt,
    policyFileGuid: GK41_POLICY,
    igdAssignmentFileGuid: GK41_POLICY,
    ...overrides,
  });
  const gk41Failure = (overrides: Partial<VerifyStructureInput> = {}): VerificationError =>
    failureOf(gk41Input(overrides));
  const gk41Verify = (overrides: Partial<VerifyStructureInput> = {}): ReturnType<typeof verifyStructure> =>
    verifyStructure(gk41Input(overrides));

  it('extracts the bodies the manifest measured with UEFIExtract', () => {
    expect(sha256(gop)).toBe(truth.gop?.[0]?.pe_sha256);
    expect(gop.length).toBe(truth.gop?.[0]?.pe_size);
    expect(sha256(vbt)).toBe(truth.vbt?.[0]?.body_sha256);
    expect(vbt.length).toBe(truth.vbt?.[0]?.body_size);
  });

  it('passes with the bytes that are in it and reports every file', () => {
    const report = gk41Verify();
    expect(report).toEqual({
      code: {
        sizeInBytes: 3_653_632,
        sha256: 'fdfd2fd2ab5af6901fe34a18d182fcca55acfc734132d31951081394cbf697ec',
      },
      dxeVolume: {
        name: '7CB8BDC9-F8EB-4F34-AAEA-3EE4AF6516A1',
        path: DXE_PATH,
        compression: 'LZMA',
        fileCount: report.dxeVolume.fileCount,
      },
      // gk41 predates our IGD volume: GOP and VBT are looked for in the DXE volume.
      igdVolume: null,
      gop: {
        fileGuid: DEFAULT_GOP_FILE_GUID,
        path: `${DXE_PATH}/IntelGopDriver`,
        fileType: 'DXE driver',
        sizeInBytes: 89_344,
        sha256: 'c731f7ab56c6378a6fdff3339f4056fd69540d247e70b4ed8ff621dfa34c3006',
        machine: 'x64',
        subsystem: 'EFI_BOOT_SERVICE_DRIVER',
      },
      vbt: {
        fileGuid: DEFAULT_VBT_FILE_GUID,
        path: `${DXE_PATH}/${DEFAULT_VBT_FILE_GUID}`,
        fileType: 'Freeform',
        sizeInBytes: 5_632,
        sha256: 'bc417184182b778f120ffb34f328b017a153f8ed6f72aa83378236409d30fd1e',
      },
      // One file stands in for both of our drivers, so both reports are the same.
      policy: GK41_POLICY_REPORT,
      igdAssignment: GK41_POLICY_REPORT,
    });
    // The DXE volume of this build holds the drivers of a full OVMF (UEFIExtract: 559 report lines).
    expect(report.dxeVolume.fileCount).toBeGreaterThan(100);
  });

  it('accepts lower-case GUIDs', () => {
    const report = gk41Verify({
      policyFileGuid: GK41_POLICY.toLowerCase(),
      igdAssignmentFileGuid: GK41_POLICY.toLowerCase(),
      gopFileGuid: DEFAULT_GOP_FILE_GUID.toLowerCase(),
    });
    expect(report.policy.fileGuid).toBe(GK41_POLICY);
  });

  it('E_VERIFY_GOP_MISMATCH with both digests when another GOP is given', () => {
    const other = readCorpus('gop/cometlake-mrchromebox-cml.efi');
    const error = gk41Failure({ gop: other });
    expect(error.code).toBe('E_VERIFY_GOP_MISMATCH');
    expect(error.details).toEqual({
      fileGuid: DEFAULT_GOP_FILE_GUID,
      path: `${DXE_PATH}/IntelGopDriver`,
      expectedSha256: '4593b31bcac5161697038d93fa83dc689e68d445accfe2fa5d35aaae23729517',
      expectedSizeInBytes: 73_312,
      actualSha256: 'c731f7ab56c6378a6fdff3339f4056fd69540d247e70b4ed8ff621dfa34c3006',
      actualSizeInBytes: 89_344,
      failures: [{ code: 'E_VERIFY_GOP_MISMATCH', message: error.message }],
    });
  });

  it('E_VERIFY_GOP_MISMATCH for a single flipped byte (same size)', () => {
    const flipped = gop.slice();
    flipped[0x400] = (flipped[0x400] as number) ^ 0x01;
    const error = gk41Failure({ gop: flipped });
    expect(error.code).toBe('E_VERIFY_GOP_MISMATCH');
    expect(error.details['expectedSha256']).toBe(sha256(flipped));
    expect(error.details['actualSha256']).toBe(
      'c731f7ab56c6378a6fdff3339f4056fd69540d247e70b4ed8ff621dfa34c3006',
    );
    expect(error.details['expectedSizeInBytes']).toBe(error.details['actualSizeInBytes']);
  });

  it('E_VERIFY_VBT_MISMATCH when another VBT is given, also for the VBT trimmed to its size field', () => {
    const other = readCorpus('vbt/cometlake-intel-nuc10i5fnh.vbt');
    const error = gk41Failure({ vbt: other });
    expect(error.code).toBe('E_VERIFY_VBT_MISMATCH');
    expect(error.details['expectedSha256']).toBe(sha256(other));
    expect(error.details['actualSha256']).toBe(
      'bc417184182b778f120ffb34f328b017a153f8ed6f72aa83378236409d30fd1e',
    );

    const trimmed = vbt.subarray(0, 5_527);
    expect(sha256(trimmed)).toBe('c705280f2671d6abbec07465e4436055d9afb314ebac7eb34d497e789b68ef3f');
    const trimmedError = gk41Failure({ vbt: trimmed });
    expect(trimmedError.code).toBe('E_VERIFY_VBT_MISMATCH');
    expect(trimmedError.details['expectedSizeInBytes']).toBe(5_527);
    expect(trimmedError.details['actualSizeInBytes']).toBe(5_632);
  });

  it('E_VERIFY_POLICY_MISSING when our own policy driver GUID is expected', () => {
    const error = gk41Failure({ policyFileGuid: DEFAULT_POLICY_FILE_GUID });
    expectNotInDxe(error, 'E_VERIFY_POLICY_MISSING', DEFAULT_POLICY_FILE_GUID);
  });

  it('E_VERIFY_POLICY_INVALID when the policy GUID names a file the dispatcher never loads', () => {
    expectDxeCoreRefused(gk41Failure({ policyFileGuid: DXE_CORE_FILE_GUID }), 'E_VERIFY_POLICY_INVALID');
    // The UEFI shell (ShellPkg FILE_GUID) is an application, not a driver.
    const shell = gk41Failure({ policyFileGuid: '7C04A583-9E3E-4F1C-AD65-E05268D0B4D1' });
    expect(shell.code).toBe('E_VERIFY_POLICY_INVALID');
    expect(shell.details['problems']).toEqual([
      'subsystem is EFI_APPLICATION, not a driver',
      'file type is Application, which the DXE dispatcher never loads',
    ]);
  });

  it('E_VERIFY_GOP_MISSING when the GOP GUID is not in the image; lists every failure in order', () => {
    const error = failureOf({
      code,
      gop,
      vbt: readCorpus('vbt/cometlake-intel-nuc10i5fnh.vbt'),
      policyFileGuid: DEFAULT_POLICY_FILE_GUID,
      gopFileGuid: '00000000-1111-2222-3333-444444444444',
    });
    expect(error.code).toBe('E_VERIFY_GOP_MISSING');
    expect((error.details['failures'] as { code: string }[]).map((failure) => failure.code)).toEqual([
      'E_VERIFY_GOP_MISSING',
      'E_VERIFY_VBT_MISMATCH',
      'E_VERIFY_POLICY_MISSING',
      'E_VERIFY_IGD_MISSING',
    ]);
  });

  it('E_VERIFY_IGD_MISSING by default: this third-party OVMF has no IGD assignment driver', () => {
    const error = failureOf({ code, gop, vbt, policyFileGuid: GK41_POLICY });
    expect(error.message).toBe(
      `IGD assignment driver file ${DEFAULT_IGD_ASSIGNMENT_FILE_GUID} is not in the DXE volume 7CB8BDC9-F8EB-4F34-AAEA-3EE4AF6516A1`,
    );
    expectNotInDxe(error, 'E_VERIFY_IGD_MISSING', DEFAULT_IGD_ASSIGNMENT_FILE_GUID);
  });

  it('E_VERIFY_IGD_INVALID when the IGD GUID names a file the dispatcher never loads', () => {
    expectDxeCoreRefused(gk41Failure({ igdAssignmentFileGuid: DXE_CORE_FILE_GUID }), 'E_VERIFY_IGD_INVALID');
  });

  it('checks exported helper drivers byte for byte: equal passes, one flipped byte is E_VERIFY_HELPER_MISMATCH', () => {
    const policyBody = readPolicyBody(code);
    const ok = gk41Verify({ helperDrivers: { igdAssignment: policyBody, gopPolicy: policyBody } });
    expect(ok.policy.sha256).toBe(sha256(policyBody));
    const flipped = policyBody.slice();
    flipped[0x200] = (flipped[0x200] as number) ^ 0x80;
    const error = gk41Failure({ helperDrivers: { igdAssignment: policyBody, gopPolicy: flipped } });
    expect(error.code).toBe('E_VERIFY_HELPER_MISMATCH');
    expect(error.details).toEqual({
      fileGuid: GK41_POLICY,
      path: `${DXE_PATH}/PlatformGOPPolicy`,
      expectedSha256: sha256(flipped),
      expectedSizeInBytes: 1_408,
      actualSha256: 'cffa713e0d83dc634f1e2342ed10ea061c2e1c684da375c4a5c4f50cdc73164e',
      actualSizeInBytes: 1_408,
      failures: [{ code: 'E_VERIFY_HELPER_MISMATCH', message: error.message }],
    });
  });

  it('inspectStructure returns the failures without throwing', () => {
    const { report, failures } = inspectStructure(gk41Input({ vbt: new Uint8Array(16) }));
    expect(failures.map((failure) => failure.code)).toEqual(['E_VERIFY_VBT_MISMATCH']);
    expect(report.gop?.sha256).toBe('c731f7ab56c6378a6fdff3339f4056fd69540d247e70b4ed8ff621dfa34c3006');
    expect(report.vbt?.sha256).toBe('bc417184182b778f120ffb34f328b017a153f8ed6f72aa83378236409d30fd1e');
  });

  it('rejects a bad GUID and a non-byte input with TypeError', () => {
    expect(() => verifyStructure({ code, gop, vbt, policyFileGuid: 'not-a-guid' })).toThrow(
      new TypeError('Expected `policyFileGuid` to be a GUID string, got `not-a-guid`'),
    );
    expect(() => gk41Verify({ gop: 'x' as unknown as Uint8Array })).toThrow(
      new TypeError('Expected `gop` to be a Uint8Array, got `string`'),
    );
  });
});

describe('verifyStructure on other firmware', () => {
  it("Debian's OVMF_CODE_4M.fd has no GOP: E_VERIFY_GOP_MISSING, then VBT, policy and IGD assignment missing", () => {
    const gk41 = extractBodies(readCorpus(GK41));
    const error = failureOf({
      code: readCorpus('ovmf/OVMF_CODE_4M.fd'),
      ...gk41,
      policyFileGuid: GK41_POLICY,
    });
    expect(error.code).toBe('E_VERIFY_GOP_MISSING');
    expect(error.message).toBe(
      `GOP driver file ${DEFAULT_GOP_FILE_GUID} is not in the DXE volume 7CB8BDC9-F8EB-4F34-AAEA-3EE4AF6516A1 ` +
        '(and 3 more problem(s))',
    );
    expect(error.details['failures']).toEqual([
      {
        code: 'E_VERIFY_GOP_MISSING',
        message: `GOP driver file ${DEFAULT_GOP_FILE_GUID} is not in the DXE volume 7CB8BDC9-F8EB-4F34-AAEA-3EE4AF6516A1`,
      },
      {
        code: 'E_VERIFY_VBT_MISSING',
        message: `VBT file ${DEFAULT_VBT_FILE_GUID} is not in the DXE volume 7CB8BDC9-F8EB-4F34-AAEA-3EE4AF6516A1`,
      },
      {
        code: 'E_VERIFY_POLICY_MISSING',
        message: `policy driver file ${GK41_POLICY} is not in the DXE volume 7CB8BDC9-F8EB-4F34-AAEA-3EE4AF6516A1`,
      },
      {
        code: 'E_VERIFY_IGD_MISSING',
        message: `IGD assignment driver file ${DEFAULT_IGD_ASSIGNMENT_FILE_GUID} is not in the DXE volume 7CB8BDC9-F8EB-4F34-AAEA-3EE4AF6516A1`,
      },
    ]);
  });

  it('a GOP driver given as the code image is E_VERIFY_NOT_OVMF', () => {
    const gopBytes = readCorpus('gop/cometlake-mrchromebox-cml.efi');
    const error = failureOf({ code: gopBytes, gop: gopBytes, vbt: new Uint8Array(8) });
    expect(error.code).toBe('E_VERIFY_NOT_OVMF');
  });

  it('real UEFI volumes without a DXE core (Intel FSP) are E_VERIFY_NOT_OVMF', () => {
    const error = failureOf({
      code: readCorpus('images/coffeelake-intel-fsp.fd'),
      gop: new Uint8Array(8),
      vbt: new Uint8Array(8),
    });
    expect(error.code).toBe('E_VERIFY_NOT_OVMF');
    expect(error.message).toBe(
      `no DXE volume in the OVMF code image: the DXE core file ${DXE_CORE_FILE_GUID} was not found`,
    );
    expect(error.details['format']).toBe('uefi');
  });

  it('a truncated OVMF (DXE volume cut off) is E_VERIFY_NOT_OVMF', () => {
    const code = readCorpus(GK41).subarray(0, 0x1000);
    const error = failureOf({ code, gop: new Uint8Array(8), vbt: new Uint8Array(8) });
    expect(error.code).toBe('E_VERIFY_NOT_OVMF');
  });
});
