// Builds OVMF for real: Debian's edk2 source package, the builder image, one clean build in a
// locked-down container through Podman's Docker API, then the structural and QEMU boot checks
// buildOvmf runs itself. The clean build is this file's subject, so it happens in any case: the
// file takes the product's lock of the default workspace (test/harness.ts), moves an existing
// workspace image out of the way, and commits the new one. When this file is part of a run,
// files that need the default workspace wait for this build (test/global-setup.ts names it the
// producer), so none of them uses the image moved away here and none pays for a clean build of
// its own. The builds from that workspace (compile errors, the warm path, `ovmf-build build`)
// are in test/build-warm.int.test.ts, so this file, on the run's critical path, holds only what
// needs the clean build itself; it checks that the workspace holds the clean build's bytes,
// which that file compares against.
// A second build with another VBT starts while the clean one runs: it waits on the workspace
// lock and then builds warm from the workspace the clean build commits.
import { createHash, randomBytes } from 'node:crypto';
import { access, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HeldLock, LockOwner } from '../src/cache/lock.js';
import type { ContainerEngine } from '../src/container/index.js';
import {
  buildOvmf,
  WORKSPACE_REPOSITORY,
  type BuildOvmfOptions,
  type BuildOvmfResult,
} from '../src/edk2/build.js';
import { checkBuild } from '../src/jobs/stage-verify.js';
import { inspectStructure } from '../src/verify/structural.js';
import {
  GOP_FILE_GUID,
  IGD_ASSIGNMENT_FILE_GUID,
  IGD_VOLUME_GUID,
  IGD_VOLUME_SIZES,
  igdVolumeBytesUsed,
  POLICY_FILE_GUID,
  VBT_FILE_GUID,
} from '../src/edk2/layout.js';
import type { Edk2Source } from '../src/edk2/source.js';
import { VariantTemplates } from '../src/edk2/variant-templates.js';
import { WorkspaceUse, type WorkspaceRetention } from '../src/edk2/workspace-retention.js';
import {
  buildJobId as jobId,
  containersOfJob as containersOn,
  dockerOf,
  failedBuild as failedBuildOf,
} from './build-jobs.js';
import { runCli } from './cli-harness.js';
import { CORPUS_DIR } from './corpus.js';
import {
  countCleanBuild,
  edk2Source,
  harness,
  markDefaultWorkspace,
  testEngine,
  testLogger,
  workspaceFor,
  workspaceLock,
  workspaceOutputs,
} from './harness.js';

const logger = testLogger();
const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

let engine: ContainerEngine;
let docker: Docker;
let source: Edk2Source;
let gop: Uint8Array;
let vbt: Uint8Array;
let clean: BuildOvmfResult;
let cleanJob: string;
/** Started while `clean` ran, with another VBT: waited for the workspace, then built warm. */
let follower: BuildOvmfResult;
let followerVbt: Uint8Array;
const followerWaits: (LockOwner | null)[] = [];
/** The clean build's and the template follower's session (what a nightly or worker keeps). */
const templates = new VariantTemplates();
/** Started beside `follower` with the same inputs, in the clean build's session. */
let templateFollower: BuildOvmfResult;
const templateFollowerWaits: (LockOwner | null)[] = [];
let templateFollowerDoneFirst = false;
let cleanFinished: number | undefined;
let cleanLockPath: string | undefined;
/** HostConfig/Config of the build container, inspected while it was running. */
let inspected: Docker.ContainerInspectInfo | undefined;
let tmp: string;
/** The default workspace that existed before (another run's), moved to this tag and removed after. */
let retiredRef: string | undefined;
/**
 * The clean build's workspace retention (edk2/workspace-retention.ts), with use records of its
 * own: keep 1, every workspace already there recorded as used now (so none of another file's
 * goes), and one more tag (of the builder image), recorded as last used two hours ago, that the
 * prune after the commit must remove.
 */
let retention: WorkspaceRetention;
const staleKey = `e0e0e0e0${randomBytes(8).toString('hex')}`;
const staleRef = `${WORKSPACE_REPOSITORY}:${staleKey}`;
let builderRef: string;
let cleanStartedAt = 0;

