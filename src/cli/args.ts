// Command-line parsing for every command. node:util is taken with process.getBuiltinModule: an ESM
// import of it builds its export list through getters that load modules no command needs.
import type { ParseArgsConfig } from 'node:util';
import { UsageError } from '../core/errors.js';

const { parseArgs } = process.getBuiltinModule('node:util');

/**
 * node:util parseArgs in strict mode, with a parse failure turned into a one-line UsageError
 * (exit code 2): node's first sentence ("Unknown option '--bogus'"), to which main() adds
 * where the help is. `usage` is the command's help text, printed by --help, not on a mistake.
 */
export function parseCommandArgs<const O extends NonNullable<ParseArgsConfig['options']>>(
  argv: readonly string[],
  options: O,
  usage: string,
  allowPositionals = true,
): ReturnType<typeof parseArgs<{ args: string[]; options: O; allowPositionals: boolean; strict: true }>> {
  try {
    return parseArgs({ args: [...argv], options, allowPositionals, strict: true });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    // "Unknown option '--x'. To specify a positional argument starting with a '-', ..."
    const first = message.split(/\.\s/)[0] ?? message;
    throw new UsageError(first.replace(/\.$/, ''), { usage: usage.split('\n')[0] ?? usage });
  }
}
