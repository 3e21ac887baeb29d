import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { rename } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { sha256 } from '../src/core/digest.js';
import { publish } from '../src/cli/commands/extract.js';
import { extractFromOptionRom } from '../src/formats/option-rom-extract.js';
import { classifyRomChain } from '../src/formats/rom-chain.js';
import { runCli } from './cli-harness.js';
import {
  cpuOfWholeRun,
  cpuSeconds,
  SIGNAL_CPU_BOUND,
  signalAndWait,
  signalCpuBound,
  startCli,
} from './cli-spawn.js';
import { corpusPath, firmwareEntries, loadManifest, readCorpus } from './corpus.js';
import { ffsFile, section, sections, utf16z, volume } from './ffs-builder.js';

const work = mkdtempSync(path.join(os.tmpdir(), 'ovmf-build-extract-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
let counter = 0;
const outDir = (): string => path.join(work, `out-${counter++}`);
/** `extract` of the Gemini Lake IFWI (a VBT and no GOP: exit 4) into `out`. */
const extractIfwi = (out: string) =>
  runCli(['extract', corpusPath('images/geminilake-protectli-vp2410-ifwi.bin'), '--out', out]);

describe('ovmf-build extract on every corpus image', () => {
  for (const entry of firmwareEntries()) {
    it(`${entry.path}`, async () => {
      const out = outDir();
      const result = await runCli(['extract', corpusPath(entry.path), '--out', out, '--json']);
      const { gop, vbt } = entry.truth;
      const expectedCode = gop === null ? 4 : vbt === null ? 5 : 0;
      expect(result.code).toBe(expectedCode);
      if (gop === null && vbt === null) {
        // Neither part: nothing is published, --out is not even created.
        expect(result.stderr).toMatch(
          /this image ships no Intel GOP driver: searched \d+ volumes, \d+ files, \d+ PE32 sections .*\[E_GOP_NOT_FOUND\]/,
        );
        expect(() => readdirSync(out)).toThrow(/ENOENT/);
        return;
      }
      const json = JSON.parse(result.stdout) as Record<string, unknown>;
      const written = readdirSync(out).sort();
      if (gop === null) {
        expect(json['gop']).toBeNull();
        expect(result.stderr).toMatch(
          /this image ships no Intel GOP driver: searched \d+ volumes, \d+ files, \d+ PE32 sections .*\[E_GOP_NOT_FOUND\]/,
        );
      } else {
        const g = gop[0];
        expect(json['gop']).toEqual({
          sha256: g?.pe_sha256,
          size: g?.pe_size,
          guid: g?.file_guid,
          build: g?.gop_build,
          uiName: g?.ui_name,
          machine: 'x64',
          imagePath: expect.stringMatching(/\/PE32 image section$/),
          offset: null,
          path: path.join(out, 'IntelGopDriver.efi'),
        });
        expect(sha256(readFileSync(path.join(out, 'IntelGopDriver.efi')))).toBe(g?.pe_sha256);
      }
      if (vbt === null) {
        expect(json['vbt']).toBeNull();
        expect(result.stderr).toMatch(/this image ships no VBT: .*\[E_VBT_NOT_FOUND\]/);
      } else {
        const [first, ...rest] = vbt;
        expect(json['vbt']).toMatchObject({
          sha256: first?.body_sha256,
          size: first?.body_size,
          guid: first?.file_guid,
          uiName: first?.ui_name,
          signature: first?.signature,
          bdbVersion: first?.intel_vbt_decode.bdb_version,
          vbtSize: first?.vbt_size_field,
          path: path.join(out, 'Vbt.bin'),
        });
        expect(sha256(readFileSync(path.join(out, 'Vbt.bin')))).toBe(first?.body_sha256);
        expect((json['others'] as Record<string, unknown>[]).map((o) => [o['guid'], o['sha256']])).toEqual(
          rest.map((v) => [v.file_guid, v.body_sha256]),
        );
        for (const v of rest) {
          expect(sha256(readFileSync(path.join(out, `Vbt.${v.file_guid}.bin`)))).toBe(v.body_sha256);
        }
      }
      expect(written).toEqual(
        [
          ...(gop === null ? [] : ['IntelGopDriver.efi']),
          ...(vbt === null ? [] : ['Vbt.bin', ...vbt.slice(1).map((v) => `Vbt.${v.file_guid}.bin`)]),
        ].sort(),
      );
      expect((json['notGop'] as { guid: string }[]).map((r) => r.guid).sort()).toEqual(
        entry.truth.other_gop_named_files.map((o) => o.file_guid).sort(),
      );
    });
  }
});

describe('ovmf-build extract edge cases', () => {
  it('exits 5 and writes the GOP when an image has a GOP but no VBT', async () => {
    const gop = readCorpus('gop/skylake-kabylake-mrchromebox-skl.efi');
    const file = ffsFile(
      'FF0C8745-3270-4439-B74F-3E45F8C77064',
      0x07,
      sections(section(0x10, gop), section(0x15, utf16z('IntelGopDriver'))),
    );
    const image = path.join(work, 'gop-only.fd');
    writeFileSync(image, volume([file]));
    const out = outDir();
    const result = await runCli(['extract', image, '--out', out]);
    expect(result.code).toBe(5);
    expect(result.stdout).toMatch(
      /^GOP {2}.*IntelGopDriver\.efi {2}IntelGopDriver build 1080 {2}70272 bytes {2}sha256 42ffdfc2f732880ed59c5ebfc9cfde07344b65102c9178e8356f4bde84ce264b\n$/,
    );
    expect(result.stderr).toMatch(
      /^ovmf-build: this image ships no VBT: searched 1 volumes, 1 files, 1 PE32 sections/,
    );
    expect(readdirSync(out)).toEqual(['IntelGopDriver.efi']);
  });

  it('exits 3 (E_NOT_FIRMWARE) for a file with no firmware structure, writing nothing', async () => {
    const out = outDir();
    const file = path.join(work, 'zeros.bin');
    writeFileSync(file, new Uint8Array(4096));
    const result = await runCli(['extract', file, '--out', out]);
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(/no firmware structure found.*\[E_NOT_FIRMWARE\]\n$/);
    expect(() => readdirSync(out)).toThrow(/ENOENT/);
  });

  it('exits 6 for a missing input and 2 for missing --out', async () => {
    const missing = await runCli(['extract', path.join(work, 'nope.fd'), '--out', outDir()]);
    expect(missing.code).toBe(6);
    expect(missing.stderr).toMatch(/\[E_INPUT_NOT_FOUND\]/);
    const usage = await runCli(['extract', corpusPath('images/coffeelake-intel-fsp.fd')]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/expected one <image> and --out <dir>/);
    const help = await runCli(['extract', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^usage: ovmf-build extract <image> --out <dir> \[--json\]/);
  });

  it('replaces existing outputs atomically and leaves no temp files', async () => {
    const out = outDir();
    const first = await extractIfwi(out);
    expect(first.code).toBe(4);
    writeFileSync(path.join(out, 'Vbt.bin'), 'stale');
    const second = await extractIfwi(out);
    expect(second.code).toBe(4);
    expect(readdirSync(out).sort()).toEqual(['Vbt.DBADD769-E86A-4819-8120-E991792C0BC1.bin', 'Vbt.bin']);
    expect(sha256(readFileSync(path.join(out, 'Vbt.bin')))).toBe(
      'a7faff7c4192a0d567be25582f3acaa5d9d15438efffb390c2044a4116562900',
    );
  });
});

const GK41 = 'images/geminilake-ovmf-with-gop-vbt-gk41.fd';
const GK41_GOP_SHA256 = firmwareEntries().find((e) => e.path === GK41)?.truth.gop?.[0]?.pe_sha256;
const GK41_VBT_SHA256 = firmwareEntries().find((e) => e.path === GK41)?.truth.vbt?.[0]?.body_sha256;
const SKL_GOP = 'gop/skylake-kabylake-mrchromebox-skl.efi';

function gopOnlyImage(): string {
  const file = ffsFile(
    'FF0C8745-3270-4439-B74F-3E45F8C77064',
    0x07,
    sections(section(0x10, readCorpus(SKL_GOP)), section(0x15, utf16z('IntelGopDriver'))),
  );
  const image = path.join(work, `gop-only-${counter++}.fd`);
  writeFileSync(image, volume([file]));
  return image;
}

function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir).sort()) {
    const full = path.join(dir, name);
    out[name] = statSync(full).isDirectory() ? 'dir' : sha256(readFileSync(full));
  }
  return out;
}

