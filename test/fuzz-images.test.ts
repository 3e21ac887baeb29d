// Fuzzing the firmware parser (fast-check): mutated real volumes and images (bit flips,
// byte overwrites at header offsets, length-field corruption, truncation) and random bytes.
// Every input either parses or throws our own coded error (FormatError / NotFoundError),
// within 1 s each. Inputs that once broke the parser live in test/fixtures/regressions.
//
// FUZZ_RUNS scales the run count (default 1: about 6,400 inputs).
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FormatError, NotFoundError, OvmfBuildError } from '../src/core/errors.js';
import { guidToBytes } from '../src/core/guid.js';
import { parseFirmware } from '../src/formats/firmware-tree.js';
import type { ParseOptions } from '../src/formats/walk-context.js';
import { findVolumeCandidates } from '../src/formats/firmware-volume.js';
import { locateGopAndVbt } from '../src/formats/locate.js';
import { readCorpus } from './corpus.js';
import {
  concat,
  ffsFile,
  le16,
  le32,
  section,
  sections,
  uefiCapsule,
  utf16z,
  volume,
} from './ffs-builder.js';
import { cpuNow } from './cpu-time.js';

const SCALE = Number(process.env['FUZZ_RUNS'] ?? 1);
const PER_INPUT_LIMIT_MS = 1_000;
/** Tight limits keep hostile inputs cheap; real volumes fit well inside them. */
const LIMITS = { maximumTotalDecompressedSize: 64 * 1024 * 1024, maximumNodes: 200_000 } as const;

let inputs = 0;
let slowest = 0;

/** Parses one input in strict or lenient mode; returns normally or fails the property. */
function check(bytes: Uint8Array, strict: boolean): void {
  inputs++;
  const options: ParseOptions = { ...LIMITS, strict };
  const start = cpuNow();
  let failure: unknown = null;
  try {
    const tree = parseFirmware(bytes, options);
    locateGopAndVbt(tree);
  } catch (error) {
    failure = error;
  }
  const elapsed = cpuNow() - start;
  slowest = Math.max(slowest, elapsed);
  if (elapsed > PER_INPUT_LIMIT_MS)
    throw new Error(`input took ${elapsed.toFixed(0)} ms (limit ${PER_INPUT_LIMIT_MS})`);
  if (failure === null) return;
  if (!(failure instanceof FormatError || failure instanceof NotFoundError)) {
    throw new Error(
      `not our coded error: ${failure instanceof OvmfBuildError ? `${failure.name} ${failure.code}` : String(failure)}`,
      { cause: failure },
    );
  }
  expect(failure.code).toMatch(/^E_[A-Z0-9_]+$/);
  expect(failure.message.length).toBeGreaterThan(0);
}

/** Small real volumes, cut out of the corpus (each parses in a few ms). */
function corpusVolumes(): { name: string; bytes: Uint8Array }[] {
  const picks: [string, number][] = [
    ['images/coffeelake-intel-fsp.fd', 0],
    ['images/coffeelake-intel-fsp.fd', 1],
    ['images/coffeelake-intel-fsp.fd', 2],
    ['images/geminilake-protectli-vp2410-ifwi.bin', 0],
    ['images/geminilake-protectli-vp2410-ifwi.bin', 2],
    ['ovmf/OVMF_CODE_4M.fd', 1],
    ['ovmf/OVMF_VARS_4M.fd', 0],
    ['images/kabylake-platform-clevo-p870km-modded-spi.rom', 2],
  ];
  return picks.map(([file, n]) => {
    const image = readCorpus(file);
    const start = findVolumeCandidates(image)[n] as number;
    const length = Number(
      new DataView(image.buffer, image.byteOffset + start + 0x20, 8).getBigUint64(0, true),
    );
    return { name: `${file}#${n}`, bytes: image.slice(start, start + length) };
  });
}

