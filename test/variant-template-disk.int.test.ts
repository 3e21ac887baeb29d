// Variant templates on disk (src/edk2/template-store.ts), through the installed command in
// child processes: the first `ovmf-build build` of a workspace key makes its variant in a
// container of the committed workspace and leaves the template in
// $XDG_CACHE_HOME/ovmf-build/variant-templates; the next process, with another VBT, makes its
// variant over that template without a container, byte for byte what the container path gives
// (the same process with OVMF_BUILD_VARIANT_TEMPLATES=memory), and the main command's signed
// manifest names the job whose images it was made over. A damaged template file is
// removed and the build takes the container path. The rest of the integration project runs with
// OVMF_BUILD_VARIANT_TEMPLATES=memory (vitest.config.ts), so each of its files still gets the
// build path it asserts; this file runs with the product's default.
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../src/core/digest.js';
import { decodeTemplate } from '../src/edk2/template-file.js';
import { ensureFreshDist } from './cli-harness.js';
import { CORPUS_DIR, REPO_ROOT } from './corpus.js';
import { isolatedCliEnv, warmWorkspace } from './harness.js';

const run = promisify(execFile);
const BIN = path.join(REPO_ROOT, 'bin', 'ovmf-build.js');
const GOP = path.join(CORPUS_DIR, 'gop/cometlake-mrchromebox-cml.efi');
const VBT = path.join(CORPUS_DIR, 'vbt/cometlake-intel-nuc10i5fnh.vbt');
const VBT_OTHER = path.join(CORPUS_DIR, 'vbt/cometlake-system76-lemp9.vbt');
const VBT_THIRD = path.join(CORPUS_DIR, 'vbt/coffeelake-lenovo-m720q.vbt');
const VBT_MAIN = path.join(CORPUS_DIR, 'vbt/coffeelake-asrock-h370m-itx-ac.vbt');

let dir: string;
let env: NodeJS.ProcessEnv;
let workspaceKey: string;

interface BuildJson {
  code: { sha256: string };
  vars: { sha256: string };
  helperDrivers: { igdAssignment: { sha256: string }; gopPolicy: { sha256: string } };
  mode: string;
  buildPath: string;
  variantFrom: string | null;
  variantOf: string | null;
  containerDurationMs: number;
  verification: { structure: { gop: { sha256: string }; vbt: { sha256: string } } };
}

/** `ovmf-build build` of GOP and `vbt` (structural check only: QEMU is not this file's subject). */
async function build(vbt: string, out: string, extraEnv: NodeJS.ProcessEnv = {}): Promise<BuildJson> {
  const { stdout } = await run(
    process.execPath,
    [BIN, 'build', '--gop', GOP, '--vbt', vbt, '--no-verify-boot', '--out', path.join(dir, out), '--json'],
    { cwd: dir, env: { ...env, ...extraEnv }, maxBuffer: 16 * 1024 * 1024 },
  );
  return JSON.parse(stdout) as BuildJson;
}

