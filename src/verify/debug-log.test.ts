import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { findLoadedDriver, parseDebugLog, splitLogLines } from './debug-log.js';

// Excerpts in the formats of edk2-stable202211 (see debug-log.ts): `%g` prints lower-case
// hex, `%11p` upper-case hex padded to 11 digits, `%r` the status text.
const GOP = '1647B4F3-3E8A-4FDD-81C8-328ED647AB1A';
const POLICY = '6FE0ECC8-FDFF-490E-A0C6-B60B3A8E98A2';

const NORMAL_BOOT = [
  'SecCoreStartupWithStack(0xFFFCC000, 0x820000)',
  'Loading PEIM 9B3ADA4F-AE56-4C24-8DEA-F03B7558AE50',
  'Loading PEIM at 0x00000821000 EntryPoint=0x00000826A7C PcdPeim.efi',
  'Loading PEIM 222c386d-5abc-4fb4-b124-fbb82488acf4',
  'Loading DXE CORE at 0x0007EEA1000 EntryPoint=0x0007EEB9F6B',
  'Loading driver 80cf7257-87ab-47f9-a3fe-d50b76d89541',
  'InstallProtocolInterface: 5B1B31A1-9562-11D2-8E3F-00A0C969723B 7EE95B40',
  'Loading driver at 0x0007EE7A000 EntryPoint=0x0007EE7D1D5 PcdDxe.efi',
  'InstallProtocolInterface: 11B34006-D85B-4D0A-A290-D5A571310EF7 7EE80360',
  'Loading driver 1647b4f3-3e8a-4fdd-81c8-328ed647ab1a',
  'InstallProtocolInterface: 5B1B31A1-9562-11D2-8E3F-00A0C969723B 7E8B5040',
  'Loading driver at 0x0007E86C000 EntryPoint=0x0007E86D2B8 ',
  'InstallProtocolInterface: 18A031AB-B443-4D1A-A5C0-0C09261E9F71 7E8B5C18',
  'Loading driver 6fe0ecc8-fdff-490e-a0c6-b60b3a8e98a2',
  'InstallProtocolInterface: 5B1B31A1-9562-11D2-8E3F-00A0C969723B 7E8B4A40',
  'Loading driver at 0x0007E865000 EntryPoint=0x0007E8662A1 PlatformGopPolicyDxe.efi',
  'OvmfGopPkg: VBT found, 5632 bytes at 0x7E85F018, signature "$VBT GEMINILAKE     "',
  'InstallProtocolInterface: EC2E931B-3281-48A5-8107-DF8A8BED3C5D 7E866010',
  'Loading driver a19b1fe7-c1bc-49f8-875f-54a5d542443f',
  'Loading driver at 0x0007E85A000 EntryPoint=0x0007E85C0F1 CpuIo2Dxe.efi',
  'Error: Image at 0007E85A000 start failed: Unsupported',
  'Driver 2ec9da37-ee35-4de1-86f5-8bb4a7a22ab5 was discovered but not loaded!!',
  '[Bds] Entry...',
  '[Bds] Stop Hotkey Service!',
  'Loading driver at 0x0007E3C4000 EntryPoint=0x0007E3C5A1B Shell.efi',
].join('\n');

