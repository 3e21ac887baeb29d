import { createHash } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { runCache } from '../src/cli/commands/cache.js';
import { runMain } from '../src/cli/commands/ovmf.js';
import { main } from '../src/cli/main.js';
import { exitCodeFor } from '../src/cli/exit-codes.js';
import type { OvmfBuildError } from '../src/core/errors.js';
import type { OvmfJobResult } from '../src/jobs/job-types.js';
import { verifyArtifact } from '../src/publish/index.js';
import { CORPUS_DIR } from './corpus.js';
import { isolatedEnv, StandInBuild } from './cache-stand-in.js';
import { captureContext } from './cli-harness.js';
import { cpuNow } from './cpu-time.js';
import { tempDirPerTest } from './temp-dir.js';

const GOP = path.join(CORPUS_DIR, 'gop/cometlake-mrchromebox-cml.efi');
const VBT = path.join(CORPUS_DIR, 'vbt/cometlake-intel-nuc10i5fnh.vbt');
const OTHER_VBT = path.join(CORPUS_DIR, 'vbt/cometlake-system76-lemp9.vbt');
const NOT_GOP = path.join(CORPUS_DIR, 'gop/not-a-gop-asrock-b85pro4-IntelGopDriver.efi');
const sha = async (file: string): Promise<string> =>
  createHash('sha256')
    .update(await readFile(file))
    .digest('hex');

const tempDir = tempDirPerTest('ovmf-job-');
let dir: string;
let env: NodeJS.ProcessEnv;
beforeEach(() => {
  dir = tempDir();
  env = isolatedEnv(dir);
});

/** What `--json` prints: the job's result, its id and its log file. */
type JobJson = OvmfJobResult & { readonly jobId: string; readonly logFile: string };

async function job(backend: StandInBuild, ...argv: string[]): Promise<JobJson> {
  const captured = captureContext([...argv, '--json'], env, dir);
  const code = await runMain(captured.ctx, backend.stages);
  expect(code).toBe(0);
  expect(captured.stderr()).toBe('');
  return JSON.parse(captured.stdout()) as JobJson;
}

async function cache(backend: StandInBuild, ...argv: string[]): Promise<string> {
  const captured = captureContext(argv, env, dir);
  expect(await runCache(captured.ctx, backend.stages)).toBe(0);
  return captured.stdout();
}

async function failure(backend: StandInBuild, ...argv: string[]): Promise<OvmfBuildError> {
  try {
    await runMain(captureContext([...argv, '--json'], env, dir).ctx, backend.stages);
  } catch (error) {
    return error as OvmfBuildError;
  }
  throw new Error('expected the job to fail');
}

