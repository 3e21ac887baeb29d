// The IGD check's pure parts: the pci_cfg_write trace (igd-trace.ts), our drivers' debug lines
// (igd-debug-log.ts) and the verdict built on both (igd-verdict.ts).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { CORPUS_DIR } from '../../test/corpus.js';
import { buildOpRegion } from '../formats/opregion.js';
import { lookupDevice, type IgdDeviceTable, type IgdPlatform } from '../igd/device-table.js';
import { loadIgdDeviceTable } from '../igd/load.js';
import { parseIgdDebugLog } from './igd-debug-log.js';
import { parsePciCfgWrites } from './igd-trace.js';
import { evaluateIgdCheck, type IgdEvaluationInput } from './igd-verdict.js';

const vbt = (name: string): Uint8Array => new Uint8Array(readFileSync(path.join(CORPUS_DIR, 'vbt', name)));
const small = buildOpRegion({ vbt: vbt('coffeelake-lenovo-m720q.vbt') });
const large = buildOpRegion({ vbt: vbt('tigerlake-starlabs-starbook.vbt') });
const MiB = 1_048_576;

let table: IgdDeviceTable;
const platform = (id: string): IgdPlatform => {
  const found = lookupDevice(table, id);
  if (found === undefined) throw new Error(`no platform for ${id}`);
  return found;
};
beforeAll(async () => {
  table = await loadIgdDeviceTable();
});

/** Lines as QEMU 7.2 writes them with -trace pci_cfg_write (measured on this machine). */
const ENUMERATION = [
  'pci_cfg_write mch 00:00.0 @0x60 <- 0xb0000001',
  'pci_cfg_write VGA 00:02.0 @0x4 <- 0x0',
  'pci_cfg_write VGA 00:02.0 @0x10 <- 0xffffffff',
  'pci_cfg_write VGA 00:02.0 @0x10 <- 0x8',
  'pci_cfg_write ICH9-LPC 00:1f.0 @0x60 <- 0xb',
].join('\n');

function input(overrides: Partial<IgdEvaluationInput>): IgdEvaluationInput {
  return {
    traceText: ENUMERATION,
    debugText: '',
    registers: null,
    memoryAtAsls: null,
    opRegion: small,
    bdsmSizeInBytes: 32 * MiB,
    platform: platform('3e9b'),
    deviceId: '3e9b',
    ...overrides,
  };
}

describe('parsePciCfgWrites', () => {
  it('reads QEMU 7.2 pci_cfg_write lines (hex slot), with or without the -msg timestamp prefix', () => {
    const writes = parsePciCfgWrites(
      `${ENUMERATION}\n1234@1700000000.123456:pci_cfg_write VGA 00:02.0 @0xfc <- 0x7ffd0000\nnot a trace line\npci_cfg_read VGA 00:02.0 @0xfc -> 0x0\n`,
    );
    expect(
      writes.map(({ device, bus, slot, func, offset, value }) => [device, bus, slot, func, offset, value]),
    ).toEqual([
      ['mch', 0, 0, 0, 0x60, 0xb000_0001],
      ['VGA', 0, 2, 0, 0x4, 0],
      ['VGA', 0, 2, 0, 0x10, 0xffff_ffff],
      ['VGA', 0, 2, 0, 0x10, 8],
      ['ICH9-LPC', 0, 0x1f, 0, 0x60, 0xb],
      ['VGA', 0, 2, 0, 0xfc, 0x7ffd_0000],
    ]);
    expect(writes[5]?.text).toBe('1234@1700000000.123456:pci_cfg_write VGA 00:02.0 @0xfc <- 0x7ffd0000');
  });

  it('skips malformed lines instead of misreading them', () => {
    expect(
      parsePciCfgWrites(
        [
          'pci_cfg_write VGA 00:02.0 @0xfc <- 0x1234567890', // more than 32 bits
          'pci_cfg_write VGA 00:02.8 @0xfc <- 0x1000', // function 8
          'pci_cfg_write VGA 00:02.0 @0x1000 <- 0x1000', // past extended config space
          'pci_cfg_write VGA 0:2.0 @0xfc <- 0x1000',
          ` pci_cfg_write VGA 00:02.0 @0xfc <- 0x1000`,
        ].join('\n'),
      ),
    ).toEqual([]);
  });
});

