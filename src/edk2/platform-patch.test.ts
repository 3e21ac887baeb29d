// Unit tests of the OvmfPkgX64.dsc/.fdf patch: excerpts for each rule, then the real platform
// files of the EDK2 version the product builds (a fixture), patched with nothing else changed.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Edk2Error } from './errors.js';
import { DSC_PATH, FDF_PATH } from './layout.js';
import { patchDsc, patchFdf, patchPlatform, shellNeedsSecureBootVariableLib } from './platform-patch.js';

// Small excerpts written for these tests in the shape of OvmfPkgX64.dsc/.fdf (CRLF, as upstream),
// in two parts: up to the anchor, where the patch inserts its block, and after it. The expected
// results are these same lines with the block, spelled out once, between them.
const DSC_TO_ANCHOR = [
  '[Defines]',
  '  PLATFORM_NAME                  = Ovmf',
  '',
  '[LibraryClasses]',
  '  OvmfPkg/PlatformDxe/Platform.inf',
  '',
  '[Components]',
  '  OvmfPkg/ResetVector/ResetVector.inf',
  '!if $(SECURE_BOOT_ENABLE) == TRUE',
  '  OvmfPkg/EnrollDefaultKeys/EnrollDefaultKeys.inf',
  '!endif',
  '',
  '  OvmfPkg/PlatformDxe/Platform.inf',
];
const DSC_AFTER_ANCHOR = ['  OvmfPkg/IoMmuDxe/IoMmuDxe.inf', ''];
const DSC = [...DSC_TO_ANCHOR, ...DSC_AFTER_ANCHOR].join('\r\n');
/** What patchDsc inserts after the anchor. */
const DSC_BLOCK = [
  '  # ovmf-build OvmfGopPkg begin: IGD assignment, the platform GOP policy, the Intel GOP driver (binary) and the IGD volume loader',
  '  OvmfGopPkg/IgdAssignmentDxe/IgdAssignmentDxe.inf',
  '  OvmfGopPkg/PlatformGopPolicyDxe/PlatformGopPolicyDxe.inf',
  '  OvmfGopPkg/IntelGopDriver/IntelGopDriver.inf',
  '  OvmfGopPkg/IgdVolumeDxe/IgdVolumeDxe.inf',
  '  # ovmf-build OvmfGopPkg end',
];

