import { describe, expect, it } from 'vitest';
import { BuildLogParser, parseBuildFailure } from './build-log.js';

describe('BuildLogParser', () => {
  it('turns stage markers, module lines and GenFds into events', () => {
    const parser = new BuildLogParser();
    const lines = [
      '::ovmf-build:: env uid=1000 gid=1000 net=lo capbnd=0000000000000000 nnp=1',
      '::ovmf-build:: stage basetools',
      'gcc -c GenFv.c -o GenFv.o',
      '::ovmf-build:: stage build',
      'Processing meta-data .......### done!',
      'Building ... /edk2/OvmfPkg/Library/VirtioLib/VirtioLib.inf [X64]',
      'Building ... /edk2/MdePkg/Library/UefiLib/UefiLib.inf [X64]',
      '"gcc" -MMD -c -o /edk2/Build/x.obj /edk2/x.c',
      'GenFfs -t EFI_FV_FILETYPE_DRIVER -g 529D3F93-E8E9-4e73-B1E1-BDF6A9D50113 -o /edk2/Build/x.ffs',
      'Fd File Name:OVMF (/edk2/Build/OvmfX64/DEBUG_GCC5/FV/OVMF.fd)',
      'Fd File Name:OVMF_VARS (/edk2/Build/OvmfX64/DEBUG_GCC5/FV/OVMF_VARS.fd)',
      '::ovmf-build:: stage collect',
      '::ovmf-build:: stage bogus',
    ];
    expect(lines.map((line) => parser.push(line))).toEqual([
      {
        kind: 'environment',
        environment: {
          uid: 1000,
          gid: 1000,
          networkInterfaces: ['lo'],
          capabilityBoundingSet: '0000000000000000',
          noNewPrivileges: true,
        },
      },
      { kind: 'stage', stage: 'basetools', modulesBuilt: 0 },
      null,
      { kind: 'stage', stage: 'build', modulesBuilt: 0 },
      null,
      { kind: 'module', stage: 'build', module: 'OvmfPkg/Library/VirtioLib/VirtioLib.inf', modulesBuilt: 1 },
      { kind: 'module', stage: 'build', module: 'MdePkg/Library/UefiLib/UefiLib.inf', modulesBuilt: 2 },
      null,
      null,
      { kind: 'stage', stage: 'genfds', modulesBuilt: 2 },
      null,
      { kind: 'stage', stage: 'collect', modulesBuilt: 2 },
      null,
    ]);
    expect([parser.stage, parser.modulesBuilt]).toEqual(['collect', 2]);
    expect(parser.push('::ovmf-build:: env uid=0 gid=0 net=eth0,lo')).toEqual({
      kind: 'environment',
      environment: {
        uid: 0,
        gid: 0,
        networkInterfaces: ['eth0', 'lo'],
        capabilityBoundingSet: '',
        noNewPrivileges: false,
      },
    });
  });
});