/** A small image of every container kind, built from real and built parts. */
function containerSamples(): { name: string; bytes: Uint8Array }[] {
  const vbt = readCorpus('vbt/skylake-lenovo-m900.vbt');
  const gop = readCorpus('gop/haswell-broadwell-anbeen-pc-4-5.efi');
  const fv = volume([
    ffsFile(
      '1647B4F3-3E8A-4FDD-81C8-328ED647AB1A',
      0x07,
      sections(section(0x10, gop), section(0x15, utf16z('IntelGopDriver'))),
    ),
    ffsFile(
      '56752DA9-DE6B-4895-8819-1945B6B76C22',
      0x02,
      sections(section(0x19, vbt), section(0x15, utf16z('IntelGopVbt'))),
    ),
  ]);
  const capsule = uefiCapsule(fv);
  const aptio = concat(
    guidToBytes('4A3CA68B-7723-48FB-803D-578CC1FEC44D'),
    le32(32),
    le32(0),
    le32(32 + fv.length),
    le16(32),
    le16(0),
    fv,
  );
  // Intel descriptor image: the Clevo descriptor with FLREG rewritten for a 64 KiB image
  // (descriptor 4 KiB, BIOS region from 0x8000 holding the built volume, the rest unused).
  const descriptor = readCorpus('images/kabylake-platform-clevo-p870km-modded-spi.rom').slice(0, 0x1000);
  const biosEnd = (0x8000 + fv.length + 0xfff) & ~0xfff;
  const image = new Uint8Array(biosEnd).fill(0xff);
  image.set(descriptor, 0);
  image.set(le32(0x0000_0000), 0x40);
  image.set(le32((((biosEnd - 1) >> 12) << 16) | (0x8000 >> 12)), 0x44);
  image.set(le32(0x0000_7fff), 0x48);
  image.set(fv, 0x8000);
  // IFWI: a BPDT with an IBB entry holding the volume and an S-BPDT with one more entry.
  const bpdt = new Uint8Array(0x3000 + fv.length).fill(0xff);
  const entry = (type: number, offset: number, size: number): Uint8Array =>
    concat(le16(type), le16(0), le32(offset), le32(size));
  bpdt.set(concat(le32(0x55aa), le16(2), le16(1), le32(0), le32(0), new Uint8Array(8)), 0);
  bpdt.set(concat(entry(4, 0x1000, fv.length), entry(5, 0x2000, 0x100)), 24);
  bpdt.set(
    concat(le32(0x55aa), le16(1), le16(1), le32(0), le32(0), new Uint8Array(8), entry(3, 0x2100, 0x20)),
    0x2000,
  );
  bpdt.set(fv, 0x1000);
  const fmp = readFileSync(path.resolve(import.meta.dirname, 'fixtures/edk2/fmp.cap'));
  return [
    { name: 'volume', bytes: fv },
    { name: 'capsule', bytes: capsule },
    { name: 'aptio-capsule', bytes: aptio },
    { name: 'descriptor', bytes: image },
    { name: 'fmp-capsule', bytes: new Uint8Array(fmp) },
    { name: 'bpdt', bytes: bpdt },
    {
      name: 'edk2-fixture.fv',
      bytes: new Uint8Array(readFileSync(path.resolve(import.meta.dirname, 'fixtures/edk2/fixture.fv'))),
    },
  ];
}

/** Offsets of headers worth hitting: volume header fields, and file/section headers. */
function headerOffsets(bytes: Uint8Array): number[] {
  const offsets = new Set<number>();
  for (const start of findVolumeCandidates(bytes)) {
    for (const at of [0x20, 0x24, 0x28, 0x2c, 0x30, 0x32, 0x34, 0x37, 0x38, 0x3c, 0x48, 0x50])
      offsets.add(start + at);
  }
  try {
    const tree = parseFirmware(bytes, { strict: false });
    const stack = [tree.root];
    while (stack.length > 0 && offsets.size < 4_000) {
      const node = stack.pop() as (typeof stack)[number];
      if (node.offset !== null)
        for (const d of [0, 1, 2, 3, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18])
          offsets.add(node.offset + d);
      stack.push(...(node.children as (typeof stack)[number][]));
    }
  } catch {
    // A sample that does not parse still has its volume header offsets.
  }
  return [...offsets].filter((o) => o < bytes.length).sort((a, b) => a - b);
}

