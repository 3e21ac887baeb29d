import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compressEfi } from '../src/formats/compression/index.js';
import { buildOptionRom } from '../src/formats/option-rom-builder.js';
import { optionRomPeBytes, parseOptionRom } from '../src/formats/option-rom.js';
import { ensureFreshDist, runCli, type CliResult } from './cli-harness.js';
import { CORPUS_DIR, REPO_ROOT } from './corpus.js';

const HSW_GOP = path.join(CORPUS_DIR, 'gop/haswell-broadwell-mrchromebox-hsw.efi');
const NOT_GOP = path.join(CORPUS_DIR, 'gop/not-a-gop-asrock-b85pro4-IntelGopDriver.efi');
const ADLN_GOP = path.join(CORPUS_DIR, 'gop/alderlake-n-twinlake-tianbei-n1pro.efi');
const N150_ROM = path.join(CORPUS_DIR, 'roms/alderlake-n-n150-vfio-igd.rom');
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** What `rom --gop HSW_GOP --gop-only --device 8086:0416` must write: the builder's own ROM. */
const hswRom = (options: { readonly compress?: boolean } = {}): Uint8Array =>
  buildOptionRom({
    images: [
      {
        pe: new Uint8Array(readFileSync(HSW_GOP)),
        vendorId: 0x8086,
        deviceId: 0x0416,
        classCode: 0x03_0000,
        ...options,
      },
    ],
  });

