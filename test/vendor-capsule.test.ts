// Capsules in the outside-in chain (issue 12 item 1): a capsule's body goes back through the
// whole registry, so a capsule holding a Dell PFS, a zip or another capsule reaches that layer.
// The real sample is Dell's LVFS TPM 1.2 cabinet (test/fixtures/vendor/README.md): an MSZIP
// cab > a capsule with an all-zero GUID > a PE updater carrying a Dell PFS zlib section. The
// other capsules here are BUILT BY THIS TEST from the UEFI spec's EFI_CAPSULE_HEADER and FMP
// layouts (2.10, 8.5.3 and 23.2) around real bytes (the Dell TB16 PFS section, the TPM capsule,
// corpus firmware); they stand for no vendor's file.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { sha256 } from '../src/core/digest.js';
import { guidToBytes } from '../src/core/guid.js';
import { EFI_CAPSULE_GUID, EFI_FMP_CAPSULE_GUID, parseCapsuleHeader } from '../src/formats/capsule.js';
import { choosePackagePiece } from '../src/vendor/find-gop.js';
import { openPackage } from '../src/vendor/open-package.js';
import { cabUnpacker } from '../src/vendor/seven-zip.js';
import { unpackPackage } from '../src/vendor/unpack-package.js';
import { DEFAULT_PACKAGE_LIMITS } from '../src/vendor/unpacker.js';
import { runCli } from './cli-harness.js';
import { readCorpus, REPO_ROOT } from './corpus.js';
import { concat, le16, le32, le64, u8 } from './ffs-builder.js';
import { scratchDir, storedZip } from './vendor-archive.js';

const FIXTURES = path.join(REPO_ROOT, 'test/fixtures');
const DELL_TPM_CAB = path.join(FIXTURES, 'vendor/dell-tpm1.2-5.81.2.1.cab');
const TB16_SECTION = new Uint8Array(
  readFileSync(path.join(FIXTURES, 'vendor-parsers/dell-tb16-dock-pfs-section.bin')),
);
const NOT_UEFI = 'not a UEFI image or a known package';
const ZERO_GUID = '00000000-0000-0000-0000-000000000000';
const TPM_CAPSULE = `unknown capsule GUID ${ZERO_GUID}`;
/** Computed with Python's zlib/hashlib from the offsets in fishilico/tpm-firmware's notes, not by our parser. */
const TPM_PAYLOAD = {
  size: 187840,
  sha256: '6fb7a49546db4612f32ecc72a979c79ffee03260a87ee728972dcd96fdf5f53d',
};
const TPM_FIRMWARE_BIN = {
  size: 554912,
  sha256: 'bba0ef94d8ea9b29fdaeb5f1909780ae58edcb0a6aada5a0d813acb58e6c9f51',
};
const TB16_PAYLOADS = [
  'Firmware/1 Dock Package Version v1.0.0',
  'Firmware/2 Dell TB16 TI v1.2.11 Port Controller 1 v0.1.2.11',
  'Firmware/3 Dell TB16 TI v1.2.32 Port Controller 2 v0.1.2.32',
  'Firmware/4 Dell TB16 Dock EC v1.0.0.10',
  'Firmware/5 TBT Cable v0.0.3.12',
  'Firmware/6 Universal Cable v0.0.3.12',
];
const GK41 = 'images/geminilake-ovmf-with-gop-vbt-gk41.fd';
const GK41_GOP = 'c731f7ab56c6378a6fdff3339f4056fd69540d247e70b4ed8ff621dfa34c3006';
const GK41_VBT = 'bc417184182b778f120ffb34f328b017a153f8ed6f72aa83378236409d30fd1e';
const IMAGE_TYPE = '7A0C3F1E-55B2-4C8D-9E61-2B4D8F0A1C37';

/** EFI_CAPSULE_HEADER {CapsuleGuid, HeaderSize 28, Flags, CapsuleImageSize} + body: test-built. */
function testBuiltCapsule(body: Uint8Array, guid = EFI_CAPSULE_GUID, flags = 0x1_0000): Uint8Array {
  return concat(guidToBytes(guid), le32(28), le32(flags), le32(28 + body.length), body);
}

