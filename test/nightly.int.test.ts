// Issue 11, "Done means", with real parts: `ovmf-build nightly` over every shipped recipe (the
// corpus matrix, Haswell to Alder Lake-N, one recipe extracting GOP and VBT from a vendor
// image), inputs from a local mirror of the corpus, each through the real pipeline (warm or
// variant EDK2 build in a container, structural and QEMU checks, cache, signed publish), run as
// a real process that is killed with SIGKILL mid-matrix. The rerun finishes the night without
// rebuilding what was published, with no partial artifact and over the variant template the
// killed run left on disk; the run after it reports only cache hits. The runner's queue, locks and retries: test/nightly-*.test.ts (stand-in job).
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { cp, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { procStatFields } from '../src/core/process-alive.js';
import { loadRecipeDir, type Recipe } from '../src/jobs/recipe.js';
import type { JobState } from '../src/nightly/state.js';
import type { NightlySummary } from '../src/nightly/types.js';
import { sha256 } from '../src/core/digest.js';
import type { MirrorIndex } from '../src/mirror/index-types.js';
import { verifyArtifact } from '../src/publish/index.js';
import { startMirrorServer } from '../src/serve/server.js';
import { runCli } from './cli-harness.js';
import { loadManifest, REPO_ROOT } from './corpus.js';
import { isolatedCliEnv, warmWorkspace } from './harness.js';
import { isRunning } from './proc-state.js';
import { serveCorpusMirror, SHIPPED_RECIPES, type CorpusMirror } from './nightly-mirror.js';

const CLI = path.join(REPO_ROOT, 'test', 'cli-entry.ts');
/** Recipes published before the kill: enough to prove they are not rebuilt, few enough to leave work. */
const PUBLISHED_BEFORE_KILL = 2;

let dir: string;
let env: NodeJS.ProcessEnv;
let mirror: CorpusMirror;
let recipes: Recipe[];

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'ovmf-nightly-int-'));
  await warmWorkspace();
  mirror = await serveCorpusMirror();
  // A fresh build cache, but the user's unpacked EDK2 sources (read-only input keyed by digest).
  const isolated = await isolatedCliEnv(dir);
  // The product's default: variant templates kept on disk, so the rerun finds the killed run's.
  delete isolated['OVMF_BUILD_VARIANT_TEMPLATES'];
  env = isolated;
  await cp(path.join(REPO_ROOT, 'recipes'), path.join(dir, 'recipes'), { recursive: true });
  recipes = (await loadRecipeDir(path.join(dir, 'recipes'), { baseUrl: mirror.baseUrl })).map(
    (r) => r.recipe,
  );
});

afterAll(async () => {
  await mirror[Symbol.asyncDispose]();
  await rm(dir, { recursive: true, force: true });
});

interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * `ovmf-build nightly` as its own process (so it can be killed), concurrency 2. It runs in the
 * repository (where `--import tsx` resolves) with the test's recipes, store and user dirs.
 */
function startNightly(): {
  readonly pid: number;
  readonly exited: Promise<Exit>;
  readonly ended: Exit | null;
} {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      CLI,
      'nightly',
      path.join(dir, 'recipes'),
      '--base-url',
      mirror.baseUrl,
      '--out',
      path.join(dir, 'artifacts'),
      '--concurrency',
      '2',
      '--json',
    ],
    { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
  child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
  let done: Exit | null = null;
  const exited = new Promise<Exit>((resolve) =>
    child.on('close', (code, signal) => {
      done = {
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      };
      resolve(done);
    }),
  );
  return {
    pid: child.pid as number,
    exited,
    get ended() {
      return done;
    },
  };
}

/** The QEMU processes `pid` started (its children whose command is QEMU). */
function qemuChildrenOf(pid: number): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .filter((child) => {
      try {
        const stat = readFileSync(`/proc/${child}/stat`, 'utf8');
        return procStatFields(stat)[1] === String(pid) && stat.includes('(qemu-system-');
      } catch {
        return false;
      }
    });
}

