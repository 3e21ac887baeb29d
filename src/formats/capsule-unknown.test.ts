// Capsules whose header GUID no table knows (issue 12: an Intel server capsule parsed only
// because _FVH scanning found its volumes). They are recognised by the shape of their
// EFI_CAPSULE_HEADER and named "unknown capsule GUID <guid>". Input: EDK2's own `GenFv -c`
// capsule (test/fixtures/edk2/fixture.cap) with its CapsuleGuid replaced by one no table
// knows; the negatives change one header field each, and no corpus file is taken for one.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { guidToBytes } from '../core/guid.js';
import { concat, le32 } from '../../test/ffs-builder.js';
import { corpusAvailable, corpusEntries, readCorpus } from '../../test/corpus.js';
import { capsuleKindOf, capsuleLabel, looksLikeCapsuleHeader, parseCapsuleHeader } from './capsule.js';
import { detectFileKind } from './detect.js';
import type { CapsuleNode } from './firmware-node.js';
import { parseFirmware } from './firmware-tree.js';

const read = (name: string): Uint8Array =>
  new Uint8Array(readFileSync(path.resolve(import.meta.dirname, '../../test/fixtures/edk2', name)));
const UNKNOWN_GUID = 'D5F0F7E0-2C0B-4A4E-9B6F-3E1D2A7C8B91';
const edk2Capsule = read('fixture.cap');
const withGuid = (bytes: Uint8Array, guid: string): Uint8Array =>
  concat(guidToBytes(guid), bytes.subarray(16));
const unknown = withGuid(edk2Capsule, UNKNOWN_GUID);

describe('capsules with an unknown header GUID', () => {
  it('GenFv -c output under an unknown GUID: kind unknown, the header fields, the volume under it', () => {
    expect(edk2Capsule.length).toBe(0x220);
    expect(looksLikeCapsuleHeader(unknown)).toBe(true);
    expect(capsuleKindOf(unknown)).toBe('unknown');
    expect(detectFileKind(unknown)).toBe('capsule');
    const header = parseCapsuleHeader(unknown);
    expect(header).toEqual({
      kind: 'unknown',
      guid: UNKNOWN_GUID,
      headerSize: 0x20,
      flags: 0x1_0000,
      capsuleSizeInBytes: 0x220,
      bodyOffset: 0x20,
      bodySizeInBytes: 0x200,
      fmp: null,
    });
    expect(capsuleLabel(header)).toBe(`unknown capsule GUID ${UNKNOWN_GUID}`);

    const tree = parseFirmware(unknown, { strict: true });
    expect(tree.format).toBe('capsule');
    const capsule = tree.root.children[0] as CapsuleNode;
    expect([capsule.kind, capsule.name, capsule.text, capsule.offset]).toEqual([
      'capsule',
      `unknown capsule GUID ${UNKNOWN_GUID}`,
      UNKNOWN_GUID,
      0,
    ]);
    expect(capsule.body).toEqual(read('capsule.fv'));
    expect(capsule.children.map((c) => [c.kind, c.offset])).toEqual([['volume', 0x20]]);
    expect(tree.problems).toEqual([]);
  });

  it('a known GUID keeps its name ("UEFI capsule"); the unknown one is only taken when the header fits the file', () => {
    expect(capsuleLabel(parseCapsuleHeader(edk2Capsule))).toBe('UEFI capsule');
    const field = (at: number, value: number): Uint8Array => {
      const bytes = unknown.slice();
      bytes.set(le32(value), at);
      return bytes;
    };
    const misses: [string, Uint8Array][] = [
      ['CapsuleImageSize one byte short of the file', concat(unknown, Uint8Array.of(0))],
      ['CapsuleImageSize past the file', field(24, 0x221)],
      ['HeaderSize below the header', field(16, 0x1b)],
      ['HeaderSize not below the image', field(16, 0x220)],
      [
        'HeaderSize above 64 KiB',
        concat(field(16, 0x1_0001).subarray(0, 24), le32(0x2_0000), new Uint8Array(0x2_0000 - 28)),
      ],
      ['a reserved flag (bit 19)', field(20, 0x8_0000)],
      [
        'an all-zero GUID with _FVH at 0x28 (a volume ZeroVector; its FileSystemGuid bytes made to fit)',
        concat(
          read('capsule.fv').subarray(0, 16),
          le32(0x20),
          le32(0x1_0000),
          le32(0x200),
          read('capsule.fv').subarray(28),
        ),
      ],
      ['an all-ones GUID (erased flash)', withGuid(unknown, 'FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF')],
    ];
    for (const [what, bytes] of misses) {
      expect([what, capsuleKindOf(bytes)]).toEqual([what, null]);
    }
    // Dell's LVFS TPM capsule has an all-zero GUID: without _FVH at 0x28 the zeros are a GUID.
    expect(capsuleKindOf(withGuid(unknown, '00000000-0000-0000-0000-000000000000'))).toBe('unknown');
    // Without the capsule, the volume inside is still found by scanning, as before.
    expect(detectFileKind(misses[0]?.[1] as Uint8Array)).toBe('image');
    expect(() => parseCapsuleHeader(misses[1]?.[1] as Uint8Array)).toThrow(
      expect.objectContaining({
        code: 'E_CAPSULE_BAD_GUID',
        message:
          'no known capsule GUID at offset 0, and no EFI_CAPSULE_HEADER whose sizes fit the 0x220-byte file',
      }),
    );
  });

  it.skipIf(!corpusAvailable())('no corpus image, ROM, GOP or VBT is taken for an unknown capsule', () => {
    for (const entry of corpusEntries()) {
      expect([entry.path, capsuleKindOf(readCorpus(entry.path))]).toEqual([entry.path, null]);
    }
  });
});
