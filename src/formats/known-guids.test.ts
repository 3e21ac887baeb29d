import { describe, expect, it } from 'vitest';
import { isGuidString } from '../core/guid.js';
import {
  GOP_POLICY_PROTOCOL_GUID,
  KNOWN_GOP_FILE_GUIDS,
  KNOWN_NON_GOP_FILES,
  KNOWN_VBT_FILE_GUIDS,
  knownGopFile,
  knownNonGopFile,
  knownVbtFile,
} from './known-guids.js';
import { loadManifest } from '../../test/corpus.js';

interface FileTruth {
  file_guid: string;
  ui_name: string | null;
  is_intel_gop?: boolean;
}
interface Entry {
  path: string;
  ground_truth: { gop?: FileTruth[] | null; vbt?: FileTruth[] | null; other_gop_named_files?: FileTruth[] };
}
const manifest = loadManifest() as unknown as { entries: Entry[] };

describe('known GUIDs', () => {
  it('are well-formed upper-case GUIDs, each listed once, each with a source', () => {
    const all = [...KNOWN_GOP_FILE_GUIDS, ...KNOWN_VBT_FILE_GUIDS, ...KNOWN_NON_GOP_FILES];
    for (const entry of all) {
      expect(isGuidString(entry.guid)).toBe(true);
      expect(entry.guid).toBe(entry.guid.toUpperCase());
      expect(entry.source.length).toBeGreaterThan(10);
    }
    expect(new Set(all.map((e) => e.guid)).size).toBe(all.length);
    expect(GOP_POLICY_PROTOCOL_GUID).toBe('EC2E931B-3281-48A5-8107-DF8A8BED3C5D');
  });

  it('cover every GOP, VBT and GOP-named file GUID in the corpus manifest', () => {
    let checked = 0;
    for (const entry of manifest.entries) {
      for (const gop of entry.ground_truth.gop ?? []) {
        expect(knownGopFile(gop.file_guid)?.name, entry.path).toBe(gop.ui_name);
        checked++;
      }
      for (const vbt of entry.ground_truth.vbt ?? []) {
        expect(knownVbtFile(vbt.file_guid.toLowerCase()), entry.path).toBeDefined();
        checked++;
      }
      for (const other of entry.ground_truth.other_gop_named_files ?? []) {
        expect(knownNonGopFile(other.file_guid)?.name, entry.path).toBe(other.ui_name);
        expect(knownGopFile(other.file_guid)).toBeUndefined();
        checked++;
      }
    }
    expect(checked).toBe(7);
  });
});
