// Corrupt is not absent: targeted damage to the Gemini Lake OVMF image (its LZMA section, and
// the header of the volume inside it) used to end in "this image ships no Intel GOP driver"
// (E_GOP_NOT_FOUND, exit 4) in 160 of 180 runs. A volume or section that could hold the GOP
// and fails to parse, decompress or checksum makes the answer "corrupt" (E_INPUT_CORRUPT,
// exit 6, naming where); damage that changes nothing still yields the exact original GOP.
// The mutations are seeded, so every run tries the same 180 images.
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FormatError, NotFoundError } from '../src/core/errors.js';
import { sha256 } from '../src/core/digest.js';
import type { SectionNode, VolumeNode } from '../src/formats/firmware-node.js';
import { parseFirmware, walkNodes } from '../src/formats/firmware-tree.js';
import { gopNotFoundError, locateGopAndVbt } from '../src/formats/locate.js';
import { runCli } from './cli-harness.js';
import { concat, ffsFile, guidedSection, le24, sections, u8, volume } from './ffs-builder.js';
import { firmwareEntries, readCorpus } from './corpus.js';
import { lzmaEncode } from './lzma-zeros.js';

const IMAGE = 'images/geminilake-ovmf-with-gop-vbt-gk41.fd';
/** manifest.json: the IntelGopDriver PE32 body in this image. */
const GOP_SHA256 = firmwareEntries().find((e) => e.path === IMAGE)?.truth.gop?.[0]?.pe_sha256;
const LZMA_GUID = 'EE4E5898-3914-4259-9D6E-DC7BD79403CF';
const DXE_FV = '7CB8BDC9-F8EB-4F34-AAEA-3EE4AF6516A1';

