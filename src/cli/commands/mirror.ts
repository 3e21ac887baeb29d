// `ovmf-build mirror index|sync`: make a static, signed download mirror from the artifact store,
// and keep a second mirror in step with one over HTTP (src/mirror).
import path from 'node:path';
import { parseArgsOrHelp } from '../command-args.js';
import type { Command, CommandContext } from '../context.js';
import { writeJson, writeLine } from '../context.js';
import { UsageError } from '../../core/errors.js';
import { userConfigDir } from '../../cache/paths.js';
import { EXIT } from '../exit-codes.js';

const USAGE = [
  'usage: ovmf-build mirror index [ARTIFACTS_DIR] [--out DIR] [--serial N] [--valid-days D] [--grace-hours H] [--json]',
  '       ovmf-build mirror sync URL DIR --trust-key FINGERPRINT [--grace-hours H] [--json]',
  '       ovmf-build mirror push s3://BUCKET/PREFIX --endpoint URL [DIR]   (see mirror push --help)',
  '',
  'index: verifies every version of the artifact store (default ./artifacts) and writes the mirror',
  'tree (default ./mirror): index.json, index.signed.json (signed with your key, serial one more',
  'than the tree had unless --serial, valid for --valid-days, default 7), by-hash/sha256/<hex>,',
  'artifacts/<name>/<version>/, artifacts/<name>/latest.json, keys/<fingerprint>.pub, index.html.',
  'Objects come first and the signed index last, so the old tree serves until the switch.',
  'SOURCE_DATE_EPOCH (seconds) fixes the clock for reproducible output.',
  '',
  'sync: fetches URL/index.signed.json (conditional GET), refuses a bad signature, another key,',
  'an expired index or a serial not newer than DIR holds (rollback), downloads the missing objects',
  '(size and sha256 checked, interrupted downloads resumed), verifies every version directory and',
  'switches DIR to the new index. FINGERPRINT is a key you trust (`keys list`) or the full 64-hex',
  "fingerprint of the mirror's keys/<fingerprint>.pub, obtained by another channel.",
  'Objects no longer named stay --grace-hours (default 24) after the last index naming them.',
].join('\n');

const OPTIONS = {
  out: { type: 'string' },
  serial: { type: 'string' },
  'valid-days': { type: 'string' },
  'grace-hours': { type: 'string' },
  'trust-key': { type: 'string' },
  json: { type: 'boolean' },
} as const;

function positiveNumber(value: string | undefined, option: string, integer: boolean): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value) || !(n > 0) || (integer && !Number.isSafeInteger(n))) {
    throw new UsageError(
      `--${option} expects a positive ${integer ? 'integer' : 'number'}, got \`${value}\``,
    );
  }
  return n;
}

/** The clock: SOURCE_DATE_EPOCH (reproducible builds' variable) or now. */
export function clockFrom(env: NodeJS.ProcessEnv): Date {
  const epoch = env['SOURCE_DATE_EPOCH'];
  if (epoch === undefined || epoch === '') return new Date();
  if (!/^\d+$/.test(epoch)) throw new UsageError(`SOURCE_DATE_EPOCH must be whole seconds, got \`${epoch}\``);
  return new Date(Number(epoch) * 1000);
}

export function graceMsFrom(value: string | undefined): number | undefined {
  const hours = positiveNumber(value, 'grace-hours', false);
  return hours === undefined ? undefined : Math.round(hours * 3_600_000);
}