type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'byte'; at: number; value: number }
  | { kind: 'header'; index: number; value: number }
  | { kind: 'length'; index: number; width: 2 | 3 | 4 | 8; value: number }
  | { kind: 'truncate'; at: number };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('byte' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({
    kind: fc.constant('header' as const),
    index: fc.nat(),
    value: fc.integer({ min: 0, max: 255 }),
  }),
  fc.record({
    kind: fc.constant('length' as const),
    index: fc.nat(),
    width: fc.constantFrom(2 as const, 3 as const, 4 as const, 8 as const),
    value: fc.oneof(fc.constantFrom(0, 1, 0xff_ffff, 0xffff_ffff, 0x7fff_ffff, 0x18, 0x1000), fc.nat()),
  }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
);

function mutate(base: Uint8Array, hot: readonly number[], mutations: readonly Mutation[]): Uint8Array {
  let bytes = base.slice();
  for (const m of mutations) {
    if (bytes.length === 0) break;
    switch (m.kind) {
      case 'flip': {
        const at = m.at % bytes.length;
        bytes[at] = (bytes[at] as number) ^ (1 << m.bit);
        break;
      }
      case 'byte':
        bytes[m.at % bytes.length] = m.value;
        break;
      case 'header':
        if (hot.length > 0) {
          const at = hot[m.index % hot.length] as number;
          if (at < bytes.length) bytes[at] = m.value;
        }
        break;
      case 'length':
        if (hot.length > 0) {
          const at = hot[m.index % hot.length] as number;
          let v = BigInt(m.value);
          for (let i = 0; i < m.width && at + i < bytes.length; i++) {
            bytes[at + i] = Number(v & 0xffn);
            v >>= 8n;
          }
        }
        break;
      case 'truncate':
        bytes = bytes.subarray(0, m.at % (bytes.length + 1));
        break;
    }
  }
  return bytes;
}

describe('fuzzing the firmware parser', () => {
  const samples = [...corpusVolumes(), ...containerSamples()];
  const hot = samples.map((s) => headerOffsets(s.bytes));

  it('real and built samples parse strictly before mutation', () => {
    for (const s of samples) {
      const tree = parseFirmware(s.bytes, { strict: true });
      expect(tree.problems, s.name).toEqual([]);
    }
  });

  for (const [i, sample] of samples.entries()) {
    it(`mutated ${sample.name}`, () => {
      fc.assert(
        fc.property(
          fc.array(mutationArb, { minLength: 1, maxLength: 6 }),
          fc.boolean(),
          (mutations, strict) => {
            check(mutate(sample.bytes, hot[i] as number[], mutations), strict);
          },
        ),
        { numRuns: Math.round(400 * SCALE) },
      );
    });
  }

  it('random bytes, with and without an implanted _FVH header', () => {
    const header = volume([]).subarray(0, 0x48);
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 4_096 }),
        fc.nat(),
        fc.boolean(),
        fc.boolean(),
        (random, at, implant, strict) => {
          const bytes = random.slice();
          if (implant && bytes.length >= header.length)
            bytes.set(header, (at % (bytes.length - header.length + 1)) & ~7);
          check(bytes, strict);
        },
      ),
      { numRuns: Math.round(600 * SCALE) },
    );
  });

  it('truncations of a whole real image (IFWI with BPDT) at random points', () => {
    const ifwi = readCorpus('images/geminilake-protectli-vp2410-ifwi.bin');
    fc.assert(
      fc.property(fc.nat({ max: ifwi.length }), fc.boolean(), (cut, strict) =>
        check(ifwi.subarray(0, cut), strict),
      ),
      { numRuns: Math.round(40 * SCALE) },
    );
  });

  it('regression fixtures: each once broke the parser and now parses or throws a coded error', () => {
    const dir = path.resolve(import.meta.dirname, 'fixtures/regressions');
    const files = readdirSync(dir).filter((f) => f.endsWith('.bin'));
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) {
      const bytes = new Uint8Array(readFileSync(path.join(dir, file)));
      check(bytes, true);
      check(bytes, false);
    }
  });

  it('covered enough inputs, each within the time limit', () => {
    // 15 samples x 400 + 600 + 40 + regressions: the full run is above 6,000 inputs.
    expect(inputs).toBeGreaterThanOrEqual(Math.round(6_000 * SCALE));
    expect(slowest).toBeLessThan(PER_INPUT_LIMIT_MS);
  });
});