const FDF_HEAD = [
  '[Defines]',
  '!include OvmfPkgDefines.fdf.inc',
  '',
  '[FD.OVMF]',
  'BaseAddress   = $(FW_BASE_ADDRESS)',
  '$(VARS_SIZE)|$(FVMAIN_SIZE)',
  'FV = FVMAIN_COMPACT',
  '',
  '$(SECFV_OFFSET)|$(SECFV_SIZE)',
  'FV = SECFV',
  '',
  '[FD.OVMF_CODE]',
  '0x00000000|$(FVMAIN_SIZE)',
  'FV = FVMAIN_COMPACT',
  '',
];
const FDF_TO_ANCHOR = [
  '[FV.PEIFV]',
  'INF  OvmfPkg/PlatformDxe/Platform.inf',
  '',
  '[FV.DXEFV]',
  'FvNameGuid         = 7CB8BDC9-F8EB-4F34-AAEA-3EE4AF6516A1',
  'INF  OvmfPkg/VirtioGpuDxe/VirtioGpu.inf',
  'INF  OvmfPkg/PlatformDxe/Platform.inf',
];
const FDF_AFTER_ANCHOR = ['INF  OvmfPkg/AmdSevDxe/AmdSevDxe.inf', '', '[Rule.Common.SEC]'];
const FDF = [...FDF_HEAD, ...FDF_TO_ANCHOR, ...FDF_AFTER_ANCHOR].join('\r\n');
/** What patchFdf makes of FDF: the IGD volume's defines, regions and [FV.IGDVOL], our DXE drivers. */
const FDF_PATCHED = [
  '[Defines]',
  '!include OvmfPkgDefines.fdf.inc',
  "# ovmf-build IGD volume begin: the IGD volume's region at the start of the code, where FVMAIN_COMPACT's began",
  '!if $(FD_SIZE_IN_KB) == 2048',
  'DEFINE OVMF_BUILD_IGDVOL_SIZE       = 0x30000',
  'DEFINE OVMF_BUILD_FVMAIN_OFFSET     = 0x50000',
  'DEFINE OVMF_BUILD_FVMAIN_SIZE       = 0x17C000',
  '!endif',
  '!if $(FD_SIZE_IN_KB) == 4096',
  'DEFINE OVMF_BUILD_IGDVOL_SIZE       = 0x80000',
  'DEFINE OVMF_BUILD_FVMAIN_OFFSET     = 0x104000',
  'DEFINE OVMF_BUILD_FVMAIN_SIZE       = 0x2C8000',
  '!endif',
  'SET gOvmfGopPkgTokenSpaceGuid.PcdOvmfGopIgdVolumeBase = $(CODE_BASE_ADDRESS)',
  'SET gOvmfGopPkgTokenSpaceGuid.PcdOvmfGopIgdVolumeSize = $(OVMF_BUILD_IGDVOL_SIZE)',
  '# ovmf-build IGD volume end',
  '',
  '[FD.OVMF]',
  'BaseAddress   = $(FW_BASE_ADDRESS)',
  '# ovmf-build IGD volume begin: the IGD volume, then FVMAIN_COMPACT in the rest of its region',
  '# was: $(VARS_SIZE)|$(FVMAIN_SIZE)',
  '# was: FV = FVMAIN_COMPACT',
  '$(VARS_SIZE)|$(OVMF_BUILD_IGDVOL_SIZE)',
  'FV = IGDVOL',
  '',
  '$(OVMF_BUILD_FVMAIN_OFFSET)|$(OVMF_BUILD_FVMAIN_SIZE)',
  'FV = FVMAIN_COMPACT',
  '# ovmf-build IGD volume end',
  '',
  '$(SECFV_OFFSET)|$(SECFV_SIZE)',
  'FV = SECFV',
  '',
  '[FD.OVMF_CODE]',
  '# ovmf-build IGD volume begin: the IGD volume, then FVMAIN_COMPACT in the rest of its region',
  '# was: 0x00000000|$(FVMAIN_SIZE)',
  '# was: FV = FVMAIN_COMPACT',
  '0x00000000|$(OVMF_BUILD_IGDVOL_SIZE)',
  'FV = IGDVOL',
  '',
  '$(OVMF_BUILD_IGDVOL_SIZE)|$(OVMF_BUILD_FVMAIN_SIZE)',
  'FV = FVMAIN_COMPACT',
  '# ovmf-build IGD volume end',
  '',
  '[FV.PEIFV]',
  'INF  OvmfPkg/PlatformDxe/Platform.inf',
  '',
  '# ovmf-build IGD volume begin: the Intel GOP driver and its VBT, uncompressed, in a volume of their own',
  '[FV.IGDVOL]',
  'FvForceRebase      = FALSE',
  'FvNameGuid         = 2A7B5C3D-9E1F-4A60-8B2C-6D4E3F1A0B9C',
  'BlockSize          = 0x10000',
  'FvAlignment        = 16',
  'ERASE_POLARITY     = 1',
  'MEMORY_MAPPED      = TRUE',
  'STICKY_WRITE       = TRUE',
  'LOCK_CAP           = TRUE',
  'LOCK_STATUS        = TRUE',
  'WRITE_DISABLED_CAP = TRUE',
  'WRITE_ENABLED_CAP  = TRUE',
  'WRITE_STATUS       = TRUE',
  'WRITE_LOCK_CAP     = TRUE',
  'WRITE_LOCK_STATUS  = TRUE',
  'READ_DISABLED_CAP  = TRUE',
  'READ_ENABLED_CAP   = TRUE',
  'READ_STATUS        = TRUE',
  'READ_LOCK_CAP      = TRUE',
  'READ_LOCK_STATUS   = TRUE',
  '',
  'INF  OvmfGopPkg/IntelGopDriver/IntelGopDriver.inf',
  'FILE FREEFORM = 1647B4F3-3E8A-4FEF-81C8-328ED647AB1A {',
  '  SECTION RAW = OvmfGopPkg/Vbt/Vbt.bin',
  '}',
  '',
  '# ovmf-build IGD volume end',
  '[FV.DXEFV]',
  'FvNameGuid         = 7CB8BDC9-F8EB-4F34-AAEA-3EE4AF6516A1',
  'INF  OvmfPkg/VirtioGpuDxe/VirtioGpu.inf',
  'INF  OvmfPkg/PlatformDxe/Platform.inf',
  '# ovmf-build OvmfGopPkg begin: IGD assignment, the platform GOP policy, and the driver that loads the IGD volume',
  'INF  OvmfGopPkg/IgdAssignmentDxe/IgdAssignmentDxe.inf',
  'INF  OvmfGopPkg/PlatformGopPolicyDxe/PlatformGopPolicyDxe.inf',
  'INF  OvmfGopPkg/IgdVolumeDxe/IgdVolumeDxe.inf',
  '# ovmf-build OvmfGopPkg end',
  ...FDF_AFTER_ANCHOR,
].join('\r\n');

