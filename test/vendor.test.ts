// Vendor packages (issue 12 items 1-2): the unpackers on real vendor files from public
// repositories (test/fixtures/vendor, with their source in its README), corpus firmware
// wrapped by 7z itself, and every bound with its exact error code.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sha256 } from '../src/core/digest.js';
import { OvmfBuildError } from '../src/core/errors.js';
import { boundedCommand, runBounded } from '../src/vendor/bounded-child.js';
import { choosePackagePiece } from '../src/vendor/find-gop.js';
import { cabUnpacker, parseListing, unsafePathReason } from '../src/vendor/seven-zip.js';
import { unpackPackage, type UnpackPackageOptions } from '../src/vendor/unpack-package.js';
import { DEFAULT_PACKAGE_LIMITS, type UnpackContext } from '../src/vendor/unpacker.js';
import { zipUnpacker } from '../src/vendor/zip.js';
import { corpusPath, readCorpus, REPO_ROOT } from './corpus.js';
import { childrenOf, commandLineOf, isRunning } from './proc-state.js';
import { sevenZipArchive, storedCab, storedZip } from './vendor-archive.js';

const FIXTURES = path.join(REPO_ROOT, 'test/fixtures/vendor');
const fixture = (name: string): Uint8Array => new Uint8Array(readFileSync(path.join(FIXTURES, name)));
const GK41 = 'images/geminilake-ovmf-with-gop-vbt-gk41.fd';
const IFWI = 'images/geminilake-protectli-vp2410-ifwi.bin';
const NOT_UEFI = 'not a UEFI image or a known package';

const work = mkdtempSync(path.join(os.tmpdir(), 'ovmf-build-vendor-test-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const context = (limits: Partial<typeof DEFAULT_PACKAGE_LIMITS> = {}): UnpackContext => ({
  limits: { ...DEFAULT_PACKAGE_LIMITS, ...limits },
  unpackedBytes: 0,
  where: 'test',
});

async function codeOf(action: Promise<unknown>): Promise<string> {
  try {
    await action;
  } catch (error) {
    if (error instanceof OvmfBuildError) return error.code;
    throw error;
  }
  throw new Error('expected a coded error');
}

const unpack = (bytes: Uint8Array, options: Partial<UnpackPackageOptions> = {}) =>
  unpackPackage(bytes, { name: 'package', ...options });