// Verbatim lines of a real DEBUG boot (OvmfPkgX64 from Debian's edk2 2022.11 with
// OvmfGopPkg, the corpus Comet Lake GOP and NUC10 VBT; q35, TCG): three excerpts.
const REAL_EXCERPT = [
  'Loading driver 2EC9DA37-EE35-4DE9-86C5-6D9A81DC38A7',
  'InstallProtocolInterface: 5B1B31A1-9562-11D2-8E3F-00A0C969723B 1F173540',
  'Loading driver at 0x0001F16B000 EntryPoint=0x0001F16D099 AmdSevDxe.efi',
  'InstallProtocolInterface: BC62157E-3E33-4FEC-9920-2D3B36D750DF 1F173818',
  'ProtectUefiImageCommon - 0x1F173540',
  '  - 0x000000001F16B000 - 0x0000000000003A80',
  'Error: Image at 0001F16B000 start failed: Unsupported',
  'Loading driver E750224E-7BCE-40AF-B5BB-47E3611EB5C2',
  'InstallProtocolInterface: 5B1B31A1-9562-11D2-8E3F-00A0C969723B 1F173540',
  'Loading driver at 0x0001F169000 EntryPoint=0x0001F16B065 TdxDxe.efi',
  'ProtectUefiImageCommon - 0x1ED2A140',
  '  - 0x000000001ECFD000 - 0x0000000000002140',
  'InstallProtocolInterface: 480F8AE9-0C46-4AA9-BC89-DB9FBA619806 1ECFEE00',
  'Loading driver 6FE0ECC8-FDFF-490E-A0C6-B60B3A8E98A2',
  'InstallProtocolInterface: 5B1B31A1-9562-11D2-8E3F-00A0C969723B 1ED0EB40',
  'Loading driver at 0x0001ECE7000 EntryPoint=0x0001ECE8110 PlatformGopPolicyDxe.efi',
  'InstallProtocolInterface: BC62157E-3E33-4FEC-9920-2D3B36D750DF 1ED0EE18',
  'ProtectUefiImageCommon - 0x1ED0EB40',
  '  - 0x000000001ECE7000 - 0x0000000000002540',
  'OvmfGopPkg: VBT found, 4608 bytes at 0x1ECFB018, signature "$VBT SKYLAKE"',
  'InstallProtocolInterface: EC2E931B-3281-48A5-8107-DF8A8BED3C5D 1ECE93B0',
  'Loading driver 8657015B-EA43-440D-949A-AF3BE365C0FC',
  'InstallProtocolInterface: 5B1B31A1-9562-11D2-8E3F-00A0C969723B 1ED0E1C0',
  '  - 0x000000001E824000 - 0x0000000000005C40',
  'InstallProtocolInterface: 18A031AB-B443-4D1A-A5C0-0C09261E9F71 1E829A60',
  'InstallProtocolInterface: 6A7A5CFF-E8D9-4F70-BADA-75AB3025CE14 1E829A30',
  'Loading driver 1647B4F3-3E8A-4FDD-81C8-328ED647AB1A',
  'InstallProtocolInterface: 5B1B31A1-9562-11D2-8E3F-00A0C969723B 1E92E540',
  'Loading driver at 0x0001E7F8000 EntryPoint=0x0001E7F84A4 ',
  'InstallProtocolInterface: BC62157E-3E33-4FEC-9920-2D3B36D750DF 1E92E898',
  'ProtectUefiImageCommon - 0x1E92E540',
  '  - 0x000000001E7F8000 - 0x0000000000011E60',
  'InstallProtocolInterface: 18A031AB-B443-4D1A-A5C0-0C09261E9F71 1E807E10',
  'InstallProtocolInterface: 6A7A5CFF-E8D9-4F70-BADA-75AB3025CE14 1E807E80',
  'InstallProtocolInterface: DBCB2FCD-E29A-410E-9DD9-FA9D5FF4CDA7 1E807E50',
  'InstallProtocolInterface: 651B7EBD-CE13-41D0-82E5-A063ABBE9BB6 1E807E60',
  'Driver 6490F1C5-EBCC-4665-8892-0075B9BB49B7 was discovered but not loaded!!',
  '[Bds] Entry...',
  '[BdsDxe] Locate Variable Policy protocol - Success',
].join('\n');

