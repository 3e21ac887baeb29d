import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { OvmfBuildError } from '../core/errors.js';
import { assertVbt, BDB_HEADER_SIZE, looksLikeVbt, parseVbt, VBT_HEADER_SIZE } from './vbt.js';
import { CORPUS_DIR as corpus, loadManifest, REPO_ROOT } from '../../test/corpus.js';
import { errorCodeOf } from '../../test/bytes-helpers.js';
import { cpuNow } from '../../test/cpu-time.js';

interface VbtTruth {
  signature: string;
  vbt_version: number;
  vbt_header_size: number;
  vbt_size: number;
  bdb_offset: number;
  file_size: number;
  trailing_bytes: number;
  bdb_version: number;
  bdb_size: number;
  sha256_of_vbt_size_bytes: string;
}
interface Entry {
  path: string;
  kind: string;
  sha256: string;
  size: number;
  ground_truth: VbtTruth;
}
const manifest = loadManifest() as unknown as { entries: Entry[] };
const vbts = manifest.entries.filter((e) => e.kind === 'vbt');
const read = (p: string): Uint8Array => new Uint8Array(readFileSync(path.join(corpus, p)));

/** VBTs whose stored checksum byte does not make the vbt_size bytes sum to 0 (measured, see VbtInfo.checksum). */
const STALE_CHECKSUM = new Set([
  'vbt/haswell-asrock-b85pro4.vbt',
  'vbt/haswell-lenovo-t440p.vbt',
  'vbt/kabylake-lenovo-t480.vbt',
  'vbt/skylake-lenovo-m900.vbt',
  'vbt/alderlake-s-asus-h610m-k.vbt',
]);

/** A VBT (48-byte header, 22-byte BDB header of version `bdbVersion`) whose BDB blocks are `blocks`, from 70. */
function vbtWithBlocks(blocks: readonly number[], bdbVersion = 0): Uint8Array {
  const vbtSize = 48 + 22 + blocks.length;
  const bytes = new Uint8Array(vbtSize);
  const dv = new DataView(bytes.buffer);
  bytes.set(new TextEncoder().encode('$VBT TESTLAKE'), 0);
  dv.setUint16(22, 48, true);
  dv.setUint16(24, vbtSize, true);
  dv.setUint32(28, 48, true);
  bytes.set(new TextEncoder().encode('BIOS_DATA_BLOCK '), 48);
  dv.setUint16(64, bdbVersion, true);
  dv.setUint16(66, 22, true);
  dv.setUint16(68, vbtSize - 48, true);
  bytes.set(blocks, 70);
  return bytes;
}

/*
 * struct vbt_header {
 *   u8 signature[20];
 *   u16 version;
 *   u16 header_size;
 *   u16 vbt_size;
 *   u8 vbt_checksum;
 *   u8 reserved0;
 *   u32 bdb_offset;
 *   u32 aim_offset[4];
 * } __packed;                       // 48 bytes
 * struct bdb_header {
 *   u8 signature[16];               // "BIOS_DATA_BLOCK "
 *   u16 version;
 *   u16 header_size;
 *   u16 bdb_size;
 * } __packed;                       // 22 bytes
 */
function buildVbt(): Uint8Array {
  const vbtSize = 48 + 22 + 3 + 5 + 3 + 2;
  const bytes = new Uint8Array(vbtSize + 10);
  const dv = new DataView(bytes.buffer);
  bytes.set(new TextEncoder().encode('$VBT TESTLAKE       '), 0);
  dv.setUint16(20, 100, true);
  dv.setUint16(22, 48, true);
  dv.setUint16(24, vbtSize, true);
  dv.setUint32(28, 48, true);
  bytes.set(new TextEncoder().encode('BIOS_DATA_BLOCK '), 48);
  dv.setUint16(64, 230, true);
  dv.setUint16(66, 22, true);
  dv.setUint16(68, vbtSize - 48, true);
  bytes.set([1, 5, 0, 0xaa, 0xbb, 0xcc, 0xdd, 0xee], 70);
  bytes.set([254, 2, 0, 0x11, 0x22], 78);
  let sum = 0;
  for (let i = 0; i < vbtSize; i++) sum += bytes[i] as number;
  bytes[26] = (0x100 - (sum & 0xff)) & 0xff;
  return bytes;
}