/** An FMP capsule with one version-2 image header holding `image`: test-built. */
function testBuiltFmpCapsule(image: Uint8Array): Uint8Array {
  const fmpHeader = concat(le32(1), le16(0), le16(1), le64(16));
  const imageHeader = concat(
    le32(2),
    guidToBytes(IMAGE_TYPE),
    u8(1, 0, 0, 0),
    le32(image.length),
    le32(0),
    le64(0),
  );
  return testBuiltCapsule(concat(fmpHeader, imageHeader, image), EFI_FMP_CAPSULE_GUID);
}

const { dir: work, file } = scratchDir('ovmf-build-vendor-capsule-');
const unpack = (bytes: Uint8Array, name = 'package') => unpackPackage(bytes, { name });
const pieceList = async (bytes: Uint8Array): Promise<[string, string, number][]> => {
  const unpacked = await unpack(bytes);
  expect(unpacked.leaves).toEqual([]);
  return unpacked.skipped.map((s) => [s.steps.map((x) => x.format).join(' > '), s.reason, s.sizeInBytes]);
};

async function tpmFirmwareBin(): Promise<Uint8Array> {
  const children = await cabUnpacker.unpack(new Uint8Array(readFileSync(DELL_TPM_CAB)), {
    limits: DEFAULT_PACKAGE_LIMITS,
    unpackedBytes: 0,
    where: 'test',
  });
  const bin = children.find((c) => c.name === 'firmware.bin');
  if (bin === undefined) throw new Error('firmware.bin is not in the Dell TPM cab');
  return bin.bytes;
}

