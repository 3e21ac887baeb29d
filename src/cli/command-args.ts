// Every command answers -h/--help the same way: the option is accepted, the usage goes to stdout
// and the command exits 0. This is that step once, on top of parseCommandArgs, so that each
// command lists only its own options and no command can forget --help or print it elsewhere.
import type { Writable } from 'node:stream';
import type { ParseArgsConfig } from 'node:util';
import { parseCommandArgs } from './args.js';
import { writeLine } from './context.js';

/** The -h/--help option every command takes. */
export const HELP_OPTION = { help: { type: 'boolean', short: 'h' } } as const;

type ParsedWithHelp<O extends NonNullable<ParseArgsConfig['options']>> = ReturnType<
  typeof parseCommandArgs<O & typeof HELP_OPTION>
>;

/**
 * Parses the command's `argv` with the command's `options` plus -h/--help (a mistake is a UsageError, exit 2).
 * Returns undefined after writing `usage` to `stdout` when --help was given: the caller exits 0.
 * @param allowPositionals whether operands are accepted @default true
 */
export function parseArgsOrHelp<const O extends NonNullable<ParseArgsConfig['options']>>(
  { stdout, argv }: { readonly stdout: Writable; readonly argv: readonly string[] },
  options: O,
  usage: string,
  allowPositionals = true,
): ParsedWithHelp<O> | undefined {
  const parsed: ParsedWithHelp<O> = parseCommandArgs(
    argv,
    { ...options, ...HELP_OPTION },
    usage,
    allowPositionals,
  );
  // parseArgs' value types are not resolved inside this generic function.
  if ((parsed.values as { readonly help?: boolean }).help === true) {
    writeLine(stdout, usage);
    return undefined;
  }
  return parsed;
}
