// The CLI: picks the command from argv and holds the single top-level catch (report) where any
// error becomes one message and the exit status its code registers (exit-codes.ts).
import type { Writable } from 'node:stream';
import type { ErrorCode } from '../core/error-codes.js';
import { isOvmfBuildError, OvmfBuildError, UsageError } from '../core/errors.js';
import type { Command, CommandContext } from './context.js';
import { MOVED_TO_WORKER, MoveToWorker, writeJson, writeLine } from './context.js';
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
  nightly: () => import('./commands/nightly.js'),
  worker: () => import('./commands/worker.js'),
  mirror: () => import('./commands/mirror.js'),
  pull: () => import('./commands/pull.js'),
  serve: () => import('./commands/serve.js'),
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
    '  nightly [recipe dir]                   build, verify and publish every recipe (nightly matrix)',
    '  worker --queue redis://HOST:PORT       run nightly recipes queued with nightly --queue (BullMQ)',
    '  mirror index|sync                      write a signed static mirror tree, or sync one over HTTP',
    '  pull NAME[@VERSION] --mirror URL       download one artifact from a mirror, checked',
    '  serve [dir] [--host H] [--port N]      serve a mirror tree over HTTP (127.0.0.1 by default)',
    '',
    'Run `ovmf-build <command> --help` for the options of a command.',
  ].join('\n');
}

/** `--json` anywhere before a `--`: errors are then printed as JSON on stdout too. */
function wantsJson(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).includes('--json');
}

/** The command line that `--help` belongs to: `ovmf-build`, `ovmf-build rom`, `ovmf-build cache ls`. */
function helpTarget(argv: readonly string[]): string {
  const [first, second] = argv;
  if (first === undefined || first.startsWith('-') || COMMANDS[first] === undefined) return 'ovmf-build';
  if (first === 'cache' && (second === 'ls' || second === 'gc' || second === 'why'))
    return `ovmf-build cache ${second}`;
  return `ovmf-build ${first}`;
}

/** A usage mistake is one line (the first of the message) that points to --help; never the whole usage text. */
function usageLine(error: OvmfBuildError, argv: readonly string[]): string {
  const first = error.message.split('\n')[0] ?? error.message;
  return first.includes('--help') ? first : `${first}; run \`${helpTarget(argv)} --help\``;
}

/** JSON.stringify that cannot throw on what error details may hold (bigint, bytes, cycles). */
function jsonSafe(value: unknown): unknown {
  const seen = new WeakSet<object>();
  return JSON.parse(
    JSON.stringify(value, (_key, v: unknown) => {
      if (typeof v === 'bigint') return v.toString();
      if (v instanceof Uint8Array) return `<${v.length} bytes>`;
      if (v instanceof Error) return { name: v.name, message: v.message };
      if (typeof v === 'object' && v !== null) {
        if (seen.has(v)) return '<cycle>';
        seen.add(v);
      }
      return v;
    }) ?? 'null',
  ) as unknown;
}

/**
 * The signal an abort came from (run.ts aborts with details.signal), if any. It reads only
 * `reason` (undefined until aborted): on the main thread, reading `aborted` is a check that may
 * move the command to a worker (run.ts), which must not happen once the command has ended.
 */
function abortSignalName(signal: AbortSignal): NodeJS.Signals | null {
  const reason: unknown = signal.reason;
  const name = isOvmfBuildError(reason) ? reason.details['signal'] : undefined;
  return name === 'SIGINT' || name === 'SIGTERM' ? name : null;
}

/**
 * Follows the first failure of an output stream. A write error is emitted after the write
 * returns (next tick), so the command cannot see it; main() reports it once the command ends.
 */
function watchOutput(stream: NodeJS.WritableStream | Writable): {
  readonly error: () => NodeJS.ErrnoException | null;
  readonly stop: () => void;
} {
  let failure: NodeJS.ErrnoException | null = null;
  const onError = (error: NodeJS.ErrnoException): void => {
    failure ??= error;
  };
  stream.on('error', onError);
  return { error: () => failure, stop: () => stream.removeListener('error', onError) };
}

/** Lets pending write errors surface (they are emitted on the next tick). */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export async function main(ctx: CommandContext): Promise<number> {
  const stdoutWatch = watchOutput(ctx.stdout);
  const stderrWatch = watchOutput(ctx.stderr);
  try {
    let code = await dispatch(ctx);
    await settle();
    const failure = stdoutWatch.error();
    if (failure !== null && failure.code !== 'EPIPE') {
      code = report(ctx, outputWriteFailed(failure), false);
    }
    // EPIPE: the reader has gone (`| head -1`); it wanted no more, which is no failure of ours.
    return code;
  } finally {
    stdoutWatch.stop();
    stderrWatch.stop();
  }
}

function outputWriteFailed(error: NodeJS.ErrnoException): OvmfBuildError {
  return new OvmfBuildError('E_OUTPUT_WRITE_FAILED', `cannot write the output: ${error.message}`, {
    errno: error.code ?? null,
  });
}

/** The single place where an error becomes a message and an exit code. */
function report(ctx: CommandContext, error: unknown, json: boolean): number {
  // Whatever failed after the move failed because of it; the worker runs the command again.
  if (ctx.signal.reason instanceof MoveToWorker) return MOVED_TO_WORKER;
  const interruptedBy = abortSignalName(ctx.signal);
  if (interruptedBy !== null) {
    // Whatever failed after the abort (an aborted request, a killed QEMU) failed because of it.
    if (json) {
      writeJson(ctx.stdout, {
        error: {
          code: 'E_ABORTED' satisfies ErrorCode,
          message: `interrupted by ${interruptedBy}`,
          details: { signal: interruptedBy },
        },
      });
    }
    writeLine(ctx.stderr, `ovmf-build: interrupted by ${interruptedBy}`);
    return interruptedBy === 'SIGTERM' ? EXIT.terminated : EXIT.interrupted;
  }
  if (isOvmfBuildError(error)) {
    const line = error.code === 'E_USAGE' ? usageLine(error, ctx.argv) : error.message;
    if (json)
      writeJson(ctx.stdout, { error: jsonSafe({ code: error.code, message: line, details: error.details }) });
    writeLine(ctx.stderr, `ovmf-build: ${line} [${error.code}]`);
    return exitCodeFor(error);
  }
  const message = error instanceof Error ? error.message : String(error);
  if (json)
    writeJson(ctx.stdout, {
      error: { code: 'E_INTERNAL' satisfies ErrorCode, message: `unexpected error: ${message}`, details: {} },
    });
  writeLine(
    ctx.stderr,
    'ovmf-build: unexpected error; this is a bug, please report it with the stack below:',
  );
  writeLine(ctx.stderr, error instanceof Error ? (error.stack ?? String(error)) : String(error));
  return EXIT.bug;
}

async function dispatch(ctx: CommandContext): Promise<number> {
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
    const code = await command.run({ ...ctx, argv: loader === undefined ? ctx.argv : rest });
    // A command that finished although it was interrupted still exits as interrupted.
    const interruptedBy = abortSignalName(ctx.signal);
    if (interruptedBy !== null) return report(ctx, null, wantsJson(ctx.argv));
    return code;
  } catch (error) {
    return report(ctx, error, wantsJson(ctx.argv));
  }
}