describe('extract publishes the pair atomically: both or nothing, no stale file', () => {
  it("A then a GOP-only B into the same --out: B has no VBT, so A's Vbt.bin is removed (and said)", async () => {
    const out = outDir();
    const first = await runCli(['extract', corpusPath(GK41), '--out', out]);
    expect(first.code).toBe(0);
    expect(snapshot(out)).toEqual({ 'IntelGopDriver.efi': GK41_GOP_SHA256, 'Vbt.bin': GK41_VBT_SHA256 });
    const second = await runCli(['extract', gopOnlyImage(), '--out', out, '--json']);
    expect(second.code).toBe(5);
    expect(snapshot(out)).toEqual({ 'IntelGopDriver.efi': sha256(readCorpus(SKL_GOP)) });
    expect(JSON.parse(second.stdout)).toMatchObject({
      gop: { sha256: sha256(readCorpus(SKL_GOP)), path: path.join(out, 'IntelGopDriver.efi') },
      vbt: null,
      removed: [path.join(out, 'Vbt.bin')],
    });
    expect(second.stderr).toContain(
      `ovmf-build: note: removed ${path.join(out, 'Vbt.bin')} (from an earlier extract): this image has no VBT\n`,
    );
  });

  it('a VBT-only image removes an earlier IntelGopDriver.efi and keeps unrelated files', async () => {
    const out = outDir();
    expect((await runCli(['extract', corpusPath(GK41), '--out', out])).code).toBe(0);
    writeFileSync(path.join(out, 'notes.txt'), 'mine');
    const result = await extractIfwi(out);
    expect(result.code).toBe(4);
    expect(Object.keys(snapshot(out))).toEqual([
      'Vbt.DBADD769-E86A-4819-8120-E991792C0BC1.bin',
      'Vbt.bin',
      'notes.txt',
    ]);
    expect(result.stderr).toContain(
      `removed ${path.join(out, 'IntelGopDriver.efi')} (from an earlier extract): this image has no GOP driver`,
    );
  });

  it('an image with neither leaves --out exactly as it was (and creates no empty directory)', async () => {
    const out = outDir();
    expect((await runCli(['extract', corpusPath(GK41), '--out', out])).code).toBe(0);
    const before = snapshot(out);
    const result = await runCli(['extract', corpusPath('images/coffeelake-intel-fsp.fd'), '--out', out]);
    expect(result.code).toBe(4);
    expect(snapshot(out)).toEqual(before);
    const fresh = outDir();
    expect(
      (await runCli(['extract', corpusPath('images/coffeelake-intel-fsp.fd'), '--out', fresh])).code,
    ).toBe(4);
    expect(existsSync(fresh)).toBe(false);
  });

  it('a Vbt.bin that cannot be replaced fails before anything changes: the old GOP stays, no temp files', async () => {
    const out = outDir();
    expect((await runCli(['extract', gopOnlyImage(), '--out', out])).code).toBe(5);
    mkdirSync(path.join(out, 'Vbt.bin'));
    writeFileSync(path.join(out, 'Vbt.bin', 'keep'), 'x');
    const before = snapshot(out);
    const result = await runCli(['extract', corpusPath(GK41), '--out', out]);
    expect(result.code).toBe(11);
    expect(result.stderr).toMatch(
      /cannot replace .*Vbt\.bin: it is not a regular file; nothing was written \[E_ARTIFACT_WRITE_FAILED\]/,
    );
    expect(snapshot(out)).toEqual(before);
    expect(before['IntelGopDriver.efi']).toBe(sha256(readCorpus(SKL_GOP)));
  });

  it('a --out that is a symlink to a directory is published into that directory', async () => {
    const target = outDir();
    expect((await runCli(['extract', corpusPath(GK41), '--out', target])).code).toBe(0);
    const link = path.join(work, `link-${counter++}`);
    symlinkSync(target, link);
    expect((await runCli(['extract', gopOnlyImage(), '--out', link])).code).toBe(5);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(snapshot(target)).toEqual({ 'IntelGopDriver.efi': sha256(readCorpus(SKL_GOP)) });
  });

  it('a --out that cannot be created is a usage error before the image is parsed; nothing is written', async () => {
    const blocker = path.join(work, `blocker-${counter++}`);
    writeFileSync(blocker, 'a file where a directory should be');
    const result = await runCli(['extract', corpusPath(GK41), '--out', path.join(blocker, 'out')]);
    expect(result).toMatchObject({ code: 2, stdout: '' });
    expect(result.stderr).toBe(
      `ovmf-build: --out ${path.join(blocker, 'out')} cannot be created: ${blocker} is a file [E_OUTPUT_NOT_DIRECTORY]\n`,
    );
    expect(readFileSync(blocker, 'utf8')).toBe('a file where a directory should be');
    expect(readdirSync(work).filter((n) => n.includes('.extract-'))).toEqual([]);
    // A file as --out itself, even with an input that is not an image: the output is checked first.
    const onFile = await runCli([
      'extract',
      corpusPath('gop/cometlake-mrchromebox-cml.efi'),
      '--out',
      blocker,
    ]);
    expect(onFile).toMatchObject({ code: 2, stdout: '' });
    expect(onFile.stderr).toBe(
      `ovmf-build: --out ${blocker} is a file; give a directory (it is created if missing) [E_OUTPUT_NOT_DIRECTORY]\n`,
    );
  });
});

