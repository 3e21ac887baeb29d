// Decompression bombs: small images whose nested LZMA sections declare hundreds of MiB. The
// walk has one budget for all decompressed output (maximumTotalDecompressedSize, 512 MiB);
// each section's declared size is checked against what is left before anything is allocated,
// and large sections are decoded into buffers of exactly their size. The peak RSS of a child
// that parses the bomb must stay under the budget + 200 MiB (it was 1.2 GB for a 104 KB bomb,
// the native decoder holding about three times each output).
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from './cli-harness.js';
import { concat, ffsFile, guidedSection, le32, section, sections, u8, volume } from './ffs-builder.js';
import { lzmaEncode, lzmaRun } from './lzma-zeros.js';

const run = promisify(execFile);
const CHILD = path.join(import.meta.dirname, 'decompression-bomb-child.ts');
const work = mkdtempSync(path.join(os.tmpdir(), 'ovmf-build-bomb-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const LZMA = 'EE4E5898-3914-4259-9D6E-DC7BD79403CF';
const BROTLI = '3D532050-5CDA-4FD0-879E-0F7F630D5AFB';
const MiB = 1024 * 1024;
const BUDGET = 512 * MiB;
const EFI_FV_FILETYPE_FIRMWARE_VOLUME_IMAGE = 0x0b;
const EFI_FV_FILETYPE_DRIVER = 0x07;
const EFI_SECTION_RAW = 0x19;
const EFI_SECTION_FIRMWARE_VOLUME_IMAGE = 0x17;

/** A large-form (0xFFFFFF + 32-bit size) section header for a body of `bodyBytes`. */
function largeHeader(type: number, bodyBytes: number): Uint8Array {
  return concat(u8(0xff, 0xff, 0xff, type), le32(8 + bodyBytes));
}

function pad4(bytes: Uint8Array): Uint8Array {
  return concat(bytes, new Uint8Array((4 - (bytes.length % 4)) % 4));
}

/**
 * LZMA section -> (volume image section -> volume -> file -> two LZMA sections of 200 MiB
 * of zeros) followed by a 250 MiB raw section of zeros: 450 MiB fit the budget, the second
 * inner section passes it.
 */
function nestedBomb(): { bomb: Uint8Array; outerBytes: number } {
  const inner = volume([
    ffsFile(
      '5A3C1F00-0000-4000-8000-000000000001',
      EFI_FV_FILETYPE_DRIVER,
      sections(guidedSection(LZMA, lzmaRun(200 * MiB)), guidedSection(LZMA, lzmaRun(200 * MiB))),
    ),
  ]);
  const prefix = pad4(concat(section(EFI_SECTION_FIRMWARE_VOLUME_IMAGE, inner)));
  const outer = lzmaEncode(concat(prefix, largeHeader(EFI_SECTION_RAW, 250 * MiB)), 250 * MiB);
  const bomb = volume([
    ffsFile(
      '5A3C1F00-0000-4000-8000-000000000002',
      EFI_FV_FILETYPE_FIRMWARE_VOLUME_IMAGE,
      sections(guidedSection(LZMA, outer)),
    ),
  ]);
  return { bomb, outerBytes: prefix.length + 8 + 250 * MiB };
}

/** 40 LZMA sections of 16 MiB each (the size the native decoder takes), 640 MiB in all. */
function wideBomb(): Uint8Array {
  const one = guidedSection(LZMA, lzmaRun(16 * MiB));
  return volume([
    ffsFile(
      '5A3C1F00-0000-4000-8000-000000000003',
      EFI_FV_FILETYPE_DRIVER,
      sections(...Array.from({ length: 40 }, () => one)),
    ),
  ]);
}

/**
 * A 250 MiB LZMA section, then a 250 MiB Brotli section: zlib holds Brotli output twice while
 * it concatenates, so the second would peak at 750 MiB of output; it gets half the budget left.
 */
function brotliBomb(): Uint8Array {
  const zeros = Buffer.alloc(250 * MiB);
  const stream = zlib.brotliCompressSync(zeros, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 1 } });
  const header = new Uint8Array(16);
  new DataView(header.buffer).setBigUint64(0, BigInt(250 * MiB), true);
  return volume([
    ffsFile(
      '5A3C1F00-0000-4000-8000-000000000004',
      EFI_FV_FILETYPE_DRIVER,
      sections(guidedSection(LZMA, lzmaRun(250 * MiB)), guidedSection(BROTLI, concat(header, stream))),
    ),
  ]);
}

interface ChildResult {
  readonly ok: boolean;
  readonly code?: string;
  readonly message?: string;
  readonly details?: Record<string, unknown>;
  readonly maxRssKiB: number;
  readonly baselineKiB: number;
}

async function parseInChild(file: string): Promise<ChildResult> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', CHILD, file], {
    cwd: path.resolve(import.meta.dirname, '..'),
    maxBuffer: 1024 * 1024,
  });
  return JSON.parse(stdout) as ChildResult;
}

/**
 * Parses `bytes` (written to `name` in the work dir) in a child and asserts that it stopped at the
 * budget with `details`, and that the child's peak RSS stayed below the budget's 512 MiB + 200 MiB.
 * Returns the file, for a CLI run on the same bytes.
 */
async function expectStoppedAtBudget(
  name: string,
  bytes: Uint8Array,
  details: Record<string, unknown>,
): Promise<string> {
  const file = path.join(work, name);
  writeFileSync(file, bytes);
  const result = await parseInChild(file);
  expect(result).toMatchObject({ ok: false, code: 'E_FW_DECOMPRESSED_TOO_LARGE', details });
  const peakMiB = result.maxRssKiB / 1024;
  expect(peakMiB, `peak RSS ${peakMiB.toFixed(0)} MiB`).toBeLessThan(512 + 200);
  return file;
}

describe('decompression bombs stop at the budget, with the peak RSS near it', () => {
  it('a ~100 KB nested LZMA bomb: E_FW_DECOMPRESSED_TOO_LARGE, peak RSS < budget + 200 MiB', async () => {
    const { bomb, outerBytes } = nestedBomb();
    expect(bomb.length).toBeLessThan(120_000);
    const file = await expectStoppedAtBudget('nested.fd', bomb, {
      limit: BUDGET,
      declaredBytes: 200 * MiB,
      leftBytes: BUDGET - outerBytes - 200 * MiB,
      decompressedSections: 2,
    });

    const cli = await runCli(['extract', file, '--out', path.join(work, 'nested-out')]);
    expect(cli.code).toBe(6);
    expect(cli.stderr).toMatch(
      /a LZMA section declares 0xc800000 bytes, more than the 0x[0-9a-f]+ it may take of the 0x[0-9a-f]+ left of the 0x20000000-byte total decompression budget .*\[E_FW_DECOMPRESSED_TOO_LARGE\]/,
    );
  }, 120_000);

  it('40 sections of 16 MiB: stops at the 33rd, peak RSS < budget + 200 MiB', async () => {
    await expectStoppedAtBudget('wide.fd', wideBomb(), {
      limit: BUDGET,
      declaredBytes: 16 * MiB,
      leftBytes: 0,
      decompressedSections: 32,
    });
  }, 120_000);

  it('a Brotli section gets half the budget left (zlib holds its output twice)', async () => {
    await expectStoppedAtBudget('brotli.fd', brotliBomb(), {
      limit: BUDGET,
      declaredBytes: 250 * MiB,
      leftBytes: BUDGET - 250 * MiB,
      decompressedSections: 1,
    });
  }, 120_000);
});