const containersOfJob = (id: string): Promise<string[]> => containersOn(docker, id);

/** A build of the corpus GOP/VBT (plus `options`) that must fail: its error and the job's containers after it. */
const failedBuild = (
  name: string,
  options: Partial<BuildOvmfOptions> = {},
): ReturnType<typeof failedBuildOf> => failedBuildOf({ gop, vbt, source, engine, logger }, name, options);

beforeAll(async () => {
  // The lock of the default workspace before anything else: a file that asks the harness for a
  // warm workspace meanwhile waits for this clean build instead of making its own.
  const workspace = await workspaceFor();
  const held: HeldLock = await workspaceLock(workspace.key);
  try {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'ovmf-build-build-int-'));
    gop = new Uint8Array(await readFile(path.join(CORPUS_DIR, 'gop/cometlake-mrchromebox-cml.efi')));
    vbt = new Uint8Array(await readFile(path.join(CORPUS_DIR, 'vbt/cometlake-intel-nuc10i5fnh.vbt')));
    followerVbt = new Uint8Array(
      await readFile(path.join(CORPUS_DIR, 'vbt/tigerlake-starlabs-starbook.vbt')),
    );
    source = edk2Source();
    engine = await testEngine(logger);
    docker = dockerOf(engine);
    // Start without the warm workspace, so the first build is clean and takes the workspace lock.
    // An existing one keeps its image under another tag: a warm build of another file may run
    // from it right now (Podman would refuse to remove it, and must not stop that build).
    if ((await engine.imageId(workspace.ref)) !== null) {
      retiredRef = `${WORKSPACE_REPOSITORY}:retired-${randomBytes(4).toString('hex')}`;
      const [repo, tag] = [WORKSPACE_REPOSITORY, retiredRef.slice(WORKSPACE_REPOSITORY.length + 1)];
      await docker.getImage(workspace.ref).tag({ repo, tag });
      await docker.getImage(workspace.ref).remove(); // only the tag: the image keeps the other one
    }
    expect(await engine.imageId(workspace.ref)).toBeNull();
    retention = { use: new WorkspaceUse(path.join(tmp, 'workspace-use')), keep: 1 };
    for (const image of await engine.taggedImages(WORKSPACE_REPOSITORY)) {
      const key = image.ref.slice(WORKSPACE_REPOSITORY.length + 1);
      if (/^[0-9a-f]{8,128}$/.test(key)) await retention.use.touch(WORKSPACE_REPOSITORY, key);
    }
    builderRef = harness().builderImage.ref;
    await docker.getImage(builderRef).tag({ repo: WORKSPACE_REPOSITORY, tag: staleKey });
    await retention.use.touch(WORKSPACE_REPOSITORY, staleKey, new Date(Date.now() - 2 * 3_600_000));
    cleanJob = jobId('clean');
    cleanStartedAt = Date.now();
    const cleanBuild = buildOvmf({
      gop,
      vbt,
      source,
      engine,
      logger,
      jobId: cleanJob,
      workspace: { reuse: true, commit: true },
      variantTemplates: templates,
      workspaceRetention: retention,
      // The lock taken above; buildOvmf releases it once the workspace is committed.
      workspaceLock: (key) => {
        expect(key).toBe(workspace.key);
        cleanLockPath = held.path;
        return Promise.resolve(held);
      },
      onProgress: (event) => {
        if (event.kind === 'stage' && event.stage === 'build' && inspected === undefined) {
          void containersOfJob(cleanJob).then(async ([id]) => {
            if (id !== undefined) inspected = await docker.getContainer(id).inspect();
          });
        }
      },
    });
    // The follower starts once the clean build holds the lock.
    for (let i = 0; cleanLockPath === undefined; i++) {
      if (i > 1200) throw new Error('the clean build never took the workspace lock');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await access(cleanLockPath);
    const followerBuild = buildOvmf({
      gop,
      vbt: followerVbt,
      source,
      engine,
      logger,
      jobId: jobId('follower'),
      workspace: { reuse: true, commit: true },
      workspaceLock: (key) => workspaceLock(key, (owner) => followerWaits.push(owner)),
    });
    // The same inputs in the clean build's session: it takes the template the clean build leaves
    // when its outputs are out, without waiting for the commit or starting a container.
    const templateFollowerBuild = buildOvmf({
      gop,
      vbt: followerVbt,
      source,
      engine,
      logger,
      jobId: jobId('template-follower'),
      workspace: { reuse: true, commit: true },
      variantTemplates: templates,
      workspaceLock: (key, signal) =>
        workspaceLock(key, (owner) => templateFollowerWaits.push(owner), signal),
    }).then((result) => {
      templateFollowerDoneFirst = cleanFinished === undefined;
      return result;
    });
    // The marker as soon as the workspace is committed, not after the follower too: the files
    // waiting for it (reproducible.int's clean build first) are the run's critical path.
    const cleanDone = cleanBuild.then(async (result) => {
      cleanFinished = performance.now();
      await countCleanBuild(result, 'build.int clean build');
      await markDefaultWorkspace('done');
      return result;
    });
    [clean, follower, templateFollower] = await Promise.all([
      cleanDone,
      followerBuild,
      templateFollowerBuild,
    ]);
  } catch (error) {
    // Files waiting for this workspace build it themselves then.
    await markDefaultWorkspace('failed');
    throw error;
  } finally {
    await held.release();
  }
});

