// The output directory of the main command and of `build` is checked before any work
// (src/cli/output-dir.ts): a --out that is a file, runs through a file, or lies in a directory
// this user cannot write used to fail at publish, after the whole build (E_PUBLISH_FAILED, seen
// 2026-12-05 with `--out /etc/passwd` after 22 s). Now it is a usage mistake (exit 2) with its
// own code, and nothing is built, cached or created.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { runBuild } from '../src/cli/commands/build.js';
import { runMain } from '../src/cli/commands/ovmf.js';
import { main } from '../src/cli/main.js';
import { exitCodeFor } from '../src/cli/exit-codes.js';
import { checkOutputDirectory } from '../src/cli/output-dir.js';
import type { OvmfBuildError } from '../src/core/errors.js';
import { isolatedEnv, StandInBuild } from './cache-stand-in.js';
import { captureContext } from './cli-harness.js';
import { corpusPath, REPO_ROOT } from './corpus.js';
import { tempDirPerTest } from './temp-dir.js';

const GOP = corpusPath('gop/cometlake-mrchromebox-cml.efi');
const VBT = corpusPath('vbt/cometlake-intel-nuc10i5fnh.vbt');

const tempDir = tempDirPerTest('ovmf-output-dir-');
let dir: string;
beforeEach(() => {
  dir = tempDir();
});

async function refusal(promise: Promise<unknown>): Promise<OvmfBuildError> {
  return promise.then(
    () => expect.unreachable('the check passed'),
    (thrown: unknown) => thrown as OvmfBuildError,
  );
}

describe('checkOutputDirectory', () => {
  it('passes an existing directory, and a missing path under one, creating nothing', async () => {
    await checkOutputDirectory(dir);
    await checkOutputDirectory(path.join(dir, 'a', 'b', 'c'));
    expect(readdirSync(dir)).toEqual([]);
  });

  it('refuses a file with E_OUTPUT_NOT_DIRECTORY, and a path through one, naming the file', async () => {
    const file = path.join(dir, 'passwd');
    writeFileSync(file, 'root:x:0:0\n');
    const onFile = await refusal(checkOutputDirectory(file));
    expect([onFile.code, exitCodeFor(onFile), onFile.message]).toEqual([
      'E_OUTPUT_NOT_DIRECTORY',
      2,
      `--out ${file} is a file; give a directory (it is created if missing)`,
    ]);
    const under = path.join(file, 'x', 'y');
    const through = await refusal(checkOutputDirectory(under, '--artifacts'));
    expect([through.code, through.message]).toEqual([
      'E_OUTPUT_NOT_DIRECTORY',
      `--artifacts ${under} cannot be created: ${file} is a file`,
    ]);
    expect(readFileSync(file, 'utf8')).toBe('root:x:0:0\n');
  });

  it('refuses a device as not a directory', async () => {
    const error = await refusal(checkOutputDirectory('/dev/null'));
    expect([error.code, error.message]).toEqual([
      'E_OUTPUT_NOT_DIRECTORY',
      '--out /dev/null is not a directory; give a directory (it is created if missing)',
    ]);
  });

  it('refuses a directory this user cannot write with E_OUTPUT_NOT_WRITABLE (as nobody when run as root)', () => {
    const locked = path.join(dir, 'locked');
    mkdirSync(locked, { mode: 0o755 });
    const asRoot = process.getuid?.() === 0;
    // Root writes anywhere, so as root the check runs in a child process as nobody (uid 65534),
    // for whom a root-owned 0755 directory is read-only; otherwise the directory is made 0555.
    if (!asRoot) chmodSync(locked, 0o555);
    chmodSync(dir, 0o755); // mkdtemp's 0700 would stop nobody one level up, at the stat

    const script =
      `import('./src/cli/output-dir.ts').then((m) => m.checkOutputDirectory(${JSON.stringify(path.join(locked, 'out'))}))` +
      `.then(() => console.log('passed'), (e) => console.log(JSON.stringify([e.code, e.message])))`;
    const child = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      env: { ...process.env, HOME: dir },
      ...(asRoot ? { uid: 65534, gid: 65534 } : {}),
    });
    if (!asRoot) chmodSync(locked, 0o755);
    expect(child.stderr).toBe('');
    expect(JSON.parse(child.stdout)).toEqual([
      'E_OUTPUT_NOT_WRITABLE',
      `--out ${path.join(locked, 'out')}: its nearest existing directory ${locked} cannot be written (EACCES); ` +
        'choose another directory',
    ]);
  });
});

