import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parseIgdDeviceTable } from '../igd/device-table.js';
import { loadIgdDeviceTable } from '../igd/load.js';
import { igdDeviceHeader } from './igd-device-header.js';
import { DEFAULT_OVERLAY_DIR } from './overlay.js';

const run = promisify(execFile);
const INCLUDE_DIR = path.join(DEFAULT_OVERLAY_DIR, 'OvmfGopPkg/Include');

// A small table and the exact header it must give (test/fixtures/igd-device-table/README.md).
const FIXTURE_DIR = path.resolve(import.meta.dirname, '../../test/fixtures/igd-device-table');
const SMALL_TABLE_JSON = path.join(FIXTURE_DIR, 'small.json');

describe('igdDeviceHeader', () => {
  it('writes the platforms in table order and the device IDs sorted, as C', async () => {
    const small = parseIgdDeviceTable(await readFile(SMALL_TABLE_JSON));
    expect(igdDeviceHeader(small)).toBe(await readFile(path.join(FIXTURE_DIR, 'small.h'), 'utf8'));
  });

  it('compiles with IgdAssignmentLogic.h, and IgdLookupDevice finds every device of the JSON as the TS lookup does', async () => {
    const table = await loadIgdDeviceTable();
    const dir = await mkdtemp(path.join(tmpdir(), 'ovmf-build-igd-header-'));
    try {
      await writeFile(path.join(dir, 'IgdDeviceTable.h'), igdDeviceHeader(table));
      // Every 16-bit ID: the table's IDs must be found with their platform, every other one not.
      await writeFile(
        path.join(dir, 'lookup.c'),
        [
          '#define IGD_LOGIC_HOST',
          '#include <stdio.h>',
          '#include <IgdDeviceTable.h>',
          'int main (void) {',
          '  for (unsigned id = 0; id <= 0xffff; id++) {',
          '    const IGD_PLATFORM_INFO *p = IgdLookupDevice (mIgdDeviceIds, IGD_DEVICE_ID_COUNT, mIgdPlatforms, IGD_PLATFORM_COUNT, (UINT16)id);',
          '    if (p != NULL) printf ("%04x %s %s %u %u\\n", id, p->Key, p->GraphicsVersion, p->Bdsm, p->Gms);',
          '  }',
          '  return 0;',
          '}',
        ].join('\n'),
      );
      await run('gcc', [
        '-std=c99',
        '-Wall',
        '-Wextra',
        '-Werror',
        '-I',
        dir,
        '-I',
        INCLUDE_DIR,
        '-o',
        path.join(dir, 'lookup'),
        path.join(dir, 'lookup.c'),
      ]);
      const { stdout } = await run(path.join(dir, 'lookup'));
      const bdsm = { none: 0, bdsm32: 1, bdsm64: 2 };
      const gms = { none: 0, gen6: 1, gen8: 2, chv: 3, gen9: 4 };
      const expected = [...table.byDeviceId.entries()]
        .sort(([a], [b]) => Number.parseInt(a, 16) - Number.parseInt(b, 16))
        .map(([id, p]) => `${id} ${p.key} ${p.graphicsVersion} ${bdsm[p.bdsm]} ${gms[p.gms]}\n`)
        .join('');
      expect(table.byDeviceId.size).toBe(310);
      expect(stdout).toBe(expected);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
