import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { lookupDevice, normalizeDeviceId, parseIgdDeviceTable, stolenSizeFromGmch } from './device-table.js';
import { DEFAULT_DEVICE_TABLE_PATH } from './load.js';

const table = parseIgdDeviceTable(readFileSync(DEFAULT_DEVICE_TABLE_PATH));
const MiB = 1_048_576;

describe('IGD device table', () => {
  it('maps real device IDs to their platform and BDSM layout', () => {
    expect(lookupDevice(table, '3e9b')?.key).toBe('cfl');
    expect(lookupDevice(table, '0x9BC8')?.key).toBe('cml');
    expect(lookupDevice(table, '3185')?.key).toBe('glk');
    expect(lookupDevice(table, '46d4')?.key).toBe('adln');
    expect(lookupDevice(table, '9a49')?.bdsm).toBe('bdsm64');
    expect(lookupDevice(table, '0412')?.bdsm).toBe('bdsm32');
    expect(lookupDevice(table, '7d55')?.bdsm).toBe('none');
    expect(lookupDevice(table, '1234')).toBeUndefined();
  });

  it('lists each device ID once, Sandy Bridge to Panther Lake', () => {
    expect(table.platforms.map((p) => p.key)).toEqual([
      'snb',
      'ivb',
      'vlv',
      'hsw',
      'bdw',
      'chv',
      'skl',
      'bxt',
      'glk',
      'kbl',
      'cfl',
      'cml',
      'icl',
      'ehl',
      'jsl',
      'tgl',
      'rkl',
      'adls',
      'adlp',
      'adln',
      'rpls',
      'rplp',
      'mtl',
      'arl',
      'lnl',
      'ptl',
    ]);
    expect(table.byDeviceId.size).toBe(table.platforms.reduce((n, p) => n + p.deviceIds.length, 0));
  });

  it('refuses a table that lists one device under two platforms', () => {
    const text = JSON.stringify({
      platforms: [
        { key: 'a', name: 'A', graphicsVersion: '9', bdsm: 'bdsm32', gms: 'gen9', deviceIds: ['3e9b'] },
        { key: 'b', name: 'B', graphicsVersion: '9', bdsm: 'bdsm32', gms: 'gen9', deviceIds: ['3E9B'] },
      ],
    });
    expect(() => parseIgdDeviceTable(new TextEncoder().encode(text))).toThrow(
      expect.objectContaining({ code: 'E_INPUT_DEVICE_TABLE_INVALID' }),
    );
  });

  it('normalizes device ID spellings', () => {
    expect(normalizeDeviceId('0x46D4')).toBe('46d4');
    expect(normalizeDeviceId('406')).toBe('0406');
    expect(normalizeDeviceId('8086:46d4')).toBeNull();
  });

  it('decodes GMCH stolen sizes per encoding (Linux early-quirks)', () => {
    expect(stolenSizeFromGmch('gen6', 0x5 << 3)).toBe(160 * MiB);
    expect(stolenSizeFromGmch('gen8', 0x02 << 8)).toBe(64 * MiB);
    expect(stolenSizeFromGmch('gen9', 0x01 << 8)).toBe(32 * MiB);
    expect(stolenSizeFromGmch('gen9', 0xf0 << 8)).toBe(4 * MiB);
    expect(stolenSizeFromGmch('gen9', 0xf3 << 8)).toBe(16 * MiB);
    expect(stolenSizeFromGmch('chv', 0x11 << 8)).toBe(8 * MiB);
    expect(stolenSizeFromGmch('chv', 0x17 << 8)).toBe(4 * MiB);
    expect(stolenSizeFromGmch('none', 0xffff)).toBe(0);
  });
});
