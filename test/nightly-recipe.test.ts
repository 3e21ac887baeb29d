// Recipes that pin a vendor firmware image (issue 12 item 4): validation names the recipe and
// the field of every mistake (E_USAGE, exit 2), a mirror base URL moves the firmware URL too,
// and the main command and the nightly extract GOP and VBT from the pinned image with the code
// `--firmware` uses (real pipeline up to publish, stand-in build): same GOP, VBT and cache key
// as `--firmware` on the same bytes.
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runMain } from '../src/cli/commands/ovmf.js';
import { runNightlyCommand } from '../src/cli/commands/nightly.js';
import { exitCodeFor } from '../src/cli/exit-codes.js';
import { isOvmfBuildError } from '../src/core/errors.js';
import { loadRecipe, recipeInputs } from '../src/jobs/recipe.js';
import type { NightlySummary } from '../src/nightly/types.js';
import { verifyArtifact } from '../src/publish/index.js';
import { isolatedEnv, StandInBuild } from './cache-stand-in.js';
import { captureContext } from './cli-harness.js';
import { CORPUS_DIR, REPO_ROOT } from './corpus.js';
import { serveCorpusMirror, type CorpusMirror } from './nightly-mirror.js';

const GK41_IMAGE = 'images/geminilake-ovmf-with-gop-vbt-gk41.fd';
const GK41_SHA256 = 'fdfd2fd2ab5af6901fe34a18d182fcca55acfc734132d31951081394cbf697ec';
/** The GOP's PE image in that image (corpus manifest ground truth, UEFIExtract). */
const GK41_GOP_SHA256 = 'c731f7ab56c6378a6fdff3339f4056fd69540d247e70b4ed8ff621dfa34c3006';
const SHA = 'a'.repeat(64);

let dir: string;
let mirror: CorpusMirror;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'ovmf-nightly-recipe-'));
  mirror = await serveCorpusMirror();
});
afterAll(async () => {
  await mirror[Symbol.asyncDispose]();
  await rm(dir, { recursive: true, force: true });
});

async function refusal(
  value: unknown,
): Promise<{ code: string; exit: number; message: string; details: unknown }> {
  const file = path.join(dir, 'bad.json');
  await writeFile(file, `${JSON.stringify(value)}\n`);
  try {
    await loadRecipe(file);
  } catch (error) {
    if (!isOvmfBuildError(error)) throw error;
    return {
      code: error.code,
      exit: exitCodeFor(error),
      message: error.message.replace(`recipe ${file}: `, ''),
      details: error.details,
    };
  }
  throw new Error('the recipe was accepted');
}

