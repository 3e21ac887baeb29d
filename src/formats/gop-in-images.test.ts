// GOP recognition on the drivers inside the corpus firmware images (the real GOP and the
// GOP-named policy/helper/debug modules next to it), taken out with the firmware parser.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { firmwareEntries, readCorpus } from '../../test/corpus.js';
import { listFiles, parseFirmware, walkNodes } from './firmware-tree.js';
import { classifyGopDriver } from './gop.js';

const EFI_SECTION_PE32 = 0x10;
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

function pe32Bodies(image: Uint8Array): Map<string, Uint8Array> {
  const bodies = new Map<string, Uint8Array>();
  for (const file of listFiles(parseFirmware(image))) {
    for (const node of walkNodes(file)) {
      if (node.kind === 'section' && node.section.type === EFI_SECTION_PE32) bodies.set(file.guid, node.body);
    }
  }
  return bodies;
}

describe('classifyGopDriver on the GOP-named drivers inside corpus images', () => {
  const entries = firmwareEntries().filter(
    (e) => (e.truth.gop ?? []).length > 0 || e.truth.other_gop_named_files.length > 0,
  );

  it('the manifest names 2 images with GOP or GOP-named drivers (4 drivers)', () => {
    expect(entries.map((e) => e.path)).toEqual([
      'images/geminilake-ovmf-with-gop-vbt-gk41.fd',
      'images/kabylake-platform-clevo-p870km-modded-spi.rom',
    ]);
  });

  for (const entry of entries) {
    it(entry.path, () => {
      const bodies = pe32Bodies(readCorpus(entry.path));
      const drivers = [...(entry.truth.gop ?? []), ...entry.truth.other_gop_named_files];
      for (const truth of drivers) {
        const body = bodies.get(truth.file_guid);
        expect(body, `${truth.ui_name ?? truth.file_guid} PE32 section`).toBeDefined();
        if (body === undefined) continue;
        expect([body.length, sha(body)]).toEqual([truth.pe_size, truth.pe_sha256]);
        const result = classifyGopDriver(body);
        expect(result.isGop, `${truth.ui_name}`).toBe(truth.is_intel_gop);
        if (result.isGop) {
          expect(result.info.build).toBe(truth.gop_build);
        } else {
          expect(result.reason).toBe(
            `x64 EFI boot-service driver of ${truth.pe_size} bytes without the UTF-16LE "Intel(R) GOP Driver" string (a policy, helper or debug module, whatever its file name)`,
          );
        }
      }
    });
  }
});
