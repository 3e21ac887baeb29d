// Real coreboot VBTs on which parseVbt once disagreed with Linux i915 and intel_vbt_decode
// (found by scripts/vbt-differential.ts over the coreboot tree; sources in
// test/fixtures/vbt/README.md). Each test failed before the block walk followed i915.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../../test/cli-harness.js';
import { REPO_ROOT } from '../../test/corpus.js';
import { parseVbt } from './vbt.js';

const FIXTURES = path.join(REPO_ROOT, 'test/fixtures/vbt');
const fixture = (name: string): Uint8Array => new Uint8Array(readFileSync(path.join(FIXTURES, name)));

/** git's blob id, so each fixture is provably the coreboot file named in the README. */
function gitBlobId(bytes: Uint8Array): string {
  return createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
}

const ids = (name: string): number[] => parseVbt(fixture(name)).blocks.map((block) => block.id);

describe('coreboot VBTs that i915 loads and we once refused or misread', () => {
  it('fixtures are the coreboot blobs named in the README', () => {
    expect(
      [
        'coreboot-starlabs-lite-glk.vbt',
        'coreboot-purism-librem-skl.vbt',
        'coreboot-google-dedede-bugzzy.vbt',
      ].map((name) => gitBlobId(fixture(name))),
    ).toEqual([
      '7a978ab6914346a6b5a7202e247b560e2f661d87',
      '3a818c463b6cab3ac816b29dec8819d2267bf860',
      'f799b48fe83a1fc3972a5db66d08a6ba305d2ed0',
    ]);
  });

  it('starlabs/lite glk (Gemini Lake): a block claiming 0x8800 bytes ends the walk with a warning, not E_VBT_BLOCK_OVERFLOW', () => {
    const info = parseVbt(fixture('coreboot-starlabs-lite-glk.vbt'));
    expect({
      signature: info.signature,
      bdbVersion: info.bdbVersion,
      vbtSize: info.vbtSize,
      bdbSize: info.bdbSize,
      sha256: info.sha256,
      checksumValid: info.checksum.valid,
      last: info.blocks.at(-1),
      warnings: info.warnings,
    }).toEqual({
      signature: '$VBT GEMINILAKE',
      bdbVersion: 212,
      vbtSize: 5527,
      bdbSize: 5478,
      sha256: '5ff1c30e9cc84d9e18fbca2607a47c6e5631f0298550f0a5f5967ddd261b8b98',
      checksumValid: true,
      last: { id: 43, offset: 0xf7d, sizeInBytes: 200 },
      warnings: [
        'BDB block 136 at 0x1048 claims 0x8800 bytes, ending at 0x984b, 33461 byte(s) past bdb_size; i915 ignores it and any block after it',
      ],
    });
    // intel_vbt_decode --header lists the same blocks ("BDB blocks present").
    expect([...ids('coreboot-starlabs-lite-glk.vbt')].sort((a, b) => a - b)).toEqual([
      1, 2, 3, 6, 7, 8, 9, 10, 12, 13, 17, 18, 20, 26, 27, 28, 31, 32, 40, 41, 42, 43, 252, 253, 254,
    ]);
  });

  it('purism/librem_skl (Skylake): block 43 claiming 0x7d0 bytes ends the walk with a warning', () => {
    const info = parseVbt(fixture('coreboot-purism-librem-skl.vbt'));
    expect([info.signature, info.bdbVersion, info.vbtSize, info.sha256, info.blocks.at(-1)]).toEqual([
      '$VBT SKYLAKE',
      209,
      4312,
      '205529f2a08c5e184857ae05732b2f75514a95d3db0eb3342b0d6dc7e36caabb',
      { id: 42, offset: 0xa68, sizeInBytes: 1298 },
    ]);
    expect(info.warnings).toEqual([
      'BDB block 43 at 0xf7d claims 0x7d0 bytes, ending at 0x1750, 1657 byte(s) past bdb_size; i915 ignores it and any block after it',
    ]);
  });

  it('google/dedede bugzzy (Jasper Lake): the MIPI sequence block v3 is found, bounded by its u32 size as i915 does', () => {
    const info = parseVbt(fixture('coreboot-google-dedede-bugzzy.vbt'));
    expect([info.signature, info.bdbVersion, info.vbtSize, info.bdbSize]).toEqual([
      '$VBT JASPERLAKE',
      236,
      8426,
      8377,
    ]);
    // u16 size 0, version 3, u32 size 1183: i915 copies 1183 + 5 bytes of it.
    expect(info.blocks.find((block) => block.id === 53)).toEqual({
      id: 53,
      offset: 0x1c43,
      sizeInBytes: 1188,
    });
    expect(ids('coreboot-google-dedede-bugzzy.vbt')).toEqual([
      254, 1, 253, 2, 252, 9, 10, 12, 20, 27, 40, 42, 43, 44, 46, 51, 52, 56, 57, 58, 53,
    ]);
    expect(info.warnings).toEqual([
      'BDB block 53 at 0x1c43 is a MIPI sequence block v3: i915 steps over it by its u32 size, 5 bytes short of its end, and reads the next block header from inside it at 0x20e5',
      'BDB block 0 at 0x20e5 claims 0x2 bytes, ending at 0x20ea, 1 byte(s) past bdb_size; i915 ignores it and any block after it',
    ]);
  });

  it('inspect accepts the Gemini Lake VBT (exit 0) and shows the warning in text and --json', async () => {
    const file = path.join(FIXTURES, 'coreboot-starlabs-lite-glk.vbt');
    const text = await runCli(['inspect', file]);
    expect([text.code, text.stderr]).toEqual([0, '']);
    expect(text.stdout).toBe(
      [
        'VBT "$VBT GEMINILAKE", BDB version 212, 5527 of 5632 bytes, 25 blocks',
        'warning: BDB block 136 at 0x1048 claims 0x8800 bytes, ending at 0x984b, 33461 byte(s) past bdb_size; i915 ignores it and any block after it',
        '',
      ].join('\n'),
    );
    const json = await runCli(['inspect', file, '--json']);
    expect(json.code).toBe(0);
    expect((JSON.parse(json.stdout) as { vbt: unknown }).vbt).toEqual({
      signature: '$VBT GEMINILAKE',
      bdbVersion: 212,
      size: 5632,
      vbtSize: 5527,
      version: 100,
      checksumValid: true,
      vbtSha256: '5ff1c30e9cc84d9e18fbca2607a47c6e5631f0298550f0a5f5967ddd261b8b98',
      blocks: 25,
      warnings: [
        'BDB block 136 at 0x1048 claims 0x8800 bytes, ending at 0x984b, 33461 byte(s) past bdb_size; i915 ignores it and any block after it',
      ],
    });
  });
});
