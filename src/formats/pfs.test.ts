// Dell PFS parser on a real Dell package (the TB16 dock updater's PFS zlib section, carved
// byte-exact: test/fixtures/vendor-parsers/README.md), on the whole updater when
// OVMF_BUILD_DELL_TB16_EXE names it, on damage derived from the real bytes (each with its exact
// code), and fuzzed (fast-check: parse or throw our own error, within a time bound).
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { deflateSync, inflateSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FormatError } from '../core/errors.js';
import { concat, le32 } from '../../test/ffs-builder.js';
import { crc32 } from './compression/crc32.js';
import { detectFileKind } from './detect.js';
import { dellPfsUnpacker } from './pfs-unpacker.js';
import {
  dellPfsConfidence,
  dellPfsPayloads,
  findDellPfsSections,
  parseDellPfs,
  type DellPfsVolume,
} from './pfs.js';
import { cpuNow } from '../../test/cpu-time.js';

const FIXTURE = path.resolve(
  import.meta.dirname,
  '../../test/fixtures/vendor-parsers/dell-tb16-dock-pfs-section.bin',
);
const section = new Uint8Array(readFileSync(FIXTURE));
const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** The six payloads and the name-information entry, as BIOSUtilities' layout reads them. */
const ENTRIES = [
  {
    guid: 'E7CA1F36-BF73-4574-AFE6-A4CCACABF479',
    name: 'Dock Package Version',
    version: '1.0.0',
    offset: 0x10,
    size: 0x9c,
  },
  {
    guid: '8FE183DA-C94E-4804-B319-0F1BA5457A69',
    name: 'Dell TB16 TI v1.2.11 Port Controller 1',
    version: '0.1.2.11',
    offset: 0x1f4,
    size: 0xe188,
  },
  {
    guid: '1B52C630-86F6-4AEE-9F0C-474DC6BE49B6',
    name: 'Dell TB16 TI v1.2.32 Port Controller 2',
    version: '0.1.2.32',
    offset: 0xe4c4,
    size: 0xe1d4,
  },
  {
    guid: '33CC8870-B1FC-4EC7-948A-C07496874FAF',
    name: 'Dell TB16 Dock EC',
    version: '1.0.0.10',
    offset: 0x1c7e0,
    size: 0xe000,
  },
  {
    guid: '6DC832FC-5BB0-4E63-A2FF-02AABA5BC1DC',
    name: 'TBT Cable',
    version: '0.0.3.12',
    offset: 0x2a928,
    size: 0x5600,
  },
  {
    guid: 'E2BF3AAD-61A3-44BF-91EF-349B39515D29',
    name: 'Universal Cable',
    version: '0.0.3.12',
    offset: 0x30070,
    size: 0x5600,
  },
  {
    guid: '4D583FD3-F80E-4055-A145-9BEC16CB33B0',
    name: null,
    version: '1.0.0.0',
    offset: 0x357b8,
    size: 0x1ea,
  },
] as const;

/** sha256 of each payload, computed independently (Python, from the offsets above + 0x48). */
const PAYLOADS = [
  [
    'Firmware/1 Dock Package Version v1.0.0',
    156,
    '3b9415f6600672e8361fb109438e4ec51c2805ec374e874f2319a6f023fb8895',
  ],
  [
    'Firmware/2 Dell TB16 TI v1.2.11 Port Controller 1 v0.1.2.11',
    57736,
    'f450e5b8586fd5772a00f98038a998e6ba4daa38183d157060f0ad6c91e802dd',
  ],
  [
    'Firmware/3 Dell TB16 TI v1.2.32 Port Controller 2 v0.1.2.32',
    57812,
    'c92f358e1a196ae7edaf6d803261c2378c28894cae07a60c06dc8e6f7fb7e2ef',
  ],
  [
    'Firmware/4 Dell TB16 Dock EC v1.0.0.10',
    57344,
    '1afd6ad0cb1fae70dc33fb77825548c048c30fe40966bb0f63d1c0a685394760',
  ],
  [
    'Firmware/5 TBT Cable v0.0.3.12',
    22016,
    'bcd888c3fdff75e3fe67eaaaf4784dbd67ce3b72274621bc2c109067b5c494f6',
  ],
  [
    'Firmware/6 Universal Cable v0.0.3.12',
    22016,
    'a91002db4518b98d394cee988097662a756896ec124966dd8d6f2f7aa77082bc',
  ],
] as const;

