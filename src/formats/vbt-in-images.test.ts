// VBT validation on the VBT files inside corpus firmware images, taken out with the
// firmware parser. Their checksums are part of why a stale checksum is only a warning.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { firmwareEntries, readCorpus } from '../../test/corpus.js';
import { listFiles, parseFirmware, walkNodes } from './firmware-tree.js';
import { parseVbt } from './vbt.js';

const EFI_SECTION_RAW = 0x19;
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** Measured: the second Gemini Lake IFWI VBT carries a stale checksum byte. */
const STALE_CHECKSUM = new Set(['DBADD769-E86A-4819-8120-E991792C0BC1']);

describe('parseVbt on the VBT files inside corpus images', () => {
  const entries = firmwareEntries().filter((e) => (e.truth.vbt ?? []).length > 0);

  it('the manifest names 2 images with VBT files (3 VBTs)', () => {
    expect(entries.map((e) => [e.path, e.truth.vbt?.length])).toEqual([
      ['images/geminilake-ovmf-with-gop-vbt-gk41.fd', 1],
      ['images/geminilake-protectli-vp2410-ifwi.bin', 2],
    ]);
  });

  for (const entry of entries) {
    it(entry.path, () => {
      const raws = new Map<string, Uint8Array>();
      for (const file of listFiles(parseFirmware(readCorpus(entry.path)))) {
        for (const node of walkNodes(file)) {
          if (node.kind === 'section' && node.section.type === EFI_SECTION_RAW)
            raws.set(file.guid, node.body);
        }
      }
      for (const truth of entry.truth.vbt ?? []) {
        const body = raws.get(truth.file_guid);
        expect(body, `${truth.file_guid} RAW section`).toBeDefined();
        if (body === undefined) continue;
        expect([body.length, sha(body)]).toEqual([truth.body_size, truth.body_sha256]);
        const info = parseVbt(body);
        expect({
          signature: info.signature,
          vbtSize: info.vbtSize,
          sha256: info.sha256,
          bdbVersion: info.bdbVersion,
          checksumValid: info.checksum.valid,
        }).toEqual({
          signature: truth.signature,
          vbtSize: truth.vbt_size_field,
          sha256: truth.vbt_sha256_trimmed_to_vbt_size,
          bdbVersion: truth.intel_vbt_decode.bdb_version,
          checksumValid: !STALE_CHECKSUM.has(truth.file_guid),
        });
      }
    });
  }
});