describe('real vendor packages (test/fixtures/vendor)', () => {
  it('every fixture has the sha256 its README names', () => {
    const readme = readFileSync(path.join(FIXTURES, 'README.md'), 'utf8');
    const files = readdirSync(FIXTURES).filter((f) => f !== 'README.md');
    expect(files.sort()).toEqual([
      'colorhug-als-3.0.2.cab',
      'dell-tpm1.2-5.81.2.1.cab',
      'starlabs-labtop-mk4-ite-1.07-efi.zip',
      'starlabs-labtop-mk4-ite-1.07.cab',
    ]);
    for (const file of files) {
      expect(readme).toContain(`| \`${file}\` |`);
      expect(readme).toContain(sha256(fixture(file)));
    }
  });

  it('LVFS cabinet (StarLabs EC): firmware and metainfo, the same bytes cabextract gives', async () => {
    const children = await cabUnpacker.unpack(fixture('starlabs-labtop-mk4-ite-1.07.cab'), context());
    expect(children.map((c) => [c.name, c.bytes.length, sha256(c.bytes)])).toEqual([
      ['1.07.bin', 131072, '93def0dfc3daeba8d4ef490f05d93ead289efafc68e6a891ae84b0981ff4f0c3'],
      ['L4.metainfo.xml', 1508, '51183f4c8abfd2c7372fcd73b99323c7bc3767150228e78b01c52d706e5d3cfc'],
    ]);
    // Cross-check against the other reference unpacker.
    const out = mkdtempSync(path.join(work, 'cabextract-'));
    execFileSync('cabextract', ['-q', '-d', out, path.join(FIXTURES, 'starlabs-labtop-mk4-ite-1.07.cab')]);
    for (const child of children)
      expect(sha256(readFileSync(path.join(out, child.name)))).toBe(sha256(child.bytes));
  });

  it('LVFS cabinet (hughski ColorHug ALS, from fwupd): three entries, no GOP, said with the chain', async () => {
    const unpacked = await unpack(fixture('colorhug-als-3.0.2.cab'), { name: 'colorhug-als-3.0.2.cab' });
    expect(unpacked.layers).toBe(1);
    expect(unpacked.leaves).toEqual([]);
    expect(unpacked.skipped).toEqual([
      { steps: [{ format: 'cab', entry: 'firmware.bin' }], sizeInBytes: 8000, reason: NOT_UEFI },
      { steps: [{ format: 'cab', entry: 'firmware.inf' }], sizeInBytes: 346, reason: NOT_UEFI },
      { steps: [{ format: 'cab', entry: 'firmware.metainfo.xml' }], sizeInBytes: 1174, reason: NOT_UEFI },
    ]);
    let error: unknown;
    try {
      choosePackagePiece(unpacked, 'colorhug-als-3.0.2.cab');
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({
      code: 'E_PACKAGE_NO_GOP',
      message: `colorhug-als-3.0.2.cab is a vendor package with no Intel GOP driver and no firmware image inside: cab:firmware.bin: ${NOT_UEFI}; cab:firmware.inf: ${NOT_UEFI}; cab:firmware.metainfo.xml: ${NOT_UEFI}`,
    });
  });

  it('vendor zip (StarLabs EC flasher): three entries read from memory, the flasher PE is no firmware', async () => {
    const bytes = fixture('starlabs-labtop-mk4-ite-1.07-efi.zip');
    const children = await zipUnpacker.unpack(bytes, context());
    expect(children.map((c) => [c.name, c.bytes.length, sha256(c.bytes)])).toEqual([
      ['1.07.bin', 131072, '93def0dfc3daeba8d4ef490f05d93ead289efafc68e6a891ae84b0981ff4f0c3'],
      ['startup.nsh', 1267, '3643b855d9f87dcfc1db57a23d9c8042a76b32255bc9089a963c1f5b3b9e2239'],
      ['eFuitX64.efi', 102656, '72c90dccb292255302d290aa16721c33237a5a30aa0f3b0ab508613e8620d866'],
    ]);
    const unpacked = await unpack(bytes);
    expect(unpacked.leaves.map((l) => [l.steps, l.kind])).toEqual([
      [[{ format: 'zip', entry: 'eFuitX64.efi' }], 'pe'],
    ]);
    expect(() => choosePackagePiece(unpacked, 'efi-L4.zip')).toThrow(
      `efi-L4.zip is a vendor package with no Intel GOP driver and no firmware image inside: zip:1.07.bin: ${NOT_UEFI}; zip:startup.nsh: ${NOT_UEFI}; zip:eFuitX64.efi: a program (PE) with no firmware volume`,
    );
  });
});

describe('corpus firmware wrapped by 7z (the reference tool makes these fixtures)', () => {
  const gk41 = readCorpus(GK41);
  const GOP_CHAIN = ['FV', 'LZMA', 'FV', 'GOP'];

  it.each([
    ['zip', ['-tzip'], 'zip'],
    ['7z', ['-t7z'], '7z'],
    ['7z self-extracting (7zCon.sfx stub)', ['-sfx'], 'self-extracting archive'],
  ])(
    '%s: the GOP piece is the corpus image, byte for byte, with the chain',
    async (_label, flags, format) => {
      const unpacked = await unpack(sevenZipArchive(flags, [corpusPath(GK41)]));
      const choice = choosePackagePiece(unpacked, 'package');
      expect(choice.chain).toEqual([format, ...GOP_CHAIN]);
      expect(choice.leaf.steps).toEqual([{ format, entry: path.basename(GK41) }]);
      expect(sha256(choice.leaf.bytes)).toBe(sha256(gk41));
    },
  );

  it('a PE stub with an archive appended (how Windows SFX and IExpress packages are built) is unpacked', async () => {
    // The stub is a real PE from the corpus (a GOP driver, which must not stop the unpacking).
    const stub = readCorpus('gop/cometlake-mrchromebox-cml.efi');
    const sevenZip = sevenZipArchive(['-t7z'], [corpusPath(GK41)]);
    const sfx = new Uint8Array(Buffer.concat([stub, sevenZip]));
    const choice = choosePackagePiece(await unpack(sfx), 'update.exe');
    expect(choice.chain).toEqual(['self-extracting archive', ...GOP_CHAIN]);
    expect(sha256(choice.leaf.bytes)).toBe(sha256(gk41));
    // The stub is tried too (an updater may carry the volumes itself); here it is a lone GOP.
    expect(choice.pieces.map((p) => [p.path, p.outcome])).toEqual([
      [
        'self-extracting archive:geminilake-ovmf-with-gop-vbt-gk41.fd',
        'a UEFI image with an Intel GOP driver',
      ],
      ['the file itself', 'an Intel GOP driver on its own (give it to --gop)'],
    ]);
    const iexpress = new Uint8Array(Buffer.concat([stub, fixture('colorhug-als-3.0.2.cab')]));
    const unpacked = await unpack(iexpress);
    expect(
      unpacked.skipped.map((s) => s.steps.map((step) => `${step.format}:${step.entry}`).join(' > ')),
    ).toEqual([
      'self-extracting archive:firmware.bin',
      'self-extracting archive:firmware.inf',
      'self-extracting archive:firmware.metainfo.xml',
    ]);
  });

  it('a vendor updater (a PE that is no GOP) carrying the volumes and a 7z: the PE itself is the firmware', async () => {
    const readme = path.join(work, 'readme.txt');
    writeFileSync(readme, 'harmless');
    const stub = readCorpus('gop/not-a-gop-asrock-b85pro4-IntelGopDriver.efi');
    const updater = new Uint8Array(Buffer.concat([stub, gk41, sevenZipArchive(['-t7z'], [readme])]));
    const choice = choosePackagePiece(await unpack(updater), 'updater.exe');
    expect(choice.leaf.steps).toEqual([]);
    expect(choice.chain).toEqual(GOP_CHAIN);
    // 7z opens such a file as UEFI firmware (its UEFIf handler), not as an SFX: the guess fails
    // and is recorded, and the PE goes on to the firmware parser.
    expect(choice.pieces.map((p) => [p.path, p.outcome.split(':')[0]])).toEqual([
      ['the file itself', 'looked like a self-extracting archive but package'],
      ['the file itself', 'a UEFI image with an Intel GOP driver'],
    ]);
  });

  it('a zip inside a 7z, beside an image without GOP: chain through both layers, GOP piece chosen', async () => {
    const inner = path.join(work, 'inner.zip');
    writeFileSync(inner, sevenZipArchive(['-tzip'], [corpusPath(GK41)]));
    const outer = sevenZipArchive(['-t7z'], [corpusPath(IFWI), inner]);
    const choice = choosePackagePiece(await unpack(outer), 'outer.7z');
    expect(choice.chain).toEqual(['7z', 'zip', ...GOP_CHAIN]);
    expect(choice.pieces.map((p) => [p.path, p.outcome])).toEqual([
      [
        '7z:geminilake-protectli-vp2410-ifwi.bin',
        'a IFWI (BPDT) without an Intel GOP driver (3 volume(s), 69 file(s), a VBT)',
      ],
      ['7z:inner.zip > zip:geminilake-ovmf-with-gop-vbt-gk41.fd', 'a UEFI image with an Intel GOP driver'],
    ]);
  });

  it('a zip inside a cab (a stored cabinet written by test/vendor-archive.ts; cabextract accepts it): cab > zip > GOP', async () => {
    const cab = storedCab([
      { name: 'firmware.metainfo.xml', data: new TextEncoder().encode('<component/>') },
      { name: 'firmware.zip', data: storedZip([{ name: 'gk41.fd', data: gk41 }]) },
    ]);
    const cabFile = path.join(work, 'zip-in.cab');
    writeFileSync(cabFile, cab);
    expect(execFileSync('cabextract', ['-t', cabFile], { encoding: 'utf8' })).toContain(
      'All done, no errors.',
    );
    const choice = choosePackagePiece(await unpack(cab), 'zip-in.cab');
    expect(choice.chain).toEqual(['cab', 'zip', ...GOP_CHAIN]);
    expect(choice.leaf.steps).toEqual([
      { format: 'cab', entry: 'firmware.zip' },
      { format: 'zip', entry: 'gk41.fd' },
    ]);
    expect(sha256(choice.leaf.bytes)).toBe(sha256(gk41));
  });

  it('a plain image is no package: layers 0, the image itself is the one leaf', async () => {
    const unpacked = await unpack(gk41);
    expect([unpacked.layers, unpacked.leaves.length, unpacked.leaves[0]?.kind]).toEqual([0, 1, 'image']);
  });
});

describe('bounds: every layer refuses with a code, and leaves no temp dir', () => {
  const harmless = new TextEncoder().encode('harmless');

  it('an archive bomb (32 MiB of zeros in 32 KiB) is refused by the ratio bound, zip and 7z', async () => {
    const zeros = new Uint8Array(32 * 1024 * 1024);
    const bomb = storedZip([{ name: 'zeros.bin', data: zeros }], true);
    expect(bomb.length).toBeLessThan(64 * 1024);
    expect(await codeOf(unpack(bomb))).toBe('E_PACKAGE_RATIO');
    // Inside a 7z it is refused from 7z's listing, before anything is written.
    const file = path.join(work, 'zeros.bin');
    writeFileSync(file, zeros);
    expect(await codeOf(unpack(sevenZipArchive(['-t7z', '-mx=1'], [file])))).toBe('E_PACKAGE_RATIO');
  });

  it.each([
    ['../escape.bin', undefined],
    ['/etc/escape.bin', undefined],
    ['dir\\..\\escape.bin', undefined],
    ['link', 0o120777],
    ['fifo', 0o010644],
  ])('zip entry %s (mode %s) is refused: E_PACKAGE_UNSAFE_ENTRY', async (name, mode) => {
    const zip = storedZip([
      { name: 'ok.bin', data: harmless },
      { name, data: harmless, ...(mode === undefined ? {} : { mode }) },
    ]);
    expect(await codeOf(unpack(zip))).toBe('E_PACKAGE_UNSAFE_ENTRY');
  });

  it('a zip whose headers understate a size is refused while it inflates, never read past the claim', async () => {
    const liar = storedZip([{ name: 'liar.bin', data: new Uint8Array(1024 * 1024), declaredSize: 10 }], true);
    expect(await codeOf(unpack(liar))).toBe('E_PACKAGE_CORRUPT');
    // Claims 10 bytes but the limit is lower still: refused from the header, before inflating.
    expect(await codeOf(unpack(liar, { limits: { maxEntryBytes: 9 } }))).toBe('E_PACKAGE_TOO_LARGE');
  });

  it('a 7z holding a symlink is refused from its listing: E_PACKAGE_UNSAFE_ENTRY', async () => {
    const dir = mkdtempSync(path.join(work, 'link-'));
    symlinkSync('/etc/passwd', path.join(dir, 'link'));
    execFileSync('7z', ['a', '-bd', '-snl', 'links.7z', 'link'], { cwd: dir, stdio: 'ignore' });
    expect(await codeOf(unpack(new Uint8Array(readFileSync(path.join(dir, 'links.7z')))))).toBe(
      'E_PACKAGE_UNSAFE_ENTRY',
    );
  });

  it('truncated zip and 7z are E_PACKAGE_CORRUPT', async () => {
    const zip = fixture('starlabs-labtop-mk4-ite-1.07-efi.zip');
    expect(await codeOf(unpack(zip.subarray(0, zip.length >> 1)))).toBe('E_PACKAGE_CORRUPT');
    const sevenZip = sevenZipArchive(['-t7z'], [corpusPath(GK41)]);
    expect(await codeOf(unpack(sevenZip.subarray(0, sevenZip.length >> 1)))).toBe('E_PACKAGE_CORRUPT');
  });

  it('entries, entry size and depth limits give their own codes', async () => {
    expect(await codeOf(unpack(fixture('colorhug-als-3.0.2.cab'), { limits: { maxEntries: 2 } }))).toBe(
      'E_PACKAGE_TOO_MANY_ENTRIES',
    );
    const zip = fixture('starlabs-labtop-mk4-ite-1.07-efi.zip');
    expect(await codeOf(unpack(zip, { limits: { maxEntryBytes: 131071 } }))).toBe('E_PACKAGE_TOO_LARGE');
    expect(await codeOf(unpack(zip, { limits: { maxTotalBytes: 200_000 } }))).toBe('E_PACKAGE_TOO_LARGE');
    expect(
      await codeOf(
        unpack(fixture('starlabs-labtop-mk4-ite-1.07.cab'), { limits: { maxEntryBytes: 131071 } }),
      ),
    ).toBe('E_PACKAGE_TOO_LARGE');
    const inner = storedZip([{ name: 'x.bin', data: harmless }]);
    const twoInner = storedZip([
      { name: 'a.zip', data: inner },
      { name: 'b.zip', data: inner },
    ]);
    // 2 + 2 pieces in all: within 4, over 3.
    expect((await unpack(twoInner, { limits: { maxPieces: 4 } })).skipped.length).toBe(2);
    expect(await codeOf(unpack(twoInner, { limits: { maxPieces: 3 } }))).toBe('E_PACKAGE_TOO_MANY_ENTRIES');
    const nested = storedZip([{ name: 'inner.zip', data: inner }]);
    expect((await unpack(nested, { limits: { maxDepth: 2 } })).layers).toBe(2);
    expect(await codeOf(unpack(nested, { limits: { maxDepth: 1 } }))).toBe('E_PACKAGE_TOO_DEEP');
  });

  it('7z runs leave no temp dir behind, on success and on failure', async () => {
    const tmp = mkdtempSync(path.join(work, 'tmpdir-'));
    const saved = process.env['TMPDIR'];
    process.env['TMPDIR'] = tmp;
    try {
      await unpack(fixture('colorhug-als-3.0.2.cab'));
      const cab = fixture('starlabs-labtop-mk4-ite-1.07.cab');
      expect(await codeOf(unpack(cab, { limits: { maxEntryBytes: 131071 } }))).toBe('E_PACKAGE_TOO_LARGE');
      expect(readdirSync(tmp)).toEqual([]);
    } finally {
      if (saved === undefined) delete process.env['TMPDIR'];
      else process.env['TMPDIR'] = saved;
    }
  });

  it('names that could escape are recognised; 7z listings give the Unix type', () => {
    expect(['a/b.bin', '../x', '/x', 'C:/x', 'a/../../x', 'a\\..\\x'].map(unsafePathReason)).toEqual([
      null,
      'a path that climbs out with ".."',
      'an absolute path',
      'an absolute path',
      'a path that climbs out with ".."',
      'a path that climbs out with ".."',
    ]);
    const listing = parseListing(
      '--\nPath = p\nType = 7z\n\n----------\nPath = link\nSize = 11\nAttributes = A -lrwxrwxrwx\n\nPath = d\nSize = 0\nAttributes = D drwxr-xr-x\n',
    );
    expect(listing).toEqual({
      type: '7z',
      entries: [
        { path: 'link', sizeInBytes: 11, directory: false, unixType: 'l', encrypted: false },
        { path: 'd', sizeInBytes: 0, directory: true, unixType: 'd', encrypted: false },
      ],
    });
  });
});

describe('the bounded child process 7z runs in', () => {
  const options = { timeoutMs: 10_000, maxOutputBytes: 1024 };

  it('a run past its timeout, or printing past its cap, is killed: E_PACKAGE_TOOL_FAILED', async () => {
    expect(await codeOf(runBounded('sleep', ['5'], { ...options, timeoutMs: 200 }))).toBe(
      'E_PACKAGE_TOOL_FAILED',
    );
    expect(await codeOf(runBounded('yes', [], options))).toBe('E_PACKAGE_TOOL_FAILED');
    expect(await codeOf(runBounded('ovmf-build-no-such-tool', [], options))).toBe('E_PACKAGE_TOOL_FAILED');
  });

  it('a file written past maxFileBytes stops the child with SIGXFSZ (prlimit), the file cut at the limit', async () => {
    const dir = mkdtempSync(path.join(work, 'fsize-'));
    const result = await runBounded('sh', ['-c', 'head -c 5000 /dev/zero > big.bin'], {
      ...options,
      cwd: dir,
      maxFileBytes: 1000,
    });
    expect(result.exitCode === 153 || result.signal === 'SIGXFSZ').toBe(true);
    expect(readFileSync(path.join(dir, 'big.bin')).length).toBe(1000);
  });

  it('runs the tool under setpriv --pdeathsig KILL (and prlimit when capped); a missing tool as given, for ENOENT', () => {
    const env = { PATH: process.env['PATH'] ?? '' };
    const setpriv = execFileSync('sh', ['-c', 'command -v setpriv'], { encoding: 'utf8' }).trim();
    const sleep = execFileSync('sh', ['-c', 'command -v sleep'], { encoding: 'utf8' }).trim();
    expect(boundedCommand('sleep', ['1'], undefined, env)).toEqual({
      command: setpriv,
      args: ['--pdeathsig', 'KILL', '--', sleep, '1'],
    });
    expect(boundedCommand('sleep', ['1'], 4096, env)).toEqual({
      command: setpriv,
      args: ['--pdeathsig', 'KILL', '--', 'prlimit', '--fsize=4096', '--', sleep, '1'],
    });
    expect(boundedCommand('ovmf-build-no-such-tool', ['x'], 4096, env)).toEqual({
      command: 'ovmf-build-no-such-tool',
      args: ['x'],
    });
    expect(boundedCommand('/nonexistent/7z', [], undefined, env)).toEqual({
      command: '/nonexistent/7z',
      args: [],
    });
  });

  it('a tool it started dies when ovmf-build is killed with SIGKILL; a plain spawn (the control) does not', async () => {
    const parent = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(REPO_ROOT, 'test', 'bounded-orphan-child.ts')],
      {
        cwd: REPO_ROOT,
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const sleeps = new Map<string, number>();
    try {
      await new Promise<void>((resolve) => parent.stdout.once('data', () => resolve()));
      // setpriv executes prlimit, which executes sleep, under the same pid: wait for the execs.
      const deadline = Date.now() + 10_000;
      while (sleeps.size < 3 && Date.now() < deadline) {
        for (const pid of childrenOf(parent.pid as number)) {
          const argv = commandLineOf(pid);
          if (path.basename(argv[0] ?? '') === 'sleep' && argv[1] !== undefined) sleeps.set(argv[1], pid);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
      expect([...sleeps.keys()].sort()).toEqual(['301', '302', '303']);
      parent.kill('SIGKILL');
      const gone = Date.now() + 10_000;
      while (
        (isRunning(sleeps.get('301') as number) || isRunning(sleeps.get('302') as number)) &&
        Date.now() < gone
      ) {
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(['301', '302', '303'].map((s) => isRunning(sleeps.get(s) as number))).toEqual([
        false,
        false,
        true,
      ]);
    } finally {
      parent.kill('SIGKILL');
      for (const pid of sleeps.values()) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  });

  it('an abort stops the child: E_ABORTED', async () => {
    const controller = new AbortController();
    const run = runBounded('sleep', ['5'], { ...options, signal: controller.signal });
    setTimeout(() => controller.abort(), 100);
    expect(await codeOf(run)).toBe('E_ABORTED');
  });
});
