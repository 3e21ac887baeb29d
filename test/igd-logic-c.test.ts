// The driver logic of IgdAssignmentDxe and the GOP policy (OvmfGopPkg/Include/IgdAssignmentLogic.h,
// static inline C) checked against the TypeScript model of the same rules: the device table
// (src/igd/device-table.ts, through the generated IgdDeviceTable.h), the GMS decode, the stolen
// size bounds and 1 MiB alignment, the test switch's device-ID text and the OpRegion 2.0/2.1 VBT
// lookup (src/formats/opregion.ts). gcc compiles a small host program around the real header;
// both sides answer the same exhaustive or generated inputs and must agree on every one.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OvmfBuildError } from '../src/core/errors.js';
import { igdDeviceHeader } from '../src/edk2/igd-device-header.js';
import {
  ASLE_RVDA_OFFSET,
  ASLE_RVDS_OFFSET,
  buildOpRegion,
  MAX_OPREGION_BYTES,
  OPREGION_SIZE,
  parseOpRegion,
} from '../src/formats/opregion.js';
import {
  lookupDevice,
  normalizeDeviceId,
  stolenSizeFromGmch,
  type GmsEncoding,
  type IgdDeviceTable,
} from '../src/igd/device-table.js';
import { loadIgdDeviceTable } from '../src/igd/load.js';
import { CORPUS_DIR, REPO_ROOT } from './corpus.js';

const INCLUDE_DIR = path.join(REPO_ROOT, 'containers/edk2-overlay/OvmfGopPkg/Include');
const GMS: readonly GmsEncoding[] = ['none', 'gen6', 'gen8', 'chv', 'gen9'];
const MiB = 1_048_576;

/**
 * One request per stdin line, one answer per stdout line:
 *   L <id hex>             -> <key|-> <graphicsVersion> <bdsm> <gms>  (IgdLookupDevice)
 *   S <encoding> <gmch>    -> <bytes>                                (IgdStolenSizeFromGmch)
 *   Z <size>               -> 0|1                                    (IgdStolenSizeValid)
 *   A <value> <alignment>  -> <aligned>                              (IgdAlignUp)
 *   D <text hex>           -> <id hex>|-                             (IgdParseDeviceIdText)
 *   V <address> <bytes hex>-> <source> <offset> <size>|none          (IgdOpRegionFindVbt)
 * Numbers are decimal unless named hex.
 */
const HARNESS_C = String.raw`
#define IGD_LOGIC_HOST
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <inttypes.h>
#include <IgdAssignmentLogic.h>
#include "IgdDeviceTable.h"

static const char *BdsmName (UINT8 b) { return b == IgdBdsm32 ? "bdsm32" : b == IgdBdsm64 ? "bdsm64" : b == IgdBdsmNone ? "none" : "?"; }
static const char *GmsName (UINT8 g) {
  switch (g) { case IgdGmsNone: return "none"; case IgdGmsGen6: return "gen6"; case IgdGmsGen8: return "gen8";
    case IgdGmsChv: return "chv"; case IgdGmsGen9: return "gen9"; default: return "?"; }
}
static int HexNibble (int c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; }
static UINT8 *FromHex (const char *text, size_t *length) {
  size_t n = strlen (text) / 2;
  UINT8 *out = malloc (n ? n : 1);
  for (size_t i = 0; i < n; i++) out[i] = (UINT8)(HexNibble (text[2 * i]) << 4 | HexNibble (text[2 * i + 1]));
  *length = n;
  return out;
}

int main (void) {
  static char line[1 << 20];
  while (fgets (line, sizeof line, stdin)) {
    line[strcspn (line, "\n")] = 0;
    char *arg = line + 2;
    if (line[0] == 'L') {
      const IGD_PLATFORM_INFO *p = IgdLookupDevice (mIgdDeviceIds, IGD_DEVICE_ID_COUNT, mIgdPlatforms, IGD_PLATFORM_COUNT, (UINT16)strtoul (arg, NULL, 16));
      if (p == NULL) puts ("-"); else printf ("%s %s %s %s\n", p->Key, p->GraphicsVersion, BdsmName (p->Bdsm), GmsName (p->Gms));
    } else if (line[0] == 'S') {
      char *end;
      UINT8 enc = (UINT8)strtoul (arg, &end, 10);
      printf ("%" PRIu64 "\n", IgdStolenSizeFromGmch (enc, (UINT32)strtoul (end, NULL, 10)));
    } else if (line[0] == 'Z') {
      printf ("%d\n", IgdStolenSizeValid (strtoull (arg, NULL, 10)) ? 1 : 0);
    } else if (line[0] == 'A') {
      char *end;
      UINT64 value = strtoull (arg, &end, 10);
      printf ("%" PRIu64 "\n", IgdAlignUp (value, strtoull (end, NULL, 10)));
    } else if (line[0] == 'D') {
      size_t n; UINT8 *text = FromHex (arg, &n); UINT16 id = 0;
      if (IgdParseDeviceIdText (text, n, &id)) printf ("%04x\n", id); else puts ("-");
      free (text);
    } else if (line[0] == 'V') {
      char *end;
      UINT64 address = strtoull (arg, &end, 10);
      size_t n; UINT8 *bytes = FromHex (end + 1, &n);
      IGD_VBT_LOCATION where;
      if (IgdOpRegionFindVbt (bytes, n, address, &where))
        printf ("%s %" PRIu64 " %u\n", where.Source == IgdVbtSourceRvda ? "rvda" : where.Source == IgdVbtSourceMailbox4 ? "mailbox4" : "?", where.Offset, where.Size);
      else puts ("none");
      free (bytes);
    } else {
      puts ("?");
    }
  }
  return 0;
}
`;