describe('a real capsule holding a Dell PFS: Dell TPM 1.2 on LVFS (MSZIP cab > capsule > PFS)', () => {
  it('the MSZIP cabinet unpacks to the bytes cabextract gives', async () => {
    const cab = new Uint8Array(readFileSync(DELL_TPM_CAB));
    // CFFOLDER.typeCompress at 0x24 + 6: 1 is MSZIP (the folder is compressed, not stored).
    expect(Buffer.from(cab).readUInt16LE(0x2a)).toBe(1);
    const children = await cabUnpacker.unpack(cab, {
      limits: DEFAULT_PACKAGE_LIMITS,
      unpackedBytes: 0,
      where: 'test',
    });
    const out = mkdtempSync(path.join(work, 'cabextract-'));
    execFileSync('cabextract', ['-q', '-d', out, DELL_TPM_CAB]);
    expect(children.map((c) => c.name).sort()).toEqual(readdirSync(out).sort());
    for (const child of children)
      expect([child.name, sha256(readFileSync(path.join(out, child.name)))]).toEqual([
        child.name,
        sha256(child.bytes),
      ]);
    const bin = await tpmFirmwareBin();
    expect([bin.length, sha256(bin)]).toEqual([TPM_FIRMWARE_BIN.size, TPM_FIRMWARE_BIN.sha256]);
  });

  it('firmware.bin is a capsule with an all-zero GUID: header fields, body at 0x1000', async () => {
    const header = parseCapsuleHeader(await tpmFirmwareBin());
    expect(header).toEqual({
      kind: 'unknown',
      guid: ZERO_GUID,
      headerSize: 0x1000,
      flags: 0x7_0000,
      capsuleSizeInBytes: 0x877a0,
      bodyOffset: 0x1000,
      bodySizeInBytes: 0x877a0 - 0x1000,
      fmp: null,
    });
  });

  it('the chain reaches the PFS payload (exact bytes) and says plainly there is no GOP', async () => {
    const unpacked = await unpack(new Uint8Array(readFileSync(DELL_TPM_CAB)), 'DellTpm1.2_Fw5.81.2.1.cab');
    expect(unpacked.layers).toBe(3);
    expect(unpacked.leaves).toEqual([]);
    const tpm = unpacked.skipped.find((s) => s.steps.length === 3);
    expect(tpm?.steps).toEqual([
      { format: 'cab', entry: 'firmware.bin' },
      { format: TPM_CAPSULE, entry: 'image at 0x1000' },
      { format: 'Dell PFS', entry: 'Firmware/1 TPM 1.2 v5.81.2.1' },
    ]);
    expect(tpm?.sizeInBytes).toBe(TPM_PAYLOAD.size);
    expect(() => choosePackagePiece(unpacked, 'DellTpm1.2_Fw5.81.2.1.cab')).toThrow(
      `DellTpm1.2_Fw5.81.2.1.cab is a vendor package with no Intel GOP driver and no firmware image inside: cab:firmware.metainfo.xml: ${NOT_UEFI}; cab:firmware.bin > ${TPM_CAPSULE}:image at 0x1000 > Dell PFS:Firmware/1 TPM 1.2 v5.81.2.1: ${NOT_UEFI}; cab:firmware.bin.asc: ${NOT_UEFI}`,
    );
  });

  it('extract: exit 4, E_PACKAGE_NO_GOP with every piece and its chain, the PFS payload digest in --json, nothing written', async () => {
    const out = path.join(work, 'out-tpm');
    const result = await runCli(['extract', DELL_TPM_CAB, '--out', out, '--json']);
    expect(result.code).toBe(4);
    const json = JSON.parse(result.stdout) as {
      error: { code: string; details: { pieces: { chain: string; path: string; sizeInBytes: number }[] } };
    };
    expect(json.error.code).toBe('E_PACKAGE_NO_GOP');
    expect(json.error.details.pieces.map((p) => [p.chain, p.path, p.sizeInBytes])).toEqual([
      ['cab', 'cab:firmware.metainfo.xml', 3731],
      [
        `cab > ${TPM_CAPSULE} > Dell PFS`,
        `cab:firmware.bin > ${TPM_CAPSULE}:image at 0x1000 > Dell PFS:Firmware/1 TPM 1.2 v5.81.2.1`,
        TPM_PAYLOAD.size,
      ],
      ['cab', 'cab:firmware.bin.asc', 490],
    ]);
    expect(() => readdirSync(out)).toThrow(/ENOENT/);
    const text = await runCli(['extract', DELL_TPM_CAB, '--out', out]);
    expect([text.code, text.stdout]).toEqual([4, '']);
    expect(text.stderr).toBe(
      `ovmf-build: ${DELL_TPM_CAB} is a vendor package with no Intel GOP driver and no firmware image inside: cab:firmware.metainfo.xml: ${NOT_UEFI}; cab:firmware.bin > ${TPM_CAPSULE}:image at 0x1000 > Dell PFS:Firmware/1 TPM 1.2 v5.81.2.1: ${NOT_UEFI}; cab:firmware.bin.asc: ${NOT_UEFI} [E_PACKAGE_NO_GOP]\n`,
    );
    expect(() => readdirSync(out)).toThrow(/ENOENT/);
  });

  it('the PFS payload the chain names is the exact bytes (digest computed outside the parser)', async () => {
    const { dellPfsUnpacker } = await import('../src/formats/pfs-unpacker.js');
    const bin = await tpmFirmwareBin();
    const payloads = dellPfsUnpacker.unpack(bin.subarray(0x1000), {
      limits: DEFAULT_PACKAGE_LIMITS,
      unpackedBytes: 0,
    });
    expect(payloads.map((p) => [p.name, p.bytes.length, sha256(p.bytes)])).toEqual([
      ['Firmware/1 TPM 1.2 v5.81.2.1', TPM_PAYLOAD.size, TPM_PAYLOAD.sha256],
    ]);
  });

  it('inside a zip, and inside a test-built UEFI capsule: the same PFS payload at the end of each chain', async () => {
    const bin = await tpmFirmwareBin();
    expect(await pieceList(storedZip([{ name: 'tpm/firmware.bin', data: bin }]))).toEqual([
      [`zip > ${TPM_CAPSULE} > Dell PFS`, NOT_UEFI, TPM_PAYLOAD.size],
    ]);
    expect(await pieceList(testBuiltCapsule(bin))).toEqual([
      [`UEFI capsule > ${TPM_CAPSULE} > Dell PFS`, NOT_UEFI, TPM_PAYLOAD.size],
    ]);
  });
});

