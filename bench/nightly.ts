// Benchmark (issue 11, item 3): in one run, (a) one cold build of one recipe and (b) a cold
// matrix of six recipes, both through `ovmf-build nightly` as a user runs it (validate, build,
// structural and QEMU boot checks, store, publish), with recipe inputs served from a local
// mirror of the corpus (`--base-url`). Prints both wall times and their ratio; goal: the matrix
// at most 1.15x the single build. The matrix pays one clean EDK2 build; the other five recipes
// differ only in GOP and VBT, so they take the variant path (GenFds only, src/edk2/build-path.ts).
// Cold means: an empty cache, state and artifact directory of the bench's own (nothing of the
// user's is read or written, except the unpacked EDK2 source, a read-only input keyed by its
// digest), and no warm workspace or tools image: each run gets an image prefix of its own
// (OVMF_BUILD_IMAGE_PREFIX), removed at the end. The builder image is shared; it is made before
// the timed runs if missing, and the output says which.
// Run: npm run bench:nightly   (BENCH_CONCURRENCY=N passes --concurrency N to both runs; else the
// nightly's default, DEFAULT_NIGHTLY_CONCURRENCY; BENCH_KEEP_LOGS=DIR copies both runs' nightly
// logs, with every stage's timings, into DIR before the bench's directories are removed). It also
// prints each run's time before and after its clean build's compile (the build container's last
// line: the workspace commit after it overlaps ROM-mode checks run ahead), and the ratio at equal clean
// builds: the clean builds alone differ by tens of seconds between runs, more than the matrix adds.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { DEFAULT_NIGHTLY_CONCURRENCY } from '../src/cli/commands/nightly.js';
import { connectEngine } from '../src/container/index.js';
import { DEFAULT_BUILDER_CONTEXT, DEFAULT_BUILDER_REPOSITORY } from '../src/edk2/builder-context.js';
import { REPO_ROOT } from '../test/corpus.js';
import { serveCorpusMirror } from '../test/nightly-mirror.js';
import { linkSharedEdk2Sources } from './shared-sources.js';

const BIN = path.join(REPO_ROOT, 'bin', 'ovmf-build.js');
const RECIPES = path.join(REPO_ROOT, 'recipes');
const MATRIX_SIZE = 6;
const RAW_GITHUB = 'https://raw.githubusercontent.com';
const concurrency = process.env['BENCH_CONCURRENCY'];
const keepLogsIn = process.env['BENCH_KEEP_LOGS'];
const logger = pino({ level: process.env['OVMF_BUILD_LOG_LEVEL'] ?? 'warn' }, pino.destination(2));
const load = (): string =>
  loadavg()
    .map((value) => value.toFixed(2))
    .join(' ');

const root = await mkdtemp(path.join(tmpdir(), 'ovmf-bench-nightly-'));
await using mirror = await serveCorpusMirror();
const engine = await connectEngine({ env: process.env, logger });
const prefixes: string[] = [];

/** Recipes whose every URL the corpus mirror serves (GOP and VBT recipes, or a vendor image). */
async function servedRecipes(): Promise<string[]> {
  const served: string[] = [];
  for (const name of (await readdir(RECIPES)).filter((file) => file.endsWith('.json')).sort()) {
    const text = await readFile(path.join(RECIPES, name), 'utf8');
    const urls = [...text.matchAll(/"url"\s*:\s*"([^"]+)"/g)].map((match) => match[1] as string);
    let ok = urls.length > 0;
    for (const url of urls) {
      if (!url.startsWith(`${RAW_GITHUB}/`)) ok = false;
      else if (ok) {
        const response = await fetch(`${mirror.baseUrl}${url.slice(RAW_GITHUB.length)}`, { method: 'HEAD' });
        ok = response.ok;
      }
    }
    if (ok) served.push(name);
  }
  return served;
}

/** Where a run's nightly logs are, in its isolated directory. */
const logsDirOf = (dir: string): string => path.join(dir, 'state', 'ovmf-build', 'logs');

/** A fresh cache/config/state of its own, sharing only the unpacked EDK2 sources. */
async function isolated(name: string): Promise<{ dir: string; env: NodeJS.ProcessEnv }> {
  const dir = path.join(root, name);
  await linkSharedEdk2Sources(path.join(dir, 'cache'));
  const prefix = `localhost/ovmf-build-bench/${name}-${randomBytes(4).toString('hex')}`;
  prefixes.push(prefix);
  return {
    dir,
    env: {
      ...process.env,
      XDG_CACHE_HOME: path.join(dir, 'cache'),
      XDG_CONFIG_HOME: path.join(dir, 'config'),
      XDG_STATE_HOME: path.join(dir, 'state'),
      OVMF_BUILD_IMAGE_PREFIX: prefix,
    },
  };
}

interface NightResult {
  readonly wallMs: number;
  /**
   * From the clean job's `build: done` (the build container's last line: compile done; the
   * workspace commit comes after it, beside ROM-mode checks run ahead) to the run's last log line.
   */
  readonly afterCleanMs: number | null;
  readonly recipes: readonly {
    recipe: string;
    status: string;
    durationMs?: number;
    cache?: string;
    buildPath?: string | null;
  }[];
}