describe('parseIgdDebugLog', () => {
  it('reads the agreed IgdAssignmentDxe and OvmfGopPkg lines and ignores everything else', () => {
    const parsed = parseIgdDebugLog(
      [
        'Loading driver 5C0E8B2F-5E0A-4A38-8F5C-0E6C4A6B0B1D',
        'IgdAssignmentDxe: 00:02.0 is 1234:1111, treated as 8086:3e9b (opt/ovmf-build/igd-device-id)',
        'IgdAssignmentDxe: 00:02.0 8086:3e9b cfl gen 9.5',
        'IgdAssignmentDxe: OpRegion 8192 bytes at 0x7E8F1000, ASLS written',
        'IgdAssignmentDxe: stolen memory 33554432 bytes at 0x7C000000, BDSM 0x5C (32-bit)\r',
        'OvmfGopPkg: VBT from OpRegion (mailbox 4), 4441 bytes at 0x7E8F1400',
        '[Bds] Entry...',
      ].join('\n'),
    );
    expect(parsed.lines).toHaveLength(5);
    expect(parsed.report).toEqual({
      device: { deviceId: '3e9b', key: 'cfl', graphicsVersion: '9.5' },
      opRegion: { sizeInBytes: 8192, address: 0x7e8f_1000 },
      stolen: { sizeInBytes: 32 * MiB, address: 0x7c00_0000, register: 0x5c, width: 32 },
      vbt: { source: 'mailbox4', sizeInBytes: 4441, address: 0x7e8f_1400 },
    });
    expect(
      parseIgdDebugLog(
        'OvmfGopPkg: VBT from firmware volume, 4517 bytes at 0x7F000000\nIgdAssignmentDxe: no BDSM on mtl',
      ).report,
    ).toEqual({
      noBdsm: 'mtl',
      vbt: { source: 'firmware-volume', sizeInBytes: 4517, address: 0x7f00_0000 },
    });
  });
});