describe('the main command and build check their output directory before any work', () => {
  it('ovmf-build --out <a file>: exit 2, E_OUTPUT_NOT_DIRECTORY, nothing built, no log, the file untouched', async () => {
    const file = path.join(dir, 'artifacts.txt');
    writeFileSync(file, 'keep');
    const backend = new StandInBuild();
    const captured = captureContext(['--gop', GOP, '--vbt', VBT, '--out', file], isolatedEnv(dir), dir);
    const error = await refusal(runMain(captured.ctx, backend.stages));
    expect([error.code, exitCodeFor(error)]).toEqual(['E_OUTPUT_NOT_DIRECTORY', 2]);
    expect(backend.builds).toBe(0);
    expect(readFileSync(file, 'utf8')).toBe('keep');
    expect(existsSync(path.join(dir, 'state'))).toBe(false);
    expect(existsSync(path.join(dir, 'cache'))).toBe(false);
  });

  it('without --out the default ./artifacts is checked too, and the message says it is the default', async () => {
    writeFileSync(path.join(dir, 'artifacts'), '');
    const backend = new StandInBuild();
    const captured = captureContext(['--gop', GOP, '--vbt', VBT], isolatedEnv(dir), dir);
    const error = await refusal(runMain(captured.ctx, backend.stages));
    expect([error.code, error.message]).toEqual([
      'E_OUTPUT_NOT_DIRECTORY',
      `the artifact store (no --out: ./artifacts) ${path.join(dir, 'artifacts')} is a file; give a directory (it is created if missing)`,
    ]);
    expect(backend.builds).toBe(0);
  });

  it('ovmf-build build --out <under a file>: exit 2 before the build', async () => {
    writeFileSync(path.join(dir, 'file'), '');
    const backend = new StandInBuild();
    const refused = captureContext(
      ['build', '--gop', GOP, '--vbt', VBT, '--out', path.join(dir, 'file', 'out'), '--no-verify-boot'],
      isolatedEnv(dir),
      dir,
    );
    const error = await refusal(
      runBuild({ ...refused.ctx, argv: refused.ctx.argv.slice(1) }, backend.stages),
    );
    expect([error.code, exitCodeFor(error)]).toEqual(['E_OUTPUT_NOT_DIRECTORY', 2]);
    expect(backend.builds).toBe(0);
  });
});

describe('the nightly, the worker and pull check their output directory before any job or download', () => {
  it.each([
    ['nightly', (out: string) => ['nightly', path.join(REPO_ROOT, 'recipes'), '--out', out]],
    ['worker', (out: string) => ['worker', '--queue', 'redis://127.0.0.1:1', '--out', out]],
    ['pull', (out: string) => ['pull', 'ovmf', '--mirror', 'http://127.0.0.1:1/', '--out', out]],
  ])(
    '%s --out <a file>: exit 2 with E_OUTPUT_NOT_DIRECTORY, no log, nothing fetched or connected',
    async (_name, argv) => {
      const file = path.join(dir, 'store');
      writeFileSync(file, '');
      const captured = captureContext(argv(file), isolatedEnv(dir), dir);
      expect(await main(captured.ctx)).toBe(2);
      expect(captured.stderr()).toBe(
        `ovmf-build: --out ${file} is a file; give a directory (it is created if missing) [E_OUTPUT_NOT_DIRECTORY]\n`,
      );
      expect(existsSync(path.join(dir, 'state'))).toBe(false);
    },
  );
});
