// Every command answers -h/--help the same way: the option is accepted, the usage goes to stdout
// and the command exits 0. This is that step once, on top of parseCommandArgs, so that each
// command lists only its own options and no command can forget --help or print it elsewhere.
// A command whose command line is one option table is written with defineCommand; sub-commands
// (cache ls, mirror push) and entry points that tests call with stand-in stages (nightly) call
// parseArgsOrHelp themselves, and the job commands parseJobOptionsOrHelp (job-options.ts).
import type { Writable } from 'node:stream';
import type { ParseArgsConfig } from 'node:util';
import { parseCommandArgs } from './args.js';
import { writeLine, type Command, type CommandContext } from './context.js';
import { EXIT } from './exit-codes.js';

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

/** The parsed arguments a command defined with defineCommand runs with. */
export type CommandArgs<O extends NonNullable<ParseArgsConfig['options']>> = ParsedWithHelp<O>;

/** A command whose whole command line is one option table (plus -h/--help) and its operands. */
export interface CommandSpec<O extends NonNullable<ParseArgsConfig['options']>> {
  readonly name: string;
  readonly summary: string;
  /** The help text: --help prints it; a usage mistake names its first line. */
  readonly usage: string;
  readonly options: O;
  /** Whether operands are accepted. @default true */
  readonly allowPositionals?: boolean;
  /** Runs the command with its parsed arguments; never called for --help. */
  readonly run: (ctx: CommandContext, args: CommandArgs<O>) => Promise<number>;
}

/**
 * A Command that parses its argv with parseArgsOrHelp before it runs: --help prints `usage`
 * and exits 0, so each command states its usage once and holds only what is its own.
 */
export function defineCommand<const O extends NonNullable<ParseArgsConfig['options']>>(
  spec: CommandSpec<O>,
): Command {
  const { name, summary, usage, options, allowPositionals = true, run } = spec;
  return {
    name,
    summary,
    usage,
    async run(ctx) {
      const args = parseArgsOrHelp(ctx, options, usage, allowPositionals);
      return args === undefined ? EXIT.ok : run(ctx, args);
    },
  };
}
