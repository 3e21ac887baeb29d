// The CLI on vendor packages (issue 12 item 1): `extract` prints the chain and writes the
// exact GOP and VBT, or says plainly that there is none, with its exit code; `--firmware`
// takes a package through the real input stage (stand-in build, as test/cache-job.test.ts).
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runMain } from '../src/cli/commands/ovmf.js';
import { exitCodeFor } from '../src/cli/exit-codes.js';
import type { OvmfBuildError } from '../src/core/errors.js';
import { isolatedEnv, StandInBuild } from './cache-stand-in.js';
import { captureContext, runCli } from './cli-harness.js';
import { corpusPath, REPO_ROOT } from './corpus.js';
import { scratchDir, sevenZipArchive, storedZip } from './vendor-archive.js';

const sha = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');
const GK41 = 'images/geminilake-ovmf-with-gop-vbt-gk41.fd';
const IFWI = 'images/geminilake-protectli-vp2410-ifwi.bin';
const SPI = 'images/kabylake-platform-clevo-p870km-modded-spi.rom';
/** The corpus manifest's GOP (pe_sha256) and VBT (body_sha256) of GK41. */
const GK41_GOP = 'c731f7ab56c6378a6fdff3339f4056fd69540d247e70b4ed8ff621dfa34c3006';
const GK41_VBT = 'bc417184182b778f120ffb34f328b017a153f8ed6f72aa83378236409d30fd1e';
const REAL_CAB = path.join(REPO_ROOT, 'test/fixtures/vendor/starlabs-labtop-mk4-ite-1.07.cab');
const NOT_UEFI = 'not a UEFI image or a known package';

const { dir: work, file } = scratchDir('ovmf-build-vendor-cli-');
const gk41Zip = file('gk41.zip', sevenZipArchive(['-tzip'], [corpusPath(GK41)]));