describe('patchDsc', () => {
  it('inserts our modules after the anchor in [Components], keeping CRLF', () => {
    expect(patchDsc(DSC)).toBe([...DSC_TO_ANCHOR, ...DSC_BLOCK, ...DSC_AFTER_ANCHOR].join('\r\n'));
  });

  it('keeps LF files LF and the missing final newline missing', () => {
    const lf = '[Components]\n  OvmfPkg/PlatformDxe/Platform.inf';
    expect(patchDsc(lf)).toBe(
      ['[Components]', '  OvmfPkg/PlatformDxe/Platform.inf', ...DSC_BLOCK].join('\n'),
    );
  });

  it('is idempotent', () => {
    const once = patchDsc(DSC);
    expect(patchDsc(once)).toBe(once);
    expect(patchDsc(patchDsc(DSC, { extraDscComponents: ['X/Y.inf'] }))).toBe(once);
  });

  it('skips the override block of the anchor module', () => {
    const text = [
      '[Components.X64]',
      '  OvmfPkg/PlatformDxe/Platform.inf {',
      '    <LibraryClasses>',
      '      PciLib|MdePkg/Library/BasePciLibCf8/BasePciLibCf8.inf',
      '  }',
      '  OvmfPkg/IoMmuDxe/IoMmuDxe.inf',
    ].join('\n');
    expect(patchDsc(text).split('\n').slice(4, 7)).toEqual(['  }', ...DSC_BLOCK.slice(0, 2)]);
  });

  it('adds test-only extra components inside the block', () => {
    expect(patchDsc(DSC, { extraDscComponents: ['OvmfGopPkg/Missing/Missing.inf'] }).split('\r\n')[18]).toBe(
      '  OvmfGopPkg/Missing/Missing.inf',
    );
  });

  it('fails with E_EDK2_PATCH_FAILED when the anchor is missing, conditional or its section absent', () => {
    const missing = DSC.replace('  OvmfPkg/PlatformDxe/Platform.inf\r\n  OvmfPkg/IoMmu', '  OvmfPkg/IoMmu');
    expect(() => patchDsc(missing)).toThrow(
      expect.objectContaining({
        code: 'E_EDK2_PATCH_FAILED',
        message: 'OvmfPkgX64.dsc: the anchor "OvmfPkg/PlatformDxe/Platform.inf" is missing from its section',
      }),
    );
    const conditional = ['[Components]', '!ifdef $(X)', '  OvmfPkg/PlatformDxe/Platform.inf', '!endif'].join(
      '\r\n',
    );
    expect(() => patchDsc(conditional)).toThrow(
      expect.objectContaining({
        code: 'E_EDK2_PATCH_FAILED',
        details: { file: 'OvmfPkgX64.dsc', line: 3, anchor: 'OvmfPkg/PlatformDxe/Platform.inf' },
      }),
    );
    expect(() => patchDsc('[Defines]\r\n  OvmfPkg/PlatformDxe/Platform.inf\r\n')).toThrow(
      'OvmfPkgX64.dsc: the section for the anchor "OvmfPkg/PlatformDxe/Platform.inf" is missing',
    );
    const broken = patchDsc(DSC).replace('  # ovmf-build OvmfGopPkg end\r\n', '');
    expect(() => patchDsc(broken)).toThrow(Edk2Error);
  });
});