/** `ovmf-build nightly` on a directory of the given recipes, timed as a whole process. */
async function night(name: string, recipes: readonly string[]): Promise<NightResult> {
  const { dir, env } = await isolated(name);
  const recipeDir = path.join(dir, 'recipes');
  await mkdir(recipeDir);
  for (const recipe of recipes) await copyFile(path.join(RECIPES, recipe), path.join(recipeDir, recipe));
  const args = [
    BIN,
    'nightly',
    recipeDir,
    '--base-url',
    mirror.baseUrl,
    '--out',
    path.join(dir, 'artifacts'),
  ];
  if (concurrency !== undefined) args.push('--concurrency', concurrency);
  args.push('--json');
  const started = performance.now();
  const { code, stdout } = await new Promise<{ code: number | null; stdout: string }>((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: dir, env, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('error', reject);
    child.on('close', (exit) => resolve({ code: exit, stdout: out }));
  });
  const wallMs = performance.now() - started;
  if (code !== 0) throw new Error(`nightly (${name}) exited with ${String(code)}: ${stdout.slice(0, 2000)}`);
  const summary = JSON.parse(stdout) as { recipes: NightResult['recipes'] };
  return { wallMs, recipes: summary.recipes, afterCleanMs: await afterCleanBuild(dir) };
}

/**
 * The part of a run after its clean build (from the run's nightly log): what the matrix adds to
 * one clean build, apart from the clean build's own run-to-run noise.
 */
async function afterCleanBuild(dir: string): Promise<number | null> {
  const logs = logsDirOf(dir);
  const lines: { time: number; msg?: string; recipe?: string }[] = [];
  for (const file of await readdir(logs).catch(() => [])) {
    for (const line of (await readFile(path.join(logs, file), 'utf8')).split('\n')) {
      if (line.startsWith('{'))
        lines.push(JSON.parse(line) as { time: number; msg?: string; recipe?: string });
    }
  }
  const clean = lines.find((line) => line.msg === 'build: clean build')?.recipe;
  const done = lines.find((line) => line.msg === 'build: done' && line.recipe === clean);
  if (clean === undefined || done === undefined) return null;
  return Math.max(...lines.map((line) => line.time)) - done.time;
}

/** Copies each run's nightly logs (state/ovmf-build/logs) to `<dir>/<run>-<log name>`. */
async function keepLogs(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const name of await readdir(root).catch(() => [])) {
    const logs = logsDirOf(path.join(root, name));
    for (const file of await readdir(logs).catch(() => [])) {
      await copyFile(path.join(logs, file), path.join(dir, `${name}-${file}`));
    }
  }
  console.log(`nightly logs kept in ${dir}`);
}

try {
  const served = await servedRecipes();
  if (served.length < MATRIX_SIZE) {
    throw new Error(`the corpus mirror serves only ${served.length} recipes (${served.join(', ')})`);
  }
  const matrix = served.slice(0, MATRIX_SIZE);
  const builder = await engine.ensureBuilderImage({
    contextDir: DEFAULT_BUILDER_CONTEXT,
    repository: DEFAULT_BUILDER_REPOSITORY,
    logger,
  });
  console.log(
    `builder image ${builder.ref}: ${builder.built ? 'built now, before the timed runs' : 'existed'} (shared by both runs)`,
  );
  console.log(`load average before: ${load()}`);
  const single = await night('single', [matrix[0] as string]);
  console.log(`load average between: ${load()}`);
  const many = await night('matrix', matrix);
  console.log(`load average after: ${load()}`);
  for (const [label, result] of [
    ['single', single],
    ['matrix', many],
  ] as const) {
    for (const r of result.recipes) {
      console.log(
        `  ${label.padEnd(6)} ${r.recipe.padEnd(14)} ${r.status.padEnd(9)} ${(r.buildPath ?? '-').padEnd(7)} ${((r.durationMs ?? 0) / 1000).toFixed(1)} s`,
      );
    }
  }
  const ratio = many.wallMs / single.wallMs;
  console.log(`cold single build (${matrix[0]}): ${(single.wallMs / 1000).toFixed(1)} s`);
  console.log(
    `cold ${MATRIX_SIZE}-recipe matrix (${matrix.join(', ')}): ${(many.wallMs / 1000).toFixed(1)} s`,
  );
  console.log(
    `ratio ${ratio.toFixed(3)} (goal <= 1.15: ${ratio <= 1.15 ? 'met' : 'missed'}), concurrency ${concurrency ?? `${DEFAULT_NIGHTLY_CONCURRENCY} (default)`}`,
  );
  if (single.afterCleanMs !== null && many.afterCleanMs !== null) {
    const s = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
    for (const [label, result, after] of [
      ['single', single, 'workspace commit, verify, store, publish'],
      ['matrix', many, `workspace commit, its verify and the ${MATRIX_SIZE - 1} variants`],
    ] as const) {
      const afterMs = result.afterCleanMs as number;
      console.log(
        `  ${label}: ${s(result.wallMs - afterMs)} to the end of its clean build's compile (tools image, compile), ${s(afterMs)} after (${after})`,
      );
    }
    // The clean builds alone differ by tens of seconds from run to run (the compile's own
    // noise); the matrix's own cost is what it runs after its clean build, beyond the single's.
    const addedMs = many.afterCleanMs - single.afterCleanMs;
    const equal = (single.wallMs + addedMs) / single.wallMs;
    console.log(
      `  at equal clean builds (the two differ by ${s(Math.abs(many.wallMs - many.afterCleanMs - (single.wallMs - single.afterCleanMs)))} in this run): single + ${s(addedMs)}, ratio ${equal.toFixed(3)} (the goal is on the ratio above)`,
    );
  }
} finally {
  // The bench's own workspaces and tools images, then its directories; nothing else.
  const pruned = await engine.pruneImages({
    repositories: prefixes.flatMap((prefix) => [`${prefix}/edk2-workspace`, `${prefix}/edk2-tools`]),
  });
  if (pruned.inUse.length > 0) console.log(`kept images still in use: ${pruned.inUse.join(' ')}`);
  await engine[Symbol.asyncDispose]();
  if (keepLogsIn !== undefined) await keepLogs(keepLogsIn);
  await rm(root, { recursive: true, force: true });
}
