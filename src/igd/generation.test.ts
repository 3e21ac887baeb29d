import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { assertGopDriver, classifyGopDriver } from '../formats/gop.js';
import { parseVbt } from '../formats/vbt.js';
import { igdWiring, lookupDevice, parseIgdDeviceTable } from './device-table.js';
import { generationWarnings, gopFamily, vbtGraphicsMajors } from './generation.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const CORPUS = path.resolve(ROOT, '../shared/corpus');
const read = (file: string): Uint8Array => new Uint8Array(readFileSync(path.join(CORPUS, file)));
const table = parseIgdDeviceTable(
  new Uint8Array(readFileSync(path.join(ROOT, 'containers/igd-devices.json'))),
);

function warningsFor(deviceId: string, gopFile: string, vbtFile: string): string[] {
  return generationWarnings({
    deviceId,
    platform: lookupDevice(table, deviceId),
    gop: assertGopDriver(read(`gop/${gopFile}`)),
    vbt: parseVbt(read(`vbt/${vbtFile}`)),
  });
}

describe('gopFamily', () => {
  it('places every corpus GOP in its family', () => {
    const families = Object.fromEntries(
      readdirSync(path.join(CORPUS, 'gop'))
        .sort()
        .flatMap((file) => {
          const result = classifyGopDriver(read(`gop/${file}`));
          return result.isGop ? [[file, gopFamily(result.info)?.key ?? null]] : [];
        }),
    );
    expect(families).toEqual({
      'alderlake-dasharo-novacustom-ns5x.efi': 'gen12',
      'alderlake-n-twinlake-tianbei-n1pro.efi': 'gen12',
      'alderlake-raptorlake-anbeen-pc-12-14.efi': 'gen12',
      'cometlake-anbeen-pc-10.efi': 'gen9',
      'cometlake-mrchromebox-cml.efi': 'gen9',
      'haswell-broadwell-anbeen-pc-4-5.efi': 'hsw-bdw',
      'haswell-broadwell-mrchromebox-hsw.efi': 'hsw-bdw',
      'kabylake-era-acrn-edk2.efi': 'gen9',
      'skylake-coffeelake-anbeen-pc-6-9.efi': 'gen9',
      'skylake-kabylake-mrchromebox-skl.efi': 'gen9',
      'tigerlake-dasharo-novacustom-ns5x.efi': 'gen12',
      'tigerlake-mrchromebox-tgl.efi': 'gen12',
      'tigerlake-rocketlake-anbeen-pc-11.efi': 'gen12',
    });
    expect(gopFamily({ build: '2001', digitFields: ['2001'] })).toBeNull();
  });
});

describe('vbtGraphicsMajors', () => {
  it('widens the signatures that lie and falls back to the BDB version', () => {
    expect({
      broadwell: vbtGraphicsMajors(parseVbt(read('vbt/broadwell-purism-librem13v1.vbt'))),
      cometlake: vbtGraphicsMajors(parseVbt(read('vbt/cometlake-intel-nuc10i5fnh.vbt'))),
      adls: vbtGraphicsMajors(parseVbt(read('vbt/alderlake-s-asus-h610m-k.vbt'))),
      adln: vbtGraphicsMajors(parseVbt(read('vbt/alderlake-n-tianbei-n1pro.vbt'))),
      unknownOld: vbtGraphicsMajors({ signature: '$VBT FOO', bdbVersion: 170 }),
      unknownNothing: vbtGraphicsMajors({ signature: '$VBT FOO', bdbVersion: 100 }),
    }).toEqual({
      broadwell: [7, 8],
      cometlake: [9],
      adls: [11, 12],
      adln: [11, 12],
      unknownOld: [7, 8],
      unknownNothing: null,
    });
  });
});

describe('generationWarnings', () => {
  it('stays silent for matching inputs, including lying VBT signatures', () => {
    expect({
      cml: warningsFor('9b41', 'cometlake-mrchromebox-cml.efi', 'cometlake-intel-nuc10i5fnh.vbt'),
      cfl: warningsFor('3e9b', 'skylake-coffeelake-anbeen-pc-6-9.efi', 'coffeelake-lenovo-m720q.vbt'),
      bdw: warningsFor('1616', 'haswell-broadwell-mrchromebox-hsw.efi', 'broadwell-purism-librem13v1.vbt'),
      adls: warningsFor('4680', 'alderlake-raptorlake-anbeen-pc-12-14.efi', 'alderlake-s-asus-h610m-k.vbt'),
      adln: warningsFor('46d4', 'alderlake-n-twinlake-tianbei-n1pro.efi', 'alderlake-n-tianbei-n1pro.vbt'),
      tgl: warningsFor('9a49', 'tigerlake-mrchromebox-tgl.efi', 'tigerlake-starlabs-starbook.vbt'),
    }).toEqual({ cml: [], cfl: [], bdw: [], adls: [], adln: [], tgl: [] });
  });

  it('reports real contradictions, each once', () => {
    expect(
      warningsFor('46d4', 'haswell-broadwell-anbeen-pc-4-5.efi', 'alderlake-n-tianbei-n1pro.vbt'),
    ).toEqual([
      'device 8086:46d4 is Alder Lake-N (incl. Twin Lake) (graphics 12) but the GOP driver is for Haswell/Broadwell (GOP 5.x)',
      'the GOP driver is for Haswell/Broadwell (GOP 5.x) but the VBT ("$VBT ALDERLAKE-P", BDB 256) is for graphics 11/12',
    ]);
    expect(warningsFor('9b41', 'cometlake-mrchromebox-cml.efi', 'haswell-lenovo-t440p.vbt')).toEqual([
      'device 8086:9b41 is Comet Lake (graphics 9.5) but the VBT ("$VBT HASWELL", BDB 177) is for graphics 7/8',
      'the GOP driver is for Skylake to Comet Lake (GOP 9.x) but the VBT ("$VBT HASWELL", BDB 177) is for graphics 7/8',
    ]);
    expect(warningsFor('1234', 'cometlake-mrchromebox-cml.efi', 'cometlake-intel-nuc10i5fnh.vbt')).toEqual([
      'device 8086:1234 is not in the IGD device table (containers/igd-devices.json): not an Intel iGPU the table knows, so IgdAssignmentDxe will not handle it',
    ]);
  });
});

describe('igdWiring', () => {
  it('gives every platform its QEMU wiring: legacy mode and i440fx up to Comet Lake, q35 after', () => {
    const rows = table.platforms.map((p) => {
      const w = igdWiring(p);
      return `${p.key} ${w.legacyMode ? 'legacy' : 'upt'} ${w.defaultMachine} ${w.minQemu}`;
    });
    expect(rows).toEqual([
      ...['snb', 'ivb', 'vlv', 'hsw', 'bdw', 'chv', 'skl', 'bxt', 'glk', 'kbl', 'cfl', 'cml'].map(
        (k) => `${k} legacy i440fx 7.2`,
      ),
      ...['icl', 'ehl', 'jsl', 'tgl', 'rkl', 'adls', 'adlp', 'adln', 'rpls', 'rplp'].map(
        (k) => `${k} upt q35 8.0`,
      ),
      ...['mtl', 'arl', 'lnl', 'ptl'].map((k) => `${k} upt q35 10.0`),
    ]);
  });
});
