// The CLI against hostile or mistaken input, run in-process through main() with real files,
// FIFOs, devices and symlink loops (issue 8): nothing hangs, every mistake has a code and its
// documented exit status, --json errors are one JSON object on stdout, and output streams
// that fail end quietly (EPIPE) or with a coded error (ENOSPC).
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.js';
import { AbortError } from '../src/core/errors.js';
import { captureContext } from './cli-harness.js';
import { corpusPath } from './corpus.js';

const GOP = corpusPath('gop/cometlake-mrchromebox-cml.efi');

let dir: string;
let fifo: string;
let env: NodeJS.ProcessEnv;

interface Outcome {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly elapsedMs: number;
}

async function cli(argv: readonly string[], stdout?: Writable, signal?: AbortSignal): Promise<Outcome> {
  const captured = captureContext(argv, env, dir, signal);
  const started = performance.now();
  const code = await main(stdout === undefined ? captured.ctx : { ...captured.ctx, stdout });
  return {
    code,
    stdout: captured.stdout(),
    stderr: captured.stderr(),
    elapsedMs: performance.now() - started,
  };
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'cli-robustness-'));
  fifo = path.join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  env = {
    ...process.env,
    XDG_CACHE_HOME: path.join(dir, 'cache'),
    XDG_CONFIG_HOME: path.join(dir, 'config'),
    XDG_STATE_HOME: path.join(dir, 'state'),
  };
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('special files are refused at once, never read', () => {
  it.each([
    ['inspect', () => ['inspect', fifo], 'input', 'a FIFO (named pipe)'],
    ['inspect /dev/zero', () => ['inspect', '/dev/zero'], 'input', 'a character device'],
    ['extract', () => ['extract', fifo, '--out', 'out'], 'image', 'a FIFO (named pipe)'],
    ['--recipe', () => ['--recipe', fifo], 'recipe', 'a FIFO (named pipe)'],
    [
      'rom --gop',
      () => ['rom', '--gop', fifo, '--device', '8086:9b41', '--gop-only'],
      'the GOP driver',
      'a FIFO (named pipe)',
    ],
    [
      'build --gop',
      () => ['build', '--gop', fifo, '--vbt', fifo, '--out', 'o'],
      'the GOP driver',
      'a FIFO (named pipe)',
    ],
    [
      'verify-igd --vbt',
      () => ['verify-igd', 'code.fd', 'vars.fd', '--device', '8086:3e9b', '--vbt', fifo],
      'the VBT',
      'a FIFO (named pipe)',
    ],
    [
      'verify-boot',
      () => ['verify-boot', fifo, fifo, '--gop', GOP, '--vbt', GOP],
      'the OVMF code image',
      'a FIFO (named pipe)',
    ],
  ])('%s: exit 6, E_INPUT_NOT_A_FILE', async (_name, argv, what, kind) => {
    const args = argv();
    const file = args.includes(fifo) ? fifo : (args[1] as string);
    const result = await cli(args);
    const refusal = `ovmf-build: ${what} ${file} is ${kind}, not a regular file [E_INPUT_NOT_A_FILE]`;
    // Job commands (build) name their log file and print progress lines before the refusal.
    const lines = result.stderr.trimEnd().split('\n');
    expect({ code: result.code, stdout: result.stdout, last: lines.at(-1) }).toEqual({
      code: 6,
      stdout: '',
      last: refusal,
    });
    expect(lines.slice(0, -1).filter((line) => !/^(log: |\[ *\d+\.\ds\] )/.test(line))).toEqual([]);
    // Before the guard these never returned (the vitest timeout was the failure).
    expect(result.elapsedMs).toBeLessThan(20_000);
  });

  it('extract of a FIFO leaves no --out directory behind', async () => {
    await cli(['extract', fifo, '--out', 'never']);
    expect(await readdir(dir)).not.toContain('never');
  });
});

describe('--json errors', () => {
  it('prints {"error": {code, message, details}} on stdout with the exit code of the code', async () => {
    const missing = path.join(dir, 'missing.fd');
    const result = await cli(['inspect', missing, '--json']);
    expect(result.code).toBe(6);
    expect(JSON.parse(result.stdout)).toEqual({
      error: {
        code: 'E_INPUT_NOT_FOUND',
        message: `input ${missing} does not exist`,
        details: { path: missing, errno: 'ENOENT' },
      },
    });
    expect(result.stderr).toBe(`ovmf-build: input ${missing} does not exist [E_INPUT_NOT_FOUND]\n`);
  });

  it('cache why with a malformed and with an unknown key: the same mistake, exit 2 both', async () => {
    const bad = await cli(['cache', 'why', 'zzzz', '--json']);
    const unknown = await cli(['cache', 'why', 'abcd', '--json']);
    expect([bad.code, unknown.code]).toEqual([2, 2]);
    expect(JSON.parse(bad.stdout)).toEqual({
      error: {
        code: 'E_CACHE_BAD_KEY',
        message: '`zzzz` is not a key or key prefix (4 to 64 hex digits)',
        details: { prefix: 'zzzz' },
      },
    });
    expect(JSON.parse(unknown.stdout)).toEqual({
      error: {
        code: 'E_CACHE_KEY_NOT_FOUND',
        message:
          'no cache entry or recorded request has a key starting with abcd; `ovmf-build cache ls` lists the keys',
        details: { prefix: 'abcd' },
      },
    });
  });

  it('a recipe holding null is a usage error (exit 2), not a bug (exit 70)', async () => {
    const recipe = path.join(dir, 'null.json');
    await writeFile(recipe, 'null\n');
    const result = await cli(['--recipe', recipe, '--json']);
    expect(result.code).toBe(2);
    expect(JSON.parse(result.stdout)).toEqual({
      error: {
        code: 'E_USAGE',
        message: `recipe ${recipe}: must hold one JSON object, got null; run \`ovmf-build --help\``,
        details: { recipe },
      },
    });
  });
});