afterAll(async () => {
  // Kept when a warm build of another file still runs from it; `ovmf-build cleanup --workspaces` removes it.
  if (retiredRef !== undefined) await engine?.removeImage(retiredRef, { force: false });
  // Only a tag of the builder image (should the prune not have removed it).
  if (builderRef !== undefined && (await engine?.imageId(staleRef)) !== null) {
    await docker.getImage(staleRef).remove({ force: false });
  }
  await engine?.[Symbol.asyncDispose]();
  await rm(tmp, { recursive: true, force: true });
});

describe('a clean build with a corpus GOP and VBT', () => {
  it("produces the 4 MiB layout, and the default VARS equal Debian's OVMF_VARS_4M.fd", async () => {
    expect([clean.code.length, clean.vars.length, clean.combined.length]).toEqual([
      0x37_c000, 0x8_4000, 0x40_0000,
    ]);
    // OVMF.fd is VARS followed by CODE (OvmfPkgX64.fdf [FD.OVMF]).
    expect(sha256(clean.combined)).toBe(sha256(new Uint8Array([...clean.vars, ...clean.code])));
    expect(sha256(clean.vars)).toBe(sha256(await readFile(path.join(CORPUS_DIR, 'ovmf/OVMF_VARS_4M.fd'))));
    expect(clean.mode).toBe('clean');
    expect(clean.buildPath).toBe('clean');
    // Started from the tools image (source + compiled BaseTools) of this source and builder image.
    expect(clean.toolsImage?.ref).toMatch(/^localhost\/ovmf-build\/edk2-tools:[0-9a-f]{24}$/);
    expect(clean.flags).toEqual({ fdSize: '4MB', target: 'DEBUG', network: true, secureBoot: false });
    expect(clean.sourceDigest).toBe(source.digest);
    // 277 "Building ..." lines for Debian edk2 2022.11-6+deb12u2 with the default flags.
    expect(clean.modulesBuilt).toBeGreaterThan(250);
    expect(clean.workspace).toMatchObject({ committed: true });
  });

  it('after its commit removed the workspace beyond the one kept that was not used for two hours, and only it', async () => {
    expect(await engine.imageId(staleRef)).toBeNull();
    // A tag only: the builder image it pointed at is still there.
    expect(await engine.imageId(builderRef)).not.toBeNull();
    expect(await retention.use.lastUsedMs(WORKSPACE_REPOSITORY, staleKey)).toBeUndefined();
    // The new workspace is there, its use recorded (after the commit: not before the build started).
    const key = (clean.workspace as { key: string; ref: string }).key;
    expect(await engine.imageId((clean.workspace as { ref: string }).ref)).not.toBeNull();
    // Recorded again after the commit: a clean build takes minutes before it commits.
    expect(await retention.use.lastUsedMs(WORKSPACE_REPOSITORY, key)).toBeGreaterThan(
      cleanStartedAt + 60_000,
    );
  });

  it('ran as uid 1000 without network, capabilities or new privileges, limited and labelled', () => {
    expect(clean.environment).toEqual({
      uid: 1000,
      gid: 1000,
      networkInterfaces: ['lo'],
      capabilityBoundingSet: '0000000000000000',
      noNewPrivileges: true,
    });
    expect(inspected).toBeDefined();
    const info = inspected as Docker.ContainerInspectInfo;
    expect(info.Config.User).toBe('1000:1000');
    expect(info.Config.Labels['ovmf-build.job']).toBe(cleanJob);
    expect(info.Config.Labels['ovmf-build.purpose']).toBe('edk2-build');
    expect(info.HostConfig.NetworkMode).toBe('none');
    // Docker keeps `ALL`; Podman lists each default capability it dropped, without the CAP_
    // prefix through its Docker-compatible API. The bounding set above is the real proof.
    const dropped = (info.HostConfig.CapDrop ?? []).map((name: string) => name.replace(/^CAP_/, ''));
    if (!dropped.includes('ALL')) {
      expect(dropped).toEqual(
        expect.arrayContaining([
          'CHOWN',
          'DAC_OVERRIDE',
          'FOWNER',
          'KILL',
          'NET_RAW',
          'SETGID',
          'SETUID',
          'SYS_CHROOT',
        ]),
      );
    }
    expect(info.HostConfig.SecurityOpt).toContain('no-new-privileges');
    expect(info.HostConfig.Memory).toBe(4 * 1024 * 1024 * 1024);
    expect(info.HostConfig.PidsLimit).toBe(4096);
  });

  it('was verified: exact GOP and VBT in the IGD volume, our drivers loaded at boot, BDS reached', async () => {
    const checked = await checkBuild(clean, { gop, vbt, logger, boot: true });
    expect(checked.structure).toMatchObject({
      gop: { fileGuid: GOP_FILE_GUID, sha256: sha256(gop), sizeInBytes: gop.length },
      vbt: { fileGuid: VBT_FILE_GUID, sha256: sha256(vbt), sizeInBytes: vbt.length },
      policy: { fileGuid: POLICY_FILE_GUID, subsystem: 'EFI_BOOT_SERVICE_DRIVER' },
      igdAssignment: { fileGuid: IGD_ASSIGNMENT_FILE_GUID, subsystem: 'EFI_BOOT_SERVICE_DRIVER' },
      dxeVolume: { compression: 'LZMA' },
      // Stored plain, outside the compressed DXE volume (platform-patch.ts).
      igdVolume: { name: '2A7B5C3D-9E1F-4A60-8B2C-6D4E3F1A0B9C', compression: null, fileCount: 2 },
    });
    expect(checked.boot?.passed).toBe(true);
    expect(checked.boot?.reachedBds).toBe(true);
    expect(checked.boot?.loadedDrivers).toEqual(
      expect.arrayContaining([GOP_FILE_GUID, POLICY_FILE_GUID, IGD_ASSIGNMENT_FILE_GUID]),
    );
    // Dispatched before the policy driver, so its PciIo notify runs first (the policy then sees ASLS).
    const loaded = checked.boot?.loadedDrivers ?? [];
    expect(loaded.indexOf(IGD_ASSIGNMENT_FILE_GUID)).toBeLessThan(loaded.indexOf(POLICY_FILE_GUID));
    expect(checked.boot?.summary.policyVbt).toMatchObject({
      found: true,
      sizeInBytes: vbt.length,
      signature: '$VBT SKYLAKE',
    });
  });

  it('fills the IGD volume (the start of OVMF_CODE.fd) exactly as far as the job computes before building', () => {
    const view = new DataView(clean.code.buffer, clean.code.byteOffset, clean.code.byteLength);
    expect(String.fromCharCode(...clean.code.subarray(0x28, 0x2c))).toBe('_FVH');
    const length = Number(view.getBigUint64(0x20, true));
    expect(length).toBe(IGD_VOLUME_SIZES[4096].igdVolume);
    // Walk the FFS files (8-byte aligned, 24-byte headers with a 3-byte size) to the free space.
    let at = view.getUint16(0x30, true);
    let end = at;
    const types: number[] = [];
    while (at + 24 <= length && clean.code.subarray(at, at + 24).some((byte) => byte !== 0xff)) {
      const size = view.getUint32(at + 20, true) & 0xff_ffff;
      types.push(clean.code[at + 18] ?? -1);
      end = at + size;
      at = Math.ceil(end / 8) * 8;
    }
    // The pad file holding the volume's name, the GOP driver (DRIVER), the VBT (FREEFORM).
    expect(types).toEqual([0xf0, 0x07, 0x02]);
    expect(end).toBe(igdVolumeBytesUsed(gop.length, vbt.length));
    expect(clean.code.subarray(end, length).every((byte) => byte === 0xff)).toBe(true);
  });

  it('its IGD volume in front of an OVMF whose DXE volume lacks IgdVolumeDxe is E_VERIFY_GOP_NOT_DRIVER', async () => {
    // Real bytes only: this build's IGD volume, then the corpus's third-party OVMF (gk41), whose
    // DXE volume has a GOP policy driver but not our IgdVolumeDxe, so no DXE core would ever
    // dispatch the GOP from the IGD volume. gk41's own policy driver stands in for both of ours.
    const volume = clean.code.subarray(0, IGD_VOLUME_SIZES[4096].igdVolume);
    const gk41 = await readFile(path.join(CORPUS_DIR, 'images/geminilake-ovmf-with-gop-vbt-gk41.fd'));
    const gk41Policy = '9737D7CA-D869-46E5-A5EF-75D9538688DE';
    const result = inspectStructure({
      code: Buffer.concat([volume, gk41]),
      gop,
      vbt,
      policyFileGuid: gk41Policy,
      igdAssignmentFileGuid: gk41Policy,
    });
    expect(result.report.igdVolume).toEqual({
      name: IGD_VOLUME_GUID,
      path: IGD_VOLUME_GUID,
      compression: null,
      fileCount: 2,
    });
    expect(result.failures).toEqual([
      {
        code: 'E_VERIFY_GOP_NOT_DRIVER',
        message:
          `GOP driver file ${GOP_FILE_GUID} is in the IGD volume ${IGD_VOLUME_GUID}, which the DXE dispatcher ` +
          `never sees: IgdVolumeDxe (5C0B1E4A-7D2F-4E61-9A53-2F6C8B1D0E7A), which hands it over, is not in the DXE volume`,
        details: {
          fileGuid: GOP_FILE_GUID,
          path: `${IGD_VOLUME_GUID}/IntelGopDriver`,
          igdVolumeDxe: '5C0B1E4A-7D2F-4E61-9A53-2F6C8B1D0E7A',
        },
      },
    ]);
  });

  it('exported the helper drivers: the very PE32 images in the DXE volume (ROM chains use them)', async () => {
    const { structure } = await checkBuild(clean, { gop, vbt, logger, boot: false });
    expect(sha256(clean.helperDrivers.igdAssignment)).toBe(structure.igdAssignment.sha256);
    expect(sha256(clean.helperDrivers.gopPolicy)).toBe(structure.policy.sha256);
    expect(clean.helperDrivers.igdAssignment.length).toBe(structure.igdAssignment.sizeInBytes);
    expect(follower.helperDrivers).toEqual(clean.helperDrivers);
  });

  it('left no container behind', async () => {
    expect(await containersOfJob(cleanJob)).toEqual([]);
    expect(await engine.imageId(clean.workspace?.ref as string)).not.toBeNull();
  });

  it('committed its workspace with the very bytes it returned (what warm builds are compared with)', async () => {
    const committed = await workspaceOutputs(engine, clean.workspace?.ref as string);
    expect({
      code: sha256(committed.code),
      vars: sha256(committed.vars),
      combined: sha256(committed.combined),
      igdAssignment: sha256(committed.igdAssignment),
      gopPolicy: sha256(committed.gopPolicy),
    }).toEqual({
      code: sha256(clean.code),
      vars: sha256(clean.vars),
      combined: sha256(clean.combined),
      igdAssignment: sha256(clean.helperDrivers.igdAssignment),
      gopPolicy: sha256(clean.helperDrivers.gopPolicy),
    });
  });
});

