import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  GOP_FILE_GUID,
  GOP_INF,
  GOP_UI_NAME,
  IGD_ASSIGNMENT_FILE_GUID,
  IGD_ASSIGNMENT_INF,
  IGD_ASSIGNMENT_UI_NAME,
  IGD_DEVICE_TABLE_HEADER,
  PLATFORM_GOP_POLICY_PROTOCOL_GUID,
  POLICY_FILE_GUID,
  POLICY_INF,
  POLICY_UI_NAME,
  VBT_FILE_GUID,
  IGD_VOLUME_DXE_INF,
  IGD_VOLUME_GUID,
} from './layout.js';
import { IGD_VOLUME_DXE_FILE_GUID, IGD_VOLUME_NAME_GUID } from '../verify/guids.js';
import { loadIgdDeviceTable } from '../igd/load.js';
import { igdDeviceHeader } from './igd-device-header.js';
import { DEFAULT_OVERLAY_DIR, loadOverlay } from './overlay.js';

const text = (data: Uint8Array): string => new TextDecoder().decode(data);

/** `{ 0x1647b4f3, 0x3e8a, 0x4fef, { 0x81, ... } }` -> `1647B4F3-3E8A-4FEF-81C8-...` */
function guidFromCStruct(struct: string): string {
  const numbers = [...struct.matchAll(/0x([0-9a-f]+)/gi)].map((match) => (match[1] as string).toLowerCase());
  expect(numbers).toHaveLength(11);
  const [d1, d2, d3, ...d4] = numbers as [string, string, string, ...string[]];
  const bytes = d4.map((byte) => byte.padStart(2, '0')).join('');
  return `${d1.padStart(8, '0')}-${d2.padStart(4, '0')}-${d3.padStart(4, '0')}-${bytes.slice(0, 4)}-${bytes.slice(4)}`.toUpperCase();
}

function infDefine(inf: string, key: string): string | undefined {
  return new RegExp(`^\\s*${key}\\s*=\\s*(\\S+)`, 'm').exec(inf)?.[1];
}