let directory: string;
let binary: string;
let table: IgdDeviceTable;

function runHarness(requests: readonly string[]): string[] {
  const result = spawnSync(binary, [], {
    input: `${requests.join('\n')}\n`,
    encoding: 'utf8',
    maxBuffer: 256 * MiB,
  });
  expect(result.status, result.stderr).toBe(0);
  const lines = result.stdout.split('\n');
  expect(lines.pop()).toBe('');
  expect(lines).toHaveLength(requests.length);
  return lines;
}

beforeAll(async () => {
  table = await loadIgdDeviceTable();
  directory = mkdtempSync(path.join(os.tmpdir(), 'ovmf-build-igd-logic-'));
  writeFileSync(path.join(directory, 'IgdDeviceTable.h'), igdDeviceHeader(table));
  writeFileSync(path.join(directory, 'harness.c'), HARNESS_C);
  binary = path.join(directory, 'harness');
  const gcc = spawnSync(
    'gcc',
    [
      '-std=c11',
      '-O1',
      '-Wall',
      '-Wextra',
      '-Werror',
      '-Wno-unused-function',
      '-I',
      INCLUDE_DIR,
      '-I',
      directory,
      '-o',
      binary,
      path.join(directory, 'harness.c'),
    ],
    { encoding: 'utf8' },
  );
  expect(gcc.error).toBeUndefined();
  expect(gcc.status, gcc.stderr).toBe(0);
});

afterAll(() => {
  if (directory !== undefined) rmSync(directory, { recursive: true, force: true });
});