describe('extract on what is not an image: GOP drivers, VBTs and option ROMs', () => {
  it('a bare GOP .efi: E_INPUT_IS_GOP (exit 6) saying to give it to --gop as it is', async () => {
    const out = outDir();
    const file = corpusPath('gop/cometlake-mrchromebox-cml.efi');
    const result = await runCli(['extract', file, '--out', out]);
    expect(result.code).toBe(6);
    expect(result.stderr).toBe(
      `ovmf-build: ${file} is an Intel GOP driver itself (build 1107, 73312 bytes, sha256 ${sha256(readFileSync(file))}), not a firmware image: there is nothing to extract; give it to --gop as it is [E_INPUT_IS_GOP]\n`,
    );
    expect(existsSync(out)).toBe(false);
  });

  it('a non-GOP driver is not firmware (exit 3) and says why it is not a GOP', async () => {
    const result = await runCli([
      'extract',
      corpusPath('gop/not-a-gop-asrock-b85pro4-IntelGopDriver.efi'),
      '--out',
      outDir(),
    ]);
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(
      /is a PE\/COFF image with no firmware volume inside, not an Intel GOP driver: x64 EFI boot-service driver of 4800 bytes without the UTF-16LE "Intel\(R\) GOP Driver" string.*\[E_NOT_FIRMWARE\]/,
    );
  });

  it('a bare VBT: E_INPUT_IS_VBT (exit 6) saying to give it to --vbt', async () => {
    const result = await runCli(['extract', corpusPath('vbt/skylake-lenovo-m900.vbt'), '--out', outDir()]);
    expect(result.code).toBe(6);
    expect(result.stderr).toMatch(
      /is a VBT \(\$VBT SKYLAKE\) itself, not a firmware image: there is nothing to extract; give it to --vbt as it is \[E_INPUT_IS_VBT\]\n$/,
    );
  });

  const romEntries = loadManifest().entries.filter((e) => e.kind === 'rom');
  const romGop = (entry: (typeof romEntries)[number]): { index: number; sha: string; len: number } | null => {
    const images = (entry.ground_truth['images'] ?? []) as {
      contains_intel_gop_driver?: boolean;
      pe_bytes_sha256?: string;
      pe_bytes_len?: number;
    }[];
    const index = images.findIndex((i) => i.contains_intel_gop_driver === true);
    const image = images[index];
    return image === undefined
      ? null
      : { index, sha: image.pe_bytes_sha256 ?? '', len: image.pe_bytes_len ?? 0 };
  };
  for (const entry of romEntries) {
    it(`option ROM ${entry.path}: the GOP image chosen by content (manifest)`, async () => {
      const out = outDir();
      const result = await runCli(['extract', corpusPath(entry.path), '--out', out, '--json']);
      const gop = romGop(entry);
      const hasVbt = entry.path.includes('legacy-vbios');
      expect(result.code).toBe(gop === null ? 4 : hasVbt ? 0 : 5);
      if (gop === null && !hasVbt) {
        expect(result.stderr).toMatch(
          /this option ROM holds no Intel GOP driver: \d image\(s\), image 0 .*\[E_GOP_NOT_FOUND\]/,
        );
        expect(existsSync(out)).toBe(false);
        return;
      }
      const json = JSON.parse(result.stdout) as Record<string, unknown>;
      if (gop !== null) {
        expect(json['gop']).toMatchObject({
          sha256: gop.sha,
          size: gop.len,
          imagePath: `option ROM image ${gop.index}`,
        });
        expect(sha256(readFileSync(path.join(out, 'IntelGopDriver.efi')))).toBe(gop.sha);
      }
      if (hasVbt) {
        expect(json['vbt']).toMatchObject({
          signature: '$VBT COFFEELAKE',
          size: 4300,
          section: 'legacy-vbios',
        });
        expect(readFileSync(path.join(out, 'Vbt.bin')).subarray(0, 4).toString('latin1')).toBe('$VBT');
      }
    });
  }

  it('an EfiRom-compressed image is decompressed before it is judged (EDK2 fixture app-ec.rom)', async () => {
    const result = await runCli([
      'extract',
      path.join(import.meta.dirname, 'fixtures/edk2/app-ec.rom'),
      '--out',
      outDir(),
    ]);
    expect(result.code).toBe(4);
    expect(result.stderr).toContain(
      'this option ROM holds no Intel GOP driver: 1 image(s), image 0 (EFI, compressed): x64 EFI boot-service driver of 7488 bytes without the UTF-16LE "Intel(R) GOP Driver" string (a policy, helper or debug module, whatever its file name) [E_GOP_NOT_FOUND]',
    );
  });

  it('an abort during the EFI decompression of a ROM image is an abort, not a damaged image', () => {
    const rom = readFileSync(path.join(import.meta.dirname, 'fixtures/edk2/app-ec.rom'));
    const signal = AbortSignal.abort();
    expect(() => extractFromOptionRom(rom, { signal })).toThrow(
      expect.objectContaining({ code: 'E_ABORTED' }),
    );
    expect(() => classifyRomChain(rom, { signal })).toThrow(expect.objectContaining({ code: 'E_ABORTED' }));
    // Without the abort the same image decodes (the checks cost nothing else).
    expect(extractFromOptionRom(rom).problems).toEqual([]);
  });
});

