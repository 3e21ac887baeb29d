import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runMain } from '../src/cli/commands/ovmf.js';
import { exitCodeFor } from '../src/cli/exit-codes.js';
import type { OvmfBuildError } from '../src/core/errors.js';
import { lookupDevice } from '../src/igd/device-table.js';
import { loadIgdDeviceTable } from '../src/igd/load.js';
import { loadRecipe } from '../src/jobs/recipe.js';
import { verifyArtifact } from '../src/publish/index.js';
import { CORPUS_DIR, REPO_ROOT, loadManifest } from './corpus.js';
import { isolatedEnv, StandInBuild } from './cache-stand-in.js';
import { captureContext } from './cli-harness.js';

const RECIPES_DIR = path.join(REPO_ROOT, 'recipes');

// Serves the corpus under the raw.githubusercontent.com layout: /<owner>/<repo>/<commit>/<path>.
let server: Server;
let base: string;
let corrupt = false;
beforeAll(async () => {
  const byPath = new Map<string, string>();
  for (const entry of loadManifest().entries) {
    const github = (entry as { source?: { github?: { repo: string; commit: string; path: string } } }).source
      ?.github;
    if (github !== undefined) byPath.set(`/${github.repo}/${github.commit}/${github.path}`, entry.path);
  }
  server = createServer((req, res) => {
    const file = byPath.get(req.url ?? '');
    if (file === undefined) {
      res.writeHead(404).end();
      return;
    }
    void readFile(path.join(CORPUS_DIR, file)).then((bytes) => {
      if (corrupt) bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 1;
      res.writeHead(200, { 'content-length': String(bytes.length) }).end(bytes);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

let dir: string;
let env: NodeJS.ProcessEnv;
beforeEach(async () => {
  corrupt = false;
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  dir = await mkdtemp(path.join(tmpdir(), 'ovmf-recipe-'));
  env = isolatedEnv(dir);
});

describe('recipes', () => {
  it('every recipe pins corpus files by URL and sha256, and builds from a mirror of the URLs', async () => {
    const files = (await readdir(RECIPES_DIR)).filter((f) => f.endsWith('.json')).sort();
    expect(files).toEqual([
      'alderlake-n.json',
      'alderlake-s.json',
      'alderlake.json',
      'broadwell.json',
      'coffeelake.json',
      'cometlake.json',
      'geminilake.json',
      'haswell.json',
      'kabylake.json',
      'raptorlake-s.json',
      'rocketlake.json',
      'skylake.json',
      'tigerlake.json',
    ]);
    const backend = new StandInBuild();
    const table = await loadIgdDeviceTable();
    for (const file of files) {
      const recipe = await loadRecipe(path.join(RECIPES_DIR, file), { baseUrl: base });
      // A recipe pins the GOP and the VBT, or a vendor image to extract both from.
      const pinned = 'firmware' in recipe ? recipe.firmware : recipe.gop;
      expect([file, 'url' in pinned && pinned.url.startsWith(`${base}/`)]).toEqual([file, true]);
      const captured = captureContext(
        ['--recipe', path.join(RECIPES_DIR, file), '--source-base-url', base, '--json'],
        env,
        dir,
      );
      expect(await runMain(captured.ctx, backend.stages)).toBe(0);
      const result = JSON.parse(captured.stdout()) as { artifactDir: string; name: string };
      expect(result.name).toBe(recipe.name);
      const check = await verifyArtifact(result.artifactDir);
      const manifest = check.manifest as {
        inputs: {
          gop: { origin: { kind: string } };
          firmware?: { origin: unknown };
          rom: { source: { deviceId: number } };
        };
      };
      expect([
        file,
        'firmware' in recipe ? manifest.inputs.firmware?.origin : manifest.inputs.gop.origin,
      ]).toEqual([file, { kind: 'url', url: 'url' in pinned ? pinned.url : null }]);
      expect([file, manifest.inputs.gop.origin.kind]).toEqual([
        file,
        'firmware' in recipe ? 'firmware' : 'url',
      ]);
      expect(manifest.inputs.rom.source.deviceId).toBe(Number.parseInt((recipe.device ?? '').slice(5), 16));
      // `devices`: exactly the device table's IDs of the platform of `device`, and no warnings
      // between that device, the recipe's GOP and its VBT.
      const platform = lookupDevice(table, (recipe.device ?? '').slice(5));
      expect([file, recipe.devices]).toEqual([file, platform?.deviceIds.map((id) => `8086:${id}`)]);
      expect([file, (manifest.inputs as unknown as { warnings: unknown }).warnings]).toEqual([file, []]);
    }
    expect(backend.builds).toBe(13);
  });

  it('refuses bytes that do not match the pinned digest (E_DOWNLOAD_DIGEST_MISMATCH, exit 7)', async () => {
    corrupt = true;
    const captured = captureContext(
      ['--recipe', path.join(RECIPES_DIR, 'cometlake.json'), '--source-base-url', base, '--json'],
      env,
      dir,
    );
    let error: OvmfBuildError | undefined;
    try {
      await runMain(captured.ctx, new StandInBuild().stages);
    } catch (caught) {
      error = caught as OvmfBuildError;
    }
    expect([error?.code, error === undefined ? null : exitCodeFor(error)]).toEqual([
      'E_DOWNLOAD_DIGEST_MISMATCH',
      7,
    ]);
    expect(await readdir(path.join(dir, 'cache', 'ovmf-build', 'downloads'))).toEqual([]);
  });
});
