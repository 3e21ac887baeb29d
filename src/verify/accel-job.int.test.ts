// `--accel` through the main command: the option reaches the build request, and the
// accelerator and reason of a real boot check (real QEMU booting the tiny firmware) land in
// the --json output and in the published manifest.json. The EDK2 build is the stand-in of
// test/cache-stand-in.ts; the real build's boot check is the same verifyBoot call
// (src/edk2/build.ts), covered with a real EDK2 build by test/verify-boot.int.test.ts.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NO_CHECKS, StandInBuild } from '../../test/cache-stand-in.js';
import { captureContext } from '../../test/cli-harness.js';
import { CORPUS_DIR } from '../../test/corpus.js';
import { runMain } from '../cli/commands/ovmf.js';
import { main } from '../cli/main.js';
import type { BootCheckRequest, VerifyChecks } from '../jobs/stage-verify.js';
import { verifyBoot, type BootVerification } from './boot.js';
import { DEFAULT_GOP_FILE_GUID, DEFAULT_POLICY_FILE_GUID } from './guids.js';
import { buildTinyFirmware } from './tiny-firmware.js';

const GOP = path.join(CORPUS_DIR, 'gop/cometlake-mrchromebox-cml.efi');
const VBT = path.join(CORPUS_DIR, 'vbt/cometlake-intel-nuc10i5fnh.vbt');

/** A tiny firmware that prints our two drivers loading and BDS, and a blank variable store, in `dir`. */
async function tinyPair(dir: string): Promise<{ code: string; vars: string }> {
  const code = path.join(dir, 'tiny.fd');
  const vars = path.join(dir, 'vars.fd');
  const log = [
    `Loading driver ${DEFAULT_GOP_FILE_GUID}`,
    `Loading driver ${DEFAULT_POLICY_FILE_GUID}`,
    '[Bds] Entry',
    '',
  ].join('\n');
  await writeFile(code, buildTinyFirmware({ text: log, port: 0x402, end: 'hang' }));
  await writeFile(vars, new Uint8Array(0x1_0000).fill(0xff));
  return { code, vars };
}

/** The stand-in build, with a real boot check of a tiny firmware under the requested accelerator. */
class BootingStandIn extends StandInBuild {
  readonly requests: BootCheckRequest['accel'][] = [];
  constructor(
    private readonly work: string,
    private readonly kvmDevice: string,
  ) {
    super();
  }

  override checks(): VerifyChecks {
    return { ...NO_CHECKS, boot: (request) => this.boot(request) };
  }

  async boot(request: BootCheckRequest): Promise<BootVerification> {
    this.requests.push(request.accel);
    const { code: codePath, vars: varsPath } = await tinyPair(this.work);
    return verifyBoot({
      codePath,
      varsPath,
      bdsGraceMs: 100,
      kvmDevice: this.kvmDevice,
      env: request.env,
      accel: request.accel,
    });
  }
}

let dir: string;
let env: NodeJS.ProcessEnv;

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'accel-job-'));
  env = {
    PATH: process.env['PATH'],
    HOME: dir,
    XDG_CACHE_HOME: path.join(dir, 'cache'),
    XDG_CONFIG_HOME: path.join(dir, 'config'),
    XDG_STATE_HOME: path.join(dir, 'state'),
  };
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function run(
  backend: StandInBuild,
  ...argv: string[]
): Promise<{ exitCode: number; json: Record<string, unknown> }> {
  const captured = captureContext(['--gop', GOP, '--vbt', VBT, ...argv, '--json'], env, dir);
  const exitCode = await runMain(captured.ctx, backend.stages);
  return { exitCode, json: JSON.parse(captured.stdout()) as Record<string, unknown> };
}

describe('--accel on the main command', () => {
  it('auto by default: no KVM device, so TCG, "no <device>", in --json and in manifest.json; a cache hit reports the boot that verified the entry', async () => {
    const missing = path.join(dir, 'no-kvm');
    const backend = new BootingStandIn(dir, missing);
    const first = await run(backend);
    expect(first.exitCode).toBe(0);
    expect(backend.requests).toEqual(['auto']);
    expect(first.json['bootAccel']).toEqual({ accelerator: 'tcg', reason: `no ${missing}` });
    const manifest = JSON.parse(
      await readFile(path.join(String(first.json['artifactDir']), 'manifest.json'), 'utf8'),
    ) as { build: { facts: { boot: { accel: unknown } } } };
    expect(manifest.build.facts.boot.accel).toEqual({ accelerator: 'tcg', reason: `no ${missing}` });

    const hit = await run(backend);
    expect(hit.json['cacheHit']).toBe(true);
    expect(hit.json['bootAccel']).toEqual({ accelerator: 'tcg', reason: `no ${missing}` });
    expect(backend.requests).toEqual(['auto']);
  });

  it('--accel tcg reaches the boot check; a bad value is a usage error before anything runs', async () => {
    const backend = new BootingStandIn(dir, '/dev/null');
    const forced = await run(backend, '--accel', 'tcg');
    expect(backend.requests).toEqual(['tcg']);
    expect(forced.json['bootAccel']).toEqual({ accelerator: 'tcg', reason: 'forced by --accel tcg' });
    await expect(run(backend, '--accel', 'hvf', '--name', 'other')).rejects.toMatchObject({
      code: 'E_USAGE',
      message: '--accel must be auto or kvm or tcg, got `hvf`',
    });
    expect(backend.requests).toEqual(['tcg']);
  });
});

describe('ovmf-build verify-boot --accel', () => {
  async function cli(argv: string[]): Promise<{ exitCode: number; stdout: string; stderr: string }> {
    const captured = captureContext(argv, env, dir);
    const exitCode = await main(captured.ctx);
    return { exitCode, stdout: captured.stdout(), stderr: captured.stderr() };
  }

  it('--json carries the accelerator and why; the human verdict names them', async () => {
    const { code, vars } = await tinyPair(dir);
    const missing = path.join(dir, 'no-kvm');
    const json = await cli(['verify-boot', code, vars, '--kvm-device', missing, '--json']);
    expect(json.exitCode).toBe(0);
    expect((JSON.parse(json.stdout) as { accel: unknown }).accel).toEqual({
      accelerator: 'tcg',
      reason: `no ${missing}`,
    });
    const human = await cli(['verify-boot', code, vars, '--accel', 'tcg']);
    expect(human.exitCode).toBe(0);
    expect(human.stdout.split('\n')[0]).toMatch(
      /^PASS {2}reached BDS in \d+\.\d s \(QEMU ran \d+\.\d s, tcg, log from debugcon\)$/,
    );
    expect(human.stdout.split('\n')).toContain('  accelerator     tcg: forced by --accel tcg');
  });

  it('--accel kvm without a usable device exits 10 (E_BOOT_KVM_UNAVAILABLE) at once; a bad --accel exits 2', async () => {
    const { code, vars } = await tinyPair(dir);
    const missing = path.join(dir, 'no-kvm');
    const forced = await cli(['verify-boot', code, vars, '--accel', 'kvm', '--kvm-device', missing]);
    expect(forced.exitCode).toBe(10);
    expect(forced.stderr).toContain('E_BOOT_KVM_UNAVAILABLE');
    const bad = await cli(['verify-boot', code, vars, '--accel', 'fast']);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain('--accel must be auto, kvm, tcg, got `fast`');
  });
});