describe('interruption', () => {
  it('a command stopped by SIGTERM exits 143 with one line (and the JSON error with --json)', async () => {
    const controller = new AbortController();
    controller.abort(new AbortError('interrupted by SIGTERM', { signal: 'SIGTERM' }));
    const result = await cli(['inspect', GOP, '--json'], undefined, controller.signal);
    expect({ code: result.code, stderr: result.stderr }).toEqual({
      code: 143,
      stderr: 'ovmf-build: interrupted by SIGTERM\n',
    });
    expect(JSON.parse(result.stdout)).toEqual({
      error: { code: 'E_ABORTED', message: 'interrupted by SIGTERM', details: { signal: 'SIGTERM' } },
    });
  });
});

describe('output streams that fail', () => {
  function failingStream(code: string): Writable {
    return new Writable({
      write(_chunk, _encoding, callback) {
        callback(Object.assign(new Error(`${code}: write failed`), { code }));
      },
    });
  }

  it('EPIPE (the reader went away, `| head -1`) ends quietly with the command status', async () => {
    const result = await cli(['inspect', GOP], failingStream('EPIPE'));
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
  });

  it('ENOSPC (`> /dev/full`) is E_OUTPUT_WRITE_FAILED, exit 1', async () => {
    const result = await cli(['inspect', GOP], failingStream('ENOSPC'));
    expect({ code: result.code, stderr: result.stderr }).toEqual({
      code: 1,
      stderr: 'ovmf-build: cannot write the output: ENOSPC: write failed [E_OUTPUT_WRITE_FAILED]\n',
    });
  });
});

describe('cache ls and gc do not follow links', () => {
  it('an entry holding two links to itself is listed and collected, with its real size', async () => {
    const root = path.join(dir, 'cache', 'ovmf-build', 'cache');
    const entry = path.join(root, 'ab'.repeat(32));
    await mkdir(entry, { recursive: true });
    await writeFile(path.join(entry, 'OVMF_CODE.fd'), new Uint8Array(3000));
    await symlink('.', path.join(entry, 'loop-a'));
    await symlink('..', path.join(entry, 'loop-b'));
    const ls = await cli(['cache', 'ls', '--json']);
    expect(ls.code).toBe(0);
    const listed = JSON.parse(ls.stdout) as { key: string; sizeInBytes: number; problem: string }[];
    // 3000 bytes of file plus the two links as themselves (1 and 2 bytes: their targets' lengths).
    expect(listed.map((l) => ({ key: l.key, sizeInBytes: l.sizeInBytes }))).toEqual([
      { key: 'ab'.repeat(32), sizeInBytes: 3003 },
    ]);
    expect(listed[0]?.problem).toMatch(/^cache record .*entry\.json does not exist$/);
    const gc = await cli(['cache', 'gc', '--dry-run']);
    expect(gc.code).toBe(0);
    expect(gc.stdout).toContain('would remove 1 item(s), ');
    const planted = path.join(root, 'cd'.repeat(32));
    await mkdir(planted);
    execFileSync('mkfifo', [path.join(planted, 'entry.json')]);
    const again = await cli(['cache', 'ls', '--json']);
    expect(again.code).toBe(0);
    expect((JSON.parse(again.stdout) as { problem: string }[])[1]?.problem).toMatch(
      /entry\.json is a FIFO \(named pipe\), not a regular file$/,
    );
    // A real gc removes both unusable entries, the links as links: what they point to stays.
    await writeFile(path.join(root, 'keep.txt'), 'beside the entries');
    const removed = await cli(['cache', 'gc', '--json']);
    expect(removed.code).toBe(0);
    expect(
      (JSON.parse(removed.stdout) as { removed: { path: string }[] }).removed.map((r) => r.path),
    ).toEqual([entry, planted]);
    expect((await readdir(root)).sort()).toEqual(['keep.txt']);
  });
});

describe('rom --out mistakes are coded (exit 2), not bugs (exit 70)', () => {
  it.each([
    ['into a missing directory', 'no/such/dir/x.rom', 'E_OUTPUT_DIR_MISSING'],
    ['onto a directory', '.', 'E_OUTPUT_IS_DIRECTORY'],
  ])('%s', async (_name, out, code) => {
    const result = await cli(['rom', '--gop', GOP, '--device', '8086:9b41', '--gop-only', '--out', out]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(new RegExp(`\\[${code}\\]\\n$`));
  });
});