async function runIndex(
  ctx: CommandContext,
  args: readonly string[],
  values: { out?: string; serial?: string; 'valid-days'?: string; 'grace-hours'?: string; json?: boolean },
): Promise<number> {
  if (args.length > 1) throw new UsageError('mirror index takes at most one ARTIFACTS_DIR');
  const { writeMirrorIndex } = await import('../../mirror/make-index.js');
  const serial = positiveNumber(values.serial, 'serial', true);
  const validDays = positiveNumber(values['valid-days'], 'valid-days', false);
  const graceMs = graceMsFrom(values['grace-hours']);
  const result = await writeMirrorIndex({
    storeDir: path.resolve(ctx.cwd, args[0] ?? 'artifacts'),
    outDir: path.resolve(ctx.cwd, values.out ?? 'mirror'),
    configDir: userConfigDir(ctx.env),
    now: clockFrom(ctx.env),
    ...(serial === undefined ? {} : { serial }),
    ...(validDays === undefined ? {} : { validForMs: Math.round(validDays * 86_400_000) }),
    ...(graceMs === undefined ? {} : { graceMs }),
    signal: ctx.signal,
  });
  if (values.json === true) {
    writeJson(ctx.stdout, {
      root: result.root,
      serial: result.serial,
      keyFingerprint: result.keyFingerprint,
      names: result.names,
      versions: result.versions,
      objectsAdded: result.objectsAdded,
      versionsAdded: result.versionsAdded,
      pruned: result.pruned,
      validUntil: result.index.valid_until,
    });
  } else {
    writeLine(
      ctx.stdout,
      `mirror ${result.root}: serial ${result.serial}, ${result.names} names, ${result.versions} versions (${result.versionsAdded} new, ${result.objectsAdded} objects added, ${result.pruned.length} pruned)`,
    );
    writeLine(ctx.stdout, `signed by ${result.keyFingerprint}, valid until ${result.index.valid_until}`);
  }
  return EXIT.ok;
}

async function runSync(
  ctx: CommandContext,
  args: readonly string[],
  values: { 'trust-key'?: string; 'grace-hours'?: string; json?: boolean; out?: string; serial?: string },
): Promise<number> {
  const [url, dir] = args;
  if (url === undefined || dir === undefined || args.length !== 2) {
    throw new UsageError('mirror sync needs URL and DIR');
  }
  if (!/^https?:\/\/[^/]/.test(url)) throw new UsageError(`mirror sync needs an http(s) URL, got \`${url}\``);
  const trustKey = values['trust-key'];
  if (trustKey === undefined || !/^[0-9a-fA-F]{8,64}$/.test(trustKey)) {
    throw new UsageError('mirror sync needs --trust-key FINGERPRINT (8 to 64 hex digits; see `keys list`)');
  }
  if (values.out !== undefined || values.serial !== undefined) {
    throw new UsageError('--out and --serial belong to mirror index');
  }
  const { syncMirror } = await import('../../mirror/sync.js');
  const graceMs = graceMsFrom(values['grace-hours']);
  const result = await syncMirror({
    url,
    root: path.resolve(ctx.cwd, dir),
    trustKey,
    configDir: userConfigDir(ctx.env),
    now: clockFrom(ctx.env),
    ...(graceMs === undefined ? {} : { graceMs }),
    signal: ctx.signal,
  });
  if (values.json === true) {
    writeJson(ctx.stdout, result);
  } else if (result.outcome === 'updated') {
    writeLine(
      ctx.stdout,
      `mirror ${result.root}: serial ${String(result.previousSerial ?? 'none')} -> ${result.serial} (${result.objectsFetched} objects fetched, ${result.versionsAdded} versions added, ${result.pruned.length} pruned)`,
    );
  } else {
    writeLine(ctx.stdout, `mirror ${result.root}: up to date at serial ${result.serial} (${result.outcome})`);
  }
  return EXIT.ok;
}

async function run(ctx: CommandContext): Promise<number> {
  // push has options of its own (--endpoint): mirror-push.ts parses them.
  if (ctx.argv[0] === 'push') return (await import('./mirror-push.js')).runMirrorPush(ctx, ctx.argv.slice(1));
  const parsed = parseArgsOrHelp(ctx, OPTIONS, USAGE);
  if (parsed === undefined) return EXIT.ok;
  const { values, positionals } = parsed;
  const [action, ...args] = positionals;
  switch (action) {
    case 'index':
      if (values['trust-key'] !== undefined) throw new UsageError('--trust-key belongs to mirror sync');
      return runIndex(ctx, args, values);
    case 'sync':
      return runSync(ctx, args, values);
    default:
      throw new UsageError(
        `${action === undefined ? 'mirror needs an action' : `unknown mirror action \`${action}\``}: index or sync`,
      );
  }
}

export const command: Command = {
  name: 'mirror',
  summary: 'write a signed static mirror tree, or sync one from another mirror',
  usage: USAGE,
  run,
};
