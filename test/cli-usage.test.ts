// Every command refuses an unknown option the same way: exit 2 (usage), ONE line naming the
// option and where the help is (never the whole usage text, never the "this is a bug" path),
// and `--help` on every command and sub-command prints its usage with exit 0.
import { describe, expect, it } from 'vitest';
import { runCli } from './cli-harness.js';

const COMMANDS: readonly (readonly [argv: readonly string[], help: string, usage: string])[] = [
  [['extract'], 'ovmf-build extract', 'usage: ovmf-build extract'],
  [['inspect'], 'ovmf-build inspect', 'usage: ovmf-build inspect'],
  [['build'], 'ovmf-build build', 'usage: ovmf-build build'],
  [['verify-boot'], 'ovmf-build verify-boot', 'usage: ovmf-build verify-boot'],
  [['verify'], 'ovmf-build verify', 'usage: ovmf-build verify'],
  [['rom'], 'ovmf-build rom', 'usage: ovmf-build rom'],
  [['cache', 'ls'], 'ovmf-build cache ls', 'usage: ovmf-build cache ls'],
  [['cache', 'gc'], 'ovmf-build cache gc', 'usage: ovmf-build cache ls'],
  [['cleanup'], 'ovmf-build cleanup', 'usage: ovmf-build cleanup'],
  [[], 'ovmf-build', 'usage: ovmf-build --gop'],
];

describe('unknown options', () => {
  it.each(COMMANDS)('%j --bogus exits 2 with one line that points to --help', async (argv, help) => {
    const result = await runCli([...argv, '--bogus']);
    expect(result).toEqual({
      code: 2,
      stdout: '',
      stderr: `ovmf-build: Unknown option '--bogus'; run \`${help} --help\` [E_USAGE]\n`,
    });
  });

  it('cache why <key> --bogus is one line too', async () => {
    const result = await runCli(['cache', 'why', '0123abcd', '--bogus']);
    expect(result).toEqual({
      code: 2,
      stdout: '',
      stderr: "ovmf-build: Unknown option '--bogus'; run `ovmf-build cache why --help` [E_USAGE]\n",
    });
  });

  it('--json turns the usage error into one JSON object on stdout as well', async () => {
    const result = await runCli(['inspect', '--json', '--bogus']);
    expect(result.code).toBe(2);
    expect(JSON.parse(result.stdout)).toEqual({
      error: {
        code: 'E_USAGE',
        message: "Unknown option '--bogus'; run `ovmf-build inspect --help`",
        details: { usage: 'usage: ovmf-build inspect <file> [--json]' },
      },
    });
  });
});

describe('--help', () => {
  it.each(COMMANDS)('%j --help prints the usage on stdout and exits 0', async (argv, _help, usage) => {
    const result = await runCli([...argv, '--help']);
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
    expect(result.stdout.startsWith(usage)).toBe(true);
  });

  it('cache why <key> --help prints the usage too', async () => {
    const result = await runCli(['cache', 'why', '0123abcd', '--help']);
    expect(result.code).toBe(0);
    expect(result.stdout.startsWith('usage: ovmf-build cache ls')).toBe(true);
  });
});
