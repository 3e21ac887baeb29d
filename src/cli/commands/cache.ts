// `ovmf-build cache ls|gc|why`: show, clean or explain the build cache. `why` with job options
// runs the job's stages up to the key, so it explains exactly the key the main command would use.
import { parseArgsOrHelp } from '../command-args.js';
import type { Command, CommandContext } from '../context.js';
import { writeJson, writeLine } from '../context.js';
import { UsageError } from '../../core/errors.js';
import { formatSize, formatSizeShort } from '../../core/size.js';
import { abbreviate, CacheError, CacheStore, type CacheKeyDetails } from '../../cache/index.js';
import { buildCacheDir } from '../../cache/paths.js';
import { openJobLog } from '../../jobs/job-logger.js';
import { runPipeline, type PipelineStages } from '../../jobs/pipeline.js';
import { EXIT } from '../exit-codes.js';
import { jobOptionsUsage, jobRequest, parseJobOptionsOrHelp } from '../job-options.js';

const USAGE = [
  'usage: ovmf-build cache ls [--json]',
  '       ovmf-build cache gc [--max-age-days N] [--max-size-bytes N] [--dry-run] [--json]',
  '       ovmf-build cache why <key or key prefix> [--json]',
  "       ovmf-build cache why --gop <file> --vbt <file> [the main command's options] [--json]",
  '',
  'The build cache lives in $XDG_CACHE_HOME/ovmf-build/cache (default ~/.cache/ovmf-build/cache).',
  'ls    lists the entries: key, created, size, GOP, VBT, machine, target.',
  'gc    removes entries unused for N days, then least recently used ones above N bytes,',
  '      and always abandoned temp dirs, discarded entries and stale locks.',
  'why   names the inputs that differ between a key (or the key these options would give)',
  '      and the nearest cached entry: "vbt changed: 3f1c2a9b.. -> 9a0e1b2c..".',
  '',
  jobOptionsUsage(
    "  --out <dir>                       the main command's artifact store (not part of the key)",
  ),
].join('\n');

function storeFor(ctx: CommandContext): CacheStore {
  return new CacheStore({ root: buildCacheDir(ctx.env) });
}

async function list(ctx: CommandContext, argv: readonly string[]): Promise<number> {
  const parsed = parseArgsOrHelp({ stdout: ctx.stdout, argv }, { json: { type: 'boolean' } }, USAGE, false);
  if (parsed === undefined) return EXIT.ok;
  const { values } = parsed;
  const listings = await storeFor(ctx).list();
  if (values.json === true) {
    writeJson(
      ctx.stdout,
      listings.map((l) => ({
        key: l.key,
        createdAt: l.entry?.createdAt ?? null,
        lastUsedAt: l.lastUsedAt,
        sizeInBytes: l.sizeInBytes,
        details: l.entry?.details ?? null,
        problem: l.problem,
      })),
    );
    return EXIT.ok;
  }
  if (listings.length === 0) {
    writeLine(ctx.stdout, 'the cache is empty');
    return EXIT.ok;
  }
  writeLine(
    ctx.stdout,
    'KEY           CREATED               SIZE       GOP         VBT         MACHINE  TARGET',
  );
  for (const l of listings) {
    const d = l.entry?.details;
    writeLine(
      ctx.stdout,
      [
        l.key.slice(0, 12).padEnd(13),
        (l.entry?.createdAt.slice(0, 19) ?? 'unusable').padEnd(21),
        formatSizeShort(l.sizeInBytes).padStart(9),
        '  ',
        abbreviate(d?.gop ?? null).padEnd(11),
        abbreviate(d?.vbt ?? null).padEnd(11),
        (d?.machine ?? '-').padEnd(8),
        d?.target ?? l.problem ?? '-',
      ].join(' '),
    );
  }
  return EXIT.ok;
}

function nonNegative(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const number = Number(value);
  if (!Number.isFinite(number) || number < 0)
    throw new UsageError(`--${name} must be a number >= 0, got \`${value}\``);
  return number;
}

async function gc(ctx: CommandContext, argv: readonly string[]): Promise<number> {
  const parsed = parseArgsOrHelp(
    { stdout: ctx.stdout, argv },
    {
      'max-age-days': { type: 'string' },
      'max-size-bytes': { type: 'string' },
      'dry-run': { type: 'boolean' },
      json: { type: 'boolean' },
    },
    USAGE,
    false,
  );
  if (parsed === undefined) return EXIT.ok;
  const { values } = parsed;
  const maxAgeDays = nonNegative('max-age-days', values['max-age-days']);
  const maxSizeBytes = nonNegative('max-size-bytes', values['max-size-bytes']);
  const report = await storeFor(ctx).gc({
    ...(maxAgeDays === undefined ? {} : { maxAgeDays }),
    ...(maxSizeBytes === undefined ? {} : { maxSizeBytes }),
    dryRun: values['dry-run'] === true,
  });
  if (values.json === true) {
    writeJson(ctx.stdout, report);
    return EXIT.ok;
  }
  const verb = report.dryRun ? 'would remove' : 'removed';
  for (const removal of report.removed)
    writeLine(
      ctx.stdout,
      `${verb} ${removal.kind} ${removal.path} (${removal.reason}, ${formatSize(removal.sizeInBytes)})`,
    );
  writeLine(
    ctx.stdout,
    `${verb} ${report.removed.length} item(s), ${formatSize(report.freedBytes)}; kept ${report.keptEntries} entries, ${formatSize(report.keptBytes)}`,
  );
  return EXIT.ok;
}

