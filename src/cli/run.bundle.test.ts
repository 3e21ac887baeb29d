// dist/cli/run.bundle.cjs, the CLI as one script that bin/ovmf-build.js runs extract and
// inspect from (`npm run build:cli-bundle`), with a V8 code cache of its own: it must answer
// exactly as the modules of dist/ do (exit status, stdout, stderr, every byte written), through
// the worker thread too, and load no package when it starts: a command esbuild took in by
// mistake would bring its imports (dockerode, the S3 client) into every extract.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureFreshDist } from '../../test/cli-harness.js';
import { corpusPath, REPO_ROOT } from '../../test/corpus.js';

const DIST_RUN = path.join(REPO_ROOT, 'dist/cli/run.js');
const BUNDLE = path.join(REPO_ROOT, 'dist/cli/run.bundle.cjs');
const BIN = path.join(REPO_ROOT, 'bin/ovmf-build.js');
const work = mkdtempSync(path.join(os.tmpdir(), 'ovmf-build-bundle-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** An entry script that runs the CLI from `module` (what bin/ovmf-build.js does, without the compile cache). */
function entry(name: string, module: string): string {
  const file = path.join(work, name);
  writeFileSync(
    file,
    `const { run } = await import(${JSON.stringify(pathToFileURL(module).href)});\nawait run();\n`,
  );
  return file;
}

interface Outcome {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** Every file extract left in --out, name -> bytes as hex. */
  readonly files: Record<string, string>;
}

/** Runs `node script ARGS` with --out <work>/out (emptied first), so both runs print the same paths. */
function runWith(script: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): Outcome {
  const out = path.join(work, 'out');
  rmSync(out, { recursive: true, force: true });
  const result = spawnSync(process.execPath, [script, ...args.map((a) => (a === '<out>' ? out : a))], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    env,
  });
  const files: Record<string, string> = {};
  if (existsSync(out)) {
    for (const name of readdirSync(out).sort())
      files[name] = readFileSync(path.join(out, name)).toString('hex');
  }
  return { status: result.status, stdout: result.stdout, stderr: result.stderr, files };
}

let modules = '';
let bundle = '';
beforeAll(() => {
  // Rebuilds dist/ and the bundle when the sources are newer (the bundle renamed into place).
  ensureFreshDist();
  modules = entry('modules.mjs', DIST_RUN);
  bundle = entry('bundle.mjs', BUNDLE);
}, 300_000);

const vendor = (name: string): string => path.join(REPO_ROOT, 'test/fixtures/vendor', name);

// [what, argv, the exit status both must give, files both must write]
const CASES: readonly [string, readonly string[], number, readonly string[]][] = [
  [
    'an OVMF with GOP and VBT',
    ['extract', corpusPath('images/geminilake-ovmf-with-gop-vbt-gk41.fd'), '--out', '<out>', '--json'],
    0,
    ['IntelGopDriver.efi', 'Vbt.bin'],
  ],
  [
    'an IFWI with two VBTs and no GOP (text output)',
    ['extract', corpusPath('images/geminilake-protectli-vp2410-ifwi.bin'), '--out', '<out>'],
    4,
    ['Vbt.DBADD769-E86A-4819-8120-E991792C0BC1.bin', 'Vbt.bin'],
  ],
  [
    'the Coffee Lake FSP (neither part)',
    ['extract', corpusPath('images/coffeelake-intel-fsp.fd'), '--out', '<out>', '--json'],
    4,
    [],
  ],
  ['an OVMF VARS store', ['extract', corpusPath('ovmf/OVMF_VARS_4M.fd'), '--out', '<out>', '--json'], 4, []],
  [
    'a legacy VBIOS option ROM',
    ['extract', corpusPath('roms/haswell-devid-0406-legacy-vbios.rom'), '--out', '<out>', '--json'],
    4,
    ['Vbt.bin'],
  ],
  [
    'a zip package (moves to the worker thread)',
    ['extract', vendor('starlabs-labtop-mk4-ite-1.07-efi.zip'), '--out', '<out>', '--json'],
    4,
    [],
  ],
  [
    'an LVFS cabinet (7z in a child process, from the worker)',
    ['extract', vendor('dell-tpm1.2-5.81.2.1.cab'), '--out', '<out>', '--json'],
    4,
    [],
  ],
  [
    'a GOP driver given as the image',
    ['extract', corpusPath('gop/cometlake-mrchromebox-cml.efi'), '--out', '<out>'],
    6,
    [],
  ],
  [
    'no firmware at all',
    ['extract', path.join(REPO_ROOT, 'package.json'), '--out', '<out>', '--json'],
    3,
    [],
  ],
  ['a usage mistake', ['extract', corpusPath('ovmf/OVMF_VARS_4M.fd')], 2, []],
  ['inspect of an option ROM', ['inspect', corpusPath('roms/skylake-i915ovmf.rom'), '--json'], 0, []],
  ['inspect of a VBT', ['inspect', corpusPath('vbt/kabylake-lenovo-t480.vbt')], 0, []],
];

describe('the bundled CLI answers as the modules do', () => {
  for (const [what, args, status, files] of CASES) {
    it(what, () => {
      const fromModules = runWith(modules, args);
      const fromBundle = runWith(bundle, args);
      // The installed command: the bundle as a script with its code cache (the first case of a
      // command writes it, the others use it) in a cache directory of the test's own.
      const fromBin = runWith(BIN, args, { ...process.env, XDG_CACHE_HOME: path.join(work, 'bin-cache') });
      expect(fromModules.status).toBe(status);
      expect(Object.keys(fromModules.files)).toEqual(files);
      expect(fromModules.stderr).not.toMatch(/unexpected error|this is a bug/u);
      expect(fromBundle).toEqual(fromModules);
      expect(fromBin).toEqual(fromModules);
    });
  }
});

describe('dist/cli/run.bundle.cjs', () => {
  it('is strict code that requires only Node built-ins (packages load with the code that needs them)', () => {
    const text = readFileSync(BUNDLE, 'utf8');
    // The modules were ES modules, strict; a CommonJS script is strict only by its first statement.
    expect(text.startsWith("'use strict';")).toBe(true);
    const required = [...text.matchAll(/\brequire\(\s*["']([^"']+)["']\s*\)/gu)].map((m) => m[1]);
    // node:fs/promises at least: the bundle holds extract, which reads the image with it.
    expect(required).toContain('node:fs/promises');
    expect(required.filter((s) => !s?.startsWith('node:'))).toEqual([]);
    // import() in a vm.Script goes through a loader Node calls experimental (a warning on
    // stderr): only the other commands', which extract and inspect never reach, may use it.
    const imported = [...text.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/gu)].map((m) => m[1]);
    expect(imported.filter((s) => !s?.startsWith('./commands/'))).toEqual([]);
  });

  it('is what bin/ovmf-build.js runs extract and inspect from; every other command runs from dist/cli/run.js', () => {
    // Lists the modules the process loads from dist/ (module.registerHooks sees every load).
    const hooks = path.join(work, 'hooks.mjs');
    writeFileSync(
      hooks,
      [
        "import module from 'node:module';",
        'const loaded = [];',
        'module.registerHooks({ load(url, context, next) { loaded.push(url); return next(url, context); } });',
        "process.on('exit', () => process.stderr.write(`LOADED ${JSON.stringify(loaded.filter((u) => u.includes('/dist/')))}\\n`));",
      ].join('\n'),
    );
    const loadedBy = (
      args: readonly string[],
    ): { modules: string[]; status: number | null; stdout: string } => {
      const result = spawnSync(process.execPath, ['--import', pathToFileURL(hooks).href, BIN, ...args], {
        cwd: REPO_ROOT,
        encoding: 'utf8',
        env: { ...process.env, NODE_DISABLE_COMPILE_CACHE: '1' },
      });
      const line = /^LOADED (.*)$/mu.exec(result.stderr)?.[1];
      if (line === undefined) throw new Error(`no module list: ${result.stderr}`);
      const modules = (JSON.parse(line) as string[]).map((url) =>
        path.relative(REPO_ROOT, new URL(url).pathname),
      );
      return { modules, status: result.status, stdout: result.stdout };
    };
    // The bundle is run as a script (vm.Script), not loaded as a module: inspect answers, and
    // nothing of dist/ but the cache paths bin/ovmf-build.js itself imports was loaded.
    const inspect = loadedBy(['inspect', corpusPath('vbt/kabylake-lenovo-t480.vbt'), '--json']);
    expect(inspect.status).toBe(0);
    expect(JSON.parse(inspect.stdout)).toMatchObject({ kind: 'vbt' });
    expect(inspect.modules).toEqual(['dist/cache/paths.js']);
    const version = loadedBy(['--version']).modules;
    expect(version).toContain('dist/cli/run.js');
    expect(version).toContain('dist/cli/main.js');
  });
});