describe('IgdAssignmentLogic.h against the TypeScript model', () => {
  it('looks up every one of the 65536 device IDs as the JSON table does (IgdLookupDevice)', () => {
    const ids = Array.from({ length: 0x1_0000 }, (_, id) => id.toString(16).padStart(4, '0'));
    const answers = runHarness(ids.map((id) => `L ${id}`));
    const expected = ids.map((id) => {
      const platform = lookupDevice(table, id);
      return platform === undefined
        ? '-'
        : `${platform.key} ${platform.graphicsVersion} ${platform.bdsm} ${platform.gms}`;
    });
    expect(answers).toEqual(expected);
    expect(answers.filter((line) => line !== '-')).toHaveLength(table.byDeviceId.size);
    expect(table.byDeviceId.size).toBe(310);
    // The device IDs the QEMU checks use.
    expect(answers[0x3e9b]).toBe('cfl 9.5 bdsm32 gen9');
    expect(answers[0x7d55]?.split(' ')[2]).toBe('none');
  });

  it('decodes every 16-bit GMCH value of every encoding alike (IgdStolenSizeFromGmch)', () => {
    const requests: string[] = [];
    const expected: string[] = [];
    for (const [index, encoding] of GMS.entries()) {
      for (let gmch = 0; gmch <= 0xffff; gmch++) {
        requests.push(`S ${index} ${gmch}`);
        expected.push(String(stolenSizeFromGmch(encoding, gmch)));
      }
    }
    expect(runHarness(requests)).toEqual(expected);
  });

  it('decodes generated 32-bit GMCH values alike (fast-check)', () => {
    const cases = fc.sample(fc.tuple(fc.nat(GMS.length - 1), fc.nat(0xffff_ffff)), {
      numRuns: 5_000,
      seed: 9,
    });
    const answers = runHarness(cases.map(([index, gmch]) => `S ${index} ${gmch}`));
    expect(answers).toEqual(
      cases.map(([index, gmch]) => String(stolenSizeFromGmch(GMS[index] as GmsEncoding, gmch))),
    );
  });

  it('accepts as stolen size exactly the non-zero 1 MiB multiples up to 2 GiB + 8 MiB, and aligns up like the model', () => {
    const maxStolen = 2048 * MiB + 8 * MiB;
    const valid = (size: bigint): boolean =>
      size !== 0n && size % BigInt(MiB) === 0n && size <= BigInt(maxStolen);
    const edges = [
      0n,
      1n,
      BigInt(MiB) - 1n,
      BigInt(MiB),
      BigInt(MiB) + 1n,
      BigInt(maxStolen),
      BigInt(maxStolen + MiB),
      BigInt(maxStolen) - BigInt(MiB),
      2n ** 64n - 1n,
      2n ** 32n,
    ];
    const sizes = [
      ...edges,
      ...fc.sample(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), { numRuns: 2_000, seed: 3 }),
      ...fc.sample(
        fc.nat(4096).map((n) => BigInt(n) * BigInt(MiB)),
        { numRuns: 2_000, seed: 4 },
      ),
    ];
    expect(runHarness(sizes.map((size) => `Z ${size}`))).toEqual(
      sizes.map((size) => (valid(size) ? '1' : '0')),
    );

    // IgdAlignUp: the next multiple of a power of two, 0 when it does not fit in 64 bits.
    const pairs: [bigint, bigint][] = [
      [0n, 4096n],
      [1n, 4096n],
      [4096n, 4096n],
      [4097n, 4096n],
      [2n ** 64n - 1n, 4096n],
      [2n ** 64n - 4096n, 4096n],
      ...fc.sample(
        fc.tuple(
          fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
          fc.nat(40).map((shift) => 1n << BigInt(shift)),
        ),
        { numRuns: 2_000, seed: 5 },
      ),
    ];
    const alignUp = (value: bigint, alignment: bigint): bigint => {
      const aligned = ((value + alignment - 1n) / alignment) * alignment;
      return aligned >= 2n ** 64n ? 0n : aligned;
    };
    expect(runHarness(pairs.map(([value, alignment]) => `A ${value} ${alignment}`))).toEqual(
      pairs.map(([value, alignment]) => String(alignUp(value, alignment))),
    );
  });

  it('reads the igd-device-id switch text as normalizeDeviceId does for what QEMU can pass (fw_cfg string= or file=)', () => {
    // QEMU passes string= bytes as given and file= bytes verbatim; the C accepts trailing whitespace and NULs.
    const tail = fc.constantFrom('', '\n', '\r\n', ' ', '\0', '\n\0');
    const texts = [
      '3e9b',
      '0x46D4',
      '46d4\n',
      '7d55\0',
      'a',
      '0xa780',
      '12345',
      '',
      '0x',
      'xyz',
      '3e9b x',
      ' 3e9b',
      'ffff',
      '0X1',
      ...fc.sample(
        fc
          .tuple(
            fc.boolean(),
            fc.string({ unit: fc.constantFrom(...'0123456789abcdefABCDEF'), maxLength: 6 }),
            tail,
          )
          .map(([prefix, digits, end]) => `${prefix ? '0x' : ''}${digits}${end}`),
        { numRuns: 3_000, seed: 6 },
      ),
      ...fc.sample(fc.string({ maxLength: 8 }), { numRuns: 1_000, seed: 7 }),
    ];
    const model = (text: string): string => {
      // The switch is read from fw_cfg bytes: leading blanks are not skipped, trailing blanks and NULs are.
      if (/^[\s\0]/u.test(text)) return '-';
      const id = normalizeDeviceId(text.replace(/[\s\0]+$/u, ''));
      return id ?? '-';
    };
    const answers = runHarness(texts.map((text) => `D ${Buffer.from(text, 'latin1').toString('hex')}`));
    expect(answers).toEqual(texts.map(model));
    expect(answers.slice(0, 14)).toEqual([
      '3e9b',
      '46d4',
      '46d4',
      '7d55',
      '000a',
      'a780',
      '-',
      '-',
      '-',
      '-',
      '-',
      '-',
      'ffff',
      '0001',
    ]);
  });

  describe('OpRegion 2.0/2.1 VBT lookup (IgdOpRegionFindVbt against parseOpRegion)', () => {
    const vbts = readdirSync(path.join(CORPUS_DIR, 'vbt'))
      .filter((name) => name.endsWith('.vbt'))
      .sort()
      .map((name) => new Uint8Array(readFileSync(path.join(CORPUS_DIR, 'vbt', name))));
    const model = (bytes: Uint8Array, address: bigint): string => {
      try {
        const vbt = parseOpRegion(bytes, { physicalAddress: address }).vbt;
        return vbt === null ? 'none' : `${vbt.source} ${vbt.offset} ${vbt.sizeInBytes}`;
      } catch (error) {
        if (error instanceof OvmfBuildError && error.code.startsWith('E_OPREGION_')) return 'none';
        throw error;
      }
    };
    const request = (bytes: Uint8Array, address: bigint): string =>
      `V ${address} ${Buffer.from(bytes).toString('hex')}`;

    it('agrees on OpRegions built around every corpus VBT, 2.0 and 2.1, mailbox 4 and RVDA', () => {
      const cases: [Uint8Array, bigint][] = [];
      for (const vbt of vbts) {
        for (const version of ['2.0', '2.1'] as const) {
          try {
            cases.push([buildOpRegion({ vbt, version }), 0x7ffd_0000n]);
          } catch {
            // A VBT over 6 KiB has no 2.0 form (its RVDA would be a physical address).
          }
        }
        cases.push([buildOpRegion({ vbt, forceExtendedVbt: true }), 0x7ffd_0000n]);
      }
      const answers = runHarness(cases.map(([bytes, address]) => request(bytes, address)));
      expect(answers).toEqual(cases.map(([bytes, address]) => model(bytes, address)));
      expect(answers.filter((line) => line.startsWith('rvda ')).length).toBe(15 + 4);
      expect(answers.every((line) => line !== 'none')).toBe(true);
    });

    it('agrees on mutated OpRegions, 2.0 absolute RVDA included (fast-check)', () => {
      const seeds = [
        buildOpRegion({ vbt: vbts[0] as Uint8Array }),
        buildOpRegion({ vbt: vbts[7] as Uint8Array, version: '2.0' }),
        buildOpRegion({ vbt: vbts[7] as Uint8Array, forceExtendedVbt: true }),
      ];
      const hot = [
        0x10,
        0x16,
        0x17,
        0x58,
        ASLE_RVDA_OFFSET,
        ASLE_RVDA_OFFSET + 1,
        ASLE_RVDA_OFFSET + 3,
        ASLE_RVDA_OFFSET + 7,
        ASLE_RVDS_OFFSET,
        ASLE_RVDS_OFFSET + 1,
        0x400,
        0x418,
        0x419,
        0x41c,
        0x41d,
        0x2000,
        0x2018,
        0x2019,
        0x201c,
      ];
      const base = 0x7ffd_0000n;
      const cases = fc.sample(
        fc.record({
          which: fc.nat(seeds.length - 1),
          edits: fc.array(
            fc.tuple(fc.oneof(fc.constantFrom(...hot), fc.nat(OPREGION_SIZE + 8800)), fc.nat(255)),
            { maxLength: 6 },
          ),
          // An absolute RVDA that points at the extended VBT of a contiguous 2.0 OpRegion, or near it.
          absolute: fc.option(fc.integer({ min: -0x2100, max: 0x2100 }), { nil: undefined }),
          cut: fc.option(fc.nat(OPREGION_SIZE + 8800), { nil: undefined }),
        }),
        { numRuns: 3_000, seed: 8 },
      );
      const inputs = cases.map(({ which, edits, absolute, cut }) => {
        const seed = seeds[which] as Uint8Array;
        const bytes = seed.slice(0, Math.min(cut ?? seed.length, MAX_OPREGION_BYTES));
        if (absolute !== undefined && bytes.length >= OPREGION_SIZE) {
          bytes[0x16] = 0;
          new DataView(bytes.buffer).setBigUint64(ASLE_RVDA_OFFSET, base + 0x2000n + BigInt(absolute), true);
        }
        for (const [at, value] of edits) if (at < bytes.length) bytes[at] = value;
        return bytes;
      });
      const answers = runHarness(inputs.map((bytes) => request(bytes, base)));
      const expected = inputs.map((bytes) => model(bytes, base));
      const disagreements = answers
        .map((answer, index) => ({ index, c: answer, ts: expected[index] }))
        .filter((entry) => entry.c !== entry.ts);
      expect(disagreements).toEqual([]);
      // The generator reaches all three outcomes.
      expect(new Set(answers.map((line) => line.split(' ')[0]))).toEqual(
        new Set(['mailbox4', 'rvda', 'none']),
      );
    });
  });
});
