// Cross-check against LongSoft UEFIExtract: for every corpus image and OVMF file, the
// multisets of FFS file GUIDs, volumes and section subtypes we parse equal the ones in
// UEFIExtract's report, and files at absolute offsets sit at the same offsets.
//
// Deliberate differences (none change the GUID multisets compared below):
// - Pad files: UEFIExtract names them "Padding file" (no GUID); we compare their count.
// - UEFIExtract also lists NVAR/VSS variables, CPD/FPT (ME) entries, microcode and BPDT
//   stores; those are not FFS files and are not compared.
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { listFiles, parseFirmware, walkNodes } from '../src/formats/firmware-tree.js';
import { corpusPath, firmwareEntries, readCorpus } from './corpus.js';

const GUID = /^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$/;

/** Why UEFIExtract cannot run, or null when it can (scripts/install.sh installs uefitool-cli). */
function uefiExtractProblem(): string | null {
  const error = spawnSync('UEFIExtract', [], { stdio: 'ignore' }).error;
  return error === undefined ? null : `UEFIExtract is not runnable (${error.message}): install uefitool-cli`;
}

export interface ReportRow {
  readonly type: string;
  readonly subtype: string;
  readonly base: number | null;
  readonly size: number;
  readonly depth: number;
  readonly name: string;
  readonly text: string | null;
}

/** Parses a UEFIExtract report: "Type | Subtype | Base | Size | CRC32 | Name [| text]"; depth = leading '-' count. */
export function parseReport(text: string): ReportRow[] {
  const rows: ReportRow[] = [];
  for (const line of text.split('\n').slice(1)) {
    if (line.trim() === '') continue;
    const cells = line.split('|').map((c) => c.trim());
    const [type, subtype, base, size, , nameCell, ...rest] = cells as [
      string,
      string,
      string,
      string,
      string,
      string,
      ...string[],
    ];
    const dashes = /^(-*)\s?(.*)$/.exec(nameCell) as RegExpExecArray;
    rows.push({
      type,
      subtype,
      base: base === 'N/A' ? null : parseInt(base, 16),
      size: parseInt(size, 16),
      depth: (dashes[1] as string).length,
      name: dashes[2] as string,
      text: rest.length > 0 ? rest.join('|') : null,
    });
  }
  return rows;
}

function multiset(values: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of [...values].sort()) out[v] = (out[v] ?? 0) + 1;
  return out;
}

const work = mkdtempSync(path.join(os.tmpdir(), 'ovmf-build-uefiextract-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

// Never skipped: the reference tool is part of the test setup, so a machine without it fails here.
describe('UEFIExtract cross-check', () => {
  it('UEFIExtract is on PATH', () => {
    expect(uefiExtractProblem()).toBeNull();
  });

  for (const entry of firmwareEntries()) {
    it(`${entry.path}: same FFS file GUIDs as UEFIExtract`, () => {
      const copy = path.join(work, path.basename(entry.path));
      copyFileSync(corpusPath(entry.path), copy);
      execFileSync('UEFIExtract', [copy, 'report'], { stdio: 'ignore', timeout: 120_000 });
      const rows = parseReport(readFileSync(`${copy}.report.txt`, 'utf8'));
      expect(rows[0]?.type).toBe('Image');
      const theirFiles = rows.filter((r) => r.type === 'File');
      const theirs = theirFiles.filter((r) => GUID.test(r.name)).map((r) => r.name);
      const theirPads = theirFiles.filter((r) => !GUID.test(r.name)).length;

      const tree = parseFirmware(readCorpus(entry.path), {
        strict: true,
        verifyChecksums: false,
        summarizePe: false,
      });
      const files = listFiles(tree);
      const ours = files.filter((f) => f.name !== 'Padding file').map((f) => f.guid);
      expect(multiset(ours)).toEqual(multiset(theirs));
      expect(files.length - ours.length).toBe(theirPads);
      expect(theirs.length).toBeGreaterThan(entry.path.includes('VARS') ? -1 : 0);
      // Volumes (subtype and name) and section subtypes: the same multisets as well.
      const nodes = [...walkNodes(tree.root)];
      expect(multiset(nodes.filter((n) => n.kind === 'volume').map((n) => `${n.subtype} ${n.name}`))).toEqual(
        multiset(rows.filter((r) => r.type === 'Volume').map((r) => `${r.subtype} ${r.name}`)),
      );
      expect(multiset(nodes.filter((n) => n.kind === 'section').map((n) => n.subtype))).toEqual(
        multiset(rows.filter((r) => r.type === 'Section').map((r) => r.subtype)),
      );
      // Files that UEFIExtract places at an absolute offset are at the same offset here.
      const ourOffsets = new Set(files.filter((f) => f.offset !== null).map((f) => `${f.name}@${f.offset}`));
      for (const row of theirFiles.filter((r) => r.base !== null && GUID.test(r.name))) {
        expect(ourOffsets.has(`${row.name}@${row.base}`), `${row.name} at ${row.base}`).toBe(true);
      }
    });
  }
});