const templatesDir = (): string => path.join(dir, 'cache', 'ovmf-build', 'variant-templates');
const templateFile = (): string => path.join(templatesDir(), `${workspaceKey}.template`);

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'variant-template-disk-'));
  workspaceKey = (await warmWorkspace()).key;
  const isolated = await isolatedCliEnv(dir);
  // The product's default here: templates kept on disk.
  delete isolated['OVMF_BUILD_VARIANT_TEMPLATES'];
  env = isolated;
  ensureFreshDist();
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('variant templates on disk', () => {
  let first: BuildJson;
  let fromDisk: BuildJson;

  it('the first process builds in a container of the workspace and leaves the template on disk', async () => {
    first = await build(VBT, 'first');
    expect([first.mode, first.buildPath, first.variantFrom, first.variantOf]).toEqual([
      'warm',
      'variant',
      'workspace',
      null,
    ]);
    expect(first.containerDurationMs).toBeGreaterThan(0);
    expect(await readdir(templatesDir())).toEqual([`${workspaceKey}.template`]);
    const decoded = decodeTemplate(await readFile(templateFile()), workspaceKey);
    if (!decoded.ok) throw new Error(decoded.reason);
    // The template is that build's images and the inputs it packaged.
    expect([
      sha256(decoded.template.code),
      sha256(decoded.template.vars),
      sha256(decoded.template.vbt),
      sha256(decoded.template.helperDrivers.igdAssignment),
    ]).toEqual([
      first.code.sha256,
      first.vars.sha256,
      sha256(await readFile(VBT)),
      first.helperDrivers.igdAssignment.sha256,
    ]);
  });

  it('the next process makes its variant over it, without a container: the container path’s bytes', async () => {
    fromDisk = await build(VBT_OTHER, 'from-disk');
    expect([fromDisk.mode, fromDisk.buildPath, fromDisk.variantFrom, fromDisk.containerDurationMs]).toEqual([
      'warm',
      'variant',
      'template',
      0,
    ]);
    expect(fromDisk.variantOf).toMatch(/\S/);
    expect(fromDisk.verification.structure.vbt.sha256).toBe(sha256(await readFile(VBT_OTHER)));
    expect(fromDisk.code.sha256).not.toBe(first.code.sha256);
    // The same inputs with templates kept in memory only: a container of the workspace.
    const container = await build(VBT_OTHER, 'container', { OVMF_BUILD_VARIANT_TEMPLATES: 'memory' });
    expect([container.variantFrom, container.containerDurationMs > 0]).toEqual(['workspace', true]);
    expect([
      fromDisk.code.sha256,
      fromDisk.vars.sha256,
      fromDisk.helperDrivers.igdAssignment.sha256,
      fromDisk.helperDrivers.gopPolicy.sha256,
    ]).toEqual([
      container.code.sha256,
      container.vars.sha256,
      container.helperDrivers.igdAssignment.sha256,
      container.helperDrivers.gopPolicy.sha256,
    ]);
    expect(await readFile(path.join(dir, 'from-disk', 'OVMF_CODE.fd'))).toEqual(
      await readFile(path.join(dir, 'container', 'OVMF_CODE.fd')),
    );
  });

  it('the main command in a new process makes its artifact over the template; the manifest names the job', async () => {
    const { stdout } = await run(process.execPath, [BIN, '--gop', GOP, '--vbt', VBT_MAIN, '--json'], {
      cwd: dir,
      env,
      maxBuffer: 16 * 1024 * 1024,
    });
    const job = JSON.parse(stdout) as { artifactDir: string };
    const manifest = JSON.parse(await readFile(path.join(job.artifactDir, 'manifest.json'), 'utf8')) as {
      build: { facts: Record<string, unknown> };
    };
    const { buildPath, variantFrom, variantOf } = manifest.build.facts;
    expect([buildPath, variantFrom, variantOf]).toEqual(['variant', 'template', fromDisk.variantOf]);
  });

  it('a damaged template file is removed and the build takes the container path, leaving a new one', async () => {
    const bytes = await readFile(templateFile());
    bytes[bytes.length - 100] = (bytes[bytes.length - 100] as number) ^ 0x01; // inside the GOP policy driver, the last blob
    await writeFile(templateFile(), bytes);
    const third = await build(VBT_THIRD, 'after-damage');
    expect([third.buildPath, third.variantFrom, third.containerDurationMs > 0]).toEqual([
      'variant',
      'workspace',
      true,
    ]);
    // The container build left its own template in place of the damaged one.
    const decoded = decodeTemplate(await readFile(templateFile()), workspaceKey);
    expect(decoded.ok && sha256(decoded.template.vbt)).toBe(sha256(await readFile(VBT_THIRD)));
    expect(decoded.ok && sha256(decoded.template.code)).toBe(third.code.sha256);
  });
});
