// Our EfiRom equivalent (buildOptionRom) against EDK2's own EfiRom, built from the same EDK2
// source in the builder image: the ROMs must be byte-identical, uncompressed and with EFI
// compression (-ec), for every real GOP driver in the corpus. This is the always-on form of the
// EFIROM-gated comparison in src/formats/option-rom-builder.test.ts.
import { createHash, randomBytes } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContainerEngine } from '../src/container/index.js';
import { classifyGopDriver } from '../src/formats/gop.js';
import { buildOptionRom } from '../src/formats/option-rom-builder.js';
import { CORPUS_DIR } from './corpus.js';
import { edk2Source, harness, testEngine, testLogger } from './harness.js';

const logger = testLogger();
const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

/** Three real drivers of different sizes (one of them under 512 bytes of padding) for the chains. */
const CHAIN = [
  'haswell-broadwell-mrchromebox-hsw.efi',
  'alderlake-n-twinlake-tianbei-n1pro.efi',
  'cometlake-mrchromebox-cml.efi',
] as const;

let engine: ContainerEngine;
const gops = new Map<string, Uint8Array>();
const theirs = new Map<string, Uint8Array>();

beforeAll(async () => {
  for (const file of (await readdir(path.join(CORPUS_DIR, 'gop'))).sort()) {
    const bytes = new Uint8Array(await readFile(path.join(CORPUS_DIR, 'gop', file)));
    if (classifyGopDriver(bytes).isGop) gops.set(file, bytes);
  }
  const source = edk2Source();
  engine = await testEngine(logger);
  const builder = harness().builderImage;
  const names = [...gops.keys()];
  const chain = CHAIN.join(' ');
  const script = [
    'set -eu',
    'make -s -C /edk2/BaseTools/Source/C/Common >/dev/null',
    'make -s -C /edk2/BaseTools/Source/C/EfiRom >/dev/null',
    'mkdir -p /edk2/out',
    'cd /edk2/in',
    ...names.flatMap((name) => [
      `/edk2/BaseTools/Source/C/bin/EfiRom -f 0x8086 -i 0x3e9b -l 0x030000 -e ${name} -o /edk2/out/${name}.rom >/dev/null`,
      `/edk2/BaseTools/Source/C/bin/EfiRom -f 0x8086 -i 0x3e9b -ec ${name} -o /edk2/out/${name}.ec.rom >/dev/null`,
    ]),
    // Chains, as the ROM-mode ROM is built: one PCIR per image, the last-image bit on the last.
    `/edk2/BaseTools/Source/C/bin/EfiRom -f 0x8086 -i 0x46d4 -l 0x030000 -e ${chain} -o /edk2/out/chain.rom >/dev/null`,
    `/edk2/BaseTools/Source/C/bin/EfiRom -f 0x8086 -i 0x46d4 -l 0x030000 -ec ${chain} -o /edk2/out/chain.ec.rom >/dev/null`,
    `/edk2/BaseTools/Source/C/bin/EfiRom -f 0x8086 -i 0x46d4 -l 0x030000 -e ${CHAIN[0]} -ec ${CHAIN.slice(1).join(' ')} -o /edk2/out/chain.mixed.rom >/dev/null`,
  ].join('\n');
  const result = await engine.run({
    image: builder.ref,
    cmd: ['/bin/bash', '/edk2/efirom.sh'],
    workingDir: '/edk2',
    jobId: `test-efirom-${randomBytes(4).toString('hex')}`,
    purpose: 'efirom-parity',
    logger,
    files: [
      { path: '/edk2/efirom.sh', data: new TextEncoder().encode(script), mode: 0o755 },
      ...names.map((name) => ({ path: `/edk2/in/${name}`, data: gops.get(name) as Uint8Array })),
    ],
    directories: [{ hostDir: path.join(source.dir, 'BaseTools'), containerDir: '/edk2/BaseTools' }],
    outputs: ['/edk2/out'],
  });
  expect(result.exitCode, result.tailLines.join('\n')).toBe(0);
  for (const [name, bytes] of result.outputs) theirs.set(path.basename(name), bytes);
});

afterAll(async () => {
  await engine?.[Symbol.asyncDispose]();
});

describe("buildOptionRom equals EDK2's EfiRom byte for byte", () => {
  it('covers every real GOP driver in the corpus', () => {
    expect(gops.size).toBe(13);
    expect(theirs.size).toBe(29);
  });

  it('uncompressed, class 0x030000 (-l 0x030000 -e)', () => {
    for (const [name, pe] of gops) {
      const ours = buildOptionRom({
        images: [{ pe, vendorId: 0x8086, deviceId: 0x3e9b, classCode: 0x03_0000 }],
      });
      expect({ name, sha256: sha256(ours) }).toEqual({ name, sha256: sha256(theirs.get(`${name}.rom`)!) });
    }
  });

  it('EFI-compressed (-ec)', () => {
    for (const [name, pe] of gops) {
      const ours = buildOptionRom({ images: [{ pe, vendorId: 0x8086, deviceId: 0x3e9b, compress: true }] });
      expect({ name, sha256: sha256(ours) }).toEqual({ name, sha256: sha256(theirs.get(`${name}.ec.rom`)!) });
    }
  });

  it('chains of three images, uncompressed, -ec and mixed (-e a -ec b c)', () => {
    const pes = CHAIN.map((name) => gops.get(name) as Uint8Array);
    const build = (compress: readonly boolean[]): string =>
      sha256(
        buildOptionRom({
          images: pes.map((pe, i) => ({
            pe,
            vendorId: 0x8086,
            deviceId: 0x46d4,
            // EfiRom's -l sets the class of the next file only (ParseCommandLine resets it).
            classCode: i === 0 ? 0x03_0000 : 0,
            compress: compress[i] as boolean,
          })),
        }),
      );
    expect({
      plain: build([false, false, false]),
      compressed: build([true, true, true]),
      mixed: build([false, true, true]),
    }).toEqual({
      plain: sha256(theirs.get('chain.rom')!),
      compressed: sha256(theirs.get('chain.ec.rom')!),
      mixed: sha256(theirs.get('chain.mixed.rom')!),
    });
  });
});