describe('publish rolls back a move that fails half-way', () => {
  it('the second file fails to move in: the directory is restored exactly, no staging left', async () => {
    const out = outDir();
    expect((await runCli(['extract', corpusPath(GK41), '--out', out])).code).toBe(0);
    writeFileSync(path.join(out, `Vbt.${'DBADD769-E86A-4819-8120-E991792C0BC1'}.bin`), 'stale second VBT');
    const before = snapshot(out);
    let movesIn = 0;
    const failing = async (from: string, to: string): Promise<void> => {
      if (path.dirname(to) === out && (movesIn += 1) === 2) {
        throw Object.assign(new Error('EIO: i/o error, rename'), { code: 'EIO' });
      }
      await rename(from, to);
    };
    const files = new Map([
      ['IntelGopDriver.efi', new Uint8Array([1, 2, 3])],
      ['Vbt.bin', new Uint8Array([4, 5, 6])],
    ]);
    await expect(publish(out, files, failing)).rejects.toMatchObject({
      code: 'E_ARTIFACT_WRITE_FAILED',
      message: expect.stringContaining('EIO: i/o error, rename'),
    });
    expect(movesIn).toBe(2);
    expect(snapshot(out)).toEqual(before);
    expect(await publish(out, files)).toEqual(['Vbt.DBADD769-E86A-4819-8120-E991792C0BC1.bin']);
    expect(snapshot(out)).toEqual({
      'IntelGopDriver.efi': sha256(new Uint8Array([1, 2, 3])),
      'Vbt.bin': sha256(new Uint8Array([4, 5, 6])),
    });
  });
});