describe('parseVbt on a synthetic VBT (every field)', () => {
  for (const base of [0, 1, 0x33]) {
    it(`at byteOffset ${base}`, () => {
      const vbt = buildVbt();
      const big = new Uint8Array(vbt.length + base).fill(0xee);
      big.set(vbt, base);
      const info = parseVbt(big.subarray(base));
      expect(info).toEqual({
        signature: '$VBT TESTLAKE',
        version: 100,
        headerSize: VBT_HEADER_SIZE,
        vbtSize: 83,
        bdbOffset: 48,
        bdbVersion: 230,
        bdbHeaderSize: BDB_HEADER_SIZE,
        bdbSize: 35,
        checksum: { stored: vbt[26], computed: vbt[26], valid: true },
        trailingBytes: 10,
        sha256: info.sha256,
        blocks: [
          { id: 1, offset: 70, sizeInBytes: 5 },
          { id: 254, offset: 78, sizeInBytes: 2 },
        ],
        warnings: [],
      });
      expect(info.sha256).toBe(createHash('sha256').update(vbt.subarray(0, 83)).digest('hex'));
    });
  }
});

describe('parseVbt on every corpus vbt/ file (manifest ground truth)', () => {
  it('covers the 15 vbt/ files of the manifest', () => {
    expect(vbts.length).toBe(15);
  });
  for (const entry of vbts) {
    it(entry.path, () => {
      const bytes = read(entry.path);
      const t = entry.ground_truth;
      const info = parseVbt(bytes);
      expect({
        signature: info.signature,
        vbt_version: info.version,
        vbt_header_size: info.headerSize,
        vbt_size: info.vbtSize,
        bdb_offset: info.bdbOffset,
        file_size: bytes.length,
        trailing_bytes: info.trailingBytes,
        bdb_version: info.bdbVersion,
        bdb_size: info.bdbSize,
        sha256_of_vbt_size_bytes: info.sha256,
      }).toEqual({
        signature: t.signature,
        vbt_version: t.vbt_version,
        vbt_header_size: t.vbt_header_size,
        vbt_size: t.vbt_size,
        bdb_offset: t.bdb_offset,
        file_size: t.file_size,
        trailing_bytes: t.trailing_bytes,
        bdb_version: t.bdb_version,
        bdb_size: t.bdb_size,
        sha256_of_vbt_size_bytes: t.sha256_of_vbt_size_bytes,
      });
      expect(info.checksum.valid).toBe(!STALE_CHECKSUM.has(entry.path));
      expect(info.warnings.some((w) => w.startsWith('VBT checksum byte'))).toBe(
        STALE_CHECKSUM.has(entry.path),
      );
      expect(assertVbt(bytes)).toEqual(info);
      expect(looksLikeVbt(bytes)).toBe(true);
    });
  }

  it('accepts the VBTs inside the Gemini Lake IFWI (one has a stale checksum) and the legacy VBIOS', () => {
    const ifwi = read('images/geminilake-protectli-vp2410-ifwi.bin');
    const [, two] = [
      {
        offset: 1_574_036,
        vbtSize: 5527,
        valid: true,
        sha256: 'bb1241cdcb512a1dbd54418d2b9ad3f56107cb92bdf3c998d11f6b4fc1a8f2e9',
      },
      {
        offset: 1_579_732,
        vbtSize: 5603,
        valid: false,
        sha256: '7688d365f387eab30b764df0b690e5b1be7381d59ce13cde2f73fdfb81a02584',
      },
    ].map((expected) => {
      const info = parseVbt(ifwi.subarray(expected.offset, expected.offset + 5632));
      expect([info.signature, info.vbtSize, info.bdbVersion, info.checksum.valid, info.sha256]).toEqual([
        '$VBT GEMINILAKE',
        expected.vbtSize,
        212,
        expected.valid,
        expected.sha256,
      ]);
      return info;
    });
    // Its last block is a MIPI sequence block v3 ending 1 byte past bdb_size by its full size,
    // inside it by its u32 size: i915 and intel_vbt_decode find it, and so must we (the
    // differential found it missing).
    expect(two?.blocks.find((block) => block.id === 53)).toEqual({ id: 53, offset: 0x1597, sizeInBytes: 73 });
    const legacy = parseVbt(read('roms/haswell-devid-0406-legacy-vbios.rom').subarray(2768));
    expect([legacy.signature, legacy.vbtSize, legacy.checksum.valid]).toEqual([
      '$VBT COFFEELAKE',
      4300,
      false,
    ]);
  });

  it('warns (not fails) when the last block ends one byte past bdb_size, as Intel tools write it', () => {
    const info = parseVbt(read('vbt/alderlake-starlabs-starbook.vbt'));
    expect(info.bdbOffset + info.bdbSize).toBe(info.vbtSize - 1);
    expect(info.warnings).toEqual([
      'BDB block 58 at 0x1f58 claims 0x2a2 bytes, ending at 0x21fd, 1 byte(s) past bdb_size; i915 ignores it and any block after it',
    ]);
    expect(info.blocks.at(-1)).toEqual({ id: 57, offset: 0x1503, sizeInBytes: 2642 });
  });

  const decoder = spawnSync('intel_vbt_decode', ['--help'], { stdio: 'ignore' });
  const haveDecoder = decoder.error === undefined;
  it.skipIf(!haveDecoder)(
    'agrees with intel_vbt_decode on signature, BDB version, sizes and the blocks present (skipped: intel_vbt_decode not installed)',
    () => {
      for (const entry of vbts) {
        const file = path.join(corpus, entry.path);
        const run = spawnSync('intel_vbt_decode', ['--file', file], { encoding: 'utf8' });
        expect(run.status).toBe(0);
        const out = run.stdout;
        // intel_vbt_decode synthesises the LVDS data table pointers block (41) when a new
        // VBT lacks it and says so on stderr; it is not in the file.
        const info = parseVbt(read(entry.path));
        const generated =
          run.stderr.includes('Generating LVDS data table pointers') && !info.blocks.some((b) => b.id === 41);
        const synthesised = generated ? [41] : [];
        const signature = /VBT signature:\s+"([^"]*)"/.exec(out)?.[1]?.trimEnd();
        const bdbVersion = Number(/BDB version:\s+(\d+)/.exec(out)?.[1]);
        const vbtSize = Number(/VBT size:\s+0x[0-9a-f]+ \((\d+)\)/.exec(out)?.[1]);
        const present = /BDB blocks present:\n((?:\t[ \d]+\n)+)/.exec(out)?.[1];
        const ids = (present ?? '')
          .trim()
          .split(/\s+/)
          .map(Number)
          .filter((id) => !synthesised.includes(id));
        expect({ file: entry.path, signature, bdbVersion, vbtSize, ids }).toEqual({
          file: entry.path,
          signature: info.signature,
          bdbVersion: info.bdbVersion,
          vbtSize: info.vbtSize,
          ids: [...new Set(info.blocks.map((b) => b.id))].sort((a, b) => a - b),
        });
      }
    },
  );
});