describe('evaluateIgdCheck', () => {
  it('fails a firmware that never touched ASLS or BDSM (stock OVMF) with exactly those two failures', () => {
    const result = evaluateIgdCheck(input({ registers: { id: 0x1111_1234, asls: 0, bdsm32: 0, bdsm64: 0 } }));
    expect(result.failures).toEqual([
      'ASLS (config 0xFC of 00:02.0) was never written: no firmware driver set up the OpRegion',
      'BDSM (0x5c, 32-bit) was never written on cfl',
    ]);
    expect(result).toMatchObject({
      asls: null,
      bdsm: null,
      opRegionMatches: false,
      vbtSource: null,
      traceLines: [],
    });
  });

  const asls = 0x7e8f_1000;
  const stolen = 0x7c00_0000;
  const gen9Trace = `${ENUMERATION}\npci_cfg_write VGA 00:02.0 @0xfc <- 0x7e8f1000\npci_cfg_write VGA 00:02.0 @0x5c <- 0x7c000000\n`;
  const gen9Debug = [
    'IgdAssignmentDxe: 00:02.0 8086:3e9b cfl gen 9.5',
    'IgdAssignmentDxe: OpRegion 8192 bytes at 0x7E8F1000, ASLS written',
    'IgdAssignmentDxe: stolen memory 33554432 bytes at 0x7C000000, BDSM 0x5C (32-bit)',
    'OvmfGopPkg: VBT from OpRegion (mailbox 4), 4441 bytes at 0x7E8F1400',
  ].join('\n');

  it('passes a Gen9 firmware that wrote ASLS and a 32-bit BDSM and serves the mailbox 4 VBT', () => {
    const result = evaluateIgdCheck(
      input({
        traceText: gen9Trace,
        debugText: gen9Debug,
        registers: { id: 0x1111_1234, asls, bdsm32: stolen, bdsm64: 0 },
        memoryAtAsls: small.slice(),
        stolenZeroed: true,
      }),
    );
    expect(result).toEqual({
      failures: [],
      info: [],
      asls,
      bdsm: { offset: 0x5c, width: 32, value: stolen },
      opRegionMatches: true,
      vbtSource: 'opregion-mailbox4',
      traceLines: [
        'pci_cfg_write VGA 00:02.0 @0xfc <- 0x7e8f1000',
        'pci_cfg_write VGA 00:02.0 @0x5c <- 0x7c000000',
      ],
      debugLines: gen9Debug.split('\n'),
    });
  });

  it('passes a Gen12 firmware that wrote BDSM as two dwords at 0xC0/0xC4 and serves the RVDA VBT', () => {
    const result = evaluateIgdCheck(
      input({
        opRegion: large,
        platform: platform('46d4'),
        deviceId: '46d4',
        traceText: `${ENUMERATION}\npci_cfg_write VGA 00:02.0 @0xfc <- 0x7e8f1000\npci_cfg_write VGA 00:02.0 @0xc0 <- 0x7c000000\npci_cfg_write VGA 00:02.0 @0xc4 <- 0x0\n`,
        debugText: [
          'IgdAssignmentDxe: 00:02.0 8086:46d4 adln gen 12',
          `IgdAssignmentDxe: OpRegion ${large.length} bytes at 0x7E8F1000, ASLS written`,
          'IgdAssignmentDxe: stolen memory 33554432 bytes at 0x7C000000, BDSM 0xC0 (64-bit)',
          'OvmfGopPkg: VBT from OpRegion (RVDA), 8666 bytes at 0x7E8F3000',
        ].join('\n'),
        registers: { id: 0x1111_1234, asls, bdsm32: 0, bdsm64: stolen },
        memoryAtAsls: large.slice(),
      }),
    );
    expect(result.failures).toEqual([]);
    expect(result.bdsm).toEqual({ offset: 0xc0, width: 64, value: stolen });
    expect(result.vbtSource).toBe('opregion-rvda');
  });

  it('passes MTL only when no BDSM register was written, and fails a write at 0x5C there', () => {
    const mtl = { platform: platform('7d55'), deviceId: '7d55', memoryAtAsls: small.slice() };
    const clean = evaluateIgdCheck(
      input({ ...mtl, traceText: `${ENUMERATION}\npci_cfg_write VGA 00:02.0 @0xfc <- 0x7e8f1000` }),
    );
    expect(clean.failures).toEqual([]);
    expect(clean.bdsm).toBeNull();
    const wrong = evaluateIgdCheck(
      input({
        ...mtl,
        traceText: `${ENUMERATION}\npci_cfg_write VGA 00:02.0 @0xfc <- 0x7e8f1000\npci_cfg_write VGA 00:02.0 @0x5c <- 0x7c000000`,
      }),
    );
    expect(wrong.failures).toEqual([
      'BDSM at 0x5C was written on mtl (none): pci_cfg_write VGA 00:02.0 @0x5c <- 0x7c000000',
    ]);
  });

  it('fails the wrong width, bad alignment, memory that is not the OpRegion and a dirty stolen range', () => {
    const result = evaluateIgdCheck(
      input({
        traceText: `${ENUMERATION}\npci_cfg_write VGA 00:02.0 @0xfc <- 0x7e8f1800\npci_cfg_write VGA 00:02.0 @0xc0 <- 0x7c080000\npci_cfg_write VGA 00:02.0 @0x5c <- 0x7c080000`,
        registers: { id: 0x1111_1234, asls: 0x7e8f_1800, bdsm32: 0x7c08_0000, bdsm64: 0x7c08_0000 },
        memoryAtAsls: (() => {
          const copy = small.slice();
          copy[0x400] = 0;
          copy[0x401] = 0;
          return copy;
        })(),
        stolenZeroed: false,
      }),
    );
    expect(result.failures).toEqual([
      'ASLS 0x7e8f1800 is not page aligned',
      'the guest memory at ASLS 0x7e8f1800 is not the OpRegion: 2 of 8192 bytes differ, the first at offset 0x400',
      'BDSM at 0xC0/0xC4 was written on cfl (bdsm32): pci_cfg_write VGA 00:02.0 @0xc0 <- 0x7c080000',
      'BDSM 0x7c080000 is not 1 MiB aligned',
      'the stolen memory at 0x7c080000 is not zeroed',
    ]);
  });

  it('fails a stolen range past 4 GiB or over the OpRegion, and a register that disagrees with the trace', () => {
    const high = evaluateIgdCheck(
      input({
        traceText: `${ENUMERATION}\npci_cfg_write VGA 00:02.0 @0xfc <- 0x7e8f1000\npci_cfg_write VGA 00:02.0 @0x5c <- 0xfe000000`,
        registers: { id: 0x1111_1234, asls, bdsm32: 0xff00_0000, bdsm64: 0 },
        memoryAtAsls: small.slice(),
      }),
    );
    expect(high.failures).toEqual([
      "BDSM reads back as 0xff000000 but the trace's writes leave 0xfe000000",
      'the stolen memory at BDSM 0xff000000 (33554432 bytes) does not end below 4 GiB',
    ]);
    const overlap = evaluateIgdCheck(
      input({
        traceText: `${ENUMERATION}\npci_cfg_write VGA 00:02.0 @0xfc <- 0x7e8f1000\npci_cfg_write VGA 00:02.0 @0x5c <- 0x7e000000`,
        memoryAtAsls: small.slice(),
      }),
    );
    expect(overlap.failures).toEqual(['the stolen memory at 0x7e000000 overlaps the OpRegion at 0x7e8f1000']);
  });

  it('fails when the debug console shows the embedded VBT served, a wrong device, or no VBT line at all', () => {
    const base = { traceText: gen9Trace, memoryAtAsls: small.slice() };
    const fv = evaluateIgdCheck(
      input({
        ...base,
        debugText: gen9Debug.replace(
          /OvmfGopPkg: .*/u,
          'OvmfGopPkg: VBT from firmware volume, 4517 bytes at 0x7F000000',
        ),
      }),
    );
    expect(fv.vbtSource).toBe('firmware-volume');
    expect(fv.failures).toEqual([
      "the GOP policy served the VBT of the firmware volume (4517 bytes), not the OpRegion's",
    ]);
    const silent = evaluateIgdCheck(
      input({ ...base, debugText: gen9Debug.replace(/\nOvmfGopPkg: .*/u, '') }),
    );
    expect(silent.failures).toEqual([
      'the debug log does not say which VBT the GOP policy serves (no "OvmfGopPkg: VBT from ..." line)',
    ]);
    const wrongDevice = evaluateIgdCheck(
      input({ ...base, debugText: gen9Debug.replace('8086:3e9b cfl', '8086:5917 kbl') }),
    );
    expect(wrongDevice.failures).toEqual(['IgdAssignmentDxe took 00:02.0 for 5917 kbl, expected 3e9b cfl']);
    const wrongPlace = evaluateIgdCheck(
      input({
        ...base,
        debugText: gen9Debug.replace(
          '(mailbox 4), 4441 bytes at 0x7E8F1400',
          '(RVDA), 4441 bytes at 0x7E8F3000',
        ),
      }),
    );
    expect(wrongPlace.failures).toEqual([
      'the GOP policy serves the OpRegion VBT from rvda, 4441 bytes at 0x7e8f3000; expected mailbox4, 4441 bytes at 0x7e8f1400',
    ]);
  });

  it('expects no BDSM write when no stolen size is handed over', () => {
    const result = evaluateIgdCheck(
      input({
        bdsmSizeInBytes: 0,
        traceText: `${ENUMERATION}\npci_cfg_write VGA 00:02.0 @0xfc <- 0x7e8f1000`,
        memoryAtAsls: small.slice(),
      }),
    );
    expect(result.failures).toEqual([]);
    expect(result.info).toEqual([
      'no stolen size was given, and BDSM was not written',
      'the debug console is empty (a RELEASE firmware and no DEBUG driver in a ROM): the trace is the only oracle',
    ]);
  });
});