describe('extract as a real process: the main thread first, a worker for a long parse', () => {
  // Nine copies of the Gemini Lake OVMF (31.4 MiB, under MAIN_THREAD_MAX_INPUT_BYTES): it starts
  // on the main thread and parses for seconds, so the busy bound moves it to a worker.
  const copies = 9;
  const gk41 = readCorpus(GK41);
  const big = path.join(work, 'nine-gk41.fd');
  writeFileSync(big, Buffer.concat(Array.from({ length: copies }, () => gk41)));

  it('a long parse that moved to the worker prints its result once and writes the files once', async () => {
    const out = outDir();
    const result = await startCli(['extract', big, '--out', out, '--json']).exited;
    expect({ status: result.status, stderr: result.stderr }).toEqual({ status: 0, stderr: '' });
    // One JSON document: a second run's output after a move would make this throw.
    const json = JSON.parse(result.stdout) as { gop: { sha256: string }; others: unknown[] };
    expect(json.gop.sha256).toBe(GK41_GOP_SHA256);
    expect(json.others).toHaveLength(copies - 1);
    expect(sha256(readFileSync(path.join(out, 'IntelGopDriver.efi')))).toBe(GK41_GOP_SHA256);
    expect(sha256(readFileSync(path.join(out, 'Vbt.bin')))).toBe(GK41_VBT_SHA256);
  });

  it('SIGINT early and late in the parse: exit 130 at once (little CPU after it), one line, nothing in --out', async () => {
    // The CPU a whole run on a small image costs: past it (plus a little), the big one is
    // parsing, on the main thread or already in the worker. "Late" is past the middle of the big
    // one's own parse, measured here: a fixed 2 CPU seconds more was past its end once the
    // parser got faster (the big run takes about 2.3 CPU seconds in all), and the signal found
    // a finished run.
    const small = await cpuOfWholeRun(['extract', corpusPath('ovmf/OVMF_VARS_4M.fd'), '--out', outDir()]);
    expect(small.status).toBe(4);
    const startup = small.cpu;
    const whole = await cpuOfWholeRun(['extract', big, '--out', outDir()]);
    expect(whole.status).toBe(0);
    const parse = whole.cpu - startup;
    // Past the 400 ms busy bound that moves the parse to the worker (CPU time is at most wall),
    // and with more parse after the late signal than a signal may cost.
    expect(parse).toBeGreaterThan(1);
    expect(parse * 0.4).toBeGreaterThan(SIGNAL_CPU_BOUND);
    for (const extra of [0.1, parse * 0.6]) {
      const out = outDir();
      const run = startCli(['extract', big, '--out', out]);
      const pid = run.child.pid as number;
      while (cpuSeconds(pid) < startup + extra) await sleep(20);
      const { result, cpuAfterSignal, wallMs } = await signalAndWait(run, 'SIGINT');
      expect({ extra, status: result.status, stdout: result.stdout, stderr: result.stderr }).toEqual({
        extra,
        status: 130,
        stdout: '',
        stderr: 'ovmf-build: interrupted by SIGINT\n',
      });
      // At once, as work: less than the parse still ahead (at least 0.4 of it, more than the
      // bound), which a run that finished its parse would have used; wall time only catches a
      // hang (on CI it is the scheduler's, signalAndWait).
      // The bound grows with the parse measured in this run (signalCpuBound): 0.75 of the 0.4 of
      // the parse that is still ahead after the late signal.
      expect(cpuAfterSignal).toBeLessThan(signalCpuBound(parse * 0.4, 0.75));
      expect(wallMs).toBeLessThan(15_000);
      expect(existsSync(out)).toBe(false);
      expect(readdirSync(work).filter((name) => name.includes('.extract-'))).toEqual([]);
    }
  });
});
