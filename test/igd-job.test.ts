// The main job's IGD assignment stage with a stand-in build (the real check in QEMU is
// test/igd-check.int.test.ts and the embedded/ROM-mode int tests): which device and ROM it
// checks, that the verdict lands in the manifest and --json, that a failed check caches
// and publishes nothing, and that the boot check's own boot is skipped exactly when the
// embedded-mode boot gives its verdict (stand-in checks counting their calls).
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildCacheDir } from '../src/cache/paths.js';
import { runMain } from '../src/cli/commands/ovmf.js';
import { exitCodeFor } from '../src/cli/exit-codes.js';
import type { OvmfBuildError } from '../src/core/errors.js';
import { optionRomPeBytes, parseOptionRom } from '../src/formats/option-rom.js';
import type { BuiltFirmware } from '../src/jobs/job-types.js';
import type { BuildInput } from '../src/jobs/stage-build.js';
import type { BootCheckRequest, IgdCheckRequest, VerifyChecks } from '../src/jobs/stage-verify.js';
import type { StageContext } from '../src/jobs/stage.js';
import type { BootVerification } from '../src/verify/boot.js';
import { parseDebugLog } from '../src/verify/debug-log.js';
import { VerificationError } from '../src/verify/errors.js';
import type { IgdModeSummary, IgdVerification, IgdVerifyRequest } from '../src/verify/igd-modes.js';
import { isolatedEnv, NO_CHECKS, StandInBuild } from './cache-stand-in.js';
import { captureContext } from './cli-harness.js';
import { CORPUS_DIR } from './corpus.js';

const GOP = path.join(CORPUS_DIR, 'gop/cometlake-mrchromebox-cml.efi');
const VBT = path.join(CORPUS_DIR, 'vbt/cometlake-intel-nuc10i5fnh.vbt');
const USER_ROM = path.join(CORPUS_DIR, 'roms/gen12-gop-gangqizai.rom');

/** VfioIgdPkg's helpers out of the corpus N150 chain stand in for the build's own. */
async function corpusHelpers(): Promise<{ igdAssignment: Uint8Array; gopPolicy: Uint8Array }> {
  const rom = new Uint8Array(await readFile(path.join(CORPUS_DIR, 'roms/alderlake-n-n150-vfio-igd.rom')));
  const [, igd, policy] = parseOptionRom(rom).images.map((image) => optionRomPeBytes(rom, image));
  return { igdAssignment: igd as Uint8Array, gopPolicy: policy as Uint8Array };
}

const passed = (
  mode: 'embedded' | 'rom',
  request: IgdVerifyRequest,
): Extract<IgdModeSummary, { checked: true }> => ({
  mode,
  checked: true,
  passed: true,
  firmware: mode === 'rom' ? '/usr/share/OVMF/OVMF_CODE_4M.fd' : 'built OVMF_CODE.fd',
  deviceId: request.deviceId,
  platform: request.platform.key,
  accelerator: request.accelerator,
  asls: '0x7e8f1000',
  bdsm: { offset: '0x5c', width: 32, value: '0x7c000000' },
  opRegionMatches: true,
  vbtSource: 'opregion-mailbox4',
  timeToAslsMs: 2000,
  timeToBootManagerMs: 3000,
  durationMs: 3400,
  traceLines: [
    'pci_cfg_write VGA 00:02.0 @0xfc <- 0x7e8f1000',
    'pci_cfg_write VGA 00:02.0 @0x5c <- 0x7c000000',
  ],
  debugLines: [],
  failures: [],
});

class IgdStandIn extends StandInBuild {
  readonly requests: IgdVerifyRequest[] = [];
  constructor(
    readonly helpers: { igdAssignment: Uint8Array; gopPolicy: Uint8Array },
    readonly romPasses = true,
  ) {
    super();
  }

  override async build(input: BuildInput, context: StageContext): Promise<BuiltFirmware> {
    return { ...(await super.build(input, context)), helperDrivers: this.helpers };
  }

  override checks(): VerifyChecks {
    return { ...NO_CHECKS, igd: (request) => this.verifyIgd(request) };
  }