describe('test-built capsules around real bytes (the UEFI spec layouts; no vendor file)', () => {
  it('a UEFI capsule whose body is the real TB16 PFS section: UEFI capsule > Dell PFS, six payloads', async () => {
    const pieces = await pieceList(testBuiltCapsule(TB16_SECTION));
    expect(pieces.map(([chain, reason]) => [chain, reason])).toEqual(
      TB16_PAYLOADS.map(() => ['UEFI capsule > Dell PFS', NOT_UEFI]),
    );
    const unpacked = await unpack(testBuiltCapsule(TB16_SECTION));
    expect(unpacked.skipped.map((s) => s.steps.map((x) => x.entry))).toEqual(
      TB16_PAYLOADS.map((name) => ['image at 0x1c', name]),
    );
  });

  it('an FMP capsule whose payload is the PFS section: FMP capsule > Dell PFS, the payload named by its image type', async () => {
    const unpacked = await unpack(testBuiltFmpCapsule(TB16_SECTION));
    expect(unpacked.skipped.map((s) => [s.steps[0], s.steps[1]?.entry])).toEqual(
      TB16_PAYLOADS.map((name) => [{ format: 'FMP capsule', entry: `FMP payload 0 ${IMAGE_TYPE}` }, name]),
    );
  });

  it('a capsule holding a stored zip of GK41: extract gives the exact GOP and VBT with the chain', async () => {
    const zip = storedZip([{ name: 'gk41.fd', data: readCorpus(GK41) }]);
    const capsule = file('gk41-zip.cap', testBuiltCapsule(zip));
    const out = path.join(work, 'out-gk41');
    const result = await runCli(['extract', capsule, '--out', out]);
    expect([result.code, result.stderr]).toEqual([0, '']);
    expect(result.stdout.split('\n')[0]).toBe(
      'chain  UEFI capsule > zip > FV > LZMA > FV > GOP  (UEFI capsule:image at 0x1c > zip:gk41.fd)',
    );
    expect(sha256(readFileSync(path.join(out, 'IntelGopDriver.efi')))).toBe(GK41_GOP);
    expect(sha256(readFileSync(path.join(out, 'Vbt.bin')))).toBe(GK41_VBT);
  });

  it('a capsule whose body is a UEFI image stays with the image parser: no package layer, the same chain', async () => {
    const capsule = testBuiltCapsule(readCorpus(GK41));
    expect(await openPackage(capsule, { name: 'gk41.cap' })).toBeNull();
    const edk2 = new Uint8Array(readFileSync(path.join(FIXTURES, 'edk2/fixture.cap')));
    expect((await unpack(edk2)).layers).toBe(0);
    const out = path.join(work, 'out-gk41-cap');
    const result = await runCli(['extract', file('gk41.cap', capsule), '--out', out, '--json']);
    expect(result.code).toBe(0);
    const json = JSON.parse(result.stdout) as { chain: string[] };
    expect(json.chain).toEqual(['UEFI capsule', 'FV', 'LZMA', 'FV', 'GOP']);
    expect(sha256(readFileSync(path.join(out, 'IntelGopDriver.efi')))).toBe(GK41_GOP);
  });

  it('bounds: capsules nested past maxDepth, too many FMP payloads and a too-large body give their codes', async () => {
    let nested: Uint8Array = TB16_SECTION;
    for (let i = 0; i < 3; i++) nested = testBuiltCapsule(nested);
    await expect(unpackPackage(nested, { name: 'deep', limits: { maxDepth: 2 } })).rejects.toMatchObject({
      code: 'E_PACKAGE_TOO_DEEP',
    });
    expect((await pieceList(nested)).map(([chain]) => chain)[0]).toBe(
      'UEFI capsule > UEFI capsule > UEFI capsule > Dell PFS',
    );
    await expect(
      unpackPackage(testBuiltCapsule(TB16_SECTION), { name: 'big', limits: { maxEntryBytes: 1024 } }),
    ).rejects.toMatchObject({ code: 'E_PACKAGE_TOO_LARGE' });
    await expect(
      unpackPackage(testBuiltFmpCapsule(TB16_SECTION), { name: 'many', limits: { maxEntries: 0 } }),
    ).rejects.toMatchObject({ code: 'E_PACKAGE_TOO_MANY_ENTRIES' });
  });

  it('a capsule whose header lies about its size is left to the image parser, which names the damage', async () => {
    const capsule = testBuiltCapsule(TB16_SECTION).slice();
    capsule.set(le32(capsule.length + 1), 24);
    expect((await unpack(capsule)).layers).toBe(0);
    const result = await runCli(['extract', file('bad.cap', capsule), '--out', path.join(work, 'out-bad')]);
    expect([result.code, result.stdout]).toEqual([6, '']);
    expect(result.stderr).toBe(
      `ovmf-build: UEFI capsule claims 0x${(capsule.length + 1).toString(16)} bytes, file has 0x${capsule.length.toString(16)} (minimum 0x1c) [E_CAPSULE_BAD_SIZE]\n`,
    );
  });
});