/** The inflated volume of the real section (its stream starts at 0x10, footer 0x10 from the end). */
const volume = new Uint8Array(inflateSync(section.subarray(16, section.length - 16)));

function expectReal(volumes: readonly DellPfsVolume[], sectionOffset: number): void {
  expect(volumes).toHaveLength(1);
  const [v] = volumes as [DellPfsVolume];
  expect(v.section).toEqual({
    offset: sectionOffset,
    type: 0xaa,
    typeName: 'Firmware',
    compressedSizeInBytes: 0x1c274,
    inflatedSizeInBytes: 219_898,
  });
  expect(v.headerVersion).toBe(1);
  expect(v.payloadSizeInBytes).toBe(0x35ada);
  expect(v.crc32).toEqual({ stored: 0xe2093409, computed: 0xe2093409 });
  expect(
    v.entries.map((e) => ({
      guid: e.guid,
      name: e.name,
      version: e.version,
      offset: e.offset,
      size: e.data.length,
    })),
  ).toEqual(ENTRIES);
  expect(v.entries.map((e) => e.role)).toEqual([...Array<string>(6).fill('payload'), 'name-info']);
  expect(v.entries.every((e) => e.headerVersion === 1 && e.dataOffset === e.offset + 0x48)).toBe(true);
  expect(v.entries.every((e) => e.dataSignatureSizeInBytes === 0x100 && e.metadataSizeInBytes === 0)).toBe(
    true,
  );
  expect(dellPfsPayloads(volumes).map((p) => [p.name, p.bytes.length, sha256(p.bytes)])).toEqual(PAYLOADS);
}

/** A PFS volume (version 1 header, one version-1 entry per blob, CRC'd footer) around `blobs`: for nesting tests only. */
function wrapInVolume(...blobs: Uint8Array[]): Uint8Array {
  const entries = concat(
    ...blobs.map((blob, i) =>
      concat(
        Uint8Array.of(i + 1, ...new Array<number>(15).fill(0x11)),
        le32(1),
        Uint8Array.from('NNNN', (c) => c.charCodeAt(0)),
        new Uint8Array(8),
        new Uint8Array(8),
        le32(blob.length),
        le32(0),
        le32(0),
        le32(0),
        new Uint8Array(16),
        blob,
      ),
    ),
  );
  const tag = (t: string): Uint8Array => Uint8Array.from(t, (c) => c.charCodeAt(0));
  return concat(
    tag('PFS.HDR.'),
    le32(1),
    le32(entries.length),
    entries,
    le32(entries.length),
    le32(~crc32(entries) >>> 0),
    tag('PFS.FTR.'),
  );
}