describe('parseBuildFailure', () => {
  it('names the module of a compile error (build.py F002)', () => {
    const lines = [
      'Building ... /edk2/OvmfGopPkg/PlatformGopPolicyDxe/PlatformGopPolicyDxe.inf [X64]',
      "/edk2/OvmfGopPkg/PlatformGopPolicyDxe/PlatformGopPolicyDxe.c:12:1: error: expected ';' before '}' token",
      'make: *** [GNUmakefile:345: /edk2/Build/OvmfX64/DEBUG_GCC5/X64/OvmfGopPkg/PlatformGopPolicyDxe/PlatformGopPolicyDxe/OUTPUT/PlatformGopPolicyDxe.obj] Error 1',
      '',
      '',
      'build.py...',
      ' : error 7000: Failed to execute command',
      '\tmake tbuild [/edk2/Build/OvmfX64/DEBUG_GCC5/X64/OvmfGopPkg/PlatformGopPolicyDxe/PlatformGopPolicyDxe]',
      '',
      '',
      'build.py...',
      ' : error F002: Failed to build module',
      '\t/edk2/OvmfGopPkg/PlatformGopPolicyDxe/PlatformGopPolicyDxe.inf [X64, GCC5, DEBUG]',
      '',
      '- Failed -',
    ];
    expect(parseBuildFailure(lines, 'build', 4)).toEqual({
      failingModule: 'OvmfGopPkg/PlatformGopPolicyDxe/PlatformGopPolicyDxe.inf',
      stage: 'build',
      errorLines: [lines[1], lines[2], lines[6], lines[11]],
      lastLines: lines.slice(-4),
      volumeOverflow: null,
    });
  });

  it('leaves out echoed command lines that only carry -Wno-error (a parallel build prints them between)', () => {
    const link =
      '"gcc" -o /edk2/Build/OvmfX64/DEBUG_GCC5/X64/MdeModulePkg/Core/RuntimeDxe/RuntimeDxe/DEBUG/RuntimeDxe.dll ' +
      '-nostdlib -Wall -Werror -Wno-array-bounds -flto -Os -Wno-error';
    const lines = [
      'Building ... /edk2/OvmfGopPkg/IgdVolumeDxe/IgdVolumeDxe.inf [X64]',
      link,
      "/edk2/OvmfGopPkg/IgdVolumeDxe/IgdVolumeDxe.c:73:8: error: implicit declaration of function 'CompareGuid' [-Werror=implicit-function-declaration]",
      'cc1: all warnings being treated as errors',
      link,
      'make: *** [GNUmakefile:328: /edk2/Build/OvmfX64/DEBUG_GCC5/X64/OvmfGopPkg/IgdVolumeDxe/IgdVolumeDxe/OUTPUT/IgdVolumeDxe.obj] Error 1',
    ];
    expect(parseBuildFailure(lines, 'build').errorLines).toEqual([lines[2], lines[5]]);
  });

  it('falls back to the make tbuild directory', () => {
    const lines = [
      ' : error 7000: Failed to execute command',
      '\tmake tbuild [/edk2/Build/OvmfX64/DEBUG_GCC5/X64/MdePkg/Library/BaseLib/BaseLib]',
    ];
    expect(parseBuildFailure(lines, 'build').failingModule).toBe('MdePkg/Library/BaseLib/BaseLib.inf');
  });

  it('names the consumer of a missing library class', () => {
    const lines = [
      'build.py...',
      '/edk2/OvmfPkg/OvmfPkgX64.dsc(...): error 4000: Instance of library class [SecureBootVariableLib] is not found',
      '\tin [/edk2/ShellPkg/Application/Shell/Shell.inf] [X64]',
      '\tconsumed by module [/edk2/ShellPkg/Application/Shell/Shell.inf]',
      ' ',
      '- Failed -',
    ];
    expect(parseBuildFailure(lines, 'build')).toMatchObject({
      failingModule: 'ShellPkg/Application/Shell/Shell.inf',
      errorLines: [lines[1], lines[2], lines[3]],
    });
  });

  it('names a module the DSC lists but the workspace lacks', () => {
    const lines = [
      'build.py...',
      '/edk2/OvmfPkg/OvmfPkgX64.dsc(1037): error 000E: File/directory not found in workspace',
      '\t/edk2/OvmfGopPkg/Missing/Missing.inf',
      '- Failed -',
    ];
    expect(parseBuildFailure(lines, 'build').failingModule).toBe('OvmfGopPkg/Missing/Missing.inf');
    expect(parseBuildFailure([lines[1] as string, 'x'], 'build').failingModule).toBe(
      'OvmfPkg/OvmfPkgX64.dsc',
    );
  });

  it('blames BaseTools for a failure in that stage, and knows when it knows nothing', () => {
    expect(parseBuildFailure(['make: *** [GNUmakefile:17: GenFv] Error 2'], 'basetools').failingModule).toBe(
      'BaseTools',
    );
    expect(parseBuildFailure(['Killed'], 'build')).toEqual({
      failingModule: null,
      stage: 'build',
      errorLines: [],
      lastLines: ['Killed'],
      volumeOverflow: null,
    });
  });

  it('reads which volume overflowed, and by how much (a 2 MiB secure-boot DEBUG build, 2026-12-04)', () => {
    const lines = [
      'Generating FVMAIN_COMPACT FV',
      '',
      'Generating PEIFV FV',
      '####',
      'Generating DXEFV FV',
      "############ ['GenFv', '-a', '/edk2/Build/OvmfX64/DEBUG_GCC5/FV/Ffs/FVMAIN_COMPACT.inf', '-o', '/edk2/Build/OvmfX64/DEBUG_GCC5/FV/FVMAIN_COMPACT.Fv', '-i', '/edk2/Build/OvmfX64/DEBUG_GCC5/FV/FVMAIN_COMPACT.inf']",
      'Return Value = 2',
      'GenFv: ERROR 3000: Invalid',
      '  the required fv image size 0x18d0e0 exceeds the set fv image size 0x17c000',
      '',
      'build.py...',
      ' : error 7000: Failed to generate FV',
    ];
    expect(parseBuildFailure(lines, 'genfds').volumeOverflow).toEqual({
      volume: 'FVMAIN_COMPACT',
      required: 0x18d0e0,
      size: 0x17c000,
    });
    expect(parseBuildFailure(lines.slice(6), 'genfds').volumeOverflow).toEqual({
      volume: null,
      required: 0x18d0e0,
      size: 0x17c000,
    });
  });
});