const work = mkdtempSync(path.join(os.tmpdir(), 'ovmf-build-corrupt-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** mulberry32: a small seeded PRNG, so the damage is the same on every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b_79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

type Outcome = 'intact' | 'corrupt' | 'budget' | string;

/** What extract/the main job would conclude about the GOP: its exact bytes, or which error. */
function outcomeOf(image: Uint8Array, expectedSha256: string): { outcome: Outcome; error?: FormatError } {
  let tree;
  try {
    tree = parseFirmware(image, { verifyChecksums: false, summarizePe: false });
  } catch (error) {
    if (error instanceof FormatError && error.code === 'E_FW_DECOMPRESSED_TOO_LARGE')
      return { outcome: 'budget' };
    throw error;
  }
  const result = locateGopAndVbt(tree);
  if (result.gop !== null) {
    return {
      outcome: sha256(result.gop.body) === expectedSha256 ? 'intact' : `wrong GOP ${result.gop.path}`,
    };
  }
  const error = gopNotFoundError(result);
  if (error instanceof NotFoundError) return { outcome: error.code };
  return { outcome: error.code === 'E_INPUT_CORRUPT' ? 'corrupt' : error.code, error };
}

function lzmaSectionOf(image: Uint8Array): SectionNode {
  const tree = parseFirmware(image, { verifyChecksums: false, summarizePe: false });
  for (const node of walkNodes(tree.root)) {
    if (node.kind === 'section' && node.section.guided?.guid === LZMA_GUID && node.offset !== null)
      return node;
  }
  throw new Error('no LZMA section');
}

describe('damage to the Gemini Lake OVMF image is corrupt, never absent', () => {
  const image = readCorpus(IMAGE);
  const original = locateGopAndVbt(parseFirmware(image, { verifyChecksums: false, summarizePe: false }));
  const gopSha256 = sha256(original.gop?.body ?? new Uint8Array(0));
  const lzma = lzmaSectionOf(image);
  const start = lzma.offset as number;
  const headerEnd = start + lzma.section.dataOffset;

  it('starts from the intact image: the GOP of the manifest, no damage', () => {
    expect(original.damage).toEqual([]);
    expect(gopSha256).toBe(GOP_SHA256);
    expect(original.gop?.path).toMatch(/IntelGopDriver\/PE32 image section$/);
  });

  it('90 seeded byte changes in the LZMA section (GUID-defined header, LZMA header, stream)', () => {
    const random = prng(0x0c0ffee);
    const outcomes: Record<string, number> = {};
    const bad: string[] = [];
    for (let i = 0; i < 90; i++) {
      // A third in the section header, a third in the 13-byte LZMA header, a third in the stream.
      const at =
        i % 3 === 0
          ? start + Math.floor(random() * (headerEnd - start))
          : i % 3 === 1
            ? headerEnd + Math.floor(random() * 13)
            : headerEnd + 13 + Math.floor(random() * (start + lzma.sizeInBytes - headerEnd - 13));
      const damaged = new Uint8Array(image);
      damaged[at] = (damaged[at] as number) ^ (1 + Math.floor(random() * 255));
      const { outcome, error } = outcomeOf(damaged, gopSha256);
      outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
      if (outcome !== 'intact' && outcome !== 'corrupt' && outcome !== 'budget')
        bad.push(`${at.toString(16)}: ${outcome}`);
      if (error !== undefined) {
        expect(error.details['damagedPlaces']).toBeGreaterThan(0);
        expect(error.message).toMatch(
          /^the image is corrupt, so it cannot be said whether it ships an Intel GOP driver: /,
        );
      }
    }
    // Before the fix: 74 of these 90 said E_GOP_NOT_FOUND.
    expect(outcomes).toEqual({ corrupt: 74, intact: 16 });
    expect(bad).toEqual([]);
  }, 300_000);

  it('90 seeded byte changes in the header of the volume inside the LZMA section', () => {
    // The DXE volume's header and first (pad) file holding its extended header, then the GOP,
    // VBT and policy files, in a new LZMA section: recompressing all 12 MiB for every
    // mutation would take minutes.
    let volumeNode: VolumeNode | undefined;
    for (const node of walkNodes(parseFirmware(image).root)) {
      if (node.kind === 'volume' && node.name === DXE_FV) volumeNode = node;
    }
    if (volumeNode === undefined) throw new Error('no DXE volume');
    const base = volumeNode.bytes.byteOffset;
    const files = volumeNode.children.filter((c) => c.kind === 'file');
    const first = files[0];
    const gop = files.find((f) => f.uiName === 'IntelGopDriver');
    const policy = files.find((f) => f.uiName === 'PlatformGOPPolicy');
    if (first === undefined || gop === undefined || policy === undefined) throw new Error('files missing');
    const headEnd = Math.ceil((first.bytes.byteOffset - base + first.sizeInBytes) / 8) * 8;
    const head = volumeNode.bytes.subarray(0, headEnd);
    const block = volumeNode.bytes.subarray(
      gop.bytes.byteOffset - base,
      policy.bytes.byteOffset - base + policy.sizeInBytes,
    );
    const used = head.length + block.length;
    const length = Math.ceil(used / 0x1_0000) * 0x1_0000;
    const inner = new Uint8Array(length).fill(0xff);
    inner.set(head, 0);
    inner.set(block, head.length);
    const dv = new DataView(inner.buffer);
    dv.setBigUint64(0x20, BigInt(length), true);
    dv.setUint32(0x38, length / 0x1_0000, true);
    const headerLength = dv.getUint16(0x30, true);
    const checksumOf = (bytes: Uint8Array): number => {
      let sum = 0;
      for (let i = 0; i < headerLength; i += 2)
        sum = (sum + ((bytes[i] as number) | ((bytes[i + 1] as number) << 8))) & 0xffff;
      return sum;
    };
    dv.setUint16(0x32, 0, true);
    dv.setUint16(0x32, (0x1_0000 - checksumOf(inner)) & 0xffff, true);
    const extAt = dv.getUint16(0x34, true);
    const extSize = dv.getUint32(extAt + 16, true);
    const headerBytes = [
      ...Array(headerLength).keys(),
      ...Array.from({ length: extSize }, (_, i) => extAt + i),
    ];
    const usedAligned = Math.ceil(used / 8) * 8;
    const wrap = (vol: Uint8Array): Uint8Array => {
      // EFI_SECTION_FIRMWARE_VOLUME_IMAGE around the whole volume; its free-space tail is a
      // run of 0xFF, cheap to encode.
      const fvSection = concat(le24(4 + length), u8(0x17), vol.subarray(0, usedAligned));
      const body = lzmaEncode(fvSection, length - usedAligned, 0xff);
      return volume([
        ffsFile('B7A2E3C1-0000-4000-8000-00000000F001', 0x0b, sections(guidedSection(LZMA_GUID, body))),
      ]);
    };
    const baseline = wrap(inner);
    expect(outcomeOf(baseline, gopSha256).outcome).toBe('intact');

    const random = prng(0xfeed5);
    const outcomes: Record<string, number> = {};
    const bad: string[] = [];
    for (let i = 0; i < 90; i++) {
      const at = headerBytes[Math.floor(random() * headerBytes.length)] as number;
      const damaged = inner.slice();
      damaged[at] = (damaged[at] as number) ^ (1 + Math.floor(random() * 255));
      const { outcome } = outcomeOf(wrap(damaged), gopSha256);
      outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
      if (outcome !== 'intact' && outcome !== 'corrupt')
        bad.push(`header byte ${at.toString(16)}: ${outcome}`);
    }
    // Before the fix: 53 of these 90 said E_GOP_NOT_FOUND (37 intact).
    expect(outcomes).toEqual({ corrupt: 74, intact: 16 });
    expect(bad).toEqual([]);
  }, 300_000);
});

describe('extract says where an image is corrupt (exit 6), and keeps the out directory untouched', () => {
  const image = readCorpus(IMAGE);
  it('a damaged LZMA stream: E_INPUT_CORRUPT naming the section GUID and offset', async () => {
    const lzma = lzmaSectionOf(image);
    const damaged = new Uint8Array(image);
    const at = (lzma.offset as number) + lzma.section.dataOffset + 13 + 0x1000;
    damaged[at] = (damaged[at] as number) ^ 0x55;
    const file = path.join(work, 'damaged-stream.fd');
    writeFileSync(file, damaged);
    const out = path.join(work, 'out-stream');
    const result = await runCli(['extract', file, '--out', out]);
    expect(result.code).toBe(6);
    expect(result.stderr).toBe(
      'ovmf-build: the image is corrupt, so it cannot be said whether it ships an Intel GOP driver: lzma stream is corrupt at 0xd: decoder failed: dist overflow at 0x90 (section EE4E5898-3914-4259-9D6E-DC7BD79403CF, volume 48DB5E17-707C-472D-91CD-1613E7EF51B0) [E_DECOMPRESS_CORRUPT] [E_INPUT_CORRUPT]\n',
    );
    expect(() => readdirSync(out)).toThrow(/ENOENT/);
  });
});