  verifyIgd(request: IgdVerifyRequest): Promise<IgdVerification> {
    this.requests.push(request);
    const rom: IgdModeSummary =
      request.rom === null
        ? { mode: 'rom', checked: false, reason: request.romSkipReason ?? '' }
        : this.romPasses
          ? passed('rom', request)
          : {
              ...passed('rom', request),
              passed: false,
              asls: null,
              failures: ['ASLS (config 0xFC of 00:02.0) was never written'],
            };
    return Promise.resolve({
      deviceId: request.deviceId,
      platform: request.platform.key,
      deviceReason: request.deviceReason,
      embedded: passed('embedded', request),
      rom,
    });
  }
}

let dir: string;
let env: NodeJS.ProcessEnv;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'ovmf-igd-job-'));
  env = isolatedEnv(dir);
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface JobJson {
  cacheHit: boolean;
  artifactDir: string;
  igd: IgdVerification | null;
}

async function job(backend: StandInBuild, ...argv: string[]): Promise<JobJson> {
  const captured = captureContext([...argv, '--json'], env, dir);
  expect(await runMain(captured.ctx, backend.stages)).toBe(0);
  return JSON.parse(captured.stdout()) as JobJson;
}

describe('the main job checks IGD assignment before caching and publishing', () => {
  it("checks the --device's platform in embedded and ROM mode and records the verdict in the manifest and --json", async () => {
    const backend = new IgdStandIn(await corpusHelpers());
    const first = await job(backend, '--gop', GOP, '--vbt', VBT, '--device', '8086:9b41');
    expect(backend.requests).toHaveLength(1);
    const request = backend.requests[0] as IgdVerifyRequest;
    expect({
      deviceId: request.deviceId,
      platform: request.platform.key,
      deviceReason: request.deviceReason,
      accelerator: request.accelerator,
      rom: request.rom === null ? null : parseOptionRom(request.rom).images.length,
      vbt: request.vbt.length,
    }).toEqual({
      deviceId: '9b41',
      platform: 'cml',
      deviceReason: '--device',
      accelerator: 'tcg',
      rom: 3,
      vbt: 4608,
    });
    expect(first.igd?.embedded).toMatchObject({
      checked: true,
      passed: true,
      deviceId: '9b41',
      platform: 'cml',
    });
    expect(first.igd?.rom).toMatchObject({ checked: true, passed: true, mode: 'rom' });
    const manifest = JSON.parse(await readFile(path.join(first.artifactDir, 'manifest.json'), 'utf8')) as {
      igdChecks: IgdVerification;
    };
    expect(manifest.igdChecks).toEqual(first.igd);
    // A cache hit reports the checks that verified the entry, without running them again.
    const second = await job(backend, '--gop', GOP, '--vbt', VBT, '--device', '8086:9b41');
    expect(second.cacheHit).toBe(true);
    expect(second.igd).toEqual(first.igd);
    expect(backend.requests).toHaveLength(1);
  });

  it("without --device checks a device of the GOP's generation", async () => {
    const backend = new IgdStandIn(await corpusHelpers());
    await job(backend, '--gop', GOP, '--vbt', VBT);
    expect(backend.requests.map((r) => [r.deviceId, r.platform.key, r.deviceReason])).toEqual([
      ['3e9b', 'cfl', "no --device: a device of the GOP's generation (Skylake to Comet Lake (GOP 9.x))"],
    ]);
  });

  it('fails with E_VERIFY_IGD_CHECK_FAILED (exit 10) when a mode fails, and caches and publishes nothing', async () => {
    const backend = new IgdStandIn(await corpusHelpers(), false);
    let thrown: unknown;
    try {
      await runMain(captureContext(['--gop', GOP, '--vbt', VBT, '--json'], env, dir).ctx, backend.stages);
    } catch (error) {
      thrown = error;
    }
    const error = thrown as OvmfBuildError;
    expect(error.code).toBe('E_VERIFY_IGD_CHECK_FAILED');
    expect(exitCodeFor(error)).toBe(10);
    expect(error.message).toBe(
      'the IGD assignment check failed for device 3e9b (cfl): rom mode: ASLS (config 0xFC of 00:02.0) was never written',
    );
    expect(existsSync(path.join(dir, 'artifacts'))).toBe(false);
    // The cache holds the request record and lock directory, and no entry (entries are named by their key).
    const cacheRoot = buildCacheDir(env);
    expect((await readdir(cacheRoot)).filter((name) => /^[0-9a-f]{64}$/u.test(name))).toEqual([]);
    // Nothing was cached: a working run builds again.
    const fixed = new IgdStandIn(backend.helpers);
    const rerun = await job(fixed, '--gop', GOP, '--vbt', VBT);
    expect(rerun.cacheHit).toBe(false);
    expect(fixed.builds).toBe(1);
    expect((await readdir(cacheRoot)).filter((name) => /^[0-9a-f]{64}$/u.test(name))).toHaveLength(1);
  });

  it('skips ROM mode for a user ROM and the whole check with --no-verify-boot', async () => {
    const backend = new IgdStandIn(await corpusHelpers());
    const withRom = await job(backend, '--gop', GOP, '--vbt', VBT, '--rom', USER_ROM);
    expect(withRom.igd?.rom).toEqual({
      mode: 'rom',
      checked: false,
      reason: 'a user ROM: ROM mode is checked only for the generated IGD ROM chain',
    });
    const unchecked = await job(
      backend,
      '--gop',
      GOP,
      '--vbt',
      path.join(CORPUS_DIR, 'vbt/cometlake-system76-lemp9.vbt'),
      '--no-verify-boot',
    );
    expect(unchecked.igd).toBeNull();
    expect(backend.requests).toHaveLength(1);
  });
});