describe('main job with a stand-in build', () => {
  it('builds once, then serves a verified cache hit pointing at the same artifact', async () => {
    const backend = new StandInBuild();
    const first = await job(backend, '--gop', GOP, '--vbt', VBT);
    expect(first.cacheHit).toBe(false);
    expect(first.miss).toEqual({
      reason: 'absent',
      corruption: null,
      nearestKey: null,
      differences: [],
      lines: ['the cache is empty: nothing to compare with'],
    });
    // Named by the generation the GOP shows, not by the VBT's "$VBT SKYLAKE" (issue 9).
    expect(first.name).toBe('gen9-gop1107');
    expect(first.artifactDir.startsWith(path.join(dir, 'artifacts', 'gen9-gop1107', ''))).toBe(true);
    expect(path.basename(first.artifactDir)).toMatch(new RegExp(`^\\d{8}T\\d{6}Z-${first.key.slice(0, 8)}$`));
    const check = await verifyArtifact(first.artifactDir);
    expect(check.checkedFiles).toContain('OVMF_CODE.fd');
    const manifest = check.manifest as {
      inputs: { gop: { sha256: string; build: string }; vbt: { signature: string } };
    };
    expect(manifest.inputs.gop).toMatchObject({ sha256: await sha(GOP), build: '1107' });
    expect(manifest.inputs.vbt.signature).toBe('$VBT SKYLAKE');
    const second = await job(backend, '--gop', GOP, '--vbt', VBT);
    expect(second).toMatchObject({
      cacheHit: true,
      key: first.key,
      artifactDir: first.artifactDir,
      miss: null,
      reusedArtifact: true,
    });
    expect(backend.builds).toBe(1);
    expect(await readFile(first.logFile, 'utf8')).toContain('"msg":"job done"');
  });

  it('explains a miss caused by another VBT, also through `cache why`', async () => {
    const backend = new StandInBuild();
    const first = await job(backend, '--gop', GOP, '--vbt', VBT);
    const second = await job(backend, '--gop', GOP, '--vbt', OTHER_VBT, '--name', 'other');
    const before = (await sha(VBT)).slice(0, 8);
    const after = (await sha(OTHER_VBT)).slice(0, 8);
    expect(second.cacheHit).toBe(false);
    expect(second.miss).toMatchObject({
      reason: 'absent',
      nearestKey: first.key,
      lines: [`vbt changed: ${before}.. -> ${after}..`],
    });
    const created = JSON.parse(await cache(backend, 'ls', '--json')) as { key: string; createdAt: string }[];
    const firstCreated = created.find((entry) => entry.key === first.key)?.createdAt;
    expect(await cache(backend, 'why', second.key.slice(0, 10))).toBe(
      [
        `key ${second.key}`,
        `cached; nearest other entry ${first.key.slice(0, 12)} (created ${firstCreated}) differs in 1 input:`,
        `  vbt changed: ${before}.. -> ${after}..`,
        '',
      ].join('\n'),
    );
    // Asking with the inputs of a request not built yet names the same difference.
    const third = JSON.parse(
      await cache(backend, 'why', '--gop', GOP, '--vbt', OTHER_VBT, '--machine', 'i440fx', '--json'),
    ) as { cached: boolean; lines: string[] };
    expect(third).toMatchObject({ cached: false, lines: ['machine changed: q35 -> i440fx'] });
  });

  it('discards a corrupted entry and rebuilds instead of serving it', async () => {
    const backend = new StandInBuild();
    const first = await job(backend, '--gop', GOP, '--vbt', VBT);
    const cached = path.join(dir, 'cache', 'ovmf-build', 'cache', first.key, 'OVMF_CODE.fd');
    const bytes = await readFile(cached);
    bytes[0x100] = (bytes[0x100] as number) ^ 0xff;
    await writeFile(cached, bytes);
    const second = await job(backend, '--gop', GOP, '--vbt', VBT);
    expect(second.cacheHit).toBe(false);
    expect(second.miss).toMatchObject({ reason: 'corrupt', corruption: { file: 'OVMF_CODE.fd' } });
    expect(backend.builds).toBe(2);
    // The rebuilt entry equals the first artifact, so the intact published directory is reused.
    expect(second.artifactDir).toBe(first.artifactDir);
    await verifyArtifact(second.artifactDir);
  });

  it('rejects a non-GOP in milliseconds with E_INPUT_NOT_GOP (exit 6) and builds nothing', async () => {
    const backend = new StandInBuild();
    const started = cpuNow();
    const error = await failure(backend, '--gop', NOT_GOP, '--vbt', VBT);
    // "In milliseconds" as this process's work (test/cpu-time.ts: wall time on CI is the scheduler's).
    expect(cpuNow() - started).toBeLessThan(1_000);
    expect([error.code, exitCodeFor(error)]).toEqual(['E_INPUT_NOT_GOP', 6]);
    const notVbt = await failure(backend, '--gop', GOP, '--vbt', GOP);
    expect([notVbt.code, exitCodeFor(notVbt)]).toEqual(['E_INPUT_NOT_VBT', 6]);
    expect(backend.builds).toBe(0);
    expect(await readdir(dir)).not.toContain('artifacts');
  });

  it('validates a user ROM (E_INPUT_BAD_ROM) and ships a good one byte for byte', async () => {
    const backend = new StandInBuild();
    const romFailure = (rom: string): Promise<OvmfBuildError> =>
      failure(backend, '--gop', GOP, '--vbt', VBT, '--rom', path.join(CORPUS_DIR, rom));
    const bad = await romFailure('roms/gvt-vbios-gvt-uefi.rom');
    expect([bad.code, exitCodeFor(bad)]).toEqual(['E_INPUT_BAD_ROM', 6]);
    const legacy = await romFailure('roms/haswell-devid-0406-legacy-vbios.rom');
    expect(legacy.details['problem']).toBe(
      'it has no EFI image (code type 3); OVMF runs only EFI option ROM code',
    );
    const romFile = path.join(CORPUS_DIR, 'roms/alderlake-n-n150-vfio-igd.rom');
    const result = await job(backend, '--gop', GOP, '--vbt', VBT, '--rom', romFile);
    expect(await sha(result.files.rom)).toBe(await sha(romFile));
    const generated = await job(backend, '--gop', GOP, '--vbt', VBT, '--device', '8086:9b41');
    expect(generated.key).not.toBe(result.key);
    const manifest = JSON.parse(
      await readFile(path.join(generated.artifactDir, 'manifest.json'), 'utf8'),
    ) as {
      inputs: { rom: { source: unknown }; device: unknown; warnings: unknown };
    };
    expect(manifest.inputs.rom.source).toEqual({
      kind: 'generated',
      vendorId: 0x8086,
      deviceId: 0x9b41,
      generatorVersion: '2',
    });
    expect([manifest.inputs.device, manifest.inputs.warnings]).toEqual([
      {
        id: '8086:9b41',
        platform: { key: 'cml', name: 'Comet Lake', graphicsVersion: '9.5', bdsm: 'bdsm32' },
      },
      [],
    ]);
    expect(generated.name).toBe('cml-9b41-gop1107');
    // Comet Lake: QEMU legacy mode applies, so i440fx is the default machine (igd-devices.json);
    // the stand-in build exports no helper drivers, so its ROM is GOP-only and ROM mode is off.
    const full = JSON.parse(await readFile(path.join(generated.artifactDir, 'manifest.json'), 'utf8')) as {
      machine: string;
      deliveryModes: { rom: { files: unknown[]; images: unknown[] } };
    };
    expect([full.machine, full.deliveryModes.rom.files, full.deliveryModes.rom.images]).toEqual([
      'i440fx',
      [],
      ['gop'],
    ]);
    const proxmox = await readFile(path.join(generated.artifactDir, 'proxmox.conf'), 'utf8');
    expect(proxmox).toContain(
      '# iGPU 8086:9b41: Comet Lake, graphics 9.5; needs QEMU 7.2 or newer.\n' +
        "# QEMU legacy IGD mode works for this generation (graphics 6 to 9.5): i440fx, IGD at 00:02.0, a ROM; QEMU then also copies the host's LPC bridge IDs, which the GOP checks.\n",
    );
    expect(proxmox).toContain('hostpci0: 0000:00:02.0,legacy-igd=1,romfile=cml-9b41-gop1107/');
    const usage = await failure(backend, '--gop', GOP, '--vbt', VBT, '--device', '10de:1234');
    expect([usage.code, exitCodeFor(usage)]).toEqual(['E_USAGE', 2]);
  });

  it('refuses --secure-boot on i440fx and conflicting inputs as usage errors', async () => {
    const backend = new StandInBuild();
    expect(
      (await failure(backend, '--gop', GOP, '--vbt', VBT, '--machine', 'i440fx', '--secure-boot')).code,
    ).toBe('E_USAGE');
    expect((await failure(backend, '--gop', GOP, '--vbt', VBT, '--firmware', GOP)).code).toBe('E_USAGE');
    expect((await failure(backend, '--gop', GOP)).code).toBe('E_USAGE');
  });

  it('lists and garbage-collects the cache', async () => {
    const backend = new StandInBuild();
    const first = await job(backend, '--gop', GOP, '--vbt', VBT);
    const listed = JSON.parse(await cache(backend, 'ls', '--json')) as {
      key: string;
      details: { vbt: string };
    }[];
    expect(listed.map((entry) => [entry.key, entry.details.vbt])).toEqual([[first.key, await sha(VBT)]]);
    expect(await cache(backend, 'gc', '--max-size-bytes', '0', '--dry-run')).toMatch(/^would remove entry /);
    expect((await cache(backend, 'ls')).split('\n')[1]?.startsWith(first.key.slice(0, 12))).toBe(true);
    expect(await cache(backend, 'gc', '--max-size-bytes', '0')).toMatch(/^removed entry /);
    expect(await cache(backend, 'ls')).toBe('the cache is empty\n');
  });

  it('takes the GOP and VBT out of a vendor image with --firmware', async () => {
    const backend = new StandInBuild();
    const image = path.join(CORPUS_DIR, 'images/geminilake-ovmf-with-gop-vbt-gk41.fd');
    const result = await job(backend, '--firmware', image, '--name', 'gk41');
    const manifest = JSON.parse(await readFile(path.join(result.artifactDir, 'manifest.json'), 'utf8')) as {
      inputs: {
        firmware: { sha256: string };
        gop: { origin: { kind: string } };
        vbt: { origin: { kind: string } };
      };
    };
    expect(manifest.inputs.firmware.sha256).toBe(await sha(image));
    expect([manifest.inputs.gop.origin.kind, manifest.inputs.vbt.origin.kind]).toEqual([
      'firmware',
      'firmware',
    ]);
    const noGop = await failure(
      backend,
      '--firmware',
      path.join(CORPUS_DIR, 'images/coffeelake-intel-fsp.fd'),
    );
    expect([noGop.code, exitCodeFor(noGop)]).toEqual(['E_GOP_NOT_FOUND', 4]);
  });

  it('`ovmf-build verify` exits 0 on an intact artifact and 11 naming the file after a change', async () => {
    const result = await job(new StandInBuild(), '--gop', GOP, '--vbt', VBT);
    const ok = captureContext(['verify', result.artifactDir], env, dir);
    expect(await main(ok.ctx)).toBe(0);
    expect(ok.stdout().split('\n')[0]).toBe(`valid: ${result.artifactDir}`);
    const bytes = await readFile(result.files.vars);
    bytes[7] = (bytes[7] as number) ^ 1;
    await writeFile(result.files.vars, bytes);
    const bad = captureContext(['verify', result.artifactDir], env, dir);
    expect(await main(bad.ctx)).toBe(11);
    expect(bad.stderr()).toMatch(
      /^ovmf-build: OVMF_VARS\.fd: sha256 is [0-9a-f]{64}, SHA256SUMS says [0-9a-f]{64} \[E_ARTIFACT_DIGEST_MISMATCH\]\n$/,
    );
    const key = captureContext(['verify', '--print-public-key'], env, dir);
    expect(await main(key.ctx)).toBe(0);
    expect(key.stdout()).toBe(await readFile(path.join(result.artifactDir, 'signing-key.pub'), 'utf8'));
  });
});