describe('Shell SecureBootVariableLib quirk', () => {
  it('maps the two libraries at the end of [LibraryClasses] for builds without secure boot, idempotently', () => {
    const patched = patchDsc(DSC, { secureBootLibsForShell: true });
    expect(patched.split('\r\n').slice(3, 13)).toEqual([
      '[LibraryClasses]',
      '  OvmfPkg/PlatformDxe/Platform.inf',
      '  # ovmf-build quirk begin: the Shell consumes SecureBootVariableLib also without secure boot',
      '!if $(SECURE_BOOT_ENABLE) == FALSE',
      '  SecureBootVariableLib|SecurityPkg/Library/SecureBootVariableLib/SecureBootVariableLib.inf',
      '  PlatformPKProtectionLib|SecurityPkg/Library/PlatformPKProtectionLibVarPolicy/PlatformPKProtectionLibVarPolicy.inf',
      '!endif',
      '  # ovmf-build quirk end',
      '',
      '[Components]',
    ]);
    expect(patchDsc(patched, { secureBootLibsForShell: true })).toBe(patched);
    expect(patchDsc(patched)).toBe(patchDsc(DSC));
    expect(() =>
      patchDsc(DSC.replace('[LibraryClasses]', '[LibraryClasses.IA32]'), { secureBootLibsForShell: true }),
    ).toThrow('OvmfPkgX64.dsc: the section [libraryclasses] is missing');
  });

  it("detects Debian's Shell.inf", () => {
    const inf = [
      '[Defines]',
      '  BASE_NAME = Shell',
      '[LibraryClasses]',
      '  UefiLib',
      '  SecureBootVariableLib',
      '',
      '[Guids]',
    ];
    expect(shellNeedsSecureBootVariableLib(inf.join('\r\n'))).toBe(true);
    expect(
      shellNeedsSecureBootVariableLib(inf.filter((line) => !line.includes('SecureBoot')).join('\n')),
    ).toBe(false);
    expect(shellNeedsSecureBootVariableLib('[Guids]\n  SecureBootVariableLib\n')).toBe(false);
  });
});

describe('patchFdf', () => {
  it('moves the GOP and VBT into [FV.IGDVOL], cuts its region from FVMAIN_COMPACT, adds our DXE drivers', () => {
    expect(patchFdf(FDF)).toBe(FDF_PATCHED);
    expect(patchFdf(patchFdf(FDF))).toBe(FDF_PATCHED);
  });

  it('fails with E_EDK2_PATCH_FAILED without [FV.DXEFV], the anchor or a region it replaces', () => {
    expect(() => patchFdf(FDF.replace('[FV.DXEFV]', '[FV.OTHER]'))).toThrow(
      expect.objectContaining({
        code: 'E_EDK2_PATCH_FAILED',
        details: expect.objectContaining({ file: 'OvmfPkgX64.fdf' }),
      }),
    );
    expect(() =>
      patchFdf(FDF.replace('INF  OvmfPkg/PlatformDxe/Platform.inf\r\nINF  OvmfPkg/Amd', 'INF  OvmfPkg/Amd')),
    ).toThrow(
      'OvmfPkgX64.fdf: the anchor "INF OvmfPkg/PlatformDxe/Platform.inf" is missing from its section',
    );
    expect(() => patchFdf(FDF.replace('0x00000000|$(FVMAIN_SIZE)', '0x00000000|0x1000'))).toThrow(
      'OvmfPkgX64.fdf: the anchor "0x00000000|$(FVMAIN_SIZE)" is missing from its section',
    );
    expect(() =>
      patchFdf(
        FDF.replace(
          '$(VARS_SIZE)|$(FVMAIN_SIZE)\r\nFV = FVMAIN_COMPACT',
          '$(VARS_SIZE)|$(FVMAIN_SIZE)\r\nFV = OTHER',
        ),
      ),
    ).toThrow(
      'OvmfPkgX64.fdf:7: expected "FV = FVMAIN_COMPACT" after "$(VARS_SIZE)|$(FVMAIN_SIZE)" in [FD.OVMF]',
    );
    expect(() => patchFdf(FDF.replace('!include OvmfPkgDefines.fdf.inc', ''))).toThrow(
      'OvmfPkgX64.fdf: the anchor "!include OvmfPkgDefines.fdf.inc" is missing from its section',
    );
  });
});