describe('ovmf-build extract on a vendor package', () => {
  it('zip > FV > LZMA > FV > GOP: the chain first, then the exact GOP and VBT', async () => {
    const out = path.join(work, 'out-text');
    const result = await runCli(['extract', gk41Zip, '--out', out]);
    expect([result.code, result.stderr]).toEqual([0, '']);
    expect(result.stdout.split('\n')).toEqual([
      'chain  zip > FV > LZMA > FV > GOP  (zip:geminilake-ovmf-with-gop-vbt-gk41.fd)',
      `GOP  ${out}/IntelGopDriver.efi  IntelGopDriver build 1016  89344 bytes  sha256 ${GK41_GOP}`,
      `VBT  ${out}/Vbt.bin  $VBT GEMINILAKE (BDB 212)  5632 bytes  sha256 ${GK41_VBT}`,
      '',
    ]);
    expect(sha(readFileSync(path.join(out, 'IntelGopDriver.efi')))).toBe(GK41_GOP);
    expect(sha(readFileSync(path.join(out, 'Vbt.bin')))).toBe(GK41_VBT);
  });

  it('--json gives the chain as a list, the piece and every piece of the package', async () => {
    const result = await runCli(['extract', gk41Zip, '--out', path.join(work, 'out-json'), '--json']);
    expect(result.code).toBe(0);
    const json = JSON.parse(result.stdout) as {
      package: unknown;
      chain: unknown;
      gop: { sha256: string };
      vbt: { sha256: string };
    };
    expect(json.package).toEqual({
      chain: ['zip', 'FV', 'LZMA', 'FV', 'GOP'],
      entry: 'zip:geminilake-ovmf-with-gop-vbt-gk41.fd',
      pieces: [
        {
          chain: 'zip',
          path: 'zip:geminilake-ovmf-with-gop-vbt-gk41.fd',
          sizeInBytes: 3653632,
          outcome: 'a UEFI image with an Intel GOP driver',
        },
      ],
    });
    expect([json.gop.sha256, json.vbt.sha256]).toEqual([GK41_GOP, GK41_VBT]);
    expect(json.chain).toEqual(['zip', 'FV', 'LZMA', 'FV', 'GOP']);
    // The bare image gives the layers inside it, and no package.
    const plain = await runCli([
      'extract',
      corpusPath(GK41),
      '--out',
      path.join(work, 'out-plain'),
      '--json',
    ]);
    const plainJson = JSON.parse(plain.stdout) as Record<string, unknown>;
    expect([plain.code, plainJson['chain'], 'package' in plainJson]).toEqual([
      0,
      ['FV', 'LZMA', 'FV', 'GOP'],
      false,
    ]);
  });

  it('a real LVFS cabinet without firmware image: exit 4, E_PACKAGE_NO_GOP naming each piece, nothing written', async () => {
    const out = path.join(work, 'out-cab');
    const result = await runCli(['extract', REAL_CAB, '--out', out]);
    expect(result.code).toBe(4);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(
      `ovmf-build: ${REAL_CAB} is a vendor package with no Intel GOP driver and no firmware image inside: cab:1.07.bin: ${NOT_UEFI}; cab:L4.metainfo.xml: ${NOT_UEFI} [E_PACKAGE_NO_GOP]\n`,
    );
    expect(() => readdirSync(out)).toThrow(/ENOENT/);
  });

  it('a 7z holding an image with VBTs and no GOP: exit 4, the chain, the VBTs written', async () => {
    const out = path.join(work, 'out-ifwi');
    const result = await runCli([
      'extract',
      file('ifwi.7z', sevenZipArchive(['-t7z'], [corpusPath(IFWI)])),
      '--out',
      out,
    ]);
    expect(result.code).toBe(4);
    expect(result.stdout.split('\n')[0]).toBe(
      'chain  7z > IFWI (BPDT)  (7z:geminilake-protectli-vp2410-ifwi.bin)',
    );
    expect(result.stderr).toMatch(
      /^ovmf-build: this image ships no Intel GOP driver: .*\[E_GOP_NOT_FOUND\]\n$/u,
    );
    expect(readdirSync(out).sort()).toEqual(['Vbt.DBADD769-E86A-4819-8120-E991792C0BC1.bin', 'Vbt.bin']);
  });

  it('an SPI image (flash descriptor) inside a 7z self-extracting archive: no GOP, said with the chain, exit 4', async () => {
    const out = path.join(work, 'out-spi-sfx');
    const sfx = file('spi-update.exe', sevenZipArchive(['-sfx'], [corpusPath(SPI)]));
    const result = await runCli(['extract', sfx, '--out', out, '--json']);
    expect(result.code).toBe(4);
    const json = JSON.parse(result.stdout) as {
      error: { code: string; message: string; details: { chain: string[] } };
    };
    expect([json.error.code, json.error.details.chain]).toEqual([
      'E_PACKAGE_NO_GOP',
      ['self-extracting archive', 'flash descriptor'],
    ]);
    expect(json.error.message).toMatch(
      new RegExp(
        `^${sfx} holds no Intel GOP driver: unpacked self-extracting archive > flash descriptor; this image ships no Intel GOP driver: searched 6 volumes, 381 files, `,
        'u',
      ),
    );
    expect(() => readdirSync(out)).toThrow(/ENOENT/);
  });

  it('a zip entry that climbs out is refused with exit 6 and nothing written', async () => {
    const out = path.join(work, 'out-evil');
    const evil = file(
      'evil.zip',
      storedZip([{ name: '../evil.bin', data: new TextEncoder().encode('harmless') }]),
    );
    const result = await runCli(['extract', evil, '--out', out, '--json']);
    expect(result.code).toBe(6);
    expect(result.stderr).toContain('E_PACKAGE_UNSAFE_ENTRY');
    expect(() => readdirSync(out)).toThrow(/ENOENT/);
  });
});

describe('--firmware takes a vendor package', () => {
  const env = isolatedEnv(mkdtempSync(path.join(work, 'job-')));

  it('takes the GOP and VBT out of the image inside, and says the chain', async () => {
    const captured = captureContext(['--firmware', gk41Zip, '--name', 'gk41-zip', '--json'], env, work);
    expect(await runMain(captured.ctx, new StandInBuild().stages)).toBe(0);
    const result = JSON.parse(captured.stdout()) as { artifactDir: string; logFile: string };
    const manifest = JSON.parse(readFileSync(path.join(result.artifactDir, 'manifest.json'), 'utf8')) as {
      inputs: { firmware: { sha256: string }; gop: { sha256: string } };
    };
    expect(manifest.inputs.firmware.sha256).toBe(sha(readFileSync(gk41Zip)));
    expect(manifest.inputs.gop.sha256).toBe(GK41_GOP);
    expect(readFileSync(result.logFile, 'utf8')).toContain('"chain":"zip > FV > LZMA > FV > GOP"');
  });

  it('a package without GOP fails with E_PACKAGE_NO_GOP, exit 4', async () => {
    let error: OvmfBuildError | undefined;
    try {
      await runMain(
        captureContext(['--firmware', REAL_CAB, '--json'], env, work).ctx,
        new StandInBuild().stages,
      );
    } catch (e) {
      error = e as OvmfBuildError;
    }
    expect([error?.code, error === undefined ? null : exitCodeFor(error)]).toEqual(['E_PACKAGE_NO_GOP', 4]);
  });
});
