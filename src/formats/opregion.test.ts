import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { OvmfBuildError } from '../core/errors.js';
import { atOffset, expectFormatError, sha256 } from '../../test/bytes-helpers.js';
import { CORPUS_DIR } from '../../test/corpus.js';
import {
  ASLE_RVDA_OFFSET,
  ASLE_RVDS_OFFSET,
  buildOpRegion,
  MAILBOX4_SIZE,
  MAX_OPREGION_BYTES,
  MBOX,
  OPREGION_SIZE,
  opRegionVbtBytes,
  parseOpRegion,
} from './opregion.js';
import { parseVbt } from './vbt.js';
import { cpuNow } from '../../test/cpu-time.js';

const vbtDir = path.join(CORPUS_DIR, 'vbt');
const corpusVbts = readdirSync(vbtDir)
  .filter((name) => name.endsWith('.vbt'))
  .sort()
  .map((name) => ({ name, bytes: new Uint8Array(readFileSync(path.join(vbtDir, name))) }));
const read = (name: string): Uint8Array => {
  const entry = corpusVbts.find((item) => item.name === name);
  if (entry === undefined) throw new Error(`corpus VBT ${name} missing`);
  return entry.bytes;
};
const small = read('cometlake-intel-nuc10i5fnh.vbt');
const large = read('alderlake-n-tianbei-n1pro.vbt');
const u32 = (bytes: Uint8Array, offset: number): number =>
  new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(offset, true);
const u64 = (bytes: Uint8Array, offset: number): bigint =>
  new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(offset, true);

describe('buildOpRegion', () => {
  /*
   * struct opregion_header { u8 signature[16]; u32 size; struct { u8 rsvd, revision, minor, major; } over;
   *   u8 bios_ver[32]; u8 vbios_ver[16]; u8 driver_ver[16]; u32 mboxes; u32 driver_model; u32 pcon;
   *   u8 dver[32]; u8 rsvd[124]; }  -- i915 intel_opregion.c
   */
  it('writes every header field at its offset and the VBT in mailbox 4 when it fits 6 KiB', () => {
    const region = buildOpRegion({ vbt: small, version: '2.0' });
    const vbtSize = parseVbt(small).vbtSize;
    expect(vbtSize).toBe(4517);
    expect(region.length).toBe(0x2000);
    expect(Buffer.from(region.subarray(0, 16)).toString('latin1')).toBe('IntelGraphicsMem');
    expect(u32(region, 0x10)).toBe(8);
    expect([...region.subarray(0x14, 0x18)]).toEqual([0, 0, 0, 2]);
    expect(Buffer.from(region.subarray(0x18, 0x18 + 24)).toString('latin1')).toBe('ovmf-build test OpRegion');
    expect(region[0x18 + 24]).toBe(0);
    expect(u32(region, 0x58)).toBe(0x1d);
    expect(u64(region, 0x3ba)).toBe(0n);
    expect(u32(region, 0x3c2)).toBe(0);
    expect(sha256(region.subarray(0x400, 0x400 + vbtSize))).toBe(sha256(small.subarray(0, vbtSize)));
    // The padding after vbt_size is dropped, the rest of the mailbox is zero.
    expect(region.subarray(0x400 + vbtSize).every((byte) => byte === 0)).toBe(true);
    // Nothing but the header, the VBT and zeros.
    expect(region.subarray(0x5c, 0x400).every((byte) => byte === 0)).toBe(true);
  });

  it('puts a VBT larger than 6 KiB after the 8 KiB in version 2.1, RVDA = 0x2000 relative, RVDS = its size', () => {
    const vbtSize = parseVbt(large).vbtSize;
    expect(vbtSize).toBe(8737);
    const region = buildOpRegion({ vbt: large, version: '2.1' });
    expect(region.length).toBe(0x2000 + 8737);
    expect([...region.subarray(0x14, 0x18)]).toEqual([0, 0, 1, 2]);
    expect(u32(region, 0x10)).toBe(8);
    expect(u64(region, ASLE_RVDA_OFFSET)).toBe(0x2000n);
    expect(u32(region, ASLE_RVDS_OFFSET)).toBe(8737);
    expect(sha256(region.subarray(0x2000))).toBe(sha256(large.subarray(0, 8737)));
    expect(region.subarray(0x400, 0x2000).every((byte) => byte === 0)).toBe(true);
  });

  it('refuses a VBT larger than 6 KiB in version 2.0 (E_OPREGION_VBT_TOO_LARGE)', () => {
    const error = expectFormatError(
      () => buildOpRegion({ vbt: large, version: '2.0' }),
      'E_OPREGION_VBT_TOO_LARGE',
    );
    expect(error.details).toEqual({ vbtSizeInBytes: 8737, mailbox4SizeInBytes: 6144, version: '2.0' });
  });

  it('refuses bytes that are not a VBT (E_OPREGION_BAD_VBT) and bad options (TypeError)', () => {
    expectFormatError(() => buildOpRegion({ vbt: new Uint8Array(100) }), 'E_OPREGION_BAD_VBT');
    expect(() => buildOpRegion({ vbt: small, version: '3.0' as '2.0' })).toThrow(TypeError);
    expect(() => buildOpRegion({ vbt: small, biosVersion: 'x'.repeat(33) })).toThrow(TypeError);
    expect(() => buildOpRegion({ vbt: small, mailboxes: -1 })).toThrow(TypeError);
  });

  it('without mailbox 5 gives mailbox 4 the whole 7 KiB', () => {
    const region = buildOpRegion({ vbt: small, mailboxes: MBOX.acpi | MBOX.asle | MBOX.vbt });
    const info = parseOpRegion(region);
    expect(info.vbt?.areaSizeInBytes).toBe(0x1c00);
  });
});