const stateDir = (): string => path.join(dir, 'state', 'ovmf-build', 'nightly');

async function jobStates(): Promise<JobState[]> {
  const names = await readdir(path.join(stateDir(), 'jobs')).catch(() => [] as string[]);
  const states = await Promise.all(
    names
      .filter((name) => name.endsWith('.json'))
      .map((name) =>
        readFile(path.join(stateDir(), 'jobs', name), 'utf8').then(
          (text) => JSON.parse(text) as JobState,
          () => null,
        ),
      ),
  );
  return states.filter((s): s is JobState => s !== null);
}

/** Every entry under artifacts/<name>/, hidden temp dirs included: the store as a user sees it. */
async function storeListing(): Promise<Record<string, string[]>> {
  const root = path.join(dir, 'artifacts');
  const names = (await readdir(root).catch(() => [] as string[])).filter((n) => !n.startsWith('.'));
  const listing: Record<string, string[]> = {};
  for (const name of names.sort()) listing[name] = (await readdir(path.join(root, name))).sort();
  return listing;
}

/** The GOP (PE image) the corpus manifest says a vendor image carries. */
function groundTruthGop(sha256: string): string {
  const entry = loadManifest().entries.find((e) => (e as { sha256?: string }).sha256 === sha256) as
    { ground_truth?: { gop?: { pe_sha256: string }[] } } | undefined;
  return entry?.ground_truth?.gop?.[0]?.pe_sha256 ?? 'not in the corpus manifest';
}

function parseSummary(run: Exit): NightlySummary {
  expect({ code: run.code, signal: run.signal, stderr: run.stderr }).toEqual({
    code: 0,
    signal: null,
    stderr: '',
  });
  return JSON.parse(run.stdout) as NightlySummary;
}