/** The rom command in-process with an empty environment (it needs none). */
const runRom = (argv: readonly string[], cwd: string): Promise<CliResult> => runCli(argv, cwd, {});

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'rom-cli-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('ovmf-build rom', () => {
  it('builds, checks and writes a ROM, and prints JSON', async () => {
    const out = path.join(dir, 'igd.rom');
    const result = await runRom(
      ['rom', '--gop', HSW_GOP, '--gop-only', '--device', '8086:0416', '--out', out, '--json'],
      dir,
    );
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const rom = new Uint8Array(readFileSync(out));
    const gop = new Uint8Array(readFileSync(HSW_GOP));
    const expected = hswRom();
    expect(sha(rom)).toBe(sha(expected));
    expect(JSON.parse(result.stdout)).toEqual({
      path: out,
      sha256: sha(rom),
      size: 54_784,
      vendorId: '8086',
      deviceId: '0416',
      classCode: '0x030000',
      compressed: false,
      gopBuild: '1034',
      platform: { key: 'hsw', name: 'Haswell', graphicsVersion: '7.5' },
      images: ['gop'],
      warnings: [
        'the ROM carries no IGD assignment image: it works only with an OVMF that does IGD assignment itself (ovmf-build embedded mode), not with a stock OVMF',
      ],
    });
    const image = parseOptionRom(rom).images[0]!;
    expect(sha(optionRomPeBytes(rom, image))).toBe(sha(gop));
    expect(readdirSync(dir)).toEqual(['igd.rom']);
  });

  it('prints a summary and uses the default name in the working directory', async () => {
    const result = await runRom(
      ['rom', '--gop', HSW_GOP, '--gop-only', '--device', '8086:0A16', '--class', '0x038000'],
      dir,
    );
    expect(result.code).toBe(0);
    const out = path.join(dir, 'gop-8086-0a16.rom');
    const rom = new Uint8Array(readFileSync(out));
    expect(parseOptionRom(rom).images[0]?.classCode).toBe(0x03_8000);
    expect(result.stdout).toBe(
      `wrote ${out} (54784 bytes, sha256 ${sha(rom)})\n` +
        '  PCI 8086:0a16 (Haswell, graphics 7.5) class 0x038000, uncompressed\n' +
        '  image 0 @0x0: Intel GOP driver, build 1034, 54432 bytes, EFI image at 0x160\n' +
        'warning: the ROM carries no IGD assignment image: it works only with an OVMF that does IGD assignment itself (ovmf-build embedded mode), not with a stock OVMF\n',
    );
  });

  it.each([
    ['a malformed --device', ['--gop-only', '--device', '8086-0416']],
    ['a non-hex --device', ['--gop-only', '--device', '80g6:0416']],
    ['a class code that is too wide', ['--gop-only', '--device', '8086:0416', '--class', '0x1000000']],
    ['no --device', ['--gop-only']],
    ['neither --helpers nor --gop-only', ['--device', '8086:0416']],
    ['both --helpers and --gop-only', ['--device', '8086:0416', '--gop-only', '--helpers', '.']],
    ['an unknown option', ['--gop-only', '--device', '8086:0416', '--frobnicate']],
  ])('rejects %s with exit 2 and writes nothing', async (_name, args) => {
    const result = await runRom(['rom', '--gop', HSW_GOP, ...args], dir);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/\[E_USAGE\]\n$/);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('refuses a driver that is not an Intel GOP (exit 6, E_INPUT_NOT_GOP), writing nothing', async () => {
    const result = await runRom(
      ['rom', '--gop', NOT_GOP, '--gop-only', '--device', '8086:0416', '--out', 'x.rom'],
      dir,
    );
    expect(result.code).toBe(6);
    expect(result.stderr).toBe(
      'ovmf-build: not an Intel GOP driver: x64 EFI boot-service driver of 4800 bytes without the UTF-16LE "Intel(R) GOP Driver" string (a policy, helper or debug module, whatever its file name) [E_INPUT_NOT_GOP]\n',
    );
    expect(readdirSync(dir)).toEqual([]);
  });

  it('reports a missing driver file (exit 6, E_INPUT_NOT_FOUND)', async () => {
    const result = await runRom(['rom', '--gop', 'missing.efi', '--gop-only', '--device', '8086:0416'], dir);
    expect(result.code).toBe(6);
    expect(result.stderr).toMatch(/the GOP driver .*missing\.efi does not exist \[E_INPUT_NOT_FOUND\]\n$/);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('replaces an existing output atomically', async () => {
    const out = path.join(dir, 'igd.rom');
    expect(
      (await runRom(['rom', '--gop', HSW_GOP, '--gop-only', '--device', '8086:0416', '--out', out], dir))
        .code,
    ).toBe(0);
    const first = sha(readFileSync(out));
    expect(
      (await runRom(['rom', '--gop', HSW_GOP, '--gop-only', '--device', '8086:0412', '--out', out], dir))
        .code,
    ).toBe(0);
    expect(sha(readFileSync(out))).not.toBe(first);
    expect(parseOptionRom(new Uint8Array(readFileSync(out))).images[0]?.deviceId).toBe(0x0412);
    expect(readdirSync(dir)).toEqual(['igd.rom']);
  });

  it('prints usage for --help', async () => {
    const result = await runRom(['rom', '--help'], dir);
    expect(result.code).toBe(0);
    expect(result.stdout.startsWith('usage: ovmf-build rom --gop <file> --device <[8086:]device>')).toBe(
      true,
    );
  });

  it('--compress writes an EFI-compressed image that parses back', async () => {
    const result = await runRom(
      ['rom', '--gop', HSW_GOP, '--gop-only', '--device', '8086:0416', '--compress', '--json'],
      dir,
    );
    expect(result.code).toBe(0);
    const rom = new Uint8Array(readFileSync(path.join(dir, 'gop-8086-0416.rom')));
    const image = parseOptionRom(rom).images[0]!;
    expect(image.efi?.compressed).toBe(true);
    expect(sha(optionRomPeBytes(rom, image))).toBe(sha(readFileSync(HSW_GOP)));
    expect(JSON.parse(result.stdout)).toMatchObject({ compressed: true, size: rom.length });
  });

  it('--compress gives exactly the ROM buildOptionRom compresses, smaller than the plain one', async () => {
    const result = await runRom(
      ['rom', '--gop', HSW_GOP, '--gop-only', '--device', '8086:0416', '--compress', '--out', 'c.rom'],
      dir,
    );
    expect(result.code).toBe(0);
    const rom = new Uint8Array(readFileSync(path.join(dir, 'c.rom')));
    const expected = hswRom({ compress: true });
    expect(sha(rom)).toBe(sha(expected));
    expect(rom.length).toBeLessThan(54_784);
    expect(compressEfi(new Uint8Array(readFileSync(HSW_GOP))).length).toBeLessThan(54_432);
  });

  it('--helpers <dir> chains IgdAssignmentDxe, PlatformGopPolicyDxe and the GOP (ROM mode)', async () => {
    // VfioIgdPkg's helpers out of the N150 chain stand in for ours: the same roles, real binaries.
    const source = new Uint8Array(readFileSync(N150_ROM));
    const [, igd, policy] = parseOptionRom(source).images.map((image) => optionRomPeBytes(source, image));
    const helpers = path.join(dir, 'helpers');
    mkdirSync(helpers);
    writeFileSync(path.join(helpers, 'IgdAssignmentDxe.efi'), igd!);
    writeFileSync(path.join(helpers, 'PlatformGopPolicyDxe.efi'), policy!);
    const result = await runRom(
      ['rom', '--gop', ADLN_GOP, '--device', '46d4', '--helpers', 'helpers', '--json'],
      dir,
    );
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const out = path.join(dir, 'igd-8086-46d4.rom');
    const rom = new Uint8Array(readFileSync(out));
    const expected = buildOptionRom({
      images: [igd!, policy!, new Uint8Array(readFileSync(ADLN_GOP))].map((pe) => ({
        pe,
        vendorId: 0x8086,
        deviceId: 0x46d4,
        classCode: 0x03_0000,
      })),
    });
    expect(sha(rom)).toBe(sha(expected));
    expect(JSON.parse(result.stdout)).toMatchObject({
      path: out,
      platform: { key: 'adln', name: 'Alder Lake-N (incl. Twin Lake)', graphicsVersion: '12' },
      images: ['igd-assignment', 'gop-policy', 'gop'],
      warnings: [],
    });
    // The same helpers taken out of a ROM chain give the same ROM.
    const again = await runRom(
      ['rom', '--gop', ADLN_GOP, '--device', '8086:46d4', '--helpers', N150_ROM, '--out', 'again.rom'],
      dir,
    );
    expect(again.code).toBe(0);
    expect(sha(readFileSync(path.join(dir, 'again.rom')))).toBe(sha(rom));
    const inspected = await runRom(['inspect', 'again.rom'], dir);
    expect(inspected.stdout).toBe(
      `PCI option ROM, 3 image(s), ${rom.length} bytes\n` +
        '  @0x0 8086:46d4 EFI 17920 bytes: IGD assignment (IgdAssignmentDxe)\n' +
        '  @0x4600 8086:46d4 EFI 7168 bytes: PlatformGopPolicy (PlatformGopPolicy)\n' +
        `  @0x6200 8086:46d4 EFI ${rom.length - 0x6200} bytes (last): Intel GOP driver, build unknown\n`,
    );
  });

  it('refuses helpers that are not what they claim (exit 6, E_INPUT_BAD_HELPER), writing nothing', async () => {
    const gopOnlyRom = path.join(CORPUS_DIR, 'roms/gen12-gop-gangqizai.rom');
    const fromRom = await runRom(
      ['rom', '--gop', ADLN_GOP, '--device', '46d4', '--helpers', gopOnlyRom],
      dir,
    );
    expect([fromRom.code, fromRom.stderr.endsWith('[E_INPUT_BAD_HELPER]\n')]).toEqual([6, true]);
    mkdirSync(path.join(dir, 'swapped'));
    const source = new Uint8Array(readFileSync(N150_ROM));
    const [, igd, policy] = parseOptionRom(source).images.map((image) => optionRomPeBytes(source, image));
    writeFileSync(path.join(dir, 'swapped', 'IgdAssignmentDxe.efi'), policy!);
    writeFileSync(path.join(dir, 'swapped', 'PlatformGopPolicyDxe.efi'), igd!);
    const swapped = await runRom(['rom', '--gop', ADLN_GOP, '--device', '46d4', '--helpers', 'swapped'], dir);
    expect([swapped.code, swapped.stderr.endsWith('[E_INPUT_BAD_HELPER]\n')]).toEqual([6, true]);
    const missing = await runRom(['rom', '--gop', ADLN_GOP, '--device', '46d4', '--helpers', 'nowhere'], dir);
    expect([missing.code, missing.stderr.endsWith('[E_INPUT_NOT_FOUND]\n')]).toEqual([6, true]);
    expect(readdirSync(dir).sort()).toEqual(['swapped']);
  });

  // The compiled CLI, as users run it; `npm test` builds dist first, else it is built here.
  it('runs through bin/ovmf-build.js', () => {
    ensureFreshDist();
    const bin = (args: readonly string[]) =>
      spawnSync(
        process.execPath,
        [path.join(REPO_ROOT, 'bin/ovmf-build.js'), 'rom', '--gop', HSW_GOP, ...args],
        {
          encoding: 'utf8',
        },
      );
    const out = path.join(dir, 'bin.rom');
    const ok = bin(['--gop-only', '--device', '8086:0416', '--out', out]);
    expect(ok.status).toBe(0);
    const expected = hswRom();
    expect(sha(readFileSync(out))).toBe(sha(expected));
    const bad = bin(['--gop-only', '--device', 'nope']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/\[E_USAGE\]\n$/);
  }, 300_000);
});