export interface WhyReport {
  readonly key: string;
  readonly cached: boolean;
  readonly nearest: { readonly key: string; readonly createdAt: string } | null;
  readonly differences: readonly {
    readonly input: string;
    readonly cached: string | null;
    readonly requested: string | null;
  }[];
  readonly lines: readonly string[];
}

async function explain(store: CacheStore, key: string, details: CacheKeyDetails): Promise<WhyReport> {
  const cached = (await store.lookup(key)).hit;
  const explanation = await store.explainMiss(details, { excludeKey: key });
  return {
    key,
    cached,
    nearest: explanation.nearest,
    differences: explanation.differences,
    lines: explanation.lines,
  };
}

function printWhy(ctx: CommandContext, report: WhyReport): void {
  writeLine(ctx.stdout, `key ${report.key}`);
  const state = report.cached ? 'cached' : 'not cached';
  if (report.nearest === null) {
    writeLine(ctx.stdout, `${state}; no other entry to compare with`);
    return;
  }
  const count = report.differences.length;
  writeLine(
    ctx.stdout,
    `${state}; nearest ${report.cached ? 'other ' : ''}entry ${report.nearest.key.slice(0, 12)} (created ${report.nearest.createdAt}) differs in ${count} input${count === 1 ? '' : 's'}:`,
  );
  for (const line of report.lines) writeLine(ctx.stdout, `  ${line}`);
}

async function why(
  ctx: CommandContext,
  argv: readonly string[],
  stages: Partial<PipelineStages>,
): Promise<number> {
  const store = storeFor(ctx);
  const first = argv[0];
  if (first !== undefined && !first.startsWith('-')) {
    const parsed = parseArgsOrHelp(
      { stdout: ctx.stdout, argv: argv.slice(1) },
      { json: { type: 'boolean' } },
      USAGE,
      false,
    );
    if (parsed === undefined) return EXIT.ok;
    const { values } = parsed;
    const entry = await store.findByPrefix(first);
    const known = entry?.entry ?? null;
    const recorded =
      known === null ? await store.requestedDetails(first) : { key: known.key, details: known.details };
    if (recorded === null) {
      // Exit 2 like a malformed key (E_CACHE_BAD_KEY): both are a wrong <key> argument.
      throw new CacheError(
        'E_CACHE_KEY_NOT_FOUND',
        `no cache entry or recorded request has a key starting with ${first.toLowerCase()}; \`ovmf-build cache ls\` lists the keys`,
        { prefix: first },
      );
    }
    const report = await explain(store, recorded.key, recorded.details);
    if (values.json === true) writeJson(ctx.stdout, report);
    else printWhy(ctx, report);
    return EXIT.ok;
  }
  const parsed = await parseJobOptionsOrHelp({ stdout: ctx.stdout, argv, cwd: ctx.cwd }, USAGE);
  if (parsed === undefined) return EXIT.ok;
  const log = openJobLog(ctx.env);
  try {
    // The same stages as the main command, up to the key: the key it would look up.
    const { key } = await runPipeline(await jobRequest(parsed.options, ctx, log.jobId), {
      until: 'key',
      signal: ctx.signal,
      logger: log.logger,
      stages,
    });
    const report = await explain(store, key.value, key.details);
    if (parsed.json) writeJson(ctx.stdout, report);
    else printWhy(ctx, report);
    return EXIT.ok;
  } finally {
    log.close();
  }
}

export async function runCache(ctx: CommandContext, stages: Partial<PipelineStages> = {}): Promise<number> {
  const [sub, ...rest] = ctx.argv;
  switch (sub) {
    case 'ls':
      return list(ctx, rest);
    case 'gc':
      return gc(ctx, rest);
    case 'why':
      return why(ctx, rest, stages);
    case '--help':
    case '-h':
    case 'help':
      writeLine(ctx.stdout, USAGE);
      return EXIT.ok;
    default:
      throw new UsageError(
        `cache needs ls, gc or why, got \`${sub ?? ''}\`; run \`ovmf-build cache --help\``,
      );
  }
}

export const command: Command = {
  name: 'cache',
  summary: 'show, clean or explain the build cache',
  usage: USAGE,
  run: (ctx) => runCache(ctx),
};