describe('loadOverlay', () => {
  it('reads exactly the OvmfGopPkg files, sorted, with a digest over paths and contents', async () => {
    const overlay = await loadOverlay();
    expect(overlay.files.map((file) => file.path)).toEqual([
      'OvmfGopPkg/IgdAssignmentDxe/IgdAssignmentDxe.c',
      'OvmfGopPkg/IgdAssignmentDxe/IgdAssignmentDxe.inf',
      'OvmfGopPkg/IgdVolumeDxe/IgdVolumeDxe.c',
      'OvmfGopPkg/IgdVolumeDxe/IgdVolumeDxe.inf',
      'OvmfGopPkg/Include/IgdAssignmentLogic.h',
      'OvmfGopPkg/Include/IgdDeviceTable.h',
      'OvmfGopPkg/Include/Protocol/PlatformGopPolicy.h',
      'OvmfGopPkg/IntelGopDriver/IntelGopDriver.inf',
      'OvmfGopPkg/OvmfGopPkg.dec',
      'OvmfGopPkg/PlatformGopPolicyDxe/PlatformGopPolicyDxe.c',
      'OvmfGopPkg/PlatformGopPolicyDxe/PlatformGopPolicyDxe.inf',
    ]);
    expect(overlay.digest).toMatch(/^[0-9a-f]{64}$/);
    expect((await loadOverlay()).digest).toBe(overlay.digest);
  });

  it('keeps the GUIDs, names and paths of layout.ts and the package in agreement', async () => {
    const files = new Map((await loadOverlay()).files.map((file) => [file.path, text(file.data)]));
    const gopInf = files.get(GOP_INF) as string;
    const policyInf = files.get(POLICY_INF) as string;
    const dec = files.get('OvmfGopPkg/OvmfGopPkg.dec') as string;
    expect([
      infDefine(gopInf, 'FILE_GUID'),
      infDefine(gopInf, 'BASE_NAME'),
      infDefine(gopInf, 'MODULE_TYPE'),
    ]).toEqual([GOP_FILE_GUID, GOP_UI_NAME, 'UEFI_DRIVER']);
    expect(gopInf).toMatch(/^\s*PE32\|IntelGopDriver\.efi\|\*\s*$/m);
    expect([
      infDefine(policyInf, 'FILE_GUID'),
      infDefine(policyInf, 'BASE_NAME'),
      infDefine(policyInf, 'MODULE_TYPE'),
    ]).toEqual([POLICY_FILE_GUID, POLICY_UI_NAME, 'DXE_DRIVER']);
    const igdInf = files.get(IGD_ASSIGNMENT_INF) as string;
    expect([
      infDefine(igdInf, 'FILE_GUID'),
      infDefine(igdInf, 'BASE_NAME'),
      infDefine(igdInf, 'MODULE_TYPE'),
    ]).toEqual([IGD_ASSIGNMENT_FILE_GUID, IGD_ASSIGNMENT_UI_NAME, 'DXE_DRIVER']);
    // A ROM image runs inside someone else's OVMF: no PCD (its token numbers are per platform).
    for (const inf of [igdInf, policyInf]) expect(inf).not.toMatch(/^\s*\[(Fixed|Feature)?Pcd/im);
    expect(guidFromCStruct(/gOvmfGopVbtFileGuid\s*=\s*(\{.*\})/.exec(dec)?.[1] ?? '')).toBe(VBT_FILE_GUID);
    // The IGD volume: its name in the FDF and the DEC, and the driver that hands it over, whose
    // FILE_GUID the policy driver's depex (AFTER) and the structural check name.
    const volumeInf = files.get(IGD_VOLUME_DXE_INF) as string;
    expect([infDefine(volumeInf, 'FILE_GUID'), infDefine(volumeInf, 'MODULE_TYPE')]).toEqual([
      IGD_VOLUME_DXE_FILE_GUID,
      'DXE_DRIVER',
    ]);
    expect(guidFromCStruct(/gOvmfGopIgdVolumeDxeFileGuid\s*=\s*(\{.*\})/.exec(dec)?.[1] ?? '')).toBe(
      IGD_VOLUME_DXE_FILE_GUID,
    );
    expect(guidFromCStruct(/gOvmfGopIgdVolumeGuid\s*=\s*(\{.*\})/.exec(dec)?.[1] ?? '')).toBe(
      IGD_VOLUME_GUID,
    );
    expect(IGD_VOLUME_NAME_GUID).toBe(IGD_VOLUME_GUID);
    expect(policyInf).toMatch(/^\s*\[Depex\]\s*(#.*\n\s*)*AFTER gOvmfGopIgdVolumeDxeFileGuid\s*$/m);
    expect(guidFromCStruct(/gPlatformGopPolicyProtocolGuid\s*=\s*(\{.*\})/.exec(dec)?.[1] ?? '')).toBe(
      PLATFORM_GOP_POLICY_PROTOCOL_GUID,
    );
    const header = files.get('OvmfGopPkg/Include/Protocol/PlatformGopPolicy.h') as string;
    expect(
      guidFromCStruct(/#define PLATFORM_GOP_POLICY_PROTOCOL_GUID \\\s*(\{.*\})/.exec(header)?.[1] ?? ''),
    ).toBe(PLATFORM_GOP_POLICY_PROTOCOL_GUID);
  });

  it('adds IgdDeviceTable.h generated from the device table, and follows a changed table', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'ovmf-build-overlay-'));
    try {
      const overlay = await loadOverlay();
      const header = overlay.files.find((file) => file.path === IGD_DEVICE_TABLE_HEADER);
      expect(text(header?.data ?? new Uint8Array())).toBe(igdDeviceHeader(await loadIgdDeviceTable()));
      // The small table of the header's own test (test/fixtures/igd-device-table).
      const small = path.resolve(import.meta.dirname, '../../test/fixtures/igd-device-table/small.json');
      const other = await loadOverlay(DEFAULT_OVERLAY_DIR, { deviceTablePath: small });
      expect(other.digest).not.toBe(overlay.digest);
      expect(
        text(other.files.find((file) => file.path === IGD_DEVICE_TABLE_HEADER)?.data ?? new Uint8Array()),
      ).toContain('  { 0x3e9b, 0 }, // cfl\n');
      const table = path.join(dir, 'igd-devices.json');
      await writeFile(table, '{"platforms": 3}');
      await expect(loadOverlay(DEFAULT_OVERLAY_DIR, { deviceTablePath: table })).rejects.toMatchObject({
        code: 'E_INPUT_DEVICE_TABLE_INVALID',
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses an overlay that carries a user input or a stale generated header, and a missing overlay', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'ovmf-build-overlay-'));
    try {
      await cp(DEFAULT_OVERLAY_DIR, dir, { recursive: true });
      const before = (await loadOverlay(dir)).digest;
      expect(before).toBe((await loadOverlay()).digest);
      await writeFile(path.join(dir, 'OvmfGopPkg/IntelGopDriver/IntelGopDriver.efi'), 'MZ');
      await expect(loadOverlay(dir)).rejects.toMatchObject({
        code: 'E_EDK2_OVERLAY_INVALID',
        details: { dir, files: ['OvmfGopPkg/IntelGopDriver/IntelGopDriver.efi'] },
      });
      await rm(path.join(dir, 'OvmfGopPkg/IntelGopDriver/IntelGopDriver.efi'));
      await writeFile(path.join(dir, IGD_DEVICE_TABLE_HEADER), '// stale');
      await expect(loadOverlay(dir)).rejects.toMatchObject({
        code: 'E_EDK2_OVERLAY_INVALID',
        details: { dir, files: [IGD_DEVICE_TABLE_HEADER] },
      });
      await rm(path.join(dir, IGD_DEVICE_TABLE_HEADER));
      await writeFile(path.join(dir, 'OvmfGopPkg/OvmfGopPkg.dec'), 'changed');
      expect((await loadOverlay(dir)).digest).not.toBe(before);
      await expect(loadOverlay(path.join(dir, 'missing'))).rejects.toMatchObject({
        code: 'E_EDK2_OVERLAY_INVALID',
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