describe('recipe validation', () => {
  const file = (): string => path.join(dir, 'bad.json');
  const cases: [string, unknown, string, string][] = [
    [
      'firmware and gop',
      { name: 'x', firmware: { url: 'https://e/x', sha256: SHA }, gop: {} },
      'gop',
      'give `firmware` or `gop` and `vbt`, not both (`gop` is set too)',
    ],
    ['no inputs', { name: 'x' }, 'gop', 'needs `gop` and `vbt`, or `firmware`'],
    [
      'firmware URL without a pin',
      { name: 'x', firmware: { url: 'https://e/x' } },
      'firmware.sha256',
      '`firmware.url` needs a pinned `firmware.sha256`',
    ],
    [
      'firmware pin not hex',
      { name: 'x', firmware: { url: 'https://e/x', sha256: 'ABC' } },
      'firmware.sha256',
      '`firmware.sha256` must be 64 lower-case hex digits',
    ],
    [
      'firmware URL not http',
      { name: 'x', firmware: { url: 'ftp://e/x', sha256: SHA } },
      'firmware.url',
      '`firmware.url` must be an http(s) URL',
    ],
    [
      'firmware a string',
      { name: 'x', firmware: 'https://e/x' },
      'firmware',
      '`firmware` must be an object with url or path',
    ],
    [
      'firmware a list',
      { name: 'x', firmware: [] },
      'firmware',
      '`firmware` must be an object with url or path',
    ],
    [
      'vbt missing',
      { name: 'x', gop: { url: 'https://e/g', sha256: SHA } },
      'vbt',
      '`vbt` must be an object with url or path',
    ],
    [
      'bad name',
      { name: 'X Y', firmware: { url: 'https://e/x', sha256: SHA } },
      'name',
      '`name` must be a lower-case slug',
    ],
    [
      'bad device',
      { name: 'x', firmware: { url: 'https://e/x', sha256: SHA }, device: '3185' },
      'device',
      '`device` must look like 8086:9b41',
    ],
    [
      'bad devices',
      { name: 'x', firmware: { url: 'https://e/x', sha256: SHA }, devices: ['8086:31'] },
      'devices',
      '`devices` must be a list of ids like 8086:9b41',
    ],
    [
      'flags a list',
      { name: 'x', firmware: { url: 'https://e/x', sha256: SHA }, flags: [] },
      'flags',
      '`flags` must be an object',
    ],
  ];
  it.each(cases)(
    '%s: E_USAGE (exit 2) naming the recipe and the field',
    async (_what, value, field, message) => {
      expect(await refusal(value)).toEqual({
        code: 'E_USAGE',
        exit: 2,
        message,
        details: { recipe: file(), field },
      });
    },
  );

  it('a firmware recipe: the firmware is the only input, its URL moved to the mirror', async () => {
    const recipe = await loadRecipe(path.join(REPO_ROOT, 'recipes', 'geminilake.json'), {
      baseUrl: 'http://127.0.0.1:1/m/',
    });
    expect(recipeInputs(recipe)).toEqual({
      firmware: {
        url: 'http://127.0.0.1:1/m/my33love/gk41-pve-ovmf/34cf9cab857dd9c35f2844b28ae3fe9c4a874a5e/OVMF_CODE.fd',
        sha256: GK41_SHA256,
      },
    });
    expect([recipe.device, recipe.devices, recipe.machine]).toEqual([
      '8086:3185',
      ['8086:3184', '8086:3185'],
      'q35',
    ]);
  });
});

describe('a firmware recipe through the job (stand-in build)', () => {
  it('extracts the GOP and VBT as --firmware does: same inputs, same cache key, one build', async () => {
    const env = isolatedEnv(path.join(dir, 'job'));
    const build = new StandInBuild();
    const run = async (argv: string[]): Promise<Record<string, unknown>> => {
      const captured = captureContext([...argv, '--json'], env, dir);
      expect(await runMain(captured.ctx, build.stages)).toBe(0);
      return JSON.parse(captured.stdout()) as Record<string, unknown>;
    };
    const byRecipe = await run([
      '--recipe',
      path.join(REPO_ROOT, 'recipes', 'geminilake.json'),
      '--source-base-url',
      mirror.baseUrl,
    ]);
    expect(mirror.requests).toContain(
      '/my33love/gk41-pve-ovmf/34cf9cab857dd9c35f2844b28ae3fe9c4a874a5e/OVMF_CODE.fd',
    );
    const check = await verifyArtifact(byRecipe['artifactDir'] as string);
    const inputs = check.manifest['inputs'] as Record<string, { sha256: string; origin: unknown }>;
    expect([inputs['gop']?.sha256, inputs['firmware']]).toEqual([
      GK41_GOP_SHA256,
      {
        sha256: GK41_SHA256,
        origin: {
          kind: 'url',
          url: `${mirror.baseUrl}/my33love/gk41-pve-ovmf/34cf9cab857dd9c35f2844b28ae3fe9c4a874a5e/OVMF_CODE.fd`,
        },
      },
    ]);
    // The same image given with --firmware (and the recipe's device and machine): the cache
    // key covers the extracted GOP and VBT the same way, so it is a hit.
    const byFirmware = await run([
      '--firmware',
      path.join(CORPUS_DIR, GK41_IMAGE),
      '--device',
      '8086:3185',
      '--machine',
      'q35',
      '--name',
      'geminilake',
    ]);
    expect([byFirmware['key'], byFirmware['cacheHit'], build.builds]).toEqual([byRecipe['key'], true, 1]);
  });

  it('the nightly runs a firmware recipe beside GOP/VBT recipes', async () => {
    const env = isolatedEnv(path.join(dir, 'night'));
    const recipes = path.join(dir, 'night-recipes');
    await rm(recipes, { recursive: true, force: true });
    await cp(path.join(REPO_ROOT, 'recipes', 'geminilake.json'), path.join(recipes, 'geminilake.json'));
    await cp(path.join(REPO_ROOT, 'recipes', 'cometlake.json'), path.join(recipes, 'cometlake.json'));
    const build = new StandInBuild();
    const captured = captureContext([recipes, '--base-url', mirror.baseUrl, '--json'], env, dir);
    expect(await runNightlyCommand(captured.ctx, build.stages)).toBe(0);
    const summary = JSON.parse(captured.stdout()) as NightlySummary;
    expect(summary.recipes.map((r) => [r.recipe, r.status, r.cache, r.jobId?.length])).toEqual([
      ['cometlake', 'succeeded', 'miss', 'cometlake'.length + 17],
      ['geminilake', 'succeeded', 'miss', 'geminilake'.length + 17],
    ]);
    expect(build.builds).toBe(2);
  });
});

