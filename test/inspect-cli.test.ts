import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { dig, runCli } from './cli-harness.js';
import { corpusEntries, corpusPath } from './corpus.js';
import { ffsFile, section, sections, u8, uefiCapsule, volume } from './ffs-builder.js';

const work = mkdtempSync(path.join(os.tmpdir(), 'ovmf-build-inspect-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function inspectJson(file: string): Promise<Record<string, unknown>> {
  const result = await runCli(['inspect', file, '--json']);
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as Record<string, unknown>;
}

describe('ovmf-build inspect --json on the corpus', () => {
  for (const entry of corpusEntries('gop')) {
    it(entry.path, async () => {
      const json = await inspectJson(corpusPath(entry.path));
      const truth = entry.ground_truth as { has_intel_gop_driver_utf16: boolean; gop_build: string | null };
      expect(json['sha256']).toBe(entry.sha256);
      if (truth.has_intel_gop_driver_utf16) {
        expect(json['kind']).toBe('gop');
        expect(json['gop']).toMatchObject({ build: truth.gop_build, sha256: entry.sha256, size: entry.size });
        expect(dig(json, 'gop', 'pe')).toMatchObject({
          format: 'PE32+',
          machineName: 'x64',
          subsystemName: 'EFI_BOOT_SERVICE_DRIVER',
        });
      } else {
        expect(json['kind']).toBe('pe');
        expect(json['notGopReason']).toMatch(/without the UTF-16LE "Intel\(R\) GOP Driver" string/);
      }
    });
  }
  for (const entry of corpusEntries('vbt')) {
    it(entry.path, async () => {
      const json = await inspectJson(corpusPath(entry.path));
      const truth = entry.ground_truth as { signature: string; bdb_version: number; vbt_size: number };
      expect(json['kind']).toBe('vbt');
      expect(json['vbt']).toMatchObject({
        signature: truth.signature,
        bdbVersion: truth.bdb_version,
        size: entry.size,
        vbtSize: truth.vbt_size,
      });
    });
  }
  for (const entry of corpusEntries('rom')) {
    it(entry.path, async () => {
      const json = await inspectJson(corpusPath(entry.path));
      const truth = entry.ground_truth as {
        images: {
          vendor: string;
          device: string;
          code_type: string;
          contains_intel_gop_driver?: boolean;
          gop_build?: string | null;
        }[];
      };
      expect(json['kind']).toBe('option-rom');
      const images = json['images'] as Record<string, unknown>[];
      expect(
        images.map((i) => [
          i['vendorId'],
          i['deviceId'],
          i['codeType'] === 'EFI' ? 'EFI' : 'legacy',
          i['gop'] !== null,
        ]),
      ).toEqual(
        truth.images.map((i) => [
          i.vendor,
          i.device,
          i.code_type === 'EFI' ? 'EFI' : 'legacy',
          i.contains_intel_gop_driver === true,
        ]),
      );
      for (const [n, image] of truth.images.entries()) {
        if (image.contains_intel_gop_driver === true)
          expect(dig(images[n], 'gop', 'build')).toBe(image.gop_build ?? null);
      }
    });
  }
  for (const entry of [...corpusEntries('image'), ...corpusEntries('ovmf')]) {
    it(entry.path, async () => {
      const json = await inspectJson(corpusPath(entry.path));
      expect(json['kind']).toBe('image');
      expect(dig(json, 'tree', 'type')).toBe('Image');
      expect(dig(json, 'tree', 'subtype')).toBe(entry.path.includes('clevo') ? 'Intel' : 'UEFI');
      expect(dig(json, 'stats', 'volumes')).toBeGreaterThan(0);
    });
  }
});

describe('ovmf-build inspect text and other kinds', () => {
  it('prints an indented tree with files, UI names and compression', async () => {
    const result = await runCli(['inspect', corpusPath('images/geminilake-ovmf-with-gop-vbt-gk41.fd')]);
    expect(result.code).toBe(0);
    const lines = result.stdout.split('\n');
    expect(lines[0]).toBe('UEFI image (uefi) size 0x37c000');
    expect(lines[1]).toBe('  Volume FFSv2 48DB5E17-707C-472D-91CD-1613E7EF51B0 @0x0 size 0x348000');
    expect(lines[2]).toBe('    File Volume image 9E21FD93-9C72-4C15-8C4B-E77F1DB2D792 @0x78 size 0xec0fa');
    expect(lines[3]).toBe(
      '      Section GUID defined EE4E5898-3914-4259-9D6E-DC7BD79403CF [LZMA 0xec0ca -> 0xce0090] @0x90 size 0xec0e2',
    );
    expect(lines).toContain(
      '            File DXE driver 1647B4F3-3E8A-4FDD-81C8-328ED647AB1A "IntelGopDriver" size 0x15d4e',
    );
  });

  it('recognises a UEFI capsule and shows the volume under it', async () => {
    const fv = volume([
      ffsFile('01234567-89AB-CDEF-0123-456789ABCDEF', 0x02, sections(section(0x19, u8(1, 2, 3)))),
    ]);
    const capsule = uefiCapsule(fv);
    const file = path.join(work, 'test.cap');
    writeFileSync(file, capsule);
    const json = await inspectJson(file);
    expect(json['kind']).toBe('capsule');
    const cap = dig(json, 'tree', 'children', 0);
    expect(cap).toMatchObject({ kind: 'capsule', subtype: 'UEFI', offset: 0, size: 28 + fv.length });
    expect(dig(cap, 'children', 0)).toMatchObject({ kind: 'volume', offset: 28, size: fv.length });
    expect(dig(cap, 'children', 0, 'children', 0)).toMatchObject({
      kind: 'file',
      guid: '01234567-89AB-CDEF-0123-456789ABCDEF',
    });
  });

  it('says unknown for bytes that are nothing it knows', async () => {
    const file = path.join(work, 'noise.bin');
    writeFileSync(file, new Uint8Array(1000).fill(0x42));
    const json = await inspectJson(file);
    expect(json).toEqual({ kind: 'unknown', file, size: 1000, sha256: json['sha256'] });
  });
});