describe("the bundle's code cache", () => {
  const home = path.join(work, 'cache-home');
  const args = ['inspect', corpusPath('vbt/kabylake-lenovo-t480.vbt'), '--json'];
  const run = (): { status: number | null; stdout: string } => {
    const env: NodeJS.ProcessEnv = { ...process.env, XDG_CACHE_HOME: home };
    delete env['NODE_COMPILE_CACHE'];
    delete env['NODE_DISABLE_COMPILE_CACHE'];
    const result = spawnSync(process.execPath, [BIN, ...args], { cwd: REPO_ROOT, encoding: 'utf8', env });
    return { status: result.status, stdout: result.stdout };
  };
  /** The code cache files of inspect (Node's versioned compile cache directory holds them). */
  const cacheFiles = (): { file: string; ino: number; size: number }[] => {
    const root = path.join(home, 'ovmf-build', 'compile-cache');
    const found: { file: string; ino: number; size: number }[] = [];
    for (const dir of existsSync(root) ? readdirSync(root) : []) {
      for (const name of readdirSync(path.join(root, dir))) {
        if (!name.startsWith('run.bundle.inspect.')) continue;
        const file = path.join(root, dir, name);
        const { ino, size } = statSync(file);
        found.push({ file, ino, size });
      }
    }
    return found;
  };

  it('is written after the first run, used as it is by the next, and written again when V8 refuses it', () => {
    rmSync(home, { recursive: true, force: true });
    const expected = runWith(entry('inspect-modules.mjs', DIST_RUN), args);
    expect(expected.status).toBe(0);
    const bundleStat = statSync(BUNDLE);
    const first = run();
    expect(first).toEqual({ status: 0, stdout: expected.stdout });
    const [written, ...more] = cacheFiles();
    expect(more).toEqual([]);
    expect(path.basename(written!.file)).toBe(
      `run.bundle.inspect.${bundleStat.size}-${Math.trunc(bundleStat.mtimeMs)}.v8cache`,
    );
    expect(written!.size).toBeGreaterThan(10_000);
    // Accepted: the same answer and the same file (a refused cache is replaced, a new inode).
    expect(run()).toEqual({ status: 0, stdout: expected.stdout });
    expect(cacheFiles()).toEqual([written]);
    // Truncated, then garbage of its own length: refused, the same answer, and a new cache.
    // (V8 checks a code cache's header and length: only those two are refused, not any byte.)
    const good = readFileSync(written!.file);
    for (const damaged of [good.subarray(0, good.length >> 1), Buffer.alloc(good.length, 0x5a)]) {
      writeFileSync(written!.file, damaged);
      const before = statSync(written!.file).ino;
      expect(run()).toEqual({ status: 0, stdout: expected.stdout });
      const [again, ...others] = cacheFiles();
      expect(others).toEqual([]);
      expect(again!.file).toBe(written!.file);
      expect(again!.ino).not.toBe(before);
      expect(again!.size).toBeGreaterThan(10_000);
    }
    // A cache of an older bundle goes when this one is written.
    const stale = written!.file.replace(/\.\d+-\d+\.v8cache$/u, '.1-1.v8cache');
    writeFileSync(stale, good);
    rmSync(written!.file);
    expect(run()).toEqual({ status: 0, stdout: expected.stdout });
    expect(cacheFiles().map((f) => f.file)).toEqual([written!.file]);
  });
});