describe('parseDebugLog', () => {
  it('reads dispatch order, image addresses, names, failures and BDS from a normal boot', () => {
    const summary = parseDebugLog(`${NORMAL_BOOT}\n`);
    expect(summary).toEqual({
      lineCount: 25,
      loadedPeims: ['9B3ADA4F-AE56-4C24-8DEA-F03B7558AE50', '222C386D-5ABC-4FB4-B124-FBB82488ACF4'],
      loadedDrivers: [
        {
          guid: '80CF7257-87AB-47F9-A3FE-D50B76D89541',
          line: 6,
          imageBase: '7EE7A000',
          entryPoint: '7EE7D1D5',
          name: 'PcdDxe.efi',
          messages: ['InstallProtocolInterface: 11B34006-D85B-4D0A-A290-D5A571310EF7 7EE80360'],
        },
        {
          guid: GOP,
          line: 10,
          imageBase: '7E86C000',
          entryPoint: '7E86D2B8',
          messages: ['InstallProtocolInterface: 18A031AB-B443-4D1A-A5C0-0C09261E9F71 7E8B5C18'],
        },
        {
          guid: POLICY,
          line: 14,
          imageBase: '7E865000',
          entryPoint: '7E8662A1',
          name: 'PlatformGopPolicyDxe.efi',
          messages: [
            'OvmfGopPkg: VBT found, 5632 bytes at 0x7E85F018, signature "$VBT GEMINILAKE     "',
            'InstallProtocolInterface: EC2E931B-3281-48A5-8107-DF8A8BED3C5D 7E866010',
          ],
        },
        {
          guid: 'A19B1FE7-C1BC-49F8-875F-54A5D542443F',
          line: 19,
          imageBase: '7E85A000',
          entryPoint: '7E85C0F1',
          name: 'CpuIo2Dxe.efi',
          messages: [],
        },
      ],
      notLoaded: [{ line: 22, guid: '2EC9DA37-EE35-4DE1-86F5-8BB4A7A22AB5', smm: false }],
      startFailures: [
        {
          line: 21,
          imageBase: '7E85A000',
          status: 'Unsupported',
          guid: 'A19B1FE7-C1BC-49F8-875F-54A5D542443F',
        },
      ],
      asserts: [],
      reachedBds: true,
      bdsLine: 23,
      policyVbt: {
        found: true,
        line: 17,
        sizeInBytes: 5_632,
        address: '7E85F018',
        signature: '$VBT GEMINILAKE     ',
      },
      imageLoadLineCount: 5,
    });
  });

  it('finds drivers by GUID in either case', () => {
    const summary = parseDebugLog(NORMAL_BOOT);
    expect(findLoadedDriver(summary, GOP.toLowerCase())?.line).toBe(10);
    expect(findLoadedDriver(summary, POLICY)?.name).toBe('PlatformGopPolicyDxe.efi');
    expect(findLoadedDriver(summary, '00000000-0000-0000-0000-000000000000')).toBeUndefined();
  });

  it('does not give the shell (loaded by BDS, not the dispatcher) to the last driver', () => {
    const summary = parseDebugLog(NORMAL_BOOT);
    expect(summary.loadedDrivers.at(-1)?.messages).toEqual([]);
    expect(summary.loadedDrivers.map((driver) => driver.name ?? null)).toEqual([
      'PcdDxe.efi',
      null,
      'PlatformGopPolicyDxe.efi',
      'CpuIo2Dxe.efi',
    ]);
  });

  it('records a start failure at an address no driver was loaded at without a GUID', () => {
    const summary = parseDebugLog('Error: Image at 00012345000 start failed: Not Found\n');
    expect(summary.startFailures).toEqual([{ line: 1, imageBase: '12345000', status: 'Not Found' }]);
  });

  it('reads the policy driver reporting a missing VBT, SMM discovery lines and ASSERTs', () => {
    const summary = parseDebugLog(
      [
        `Loading driver ${POLICY}`,
        'Loading driver at 0x0007E865000 EntryPoint=0x0007E8662A1 PlatformGopPolicyDxe.efi',
        'OvmfGopPkg: VBT file 1647b4f3-3e8a-4fef-81c8-328ed647ab1a not found: Not Found',
        'SMM Driver 9a5163e7-5c29-453f-825c-837a46a81e15 was discovered but not loaded!!',
        'ASSERT /build/MdeModulePkg/Core/Dxe/Mem/Page.c(1011): RangeEnd >= RangeStart',
      ].join('\r\n'),
    );
    expect(summary.policyVbt).toEqual({
      found: false,
      line: 3,
      guid: '1647B4F3-3E8A-4FEF-81C8-328ED647AB1A',
      status: 'Not Found',
    });
    expect(summary.notLoaded).toEqual([{ line: 4, guid: '9A5163E7-5C29-453F-825C-837A46A81E15', smm: true }]);
    expect(summary.asserts).toEqual([
      { line: 5, text: 'ASSERT /build/MdeModulePkg/Core/Dxe/Mem/Page.c(1011): RangeEnd >= RangeStart' },
    ]);
    expect(summary.reachedBds).toBe(false);
    expect(summary.bdsLine).toBeUndefined();
  });

  it('keeps a dispatched driver whose image did not load without an address', () => {
    const summary = parseDebugLog(
      `Loading driver ${GOP}\nLoading driver ${POLICY}\nLoading driver at 0x1000 EntryPoint=0x1010 X.efi\n`,
    );
    expect(summary.loadedDrivers.map(({ guid, imageBase }) => ({ guid, imageBase }))).toEqual([
      { guid: GOP, imageBase: undefined },
      { guid: POLICY, imageBase: '1000' },
    ]);
  });

  it('an empty log is an empty summary', () => {
    expect(parseDebugLog('')).toEqual({
      lineCount: 0,
      loadedPeims: [],
      loadedDrivers: [],
      notLoaded: [],
      startFailures: [],
      asserts: [],
      reachedBds: false,
      imageLoadLineCount: 0,
    });
  });
});