/** A verdict no real boot gives by chance: the facts must carry exactly these numbers. */
const ONE_BOOT: BootVerification = {
  passed: true,
  durationMs: 41_234,
  timeToBdsMs: 30_567,
  loadedDrivers: ['283B2335-ABD8-4B75-A8AA-004177A20A4B', '6FE0ECC8-FDFF-490E-A0C6-B60B3A8E98A2'],
  reachedBds: true,
  failures: [],
  info: [],
  logSource: 'debugcon',
  summary: parseDebugLog(''),
  qemu: { binary: 'qemu-system-x86_64', args: [] },
  accel: { accelerator: 'tcg', reason: 'no /dev/kvm' },
};

/** Stand-in checks with all three QEMU entries, counting which ones the stage calls. */
class OneBootStandIn extends IgdStandIn {
  readonly calls: string[] = [];
  readonly combined: { boot: BootCheckRequest; igd: IgdCheckRequest }[] = [];
  bootFails = false;

  override checks(): VerifyChecks {
    return {
      ...super.checks(),
      boot: () => {
        this.calls.push('boot');
        return Promise.resolve({ ...ONE_BOOT, durationMs: 9_999 });
      },
      igd: (request) => {
        this.calls.push('igd');
        return this.verifyIgd(request);
      },
      bootAndIgd: async (boot, igd) => {
        this.calls.push('bootAndIgd');
        this.combined.push({ boot, igd });
        if (this.bootFails) {
          throw new VerificationError('E_BOOT_CHECK_FAILED', 'the OVMF boot did not pass verification: GOP');
        }
        const verification = await this.verifyIgd({ ...igd, accelerator: 'tcg', smm: boot.secureBoot });
        return { boot: ONE_BOOT, igd: verification };
      },
    };
  }
}

interface BootFactsJson {
  boot: Record<string, unknown> | null;
  igd: IgdVerification | null;
}

async function manifestFacts(artifactDir: string): Promise<BootFactsJson> {
  const manifest = JSON.parse(await readFile(path.join(artifactDir, 'manifest.json'), 'utf8')) as {
    build: { facts: BootFactsJson };
  };
  return { boot: manifest.build.facts.boot, igd: manifest.build.facts.igd ?? null };
}