describe('corpus traps as recipes (what must never become one)', () => {
  it('fail at once with their own code and are never retried: not a GOP (6), an image without a GOP (4)', async () => {
    const env = isolatedEnv(path.join(dir, 'traps'));
    const recipes = path.join(dir, 'trap-recipes');
    await rm(recipes, { recursive: true, force: true });
    await mkdir(recipes, { recursive: true });
    // An AMI policy module committed as IntelGopDriver.efi (corpus manifest: "NOT a GOP driver").
    const write = (file: string, recipe: unknown) =>
      writeFile(path.join(recipes, file), JSON.stringify(recipe));
    await write('a-not-a-gop.json', {
      name: 'not-a-gop',
      gop: {
        url: 'https://raw.githubusercontent.com/Ssrml/coreboot-for-asrock-b85pro4/7ff99a19ce6d62f74962e285f4b8fe3fe27dea14/IntelGopDriver.efi',
        sha256: '1516c59a86a212f39e95cb2d6a8a3cb23bcafcd4f0a609b2efa3bf6cd00eb6f3',
      },
      vbt: {
        url: 'https://raw.githubusercontent.com/Ssrml/coreboot-for-asrock-b85pro4/7ff99a19ce6d62f74962e285f4b8fe3fe27dea14/src/mainboard/asrock/b85_pro4/data.vbt',
        sha256: '72cf530ceaf39c7b79febc22c5b9a4ada4a180983cf7af6e95ef8a13ea923f4d',
      },
    });
    // A Gemini Lake IFWI with two VBTs and no GOP driver.
    await write('b-ifwi.json', {
      name: 'ifwi-without-gop',
      firmware: {
        url: 'https://raw.githubusercontent.com/Dasharo/dasharo-blobs/cc5549a841bdf7a444a6cbacae0dc47c377c07b8/protectli/vault_glk/ifwi.bin',
        sha256: '6badaa887169222a2d396af0a8532cb9abac57eadc5e902473ffe294847b0e79',
      },
    });
    const build = new StandInBuild();
    const captured = captureContext([recipes, '--base-url', mirror.baseUrl, '--json'], env, dir);
    const code = await runNightlyCommand(captured.ctx, build.stages, { backoffMs: () => 10 });
    const summary = JSON.parse(captured.stdout()) as NightlySummary;
    expect([code, build.builds]).toEqual([6, 0]);
    expect(summary.recipes.map((r) => [r.recipe, r.status, r.attempts, r.exitCode, r.errorCode])).toEqual([
      ['not-a-gop', 'failed', 1, 6, 'E_INPUT_NOT_GOP'],
      ['ifwi-without-gop', 'failed', 1, 4, 'E_GOP_NOT_FOUND'],
    ]);
  });
});