describe('ovmf-build nightly over the corpus matrix (real builds)', () => {
  let publishedAtKill: JobState[] = [];
  let listingAtKill: Record<string, string[]> = {};
  let finished: NightlySummary;

  it('has a recipe per corpus generation, one of them extracting from a vendor image', () => {
    expect(recipes.map((r) => r.name)).toEqual(SHIPPED_RECIPES);
    expect(recipes.filter((r) => 'firmware' in r).map((r) => r.name)).toEqual(['geminilake']);
  });

  it('kill -9 mid-matrix leaves published jobs published and no partial artifact', async () => {
    const run = startNightly();
    const deadline = Date.now() + 20 * 60_000;
    for (;;) {
      const states = await jobStates();
      const succeeded = states.filter((s) => s.status === 'succeeded');
      if (succeeded.length >= PUBLISHED_BEFORE_KILL && states.some((s) => s.status === 'running')) break;
      if (Date.now() > deadline) throw new Error(`no kill point within 20 min: ${JSON.stringify(states)}`);
      // A run that ended before the kill point fails here with its output, not at the deadline.
      if (run.ended !== null) expect(run.ended).toEqual({ code: 'still running at the kill point' });
      await sleep(200);
    }
    const qemus = qemuChildrenOf(run.pid);
    process.kill(run.pid, 'SIGKILL');
    const exit = await run.exited;
    expect([exit.code, exit.signal]).toEqual([null, 'SIGKILL']);
    // The QEMUs the killed run had started die with it (setpriv --pdeathsig, verify/qemu-process.ts).
    const gone = Date.now() + 10_000;
    while (qemus.some(isRunning) && Date.now() < gone) await sleep(100);
    expect(qemus.filter(isRunning)).toEqual([]);
    const states = await jobStates();
    publishedAtKill = states.filter((s) => s.status === 'succeeded');
    expect(publishedAtKill.length).toBeGreaterThanOrEqual(PUBLISHED_BEFORE_KILL);
    // The killed run left jobs running; they are the next run's to take over.
    expect(states.filter((s) => s.status === 'running').length).toBeGreaterThan(0);
    expect(publishedAtKill.length).toBeLessThan(recipes.length);
    listingAtKill = await storeListing();
    // What is visible is complete: each published version verifies (signature and digests).
    for (const job of publishedAtKill) {
      const versionDir = path.join(dir, 'artifacts', job.recipe, job.version as string);
      await verifyArtifact(versionDir);
    }
  });

  it('the rerun finishes the night: builds what was left, rebuilds nothing published', async () => {
    finished = parseSummary(await startNightly().exited);
    expect(finished.counts).toEqual({
      recipes: recipes.length,
      succeeded: recipes.length,
      failed: 0,
      cacheHits: finished.counts.cacheHits,
      built: recipes.length - finished.counts.cacheHits,
    });
    expect(finished.resumedRuns).toHaveLength(1);
    const byRecipe = new Map(finished.recipes.map((r) => [r.recipe, r]));
    for (const job of publishedAtKill) {
      const report = byRecipe.get(job.recipe);
      expect([job.recipe, report?.cache, report?.jobId, report?.artifactVersion, report?.buildPath]).toEqual([
        job.recipe,
        'hit',
        job.jobId,
        job.version,
        null,
      ]);
      // Not republished: the version directories are those of the killed run.
      expect([job.recipe, (await storeListing())[job.recipe]]).toEqual([
        job.recipe,
        listingAtKill[job.recipe],
      ]);
    }
    expect(finished.recipes.filter((r) => r.recovered).length).toBeGreaterThan(0);
    const rerunJobs = new Set<unknown>();
    const made: { recipe: string; from: unknown; of: unknown }[] = [];
    for (const r of finished.recipes.filter((report) => report.cache === 'miss')) {
      // The facts' `buildPath` (H1's variant path), else their mode: never a clean build here.
      expect([r.recipe, typeof r.buildPath, r.buildPath === 'clean']).toEqual([r.recipe, 'string', false]);
      const manifest = JSON.parse(
        await readFile(path.join(r.artifactDir as string, 'manifest.json'), 'utf8'),
      ) as {
        build?: { jobId?: unknown; facts?: { variantFrom?: unknown; variantOf?: unknown } };
      };
      rerunJobs.add(manifest.build?.jobId);
      made.push({
        recipe: r.recipe,
        from: manifest.build?.facts?.variantFrom,
        of: manifest.build?.facts?.variantOf,
      });
    }
    // Every recipe has the same flags, so the night has one workspace key. The killed run left its
    // template on disk (edk2/template-store.ts) once its first variant's outputs were out: the
    // rerun makes every variant over it, in the process, with no container, and none over a
    // template of its own jobs.
    expect(made.length).toBeGreaterThan(0);
    for (const variant of made) {
      expect([variant.recipe, variant.from, typeof variant.of, rerunJobs.has(variant.of)]).toEqual([
        variant.recipe,
        'template',
        'string',
        false,
      ]);
    }
    expect(new Set(made.map((variant) => variant.of)).size).toBe(1);
  });

  it('publishes one verified artifact per recipe, from the pinned inputs, and nothing partial', async () => {
    const listing = await storeListing();
    expect(Object.keys(listing)).toEqual(recipes.map((r) => r.name).sort());
    for (const r of finished.recipes) {
      // One version and `latest`: no temp dir left by the killed run, no second version.
      expect([r.recipe, listing[r.recipe]]).toEqual([r.recipe, [r.artifactVersion, 'latest'].sort()]);
      const check = await verifyArtifact(r.artifactDir as string);
      const recipe = recipes.find((x) => x.name === r.recipe) as Recipe;
      const inputs = check.manifest['inputs'] as Record<
        'gop' | 'vbt' | 'firmware',
        { sha256: string; origin: { kind: string; url?: string } } | undefined
      >;
      if ('firmware' in recipe) {
        expect([r.recipe, inputs.firmware, inputs.gop?.sha256, inputs.gop?.origin.kind]).toEqual([
          r.recipe,
          {
            sha256: recipe.firmware.sha256,
            origin: { kind: 'url', url: 'url' in recipe.firmware ? recipe.firmware.url : null },
          },
          groundTruthGop(recipe.firmware.sha256 as string),
          'firmware',
        ]);
      } else {
        const pinned = (input: { sha256: string; origin: unknown } | undefined) => ({
          sha256: input?.sha256,
          origin: input?.origin,
        });
        expect([r.recipe, pinned(inputs.gop), pinned(inputs.vbt)]).toEqual([
          r.recipe,
          {
            sha256: recipe.gop.sha256,
            origin: { kind: 'url', url: 'url' in recipe.gop ? recipe.gop.url : null },
          },
          {
            sha256: recipe.vbt.sha256,
            origin: { kind: 'url', url: 'url' in recipe.vbt ? recipe.vbt.url : null },
          },
        ]);
      }
    }
    expect(await readdir(path.join(stateDir(), 'locks'))).toEqual([]);
  });

  it("the night becomes a mirror: mirror index lists each recipe's version and digests, and pull gives the same bytes", async () => {
    // What the README has a night's systemd unit run after it (ExecStartPost=).
    const tree = path.join(dir, 'mirror');
    const indexed = await runCli(
      ['mirror', 'index', path.join(dir, 'artifacts'), '--out', tree, '--json'],
      REPO_ROOT,
      env,
    );
    expect([indexed.code, indexed.stderr]).toEqual([0, '']);
    const signed = JSON.parse(await readFile(path.join(tree, 'index.signed.json'), 'utf8')) as {
      payload: MirrorIndex;
    };
    const { artifacts } = signed.payload;
    expect(artifacts.map((a) => a.name)).toEqual(recipes.map((r) => r.name).sort());
    const server = await startMirrorServer({ root: tree, port: 0 });
    try {
      for (const r of finished.recipes) {
        const artifact = artifacts.find((a) => a.name === r.recipe);
        expect([r.recipe, artifact?.latest]).toEqual([r.recipe, r.artifactVersion]);
        const listed = artifact?.versions.find((v) => v.version === r.artifactVersion)?.files ?? [];
        const published = (name: string): Promise<Buffer> =>
          readFile(path.join(r.artifactDir as string, name));
        for (const file of listed)
          expect([r.recipe, file.name, sha256(await published(file.name))]).toEqual([
            r.recipe,
            file.name,
            file.sha256,
          ]);
        // The user's own key signed both the artifacts and the index: pull trusts it without --trust-key.
        const out = path.join(dir, 'pulled');
        const pulled = await runCli(
          ['pull', r.recipe, '--mirror', server.url, '--out', out, '--json'],
          REPO_ROOT,
          env,
        );
        expect([r.recipe, pulled.code, pulled.stderr]).toEqual([r.recipe, 0, '']);
        const result = JSON.parse(pulled.stdout) as {
          version: string;
          files: { code: string; vars: string };
        };
        expect([r.recipe, result.version]).toEqual([r.recipe, r.artifactVersion]);
        expect(sha256(await readFile(result.files.code))).toBe(sha256(await published('OVMF_CODE.fd')));
        expect(sha256(await readFile(result.files.vars))).toBe(sha256(await published('OVMF_VARS.fd')));
      }
    } finally {
      await server.close();
    }
  });

  it('a rerun of the finished night only reports cache hits', async () => {
    const again = parseSummary(await startNightly().exited);
    expect(again.counts).toEqual({
      recipes: recipes.length,
      succeeded: recipes.length,
      failed: 0,
      cacheHits: recipes.length,
      built: 0,
    });
    expect(again.recipes.map((r) => [r.recipe, r.jobId, r.artifactDir, r.attempts, r.buildPath])).toEqual(
      finished.recipes.map((r) => [r.recipe, r.jobId, r.artifactDir, 1, null]),
    );
    const markdown = await readFile(path.join(stateDir(), 'runs', again.runId, 'summary.md'), 'utf8');
    for (const r of again.recipes) expect(markdown).toContain(`| ${r.recipe} | succeeded | 1 | `);
  });
});