describe('parseOpRegion', () => {
  it.each(corpusVbts.map((entry) => [entry.name, entry.bytes] as const))(
    'round-trips %s through 2.1 and, when it fits, 2.0',
    (_name, bytes) => {
      const vbtSize = parseVbt(bytes).vbtSize;
      const expected = sha256(bytes.subarray(0, vbtSize));
      const fits = vbtSize <= MAILBOX4_SIZE;
      for (const version of fits ? (['2.0', '2.1'] as const) : (['2.1'] as const)) {
        const region = buildOpRegion({ vbt: bytes, version });
        const info = parseOpRegion(atOffset(region));
        expect(info.versionText).toBe(version);
        expect(info.vbt?.source).toBe(fits ? 'mailbox4' : 'rvda');
        expect(info.vbt?.offset).toBe(fits ? 0x400 : 0x2000);
        expect(info.vbt?.sizeInBytes).toBe(vbtSize);
        expect(sha256(opRegionVbtBytes(region, info))).toBe(expected);
        expect(info.notes).toEqual([]);
      }
      const forced = buildOpRegion({ vbt: bytes, forceExtendedVbt: true });
      const info = parseOpRegion(forced);
      expect(info.vbt?.source).toBe('rvda');
      expect(sha256(opRegionVbtBytes(forced, info))).toBe(expected);
    },
  );

  it('finds four corpus VBTs larger than mailbox 4 (they need RVDA)', () => {
    const over = corpusVbts
      .filter((entry) => parseVbt(entry.bytes).vbtSize > MAILBOX4_SIZE)
      .map((e) => e.name);
    expect(over).toEqual([
      'alderlake-n-tianbei-n1pro.vbt',
      'alderlake-s-asus-h610m-k.vbt',
      'alderlake-starlabs-starbook.vbt',
      'tigerlake-starlabs-starbook.vbt',
    ]);
  });

  it('reads the header fields', () => {
    const info = parseOpRegion(buildOpRegion({ vbt: small, biosVersion: 'BIOS 1.2' }));
    expect({ ...info, vbt: info.vbt?.source }).toEqual({
      sizeInKiB: 8,
      version: { major: 2, minor: 1, revision: 0 },
      versionText: '2.1',
      mailboxes: 0x1d,
      biosVersion: 'BIOS 1.2',
      vbiosVersion: '',
      driverVersion: '',
      rvda: 0n,
      rvds: 0,
      vbt: 'mailbox4',
      notes: [],
    });
  });

  it('treats RVDA in a 2.0 OpRegion as a physical address', () => {
    const region = buildOpRegion({ vbt: large, version: '2.1' });
    region[0x16] = 0; // now 2.0: RVDA 0x2000 is an absolute address
    const unknown = parseOpRegion(region);
    expect(unknown.vbt).toBeNull();
    expect(unknown.notes[0]).toBe(
      "OpRegion 2.0 RVDA 0x2000 is a physical address; the OpRegion's own address is not known",
    );
    const base = 0x7ffd_0000n;
    new DataView(region.buffer).setBigUint64(ASLE_RVDA_OFFSET, base + 0x2000n, true);
    const located = parseOpRegion(region, { physicalAddress: base });
    expect(located.vbt?.source).toBe('rvda');
    expect(located.vbt?.offset).toBe(0x2000);
    expect(parseOpRegion(region, { physicalAddress: base + 0x1000n }).vbt).toBeNull();
  });

  it('falls back to mailbox 4 when RVDA points inside the OpRegion or past the data (as i915 does)', () => {
    const region = buildOpRegion({ vbt: small });
    const dv = new DataView(region.buffer);
    dv.setBigUint64(ASLE_RVDA_OFFSET, 0x400n, true);
    dv.setUint32(ASLE_RVDS_OFFSET, 0x1000, true);
    const inside = parseOpRegion(region);
    expect(inside.vbt?.source).toBe('mailbox4');
    expect(inside.notes).toEqual(['RVDA 0x400 points inside the 0x2000-byte OpRegion']);
    dv.setBigUint64(ASLE_RVDA_OFFSET, 0xffff_ffff_ffff_f000n, true);
    const past = parseOpRegion(region);
    expect(past.vbt?.source).toBe('mailbox4');
    expect(past.notes).toEqual([
      'RVDA 0xfffffffffffff000 + RVDS 0x1000 ends at 0x10000000000000000, past the 0x2000 bytes given',
    ]);
  });

  it('reports an OpRegion without a VBT as vbt null, and opRegionVbtBytes throws E_OPREGION_NO_VBT', () => {
    const region = buildOpRegion({ vbt: small });
    region.fill(0, 0x400, 0x2000);
    const info = parseOpRegion(region);
    expect(info.vbt).toBeNull();
    expect(info.notes).toEqual([
      'no valid VBT in mailbox 4: E_VBT_BAD_SIGNATURE: no "$VBT" signature at 0x0 (found "\\u0000\\u0000\\u0000\\u0000")',
    ]);
    expectFormatError(() => opRegionVbtBytes(region, info), 'E_OPREGION_NO_VBT');
  });

  it('rejects a short, oversized or unsigned OpRegion with coded errors', () => {
    const region = buildOpRegion({ vbt: small });
    expectFormatError(() => parseOpRegion(region.subarray(0, 0x1fff)), 'E_OPREGION_TRUNCATED');
    expectFormatError(() => parseOpRegion(new Uint8Array(MAX_OPREGION_BYTES + 1)), 'E_OPREGION_TOO_LARGE');
    const unsigned = region.slice();
    unsigned[0] = 0x69;
    expectFormatError(() => parseOpRegion(unsigned), 'E_OPREGION_BAD_SIGNATURE');
  });

  it('only notes an odd size field (i915 never reads it) and refuses version 0 (no such OpRegion)', () => {
    const region = buildOpRegion({ vbt: small });
    new DataView(region.buffer).setUint32(0x10, 0xffff_ffff, true);
    const odd = parseOpRegion(region);
    expect(odd.vbt?.source).toBe('mailbox4');
    expect(odd.notes).toEqual(['the size field at 0x10 says 4294967295 KiB, not 8']);
    const zero = buildOpRegion({ vbt: small });
    zero[0x17] = 0;
    zero[0x16] = 0;
    const info = parseOpRegion(zero);
    expect(info.vbt).toBeNull();
    expect(info.notes).toEqual(['OpRegion version 0.0 is not a version a driver reads']);
  });

  it('uses RVDA only when mailbox 3 (ASLE) is present, as i915 does', () => {
    const region = buildOpRegion({ vbt: small, forceExtendedVbt: true, mailboxes: MBOX.acpi | MBOX.vbt });
    const info = parseOpRegion(region);
    expect(info.vbt).toBeNull();
    expect(info.notes[0]).toMatch(/^no valid VBT in mailbox 4: E_VBT_BAD_SIGNATURE/u);
  });

  it('refuses a VBT whose vbt_size is smaller than its own header', () => {
    const region = buildOpRegion({ vbt: small });
    // vbt_size 0x2f with bdb_offset 0 and bdb_size 0: i915 would take it; nothing real looks like it.
    const dv = new DataView(region.buffer);
    dv.setUint16(0x400 + 0x18, 0x2f, true);
    dv.setUint32(0x400 + 0x1c, 0, true);
    dv.setUint16(0x400 + 0x14, 0, true);
    const info = parseOpRegion(region);
    expect(info.vbt).toBeNull();
    expect(info.notes).toEqual([
      'no valid VBT in mailbox 4: E_VBT_TRUNCATED: vbt_size 0x2f is smaller than the 0x30-byte VBT header',
    ]);
  });

  it('either parses or throws its own FormatError for mutated OpRegions (fast-check)', () => {
    const seeds = [buildOpRegion({ vbt: small }), buildOpRegion({ vbt: large })];
    // Mutations aimed at the fields that steer the parser, plus anywhere at random.
    const hot = [
      0x10,
      0x11,
      0x13,
      0x16,
      0x17,
      0x58,
      ASLE_RVDA_OFFSET,
      ASLE_RVDA_OFFSET + 7,
      ASLE_RVDS_OFFSET,
      ASLE_RVDS_OFFSET + 1,
      0x400 + 0x18,
      0x400 + 0x1c,
      0x2000 + 0x18,
      0x2000 + 0x1c,
    ];
    fc.assert(
      fc.property(
        fc.nat(seeds.length - 1),
        fc.array(fc.tuple(fc.oneof(fc.constantFrom(...hot), fc.nat(0x2000 + 8736)), fc.nat(255)), {
          maxLength: 16,
        }),
        fc.option(fc.nat(0x2000 + 8737), { nil: undefined }),
        (which, edits, cut) => {
          const seed = seeds[which] as Uint8Array;
          const bytes = seed.slice(0, cut ?? seed.length);
          for (const [at, value] of edits) if (at < bytes.length) bytes[at] = value;
          const started = cpuNow();
          try {
            const info = parseOpRegion(bytes);
            if (info.vbt !== null) {
              expect(info.vbt.offset + info.vbt.sizeInBytes).toBeLessThanOrEqual(bytes.length);
              expect(opRegionVbtBytes(bytes, info).length).toBe(info.vbt.sizeInBytes);
            }
          } catch (error) {
            expect(error).toBeInstanceOf(OvmfBuildError);
            expect((error as OvmfBuildError).code).toMatch(/^E_OPREGION_/u);
          }
          expect(cpuNow() - started).toBeLessThan(500);
        },
      ),
      { numRuns: 2_000 },
    );
  });

  it('never accepts random bytes of any length without throwing its own error (fast-check)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: OPREGION_SIZE + 64 }), (bytes) => {
        try {
          parseOpRegion(bytes);
          expect.unreachable('random bytes have no signature');
        } catch (error) {
          expect((error as OvmfBuildError).code).toMatch(/^E_OPREGION_(TRUNCATED|BAD_SIGNATURE)$/u);
        }
      }),
      { numRuns: 300 },
    );
  });
});
