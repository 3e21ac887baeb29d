// Every command refuses an unknown option the same way: exit 2 (usage), a message naming the
// option, then that command's usage text; never the "this is a bug" path (exit 70).
import { describe, expect, it } from 'vitest';
import { runCli } from './cli-harness.js';

const COMMANDS: readonly (readonly [argv: readonly string[], usage: string])[] = [
  [['extract'], 'usage: ovmf-build extract'],
  [['inspect'], 'usage: ovmf-build inspect'],
  [['build'], 'usage: ovmf-build build'],
  [['verify-boot'], 'usage: ovmf-build verify-boot'],
  [['verify'], 'usage: ovmf-build verify'],
  [['rom'], 'usage: ovmf-build rom'],
  [['cache', 'ls'], 'usage: ovmf-build cache ls'],
  [['cache', 'gc'], 'usage: ovmf-build cache ls'],
  [['cache', 'why', '0123abcd'], 'usage: ovmf-build cache ls'],
  [['cleanup'], 'usage: ovmf-build cleanup'],
  [[], 'usage: ovmf-build --gop'],
];

describe('unknown options', () => {
  it.each(COMMANDS)('%j --bogus exits 2 with the usage text', async (argv, usage) => {
    const result = await runCli([...argv, '--bogus']);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    const lines = result.stderr.split('\n');
    expect(lines[0]).toMatch(/^ovmf-build: Unknown option '--bogus'/);
    expect(lines[1]?.startsWith(usage)).toBe(true);
    expect(result.stderr).toMatch(/\[E_USAGE\]\n$/);
  });
});