function expectCode(run: () => unknown, code: string, message?: string): void {
  let caught: unknown = null;
  try {
    run();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(FormatError);
  expect((caught as FormatError).code).toBe(code);
  if (message !== undefined) expect((caught as FormatError).message).toBe(message);
}

describe('Dell PFS on a real Dell package', () => {
  it('the TB16 dock updater section: seven entries, names, versions, offsets and payload digests', () => {
    expect(sha256(section)).toBe('a2c6599a4dae4c933eac54eaeb230dc6318557ec714204e93d997f288356d69f');
    expect(findDellPfsSections(section)).toEqual([0]);
    expectReal(parseDellPfs(section), 0);
    expect(sha256(volume)).toBe('f6a6f423fc0ff20b3becebbdc80e4efb3a558c05a26aad21daf308461e76049b');
  });

  it('the inflated volume on its own ("PFS.HDR." at 0) gives the same entries, with no section', () => {
    const [v] = parseDellPfs(volume) as [DellPfsVolume];
    expect(v.section).toBeNull();
    expect(v.entries.map((e) => e.guid)).toEqual(ENTRIES.map((e) => e.guid));
    expect(dellPfsPayloads([v]).map((p) => p.name)).toEqual(
      PAYLOADS.map(([name]) => name.replace('Firmware/', 'PFS/')),
    );
  });

  it('is detected: dell-pfs for the section and the volume; confidence 1 at 0, 0.75 further in', () => {
    expect(detectFileKind(section)).toBe('dell-pfs');
    expect(detectFileKind(volume)).toBe('dell-pfs');
    expect(dellPfsConfidence(section)).toBe(1);
    expect(dellPfsConfidence(volume)).toBe(1);
    expect(dellPfsConfidence(concat(new Uint8Array(100), section))).toBe(0.75);
    expect(dellPfsConfidence(volume.subarray(8))).toBe(0);
  });

  it('as an unpacker layer: the six payloads by PFS path, bounded by the chain limits', () => {
    const limits = { maxTotalBytes: 1 << 30, maxEntryBytes: 1 << 20, maxEntries: 64, maxDepth: 8 };
    const children = dellPfsUnpacker.unpack(section, { limits, unpackedBytes: 0 });
    expect(children.map((c) => [c.name, c.bytes.length, sha256(c.bytes)])).toEqual(PAYLOADS);
    expectCode(
      () =>
        dellPfsUnpacker.unpack(section, { limits: { ...limits, maxEntryBytes: 0xe000 }, unpackedBytes: 0 }),
      'E_PFS_TOO_LARGE',
      'Dell PFS payload "Firmware/2 Dell TB16 TI v1.2.11 Port Controller 1 v0.1.2.11" has 0xe188 bytes, more than maxEntryBytes 0xe000',
    );
    expectCode(
      () => dellPfsUnpacker.unpack(section, { limits, unpackedBytes: (1 << 30) - 1000 }),
      'E_PFS_TOO_LARGE',
    );
  });

  const exe = process.env['OVMF_BUILD_DELL_TB16_EXE'];
  it.skipIf(exe === undefined || !existsSync(exe))(
    'the whole updater .exe (OVMF_BUILD_DELL_TB16_EXE; skipped when unset): the section at 0x2a5800',
    () => {
      const bytes = new Uint8Array(readFileSync(exe as string));
      expect(sha256(bytes)).toBe('ff9f2fa9b6a56ba000b57d1cbe29b0a5fbe3e563b3d0ac95c67198e7649db4e1');
      expect(detectFileKind(bytes)).toBe('pe');
      expect(dellPfsConfidence(bytes)).toBe(0.75);
      expectReal(parseDellPfs(bytes), 0x2a5800);
    },
  );
  if (exe === undefined) {
    console.info(
      'pfs.test: OVMF_BUILD_DELL_TB16_EXE unset; the whole-updater test is skipped (README: test/fixtures/vendor-parsers)',
    );
  }
});

describe('Dell PFS refuses damage with exact codes', () => {
  /** A copy of `base` changed by `change`. */
  const edited = (base: Uint8Array, change: (bytes: Uint8Array) => void): Uint8Array => {
    const bytes = base.slice();
    change(bytes);
    return bytes;
  };
  const xorAt = (bytes: Uint8Array, at: number, mask: number): void => {
    bytes[at] = (bytes[at] as number) ^ mask;
  };
  const payloadEnd = 16 + 0x35ada;
  const damaged: [string, () => Uint8Array, string, string | undefined][] = [
    [
      'a section cut short',
      () => section.subarray(0, section.length - 100),
      'E_PFS_TRUNCATED',
      'PFS zlib section at 0x0 claims 0x1c274 compressed bytes and a footer, only 0x1c220 remain',
    ],
    [
      'a footer whose size does not match the header (its XOR-8 kept right)',
      () =>
        edited(section, (b) => {
          xorAt(b, b.length - 16, 1);
          xorAt(b, b.length - 1, 1);
        }),
      'E_PFS_BAD_STRUCTURE',
      'PFS zlib section at 0x0: no matching footer at 0x1c284 (size 0x1c275, header says 0x1c274)',
    ],
    [
      'a corrupt zlib stream',
      () => edited(section, (b) => b.fill(0xff, 0x100, 0x140)),
      'E_PFS_INFLATE',
      undefined,
    ],
    [
      'an entry byte changed (the footer CRC-32 refuses it)',
      () => edited(volume, (b) => xorAt(b, 0x100, 0x80)),
      'E_PFS_BAD_CHECKSUM',
      "PFS volume: footer checksum 0xe2093409 does not match the payload's 0x1f5d09",
    ],
    [
      'an entry that claims more data than the payload has (CRC recomputed, so the size is what is read)',
      () =>
        edited(volume, (b) => {
          b.set(le32(0xffff_0000), 0x1f4 + 0x28);
          b.set(le32(~crc32(b.subarray(16, payloadEnd)) >>> 0), payloadEnd + 4);
        }),
      'E_PFS_TRUNCATED',
      'PFS entry 1 at 0x1f4 claims 0xffff0100 bytes of data, signatures and metadata, only 0x358ae remain in the payload',
    ],
    [
      'a payload size past the end',
      () => edited(volume, (b) => b.set(le32(0x7fff_ffff), 12)),
      'E_PFS_TRUNCATED',
      'PFS volume claims 0x7fffffff payload bytes and a footer, only 0x35aea remain',
    ],
    [
      'an unknown header version',
      () => edited(volume, (b) => b.set(le32(9), 8)),
      'E_PFS_BAD_STRUCTURE',
      'PFS volume has header version 9 (known: 1, 2)',
    ],
  ];
  it.each(damaged)('%s', (_what, make, code, message) =>
    expectCode(() => parseDellPfs(make()), code, message),
  );

  it('limits: maxInflatedBytes, maxEntries', () => {
    expectCode(() => parseDellPfs(section, { maxInflatedBytes: 4096 }), 'E_PFS_TOO_LARGE');
    expectCode(
      () => parseDellPfs(section, { maxEntries: 3 }),
      'E_PFS_TOO_MANY_ENTRIES',
      'PFS volume inflated from the section at 0x0 holds more than 3 entries (maxEntries)',
    );
    expect(() => parseDellPfs(section, { maxDepth: 0 })).toThrow(TypeError);
  });

  it('nested volumes are parsed (raw and zlib) and bounded by maxDepth (E_PFS_TOO_DEEP)', () => {
    const once = wrapInVolume(section);
    const [outer] = parseDellPfs(once) as [DellPfsVolume];
    expect(outer.entries[0]?.nested).toHaveLength(1);
    expect(dellPfsPayloads([outer]).map((p) => p.name)).toEqual(
      PAYLOADS.map(([name]) => `PFS/1 11111101-1111-1111-1111-111111111111 v0.0.0.0/${name}`),
    );
    let deep: Uint8Array = volume;
    for (let i = 0; i < 5; i++) deep = wrapInVolume(deep);
    expect(parseDellPfs(deep, { maxDepth: 5 })).toHaveLength(1);
    expectCode(
      () => parseDellPfs(deep, { maxDepth: 4 }),
      'E_PFS_TOO_DEEP',
      'PFS volume is nested 5 levels deep (maxDepth 4)',
    );
  });

  it('bytes with no PFS: E_PFS_NOT_FOUND', () => {
    expectCode(
      () => parseDellPfs(new Uint8Array(4096).fill(0x5a)),
      'E_PFS_NOT_FOUND',
      'no Dell PFS volume ("PFS.HDR.") or PFS zlib section in the file',
    );
  });

  it('a zlib bomb inside a section stops at maxInflatedBytes', () => {
    const stream = deflateSync(new Uint8Array(8 * 1024 * 1024));
    const header = concat(
      le32(stream.length),
      Uint8Array.of(0xaa, 0xee, 0xaa, 0x76, 0x1b, 0xec, 0xbb, 0x20, 0xf1, 0xe6, 0x51, 0),
    );
    header[15] = header.subarray(0, 15).reduce((x, b) => x ^ b, 0);
    const footer = concat(
      le32(stream.length),
      Uint8Array.of(0xee, 0xaa, 0xee, 0x8f, 0x49, 0x1b, 0xe8, 0xae, 0x14, 0x37, 0x90, 0),
    );
    footer[15] = footer.subarray(0, 15).reduce((x, b) => x ^ b, 0);
    const bomb = concat(header, new Uint8Array(stream), footer);
    expect(findDellPfsSections(bomb)).toEqual([0]);
    expectCode(
      () => parseDellPfs(bomb, { maxInflatedBytes: 1024 * 1024 }),
      'E_PFS_TOO_LARGE',
      'PFS zlib section at 0x0 inflates past the 0x100000 bytes left of maxInflatedBytes 0x100000',
    );
  });
});

describe('Dell PFS fuzz', () => {
  const PER_INPUT_LIMIT_MS = 1_000;
  const runs = 300 * Number(process.env['FUZZ_RUNS'] ?? 1);
  function check(bytes: Uint8Array): void {
    const start = cpuNow();
    try {
      dellPfsPayloads(parseDellPfs(bytes, { maxInflatedBytes: 16 * 1024 * 1024 }));
    } catch (error) {
      if (!(error instanceof FormatError)) throw error;
      expect(error.code).toMatch(/^E_PFS_[A-Z_]+$/);
    }
    const elapsed = cpuNow() - start;
    if (elapsed > PER_INPUT_LIMIT_MS) throw new Error(`input took ${elapsed.toFixed(0)} ms`);
  }
  const edits = fc.array(
    fc.record({ at: fc.nat(), value: fc.integer({ min: 0, max: 255 }), width: fc.constantFrom(1, 4) }),
    { minLength: 1, maxLength: 6 },
  );
  function apply(
    base: Uint8Array,
    list: { at: number; value: number; width: number }[],
    hot: readonly number[],
  ): Uint8Array {
    const bytes = base.slice();
    for (const { at, value, width } of list) {
      const where = at % 2 === 0 ? (hot[at % hot.length] as number) : at % bytes.length;
      if (width === 4) bytes.set(le32(value * 0x0101_0101), Math.min(where, bytes.length - 4));
      else bytes[where % bytes.length] = value;
    }
    return bytes;
  }
  // Header fields of the volume and of every entry: sizes, versions, tags.
  const volumeHot = [
    8,
    12,
    ...ENTRIES.flatMap((e) => [
      e.offset + 0x10,
      e.offset + 0x28,
      e.offset + 0x2c,
      e.offset + 0x30,
      e.offset + 0x34,
    ]),
  ];

  it('mutated volumes (header and entry fields, CRC fixed up half the time) parse or throw E_PFS_*', () => {
    fc.assert(
      fc.property(edits, fc.boolean(), (list, fixCrc) => {
        const bytes = apply(volume, list, volumeHot);
        const size = new DataView(bytes.buffer).getUint32(12, true);
        if (fixCrc && 16 + size + 16 <= bytes.length)
          bytes.set(le32(~crc32(bytes.subarray(16, 16 + size)) >>> 0), 16 + size + 4);
        check(bytes);
      }),
      { numRuns: runs },
    );
  });

  it('mutated and truncated sections, and random bytes, parse or throw E_PFS_*', () => {
    fc.assert(
      fc.property(edits, fc.nat(), (list, cut) => {
        const bytes = apply(section, list, [
          0,
          1,
          2,
          3,
          4,
          15,
          16,
          17,
          section.length - 16,
          section.length - 1,
        ]);
        check(cut % 3 === 0 ? bytes.subarray(0, cut % bytes.length) : bytes);
      }),
      { numRuns: runs },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), (b) => check(b)),
      { numRuns: runs },
    );
  });
});