// The real OvmfPkgX64.dsc/.fdf of the EDK2 tree the product builds (Debian's edk2 2022.11), kept
// as a fixture so this always runs (test/fixtures/ovmf-platform/README.md).
const PLATFORM_FIXTURE = path.resolve(import.meta.dirname, '../../test/fixtures/ovmf-platform');
describe('on the real EDK2 platform files', () => {
  it(`Debian edk2 2022.11 (${DSC_PATH}, ${FDF_PATH})`, async () => {
    const dsc = await readFile(path.join(PLATFORM_FIXTURE, path.basename(DSC_PATH)), 'utf8');
    const fdf = await readFile(path.join(PLATFORM_FIXTURE, path.basename(FDF_PATH)), 'utf8');
    expect(createHash('sha256').update(dsc).digest('hex')).toBe(
      'e7592f37dc6653adabd6ff753cd6d0e94f94c2c708f684d13f23b1d2dd6a8b95',
    );
    expect(dsc.includes('\r\n')).toBe(true);
    const patched = patchPlatform({ dsc, fdf });
    // The quirk adds its block at the end of [LibraryClasses] and nothing else.
    const quirked = patchDsc(dsc, { secureBootLibsForShell: true }).split('\r\n');
    expect(quirked.length - patched.dsc.split('\r\n').length).toBe(6);
    // The FDF: our blocks, and only the four region lines they replace kept in them as comments.
    const fdfLines = patched.fdf.split('\r\n');
    const outsideOurBlocks = fdfLines.filter((line, i) => {
      const opened = fdfLines.slice(0, i + 1).filter((l) => / ovmf-build [\w ]+ begin/.test(l)).length;
      const closed = fdfLines.slice(0, i + 1).filter((l) => / ovmf-build [\w ]+ end$/.test(l)).length;
      return opened === closed && !/ ovmf-build [\w ]+ end$/.test(line);
    });
    const replaced = fdfLines.filter((line) => line.startsWith('# was: ')).map((line) => line.slice(7));
    expect(replaced).toEqual([
      '$(VARS_SIZE)|$(FVMAIN_SIZE)',
      'FV = FVMAIN_COMPACT',
      '0x00000000|$(FVMAIN_SIZE)',
      'FV = FVMAIN_COMPACT',
    ]);
    expect(outsideOurBlocks).toEqual(
      fdf
        .split('\r\n')
        .filter(
          (line) =>
            !['$(VARS_SIZE)|$(FVMAIN_SIZE)', '0x00000000|$(FVMAIN_SIZE)', 'FV = FVMAIN_COMPACT'].includes(
              line,
            ),
        ),
    );
    expect(patched.fdf.replace(/\r\n/g, '').includes('\n')).toBe(false);
    // The DSC: exactly our block added, nothing else changed, CRLF throughout.
    for (const [before, after, added] of [[dsc, patched.dsc, 6]] as const) {
      const beforeLines = before.split('\r\n');
      const afterLines = after.split('\r\n');
      expect(afterLines.length - beforeLines.length).toBe(added);
      expect(after.replace(/\r\n/g, '').includes('\n')).toBe(false);
      const begin = afterLines.findIndex((line) => line.includes('ovmf-build OvmfGopPkg begin'));
      expect(afterLines[begin - 1]?.trim().replace(/\s+/g, ' ')).toMatch(
        /^(INF )?OvmfPkg\/PlatformDxe\/Platform\.inf$/,
      );
      expect([...afterLines.slice(0, begin), ...afterLines.slice(begin + added)]).toEqual(beforeLines);
    }
    expect(patchPlatform(patched)).toEqual(patched);
  });
});