describe('splitLogLines', () => {
  it('splits on LF, drops CR and one trailing empty line, keeps a partial last line', () => {
    expect(splitLogLines('a\r\nb\n\nc')).toEqual(['a', 'b', '', 'c']);
    expect(splitLogLines('a\n')).toEqual(['a']);
    expect(splitLogLines('')).toEqual([]);
  });
});

describe('parseDebugLog on a real DEBUG boot excerpt', () => {
  it('attributes the start failure, finds both of our drivers, the VBT line and BDS', () => {
    const summary = parseDebugLog(REAL_EXCERPT);
    expect(
      summary.loadedDrivers.map(({ guid, line, imageBase, entryPoint, name }) => ({
        guid,
        line,
        imageBase,
        entryPoint,
        name,
      })),
    ).toEqual([
      {
        guid: '2EC9DA37-EE35-4DE9-86C5-6D9A81DC38A7',
        line: 1,
        imageBase: '1F16B000',
        entryPoint: '1F16D099',
        name: 'AmdSevDxe.efi',
      },
      {
        guid: 'E750224E-7BCE-40AF-B5BB-47E3611EB5C2',
        line: 8,
        imageBase: '1F169000',
        entryPoint: '1F16B065',
        name: 'TdxDxe.efi',
      },
      {
        guid: POLICY,
        line: 14,
        imageBase: '1ECE7000',
        entryPoint: '1ECE8110',
        name: 'PlatformGopPolicyDxe.efi',
      },
      {
        guid: '8657015B-EA43-440D-949A-AF3BE365C0FC',
        line: 22,
        imageBase: undefined,
        entryPoint: undefined,
        name: undefined,
      },
      // Intel's GOP driver is stripped: no PDB name after the entry point.
      { guid: GOP, line: 27, imageBase: '1E7F8000', entryPoint: '1E7F84A4', name: undefined },
    ]);
    expect(summary.startFailures).toEqual([
      { line: 7, imageBase: '1F16B000', status: 'Unsupported', guid: '2EC9DA37-EE35-4DE9-86C5-6D9A81DC38A7' },
    ]);
    expect(summary.notLoaded).toEqual([
      { line: 37, guid: '6490F1C5-EBCC-4665-8892-0075B9BB49B7', smm: false },
    ]);
    expect(summary.policyVbt).toEqual({
      found: true,
      line: 20,
      sizeInBytes: 4_608,
      address: '1ECFB018',
      signature: '$VBT SKYLAKE',
    });
    expect(summary.reachedBds).toBe(true);
    expect(summary.bdsLine).toBe(38);
    expect(findLoadedDriver(summary, POLICY)?.messages).toEqual([
      'InstallProtocolInterface: BC62157E-3E33-4FEC-9920-2D3B36D750DF 1ED0EE18',
      'ProtectUefiImageCommon - 0x1ED0EB40',
      '- 0x000000001ECE7000 - 0x0000000000002540',
      'OvmfGopPkg: VBT found, 4608 bytes at 0x1ECFB018, signature "$VBT SKYLAKE"',
      'InstallProtocolInterface: EC2E931B-3281-48A5-8107-DF8A8BED3C5D 1ECE93B0',
    ]);
  });
});

describe('parseDebugLog on random input (fast-check)', () => {
  const guidArbitrary = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((bytes) => {
    const h = Buffer.from(bytes).toString('hex');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  });

  it('never throws and counts lines, for any text', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 2_000 }), (text) => {
        const summary = parseDebugLog(text);
        expect(summary.lineCount).toBe(splitLogLines(text).length);
        expect(summary.reachedBds).toBe(summary.bdsLine !== undefined);
      }),
      { numRuns: 500 },
    );
  });

  it('finds every dispatched GUID, in order and upper case, among arbitrary noise lines', () => {
    // Noise is any line that is not itself a dispatcher or BDS line.
    const noise = fc.string({ maxLength: 80 }).filter((line) => !/[\r\n]|Loading|\[Bds\]/.test(line));
    fc.assert(
      fc.property(fc.array(fc.tuple(guidArbitrary, fc.boolean(), noise), { maxLength: 40 }), (entries) => {
        const text = entries
          .map(([guid, upper, line]) => `${line}\nLoading driver ${upper ? guid.toUpperCase() : guid}\n`)
          .join('');
        expect(parseDebugLog(text).loadedDrivers.map((driver) => driver.guid)).toEqual(
          entries.map(([guid]) => guid.toUpperCase()),
        );
      }),
      { numRuns: 300 },
    );
  });
});