describe('parseVbt refuses what i915 refuses (intel_bios_is_valid_vbt), with exact codes', () => {
  const mutate = (fn: (dv: DataView, bytes: Uint8Array) => void): Uint8Array => {
    const bytes = buildVbt();
    fn(new DataView(bytes.buffer), bytes);
    return bytes;
  };
  const cases: [string, Uint8Array, string][] = [
    ['shorter than the header ("VBT header incomplete")', buildVbt().subarray(0, 47), 'E_VBT_TRUNCATED'],
    ['no $VBT ("VBT invalid signature")', mutate((_dv, b) => (b[0] = 0x25)), 'E_VBT_BAD_SIGNATURE'],
    [
      'vbt_size past the buffer ("vbt_size overflows")',
      mutate((dv) => dv.setUint16(24, 0xffff, true)),
      'E_VBT_TRUNCATED',
    ],
    ['truncated file', buildVbt().subarray(0, 60), 'E_VBT_TRUNCATED'],
    [
      'vbt_size too small for the BDB header ("BDB header incomplete")',
      mutate((dv) => dv.setUint16(24, 50, true)),
      'E_VBT_BAD_BDB_OFFSET',
    ],
    ['bdb_offset past vbt_size', mutate((dv) => dv.setUint32(28, 0xffff_fff0, true)), 'E_VBT_BAD_BDB_OFFSET'],
    [
      'BDB header one byte past vbt_size',
      mutate((dv) => dv.setUint32(28, 83 - 22 + 1, true)),
      'E_VBT_BAD_BDB_OFFSET',
    ],
    [
      'bdb_size overflowing vbt_size ("BDB incomplete")',
      mutate((dv) => dv.setUint16(68, 0x1000, true)),
      'E_VBT_BDB_OVERFLOW',
    ],
    [
      'bdb_size one byte past vbt_size',
      mutate((dv) => dv.setUint16(68, 83 - 48 + 1, true)),
      'E_VBT_BDB_OVERFLOW',
    ],
  ];
  it.each(cases)('%s', (_name, bytes, code) => {
    expect(errorCodeOf(() => parseVbt(bytes))).toBe(code);
    expect(errorCodeOf(() => assertVbt(bytes))).toBe('E_INPUT_NOT_VBT');
  });

  it('accepts the limits themselves: BDB header ending exactly at vbt_size, bdb_size reaching it', () => {
    const atEnd = mutate((dv, b) => {
      b.copyWithin(83 - 22, 48, 48 + 22);
      dv.setUint32(28, 83 - 22, true);
      dv.setUint16(83 - 22 + 20, 22, true);
    });
    expect(parseVbt(atEnd)).toMatchObject({ bdbOffset: 61, bdbSize: 22, blocks: [] });
    expect(parseVbt(mutate((dv) => dv.setUint16(68, 83 - 48, true))).bdbSize).toBe(35);
  });

  it('says what, where and why', () => {
    try {
      parseVbt(mutate((dv) => dv.setUint16(68, 0x1000, true)));
      expect.unreachable();
    } catch (error) {
      expect((error as Error).message).toBe(
        'BDB at 0x30 claims bdb_size 0x1000, ending at 0x1030 past vbt_size 0x53',
      );
      expect((error as OvmfBuildError).details).toEqual({
        offset: 0x44,
        bdbOffset: 48,
        bdbSize: 0x1000,
        vbtSize: 83,
      });
    }
  });

  it('a stale checksum is a warning with the correct byte', () => {
    const bytes = mutate((_dv, b) => (b[26] = ((b[26] as number) + 1) & 0xff));
    const info = parseVbt(bytes);
    expect(info.checksum.valid).toBe(false);
    expect(info.checksum.computed).toBe(((bytes[26] as number) - 1) & 0xff);
    expect(info.warnings).toHaveLength(1);
  });
});

