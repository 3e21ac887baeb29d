// `ovmf-build nightly` on the command line: the systemd units it prints pass
// `systemd-analyze verify` (and a bad calendar in them does not, so the check can fail), and
// bad arguments are usage errors (exit 2) before anything runs.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadRecipeDir, recipeInputs } from '../src/jobs/recipe.js';
import { runCli } from './cli-harness.js';
import { REPO_ROOT } from './corpus.js';
import { SHIPPED_RECIPES } from './nightly-mirror.js';

const run = promisify(execFile);

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'ovmf-nightly-cli-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Units {
  serviceName: string;
  timerName: string;
  service: string;
  timer: string;
}

async function verifyUnits(units: Units): Promise<{ code: number; stderr: string }> {
  await writeFile(path.join(dir, units.serviceName), units.service);
  await writeFile(path.join(dir, units.timerName), units.timer);
  try {
    const { stderr } = await run('systemd-analyze', [
      'verify',
      '--man=no',
      path.join(dir, units.serviceName),
      path.join(dir, units.timerName),
    ]);
    return { code: 0, stderr };
  } catch (error) {
    const failed = error as { code: number; stderr: string };
    return { code: failed.code, stderr: failed.stderr };
  }
}

describe('ovmf-build nightly --print-systemd', () => {
  it('prints a oneshot service and a persistent timer that systemd-analyze verify accepts', async () => {
    const result = await runCli(
      [
        'nightly',
        '--print-systemd',
        '--json',
        'recipes',
        '--base-url',
        'http://127.0.0.1:8080/mirror',
        '--out',
        '/srv/ovmf 100%',
      ],
      REPO_ROOT,
    );
    expect(result.code).toBe(0);
    const units = JSON.parse(result.stdout) as Units;
    expect([units.serviceName, units.timerName]).toEqual([
      'ovmf-build-nightly.service',
      'ovmf-build-nightly.timer',
    ]);
    const execStart = units.service.split('\n').find((line) => line.startsWith('ExecStart='));
    expect(execStart).toBe(
      `ExecStart=${process.execPath} ${path.resolve(process.argv[1] ?? '')} nightly ${path.join(REPO_ROOT, 'recipes')} ` +
        '--base-url http://127.0.0.1:8080/mirror --out "/srv/ovmf 100%%"',
    );
    expect(units.service).toContain('\nType=oneshot\n');
    expect(units.timer.split('\n').filter((l) => /^(OnCalendar|Persistent|Unit)=/.test(l))).toEqual([
      'OnCalendar=*-*-* 02:30:00',
      'Persistent=true',
      'Unit=ovmf-build-nightly.service',
    ]);
    expect(await verifyUnits(units)).toEqual({ code: 0, stderr: '' });
  });

  it('a calendar systemd cannot parse fails the same verification', async () => {
    const result = await runCli(
      ['nightly', '--print-systemd', '--json', '--on-calendar', '*-*-* 99:30:00'],
      REPO_ROOT,
    );
    const verdict = await verifyUnits(JSON.parse(result.stdout) as Units);
    expect(verdict.code).toBe(1);
    expect(verdict.stderr).toContain('Failed to parse calendar specification');
  });
});

describe('ovmf-build nightly arguments', () => {
  it('--concurrency must be a whole number from 1 to 64 (exit 2)', async () => {
    for (const value of ['0', '1.5', 'x', '65']) {
      const result = await runCli(['nightly', '--concurrency', value, 'recipes'], REPO_ROOT);
      expect([value, result.code, result.stderr]).toEqual([
        value,
        2,
        `ovmf-build: --concurrency must be a whole number from 1 to 64, got \`${value}\`; run \`ovmf-build nightly --help\` [E_USAGE]\n`,
      ]);
    }
  });

  it('a directory without recipes, or two recipes with one name, is a usage error (exit 2)', async () => {
    const empty = path.join(dir, 'empty');
    await mkdir(empty);
    const none = await runCli(['nightly', empty], REPO_ROOT);
    expect([none.code, none.stderr]).toEqual([
      2,
      `ovmf-build: no recipes (*.json) in ${empty}; run \`ovmf-build nightly --help\` [E_USAGE]\n`,
    ]);
    const twice = path.join(dir, 'twice');
    await mkdir(twice);
    const recipe = (await readRecipe()).replace(/"name": "cometlake"/, '"name": "same"');
    await writeFile(path.join(twice, 'a.json'), recipe);
    await writeFile(path.join(twice, 'b.json'), recipe);
    const dup = await runCli(['nightly', twice], REPO_ROOT);
    expect([dup.code, dup.stderr]).toEqual([
      2,
      `ovmf-build: recipes ${path.join(twice, 'a.json')} and ${path.join(twice, 'b.json')} are both named same; run \`ovmf-build nightly --help\` [E_USAGE]\n`,
    ]);
  });

  it('loads every shipped recipe, URLs moved to the mirror', async () => {
    const recipes = await loadRecipeDir(path.join(REPO_ROOT, 'recipes'), {
      baseUrl: 'http://127.0.0.1:1/m/',
    });
    expect(recipes.map((r) => r.recipe.name)).toEqual(SHIPPED_RECIPES);
    for (const { recipe } of recipes) {
      for (const input of Object.values(recipeInputs(recipe))) {
        expect([recipe.name, 'url' in input && input.url.startsWith('http://127.0.0.1:1/m/')]).toEqual([
          recipe.name,
          true,
        ]);
      }
    }
  });
});

async function readRecipe(): Promise<string> {
  const { readFile } = await import('node:fs/promises');
  return readFile(path.join(REPO_ROOT, 'recipes', 'cometlake.json'), 'utf8');
}
