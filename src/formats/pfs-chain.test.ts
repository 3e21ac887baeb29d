// The Dell PFS layer in the package chain, end to end through the CLI: `extract` on the real
// Dell section (test/fixtures/vendor-parsers) unpacks it (registry.ts lists dellPfsUnpacker),
// finds no UEFI image among the dock's payloads and says so plainly with the chain, exit 4,
// nothing written; --json gives every piece with its PFS path. A PFS inside a zip goes
// zip > Dell PFS.
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../../test/cli-harness.js';
import { storedZip } from '../../test/vendor-archive.js';

const FIXTURE = path.resolve(
  import.meta.dirname,
  '../../test/fixtures/vendor-parsers/dell-tb16-dock-pfs-section.bin',
);
const NOT_UEFI = 'not a UEFI image or a known package';
const PIECES = [
  ['Firmware/1 Dock Package Version v1.0.0', 156],
  ['Firmware/2 Dell TB16 TI v1.2.11 Port Controller 1 v0.1.2.11', 57736],
  ['Firmware/3 Dell TB16 TI v1.2.32 Port Controller 2 v0.1.2.32', 57812],
  ['Firmware/4 Dell TB16 Dock EC v1.0.0.10', 57344],
  ['Firmware/5 TBT Cable v0.0.3.12', 22016],
  ['Firmware/6 Universal Cable v0.0.3.12', 22016],
] as const;

const work = mkdtempSync(path.join(os.tmpdir(), 'pfs-chain-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('Dell PFS in the package chain (extract)', () => {
  it('the real dock section: exit 4, E_PACKAGE_NO_GOP naming each PFS payload, nothing written', async () => {
    const out = path.join(work, 'out');
    const result = await runCli(['extract', FIXTURE, '--out', out]);
    expect(result.code).toBe(4);
    expect(result.stdout).toBe('');
    const pieces = PIECES.map(([name]) => `Dell PFS:${name}: ${NOT_UEFI}`).join('; ');
    expect(result.stderr).toBe(
      `ovmf-build: ${FIXTURE} is a vendor package with no Intel GOP driver and no firmware image inside: ${pieces} [E_PACKAGE_NO_GOP]\n`,
    );
    expect(() => readdirSync(out)).toThrow(/ENOENT/);
  });

  it('--json: every piece with its chain, PFS path and size', async () => {
    const result = await runCli(['extract', FIXTURE, '--out', path.join(work, 'out-json'), '--json']);
    expect(result.code).toBe(4);
    const json = JSON.parse(result.stdout) as {
      error: { code: string; details: { pieces: { chain: string; path: string; sizeInBytes: number }[] } };
    };
    expect(json.error.code).toBe('E_PACKAGE_NO_GOP');
    expect(json.error.details.pieces.map((p) => [p.chain, p.path, p.sizeInBytes])).toEqual(
      PIECES.map(([name, size]) => ['Dell PFS', `Dell PFS:${name}`, size]),
    );
  });

  it('a damaged section (cut short) is refused whole: exit 6, E_PFS_TRUNCATED, nothing written', async () => {
    const cut = path.join(work, 'cut.bin');
    const bytes = new Uint8Array(readFileSync(FIXTURE));
    writeFileSync(cut, bytes.subarray(0, bytes.length - 100));
    const out = path.join(work, 'out-cut');
    const result = await runCli(['extract', cut, '--out', out]);
    expect(result.code).toBe(6);
    expect(result.stderr).toBe(
      'ovmf-build: PFS zlib section at 0x0 claims 0x1c274 compressed bytes and a footer, only 0x1c220 remain [E_PFS_TRUNCATED]\n',
    );
    expect(() => readdirSync(out)).toThrow(/ENOENT/);
  });

  it('after other bytes (no PE, no capsule): the sections are still found and unpacked', async () => {
    const prefixed = path.join(work, 'prefixed.bin');
    const text = new TextEncoder().encode('a README a vendor put in front of the section\n');
    writeFileSync(prefixed, Buffer.concat([text, readFileSync(FIXTURE)]));
    const result = await runCli(['extract', prefixed, '--out', path.join(work, 'out-prefixed'), '--json']);
    expect(result.code).toBe(4);
    const json = JSON.parse(result.stdout) as {
      error: { code: string; details: { pieces: { path: string; sizeInBytes: number }[] } };
    };
    expect(json.error.code).toBe('E_PACKAGE_NO_GOP');
    expect(json.error.details.pieces.map((p) => [p.path, p.sizeInBytes])).toEqual(
      PIECES.map(([name, size]) => [`Dell PFS:${name}`, size]),
    );
  });

  it('inside a zip: the chain is zip > Dell PFS', async () => {
    const zip = path.join(work, 'dock.zip');
    writeFileSync(zip, storedZip([{ name: 'TB16/pfs.bin', data: new Uint8Array(readFileSync(FIXTURE)) }]));
    const result = await runCli(['extract', zip, '--out', path.join(work, 'out-zip'), '--json']);
    expect(result.code).toBe(4);
    const json = JSON.parse(result.stdout) as {
      error: { details: { pieces: { chain: string; path: string }[] } };
    };
    expect(json.error.details.pieces.map((p) => [p.chain, p.path])).toEqual(
      PIECES.map(([name]) => ['zip > Dell PFS', `zip:TB16/pfs.bin > Dell PFS:${name}`]),
    );
  });
});