describe('parseVbt tolerates, with a warning, what i915 tolerates', () => {
  const mutate = (fn: (dv: DataView, bytes: Uint8Array) => void): Uint8Array => {
    const bytes = buildVbt();
    fn(new DataView(bytes.buffer), bytes);
    // Keep the checksum right so the only warning is the one under test.
    bytes[26] = 0;
    let sum = 0;
    for (let i = 0; i < 83; i++) sum += bytes[i] as number;
    bytes[26] = (0x100 - (sum & 0xff)) & 0xff;
    return bytes;
  };
  const BOTH = [
    { id: 1, offset: 70, sizeInBytes: 5 },
    { id: 254, offset: 78, sizeInBytes: 2 },
  ];
  const cases: [string, Uint8Array, string[], { id: number; offset: number; sizeInBytes: number }[]][] = [
    [
      'VBT header_size too small',
      mutate((dv) => dv.setUint16(22, 20, true)),
      ['VBT header_size at 0x16 is 0x14, expected 0x30..0x100; i915 does not read it'],
      BOTH,
    ],
    [
      'VBT header_size hostile',
      mutate((dv) => dv.setUint16(22, 0xffff, true)),
      ['VBT header_size at 0x16 is 0xffff, expected 0x30..0x100; i915 does not read it'],
      BOTH,
    ],
    [
      'bad BDB signature',
      mutate((_dv, b) => (b[48] = 0x62)),
      ['no "BIOS_DATA_BLOCK " signature at 0x30 (found "bIOS_DATA_BLOCK "); i915 does not check it'],
      BOTH,
    ],
    [
      'BDB header_size past bdb_size: no blocks',
      mutate((dv) => dv.setUint16(66, 40, true)),
      [
        'BDB header_size at 0x42 is 0x28, expected 0x16..bdb_size 0x23; i915 starts its block walk there all the same',
      ],
      [],
    ],
    [
      'block past vbt_size: the walk stops before it (the coreboot Gemini Lake case)',
      mutate((dv) => dv.setUint16(79, 0x100, true)),
      [
        'BDB block 254 at 0x4e claims 0x100 bytes, ending at 0x151, 254 byte(s) past bdb_size; i915 ignores it and any block after it',
      ],
      [{ id: 1, offset: 70, sizeInBytes: 5 }],
    ],
    [
      'first block past bdb_size hides the blocks after it',
      mutate((dv) => dv.setUint16(71, 0x100, true)),
      [
        'BDB block 1 at 0x46 claims 0x100 bytes, ending at 0x149, 246 byte(s) past bdb_size; i915 ignores it and any block after it',
      ],
      [],
    ],
  ];
  it.each(cases)('%s', (_name, bytes, warnings, blocks) => {
    const info = parseVbt(bytes);
    expect(info.warnings).toEqual(warnings);
    expect(info.blocks).toEqual(blocks);
    expect(assertVbt(bytes)).toEqual(info);
  });

  it('reads no block header that starts within 3 bytes of bdb_size (i915: index + 3 < total)', () => {
    // bdb_size 33 leaves exactly 3 bytes (a 0-size block header) after block 1: i915 does not read it.
    const bytes = mutate((dv, b) => {
      dv.setUint16(68, 33, true);
      b.set([254, 0, 0], 78);
    });
    expect(parseVbt(bytes)).toMatchObject({ blocks: [{ id: 1, offset: 70, sizeInBytes: 5 }], warnings: [] });
  });

  it('stops, with a warning, at a MIPI sequence block v3+ whose u32 size would lie past the data', () => {
    // i915 would read the u32 past the end of its buffer; we read nothing there.
    const bytes = vbtWithBlocks([53, 0, 0, 3, 0]);
    const info = parseVbt(bytes);
    expect(info.blocks).toEqual([]);
    expect(info.warnings[0]).toBe(
      'BDB block 53 at 0x46 (MIPI sequence v3+) has no room for its u32 size before the end of the data; the block walk stops there',
    );
  });

  it('steps over a MIPI sequence block v3+ by its u32 size alone, as i915 does', () => {
    // Block 53, u16 size 0, version 3, u32 size 2: i915 counts 3 + 2 bytes, so the next block
    // header is read from inside the sequence data (5 bytes early).
    const bytes = vbtWithBlocks([53, 0, 0, 3, 2, 0, 0, 0, 0xaa, 0xbb, 57, 1, 0, 0x77], 236);
    const info = parseVbt(bytes);
    // A walk over the real layout would find block 57 at 0x50; i915's finds a 0-byte block 0
    // at 0x4b (inside the sequence data), then "block 170" at 0x4e whose size runs off the end.
    expect(info.blocks).toEqual([
      { id: 53, offset: 70, sizeInBytes: 7 },
      { id: 0, offset: 75, sizeInBytes: 0 },
    ]);
    expect(info.warnings.slice(0, 2)).toEqual([
      'BDB block 53 at 0x46 is a MIPI sequence block v3: i915 steps over it by its u32 size, 5 bytes short of its end, and reads the next block header from inside it at 0x4b',
      'BDB block 170 at 0x4e claims 0x39bb bytes, ending at 0x3a0c, 14776 byte(s) past bdb_size; i915 ignores it and any block after it',
    ]);
  });

  it.each([
    ['vbt/alderlake-n-tianbei-n1pro.vbt', read('vbt/alderlake-n-tianbei-n1pro.vbt')],
    [
      'the bugzzy fixture (MIPI sequence v3)',
      new Uint8Array(
        readFileSync(path.join(REPO_ROOT, 'test/fixtures/vbt/coreboot-google-dedede-bugzzy.vbt')),
      ),
    ],
  ])('fuzz: mutated VBTs parse or throw E_VBT_*, quickly (seed %s)', (_name, seed) => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(seed.length - 1), fc.nat(255)), { maxLength: 24 }),
        fc.nat(seed.length),
        (edits, cut) => {
          const bytes = new Uint8Array(seed);
          for (const [at, value] of edits) bytes[at] = value;
          const started = cpuNow();
          try {
            parseVbt(bytes.subarray(0, cut));
          } catch (error) {
            expect((error as OvmfBuildError).code).toMatch(/^E_VBT_/);
          }
          // Generous: catches runaway loops, not scheduling noise on a shared machine.
          expect(cpuNow() - started).toBeLessThan(500);
        },
      ),
      { numRuns: 1000 },
    );
  });
});