describe('one QEMU boot for the boot check and the embedded IGD check', () => {
  it('a DEBUG build with helper drivers: no boot-check boot, the verdict comes from the embedded-mode boot', async () => {
    const backend = new OneBootStandIn(await corpusHelpers());
    const result = await job(backend, '--gop', GOP, '--vbt', VBT, '--device', '8086:9b41');
    expect(backend.calls).toEqual(['bootAndIgd']);
    const { boot, igd } = backend.combined[0] ?? {};
    expect({ boot: { ...boot, code: boot?.code.length, vars: boot?.vars.length, env: undefined } }).toEqual({
      boot: {
        code: 0x1_0000,
        vars: 0x4000,
        secureBoot: false,
        vbtSizeInBytes: 4608,
        accel: 'auto',
        env: undefined,
      },
    });
    expect([igd?.deviceId, igd?.platform.key, igd?.rom === null]).toEqual(['9b41', 'cml', false]);
    const facts = await manifestFacts(result.artifactDir);
    expect(facts.boot).toEqual({
      checked: true,
      passed: true,
      durationMs: 41_234,
      timeToBdsMs: 30_567,
      reachedBds: true,
      loadedDrivers: 2,
      accel: { accelerator: 'tcg', reason: 'no /dev/kvm' },
      source: 'igd-embedded-boot',
      qemuBoots: 2,
    });
    expect(facts.igd).toEqual(result.igd);
    expect(result.igd?.embedded).toMatchObject({ checked: true, passed: true, deviceId: '9b41' });
  });

  it('a user ROM: ROM mode is not booted, so one QEMU boot in all', async () => {
    const backend = new OneBootStandIn(await corpusHelpers());
    const result = await job(backend, '--gop', GOP, '--vbt', VBT, '--rom', USER_ROM);
    expect(backend.calls).toEqual(['bootAndIgd']);
    expect((await manifestFacts(result.artifactDir)).boot).toMatchObject({
      source: 'igd-embedded-boot',
      qemuBoots: 1,
    });
  });

  it('no helper drivers (no IGD check): the boot check boots on its own', async () => {
    const backend = new OneBootStandIn(await corpusHelpers());
    const plain = Object.assign(new StandInBuild(), { checks: () => backend.checks() });
    const captured = captureContext(['--gop', GOP, '--vbt', VBT, '--json'], env, dir);
    expect(await runMain(captured.ctx, plain.stages)).toBe(0);
    const result = JSON.parse(captured.stdout()) as JobJson;
    expect(backend.calls).toEqual(['boot']);
    expect(result.igd).toBeNull();
    expect((await manifestFacts(result.artifactDir)).boot).toMatchObject({
      checked: true,
      durationMs: 9_999,
      source: 'boot-check',
      qemuBoots: 1,
    });
  });

  it('RELEASE: no boot check, the IGD check alone; --no-verify-boot: neither', async () => {
    const backend = new OneBootStandIn(await corpusHelpers());
    const release = await job(backend, '--gop', GOP, '--vbt', VBT, '--target', 'RELEASE');
    expect(backend.calls).toEqual(['igd']);
    expect((await manifestFacts(release.artifactDir)).boot).toEqual({
      checked: false,
      reason: 'RELEASE builds print no debug log',
    });
    expect(release.igd?.embedded).toMatchObject({ checked: true, passed: true });
    await job(backend, '--gop', GOP, '--vbt', VBT, '--no-verify-boot');
    expect(backend.calls).toEqual(['igd']);
  });

  it('stand-in checks without the combined entry keep two boots: boot check, then IGD', async () => {
    const backend = new OneBootStandIn(await corpusHelpers());
    const checks = backend.checks();
    const twoBoots = Object.assign(new IgdStandIn(backend.helpers), {
      checks: (): VerifyChecks => ({
        structure: checks.structure,
        boot: checks.boot,
        ...(checks.igd === undefined ? {} : { igd: checks.igd }),
      }),
    });
    const captured = captureContext(['--gop', GOP, '--vbt', VBT, '--json'], env, dir);
    expect(await runMain(captured.ctx, twoBoots.stages)).toBe(0);
    const result = JSON.parse(captured.stdout()) as JobJson;
    expect(backend.calls).toEqual(['boot', 'igd']);
    expect((await manifestFacts(result.artifactDir)).boot).toMatchObject({
      durationMs: 9_999,
      source: 'boot-check',
      qemuBoots: 3,
    });
  });

  it("the combined boot's boot-check failure is the boot check's code (exit 10): nothing cached or published", async () => {
    const backend = new OneBootStandIn(await corpusHelpers());
    backend.bootFails = true;
    await expect(
      runMain(captureContext(['--gop', GOP, '--vbt', VBT, '--json'], env, dir).ctx, backend.stages),
    ).rejects.toSatisfy(
      (error: OvmfBuildError) => error.code === 'E_BOOT_CHECK_FAILED' && exitCodeFor(error) === 10,
    );
    expect(backend.calls).toEqual(['bootAndIgd']);
    expect(existsSync(path.join(dir, 'artifacts'))).toBe(false);
    expect((await readdir(buildCacheDir(env))).filter((name) => /^[0-9a-f]{64}$/u.test(name))).toEqual([]);
  });
});