describe('the variant path without a container (VariantTemplates)', () => {
  it("a build waiting for the clean build's lock took its template before the commit, with the same bytes as from the workspace", async () => {
    expect(templateFollowerWaits).toHaveLength(1);
    expect(templateFollowerDoneFirst).toBe(true);
    expect([templateFollower.mode, templateFollower.buildPath, templateFollower.variantFrom]).toEqual([
      'warm',
      'variant',
      'template',
    ]);
    expect(templateFollower.variantOf).toBe(cleanJob);
    expect([
      templateFollower.containerId,
      templateFollower.containerDurationMs,
      templateFollower.workspace,
    ]).toEqual(['', 0, null]);
    expect(follower.variantFrom).toBe('workspace');
    // The same GOP and VBT by GenSec, GenFfs and GenFv in the committed workspace: the same bytes.
    for (const name of ['code', 'vars', 'combined'] as const) {
      expect(sha256(templateFollower[name]), name).toBe(sha256(follower[name]));
    }
    expect(templateFollower.helperDrivers).toEqual(clean.helperDrivers);
    expect(templates.get(clean.workspace?.key as string)?.jobId).toBe(cleanJob);
  });
});

describe('the workspace lock', () => {
  it('a build started during the clean one waited for it, then built warm from its workspace', async () => {
    expect(clean.mode).toBe('clean');
    expect(followerWaits).toHaveLength(1);
    expect(followerWaits[0]?.pid).toBe(process.pid);
    expect(follower.mode).toBe('warm');
    // Only the VBT differs, which the IGD volume packages: the variant path.
    expect(follower.buildPath).toBe('variant');
    expect(follower.workspace).toEqual({ ...clean.workspace, committed: false });
    expect(
      (await checkBuild(follower, { gop, vbt: followerVbt, logger, boot: false })).structure,
    ).toMatchObject({
      vbt: { sha256: sha256(followerVbt) },
      gop: { sha256: sha256(gop) },
    });
    // Only the firmware volumes are made again: a fraction of the clean build's container time.
    expect(follower.containerDurationMs).toBeLessThan(clean.containerDurationMs / 3);
  });
});

