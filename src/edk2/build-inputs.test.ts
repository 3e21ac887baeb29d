import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepareBuildInputs, type PrepareBuildOptions, type PreparedBuild } from './build-inputs.js';
import { workspaceKey } from './build.js';
import { DEFAULT_BUILD_FLAGS, resolveBuildFlags } from './flags.js';

let root: string;
const gop = new Uint8Array([0x4d, 0x5a, 1, 2]);
const vbt = new TextEncoder().encode('$VBT TEST');

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'ovmf-build-inputs-'));
  await mkdir(path.join(root, 'OvmfPkg'));
  await mkdir(path.join(root, 'ShellPkg/Application/Shell'), { recursive: true });
  await writeFile(
    path.join(root, 'OvmfPkg/OvmfPkgX64.dsc'),
    '[LibraryClasses]\r\n  X|Y.inf\r\n[Components]\r\n  OvmfPkg/PlatformDxe/Platform.inf\r\n',
  );
  await writeFile(
    path.join(root, 'OvmfPkg/OvmfPkgX64.fdf'),
    [
      '[Defines]',
      '!include OvmfPkgDefines.fdf.inc',
      '[FD.OVMF]',
      '$(VARS_SIZE)|$(FVMAIN_SIZE)',
      'FV = FVMAIN_COMPACT',
      '[FD.OVMF_CODE]',
      '0x00000000|$(FVMAIN_SIZE)',
      'FV = FVMAIN_COMPACT',
      '[FV.DXEFV]',
      'INF  OvmfPkg/PlatformDxe/Platform.inf',
      '',
    ].join('\r\n'),
  );
  await writeFile(
    path.join(root, 'ShellPkg/Application/Shell/Shell.inf'),
    '[LibraryClasses]\r\n  SecureBootVariableLib\r\n',
  );
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** The inputs of every case here: the small tree above, the test GOP and VBT, default flags. */
function prepare(
  mode: PrepareBuildOptions['mode'],
  replaceOverlayFiles?: PrepareBuildOptions['replaceOverlayFiles'],
): Promise<PreparedBuild> {
  return prepareBuildInputs({
    gop,
    vbt,
    sourceDir: root,
    flags: DEFAULT_BUILD_FLAGS,
    mode,
    ...(replaceOverlayFiles === undefined ? {} : { replaceOverlayFiles }),
  });
}

describe('prepareBuildInputs', () => {
  it('stages the overlay, GOP, VBT and patched platform files under /ovmf-build/input, the script last', async () => {
    const prepared = await prepare('clean');
    expect(prepared.files.map((file) => [file.path, file.mode ?? 0o644])).toEqual([
      ['/ovmf-build/input/OvmfGopPkg/IgdAssignmentDxe/IgdAssignmentDxe.c', 0o644],
      ['/ovmf-build/input/OvmfGopPkg/IgdAssignmentDxe/IgdAssignmentDxe.inf', 0o644],
      ['/ovmf-build/input/OvmfGopPkg/IgdVolumeDxe/IgdVolumeDxe.c', 0o644],
      ['/ovmf-build/input/OvmfGopPkg/IgdVolumeDxe/IgdVolumeDxe.inf', 0o644],
      ['/ovmf-build/input/OvmfGopPkg/Include/IgdAssignmentLogic.h', 0o644],
      ['/ovmf-build/input/OvmfGopPkg/Include/IgdDeviceTable.h', 0o644],
      ['/ovmf-build/input/OvmfGopPkg/Include/Protocol/PlatformGopPolicy.h', 0o644],
      ['/ovmf-build/input/OvmfGopPkg/IntelGopDriver/IntelGopDriver.inf', 0o644],
      ['/ovmf-build/input/OvmfGopPkg/OvmfGopPkg.dec', 0o644],
      ['/ovmf-build/input/OvmfGopPkg/PlatformGopPolicyDxe/PlatformGopPolicyDxe.c', 0o644],
      ['/ovmf-build/input/OvmfGopPkg/PlatformGopPolicyDxe/PlatformGopPolicyDxe.inf', 0o644],
      ['/ovmf-build/input/OvmfGopPkg/IntelGopDriver/IntelGopDriver.efi', 0o644],
      ['/ovmf-build/input/OvmfGopPkg/Vbt/Vbt.bin', 0o644],
      ['/ovmf-build/input/OvmfPkg/OvmfPkgX64.dsc', 0o644],
      ['/ovmf-build/input/OvmfPkg/OvmfPkgX64.fdf', 0o644],
      ['/ovmf-build/build.sh', 0o755],
    ]);
    const byPath = new Map(prepared.files.map((file) => [file.path, file.data]));
    expect(byPath.get('/ovmf-build/input/OvmfGopPkg/IntelGopDriver/IntelGopDriver.efi')).toEqual(gop);
    expect(byPath.get('/ovmf-build/input/OvmfGopPkg/Vbt/Vbt.bin')).toEqual(vbt);
    const dsc = new TextDecoder().decode(byPath.get('/ovmf-build/input/OvmfPkg/OvmfPkgX64.dsc'));
    // The tree's Shell.inf consumes SecureBootVariableLib: the quirk is applied.
    expect(dsc).toContain('!if $(SECURE_BOOT_ENABLE) == FALSE\r\n  SecureBootVariableLib|');
    expect(dsc).toContain('  OvmfGopPkg/IntelGopDriver/IntelGopDriver.inf\r\n');
    expect(new TextDecoder().decode(byPath.get('/ovmf-build/build.sh'))).toBe(prepared.script);
    expect(prepared.overlayDigest).toBe(prepared.packageOverlayDigest);
  });

  it('test replacements change the shipped overlay digest but not the package digest', async () => {
    const base = await prepare('warm');
    const hooked = await prepare('warm', {
      'OvmfGopPkg/PlatformGopPolicyDxe/PlatformGopPolicyDxe.c': 'broken',
    });
    expect(hooked.packageOverlayDigest).toBe(base.packageOverlayDigest);
    expect(hooked.overlayDigest).not.toBe(base.overlayDigest);
    expect(base.script).not.toContain('BaseTools');
    await expect(prepare('clean', { 'x.c': '' })).rejects.toThrow(
      new TypeError('Expected `replaceOverlayFiles` to name overlay files, got `x.c`'),
    );
  });
});

describe('workspaceKey', () => {
  const parts = {
    sourceDigest: 'sha256-aa',
    overlayDigest: 'bb',
    platformDigest: 'cc',
    builderImageId: 'sha256:dd',
    flags: DEFAULT_BUILD_FLAGS,
  };
  it('lists what went into it and changes with every part', () => {
    const key = workspaceKey(parts);
    expect(key.details).toEqual({
      layout: '1',
      source: 'sha256-aa',
      overlay: 'bb',
      platform: 'cc',
      builderImage: 'sha256:dd',
      flags: 'fd=4MB,target=DEBUG,network=true,secureBoot=false',
    });
    expect(key.value).toMatch(/^[0-9a-f]{24}$/);
    const variants = [
      { ...parts, sourceDigest: 'sha256-ab' },
      { ...parts, overlayDigest: 'bc' },
      { ...parts, platformDigest: 'cd' },
      { ...parts, builderImageId: 'sha256:de' },
      { ...parts, flags: resolveBuildFlags({ target: 'RELEASE' }) },
    ];
    expect(new Set([key.value, ...variants.map((variant) => workspaceKey(variant).value)]).size).toBe(6);
  });
});
