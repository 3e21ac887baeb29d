import { isOvmfBuildError, UsageError } from '../core/errors.js';
import type { Command, CommandContext } from './context.js';
import { writeLine } from './context.js';
import { EXIT, exitCodeFor } from './exit-codes.js';

/** Commands load lazily so `ovmf-build extract` does not pay for the container stack. */
const COMMANDS: Readonly<Record<string, () => Promise<{ command: Command }>>> = {
  extract: () => import('./commands/extract.js'),
  inspect: () => import('./commands/inspect.js'),
  build: () => import('./commands/build.js'),
  'verify-boot': () => import('./commands/verify-boot.js'),
  'verify-igd': () => import('./commands/verify-igd.js'),
  verify: () => import('./commands/verify.js'),
  keys: () => import('./commands/keys.js'),
  rom: () => import('./commands/rom.js'),
  cache: () => import('./commands/cache.js'),
  cleanup: () => import('./commands/cleanup.js'),
};

/** `ovmf-build --gop x --vbt y` (no sub-command) is the main job. */
const DEFAULT_COMMAND = () => import('./commands/ovmf.js');

const VERSION = '0.1.0';

function usage(): string {
  return [
    'usage: ovmf-build --gop <file> --vbt <file> [options]   build a verified OVMF with this GOP and VBT',
    '       ovmf-build --firmware <vendor image> [options]    extract GOP and VBT, then build',
    '       ovmf-build <command> [args]',
    '',
    'commands:',
    '  extract <image> --out <dir> [--json]   take the GOP driver and VBT out of a firmware image',
    '  inspect <file> [--json]                show what a file is (image, capsule, GOP, VBT, option ROM)',
    '  build --gop <file> --vbt <file>        build OVMF only (no cache, no publish)',
    '  verify-boot <code.fd> <vars.fd>        boot an OVMF in QEMU and check the GOP and policy drivers load',
    '  verify-igd <code> <vars> --device ID   check IGD assignment (ASLS, BDSM, OpRegion) in QEMU',
    '  verify <artifact dir>                  check an artifact directory: signature and every digest',
    '  keys list|add|remove                   the public keys verify trusts as signers',
    '  rom --gop <file> --device 8086:XXXX    make a PCI option ROM from a GOP driver',
    '  cache ls|gc|why                        show, clean or explain the build cache',
    '  cleanup                                remove containers left by crashed runs',
    '',
    'Run `ovmf-build <command> --help` for the options of a command.',
  ].join('\n');
}

export async function main(ctx: CommandContext): Promise<number> {
  const [first, ...rest] = ctx.argv;
  try {
    if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
      writeLine(first === undefined ? ctx.stderr : ctx.stdout, usage());
      return first === undefined ? EXIT.usage : EXIT.ok;
    }
    if (first === '--version' || first === '-V') {
      writeLine(ctx.stdout, VERSION);
      return EXIT.ok;
    }
    const loader = COMMANDS[first];
    if (loader === undefined && !first.startsWith('-')) {
      throw new UsageError(`unknown command \`${first}\`; run \`ovmf-build --help\``, { command: first });
    }
    const { command } = await (loader ?? DEFAULT_COMMAND)();
    return await command.run({ ...ctx, argv: loader === undefined ? ctx.argv : rest });
  } catch (error) {
    if (isOvmfBuildError(error)) {
      writeLine(ctx.stderr, `ovmf-build: ${error.message} [${error.code}]`);
      return exitCodeFor(error);
    }
    writeLine(
      ctx.stderr,
      'ovmf-build: unexpected error; this is a bug, please report it with the stack below:',
    );
    writeLine(ctx.stderr, error instanceof Error ? (error.stack ?? String(error)) : String(error));
    return EXIT.bug;
  }
}
