import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.js';
import { compressEfi } from '../src/formats/compression/index.js';
import { buildOptionRom } from '../src/formats/option-rom-builder.js';
import { optionRomPeBytes, parseOptionRom } from '../src/formats/option-rom.js';
import { CORPUS_DIR, REPO_ROOT } from './corpus.js';

const HSW_GOP = path.join(CORPUS_DIR, 'gop/haswell-broadwell-mrchromebox-hsw.efi');
const NOT_GOP = path.join(CORPUS_DIR, 'gop/not-a-gop-asrock-b85pro4-IntelGopDriver.efi');
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

function sink(): Writable & { text: () => string } {
  const chunks: Buffer[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(Buffer.from(chunk));
      callback();
    },
  });
  return Object.assign(stream, { text: () => Buffer.concat(chunks).toString('utf8') });
}

async function runCli(
  argv: string[],
  cwd: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = sink();
  const stderr = sink();
  const code = await main({ argv, stdout, stderr, env: {}, cwd, signal: new AbortController().signal });
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}

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
    const result = await runCli(
      ['rom', '--gop', HSW_GOP, '--device', '8086:0416', '--out', out, '--json'],
      dir,
    );
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const rom = new Uint8Array(readFileSync(out));
    const gop = new Uint8Array(readFileSync(HSW_GOP));
    const expected = buildOptionRom({
      images: [{ pe: gop, vendorId: 0x8086, deviceId: 0x0416, classCode: 0x03_0000 }],
    });
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
    });
    const image = parseOptionRom(rom).images[0]!;
    expect(sha(optionRomPeBytes(rom, image))).toBe(sha(gop));
    expect(readdirSync(dir)).toEqual(['igd.rom']);
  });

  it('prints a summary and uses the default name in the working directory', async () => {
    const result = await runCli(
      ['rom', '--gop', HSW_GOP, '--device', '8086:0A16', '--class', '0x038000'],
      dir,
    );
    expect(result.code).toBe(0);
    const out = path.join(dir, 'gop-8086-0a16.rom');
    const rom = new Uint8Array(readFileSync(out));
    expect(parseOptionRom(rom).images[0]?.classCode).toBe(0x03_8000);
    expect(result.stdout).toBe(
      `wrote ${out} (54784 bytes, sha256 ${sha(rom)})\n` +
        '  PCI 8086:0a16 class 0x038000, EFI image at 0x160, uncompressed\n' +
        '  Intel GOP driver 54432 bytes, build 1034\n',
    );
  });

  it.each([
    ['a malformed --device', ['--device', '8086-0416']],
    ['a non-hex --device', ['--device', '80g6:0416']],
    ['a class code that is too wide', ['--device', '8086:0416', '--class', '0x1000000']],
    ['no --device', []],
    ['an unknown option', ['--device', '8086:0416', '--frobnicate']],
  ])('rejects %s with exit 2 and writes nothing', async (_name, args) => {
    const result = await runCli(['rom', '--gop', HSW_GOP, ...args], dir);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/\[E_USAGE\]\n$/);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('refuses a driver that is not an Intel GOP (exit 6, E_INPUT_NOT_GOP), writing nothing', async () => {
    const result = await runCli(['rom', '--gop', NOT_GOP, '--device', '8086:0416', '--out', 'x.rom'], dir);
    expect(result.code).toBe(6);
    expect(result.stderr).toBe(
      'ovmf-build: not an Intel GOP driver: x64 EFI boot-service driver of 4800 bytes without the UTF-16LE "Intel(R) GOP Driver" string (a policy, helper or debug module, whatever its file name) [E_INPUT_NOT_GOP]\n',
    );
    expect(readdirSync(dir)).toEqual([]);
  });

  it('reports a missing driver file (exit 6, E_INPUT_NOT_FOUND)', async () => {
    const result = await runCli(['rom', '--gop', 'missing.efi', '--device', '8086:0416'], dir);
    expect(result.code).toBe(6);
    expect(result.stderr).toMatch(
      /cannot read the GOP driver .*missing\.efi: ENOENT \[E_INPUT_NOT_FOUND\]\n$/,
    );
    expect(readdirSync(dir)).toEqual([]);
  });

  it('replaces an existing output atomically', async () => {
    const out = path.join(dir, 'igd.rom');
    expect((await runCli(['rom', '--gop', HSW_GOP, '--device', '8086:0416', '--out', out], dir)).code).toBe(
      0,
    );
    const first = sha(readFileSync(out));
    expect((await runCli(['rom', '--gop', HSW_GOP, '--device', '8086:0412', '--out', out], dir)).code).toBe(
      0,
    );
    expect(sha(readFileSync(out))).not.toBe(first);
    expect(parseOptionRom(new Uint8Array(readFileSync(out))).images[0]?.deviceId).toBe(0x0412);
    expect(readdirSync(dir)).toEqual(['igd.rom']);
  });

  it('prints usage for --help', async () => {
    const result = await runCli(['rom', '--help'], dir);
    expect(result.code).toBe(0);
    expect(result.stdout.startsWith('usage: ovmf-build rom --gop <file> --device <vendor:device>')).toBe(
      true,
    );
  });

  const compressionAvailable = (() => {
    try {
      compressEfi(new Uint8Array([1]));
      return true;
    } catch {
      return false;
    }
  })();
  it.skipIf(compressionAvailable)(
    '--compress fails cleanly while compressEfi is not implemented (exit 1, nothing written)',
    async () => {
      const result = await runCli(['rom', '--gop', HSW_GOP, '--device', '8086:0416', '--compress'], dir);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/\[E_NOT_IMPLEMENTED\]\n$/);
      expect(readdirSync(dir)).toEqual([]);
    },
  );
  it.skipIf(!compressionAvailable)('--compress writes an EFI-compressed image that parses back', async () => {
    const result = await runCli(
      ['rom', '--gop', HSW_GOP, '--device', '8086:0416', '--compress', '--json'],
      dir,
    );
    expect(result.code).toBe(0);
    const rom = new Uint8Array(readFileSync(path.join(dir, 'gop-8086-0416.rom')));
    const image = parseOptionRom(rom).images[0]!;
    expect(image.efi?.compressed).toBe(true);
    expect(sha(optionRomPeBytes(rom, image))).toBe(sha(readFileSync(HSW_GOP)));
    expect(JSON.parse(result.stdout)).toMatchObject({ compressed: true, size: rom.length });
  });

  // The compiled CLI, as users run it; `npm test` builds dist first.
  const compiled = path.join(REPO_ROOT, 'dist/cli/commands/rom.js');
  const fresh =
    existsSync(compiled) &&
    statSync(compiled).mtimeMs >= statSync(path.join(REPO_ROOT, 'src/cli/commands/rom.ts')).mtimeMs;
  it.skipIf(!fresh)(
    'runs through bin/ovmf-build.js (skipped: dist is missing or older than the source; run npm run build)',
    () => {
      const out = path.join(dir, 'bin.rom');
      const ok = spawnSync(
        process.execPath,
        [
          path.join(REPO_ROOT, 'bin/ovmf-build.js'),
          'rom',
          '--gop',
          HSW_GOP,
          '--device',
          '8086:0416',
          '--out',
          out,
        ],
        {
          encoding: 'utf8',
        },
      );
      expect(ok.status).toBe(0);
      const expected = buildOptionRom({
        images: [
          {
            pe: new Uint8Array(readFileSync(HSW_GOP)),
            vendorId: 0x8086,
            deviceId: 0x0416,
            classCode: 0x03_0000,
          },
        ],
      });
      expect(sha(readFileSync(out))).toBe(sha(expected));
      const bad = spawnSync(
        process.execPath,
        [path.join(REPO_ROOT, 'bin/ovmf-build.js'), 'rom', '--gop', HSW_GOP, '--device', 'nope'],
        {
          encoding: 'utf8',
        },
      );
      expect(bad.status).toBe(2);
      expect(bad.stderr).toMatch(/\[E_USAGE\]\n$/);
    },
  );
});