describe('failures and aborts', () => {
  it('an input that is not a GOP driver fails before any container exists', async () => {
    const notGop = await readFile(path.join(CORPUS_DIR, 'gop/not-a-gop-asrock-b85pro4-IntelGopDriver.efi'));
    const { error, containers } = await failedBuild('notgop', { gop: notGop });
    expect(error.code).toBe('E_INPUT_NOT_GOP');
    expect(containers).toEqual([]);
  });

  it('an abort while building stops and removes the container', async () => {
    const controller = new AbortController();
    const { error, containers } = await failedBuild('abort', {
      signal: controller.signal,
      onProgress: (event) => {
        if (event.kind === 'stage' && event.stage === 'setup') controller.abort(new Error('test abort'));
      },
    });
    expect(error.code).toBe('E_ABORTED');
    expect(containers).toEqual([]);
  });
});

describe('ovmf-build build', () => {
  it('rejects bad usage with exit code 2 and an unreadable input with 6', async () => {
    expect((await runCli(['build', '--gop', 'x.efi'])).code).toBe(2);
    expect((await runCli(['build', '--gop', 'a', '--vbt', 'b', '--fd-size', '8MB'])).code).toBe(2);
    expect((await runCli(['build', '--gop', 'a', '--vbt', 'b', '--edk2-tarball', 'x.tar'])).code).toBe(2);
    const missing = await runCli([
      'build',
      '--gop',
      path.join(tmp, 'none.efi'),
      '--vbt',
      path.join(tmp, 'none.vbt'),
    ]);
    expect(missing.code).toBe(6);
    expect(missing.stderr).toContain('[E_INPUT_NOT_FOUND]');
  });
});
