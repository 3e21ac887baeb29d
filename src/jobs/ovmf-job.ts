// The main job, `ovmf-build --gop x --vbt y`: validate the inputs (milliseconds), compute
// the cache key, serve a hit (re-verified) or build under the key's lock (explaining the
// miss), verify, store the entry atomically and publish a signed artifact atomically.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { buildCacheDir, userCacheDir, userConfigDir } from '../cache/paths.js';
import {
  CacheStore,
  computeCacheKey,
  digestOf,
  getOrBuild,
  type CacheKey,
  type CacheKeyDetails,
  type MissExplanation,
} from '../cache/index.js';
import { sha256 } from '../core/digest.js';
import { OvmfBuildError, UsageError, throwIfAborted } from '../core/errors.js';
import type { BuildFlags } from '../edk2/flags.js';
import type { Edk2SourceSpec } from '../edk2/source.js';
import type { InputOrigin, InputSpec } from '../fetch/index.js';
import { resolveInput } from '../fetch/resolve-input.js';
import { assertGopDriver, type GopDriverInfo } from '../formats/gop.js';
import { assertVbt, type VbtInfo } from '../formats/vbt.js';
import { igdWiring, lookupDevice, type IgdPlatform } from '../igd/device-table.js';
import { generationWarnings, gopFamily } from '../igd/generation.js';
import { loadIgdDeviceTable } from '../igd/load.js';
import { generationArtifactName } from '../publish/naming.js';
import {
  DEFAULT_ROM_FILE,
  findPublished,
  publishArtifact,
  assertArtifactName,
  type PublishedArtifact,
} from '../publish/index.js';
import type { AccelMode, AcceleratorChoice } from '../verify/accel.js';
import type { IgdVerification } from '../verify/igd-check.js';
import type { BuildEnvironment, JobBackend, BackendContext, BuiltFirmware } from './backend.js';
import type { HelperDrivers, PreparedRom } from './rom.js';
import {
  DEFAULT_DEVICE_ID,
  INTEL_VENDOR_ID,
  ROM_GENERATOR_VERSION,
  generatedRomKeyInput,
} from './rom-key.js';

/**
 * Bumped whenever the way inputs become the cached outputs changes in this layer (what is
 * stored, how the ROM is chosen...). Part of every cache key.
 */
export const BUILD_LOGIC_VERSION = '1';
export const CODE_ENTRY_FILE = 'OVMF_CODE.fd';
export const VARS_ENTRY_FILE = 'OVMF_VARS.fd';
export const ROM_ENTRY_FILE = 'vbios.rom';
const MAX_KEY_RESOLUTIONS = 3;

export type JobInputs =
  { readonly gop: InputSpec; readonly vbt: InputSpec } | { readonly firmware: InputSpec };

export type JobEvent =
  | { readonly type: 'phase'; readonly phase: string; readonly message: string }
  | { readonly type: 'progress'; readonly line: string }
  | { readonly type: 'note'; readonly message: string };

export interface OvmfJobOptions {
  readonly inputs: JobInputs;
  /** @default 'q35' */
  readonly machine: 'q35' | 'i440fx';
  /** The artifact store (--out). */
  readonly storeDir: string;
  /** Artifact name; derived from the VBT signature and GOP build when absent. */
  readonly name?: string;
  /** A user ROM; otherwise one is generated from the GOP for `deviceId`. */
  readonly rom?: InputSpec;
  readonly deviceId?: number;
  readonly flags: BuildFlags;
  readonly source: Edk2SourceSpec;
  /** Refuse downloads and registry pulls. @default false */
  readonly offline: boolean;
  /** @default true */
  readonly verifyBoot: boolean;
  /** QEMU accelerator of the boot check (verify/accel.ts). @default 'auto' */
  readonly bootAccel?: AccelMode;
  /**
   * Compile everything instead of starting from a committed EDK2 workspace. Not part of the
   * key: a warm and a clean build give the same bytes (the EDK2 helper's reproducibility test).
   * @default false
   */
  readonly cleanBuild?: boolean;
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
  readonly signal: AbortSignal;
  readonly backend: JobBackend;
  readonly logger: Logger;
  readonly jobId: string;
  readonly onEvent?: (event: JobEvent) => void;
  /** Recipe facts recorded in the manifest. */
  readonly recipe?: { readonly name: string; readonly file: string };
  /** Tool version recorded in the manifest. */
  readonly toolVersion: string;
}

export interface MissReport {
  readonly reason: 'absent' | 'corrupt';
  readonly corruption: unknown;
  readonly nearestKey: string | null;
  readonly differences: MissExplanation['differences'];
  readonly lines: readonly string[];
}

export interface OvmfJobResult {
  readonly cacheHit: boolean;
  readonly key: string;
  readonly details: CacheKeyDetails;
  readonly name: string;
  readonly version: string;
  readonly artifactDir: string;
  readonly files: { readonly code: string; readonly vars: string; readonly rom: string };
  readonly reusedArtifact: boolean;
  readonly waitedForLock: boolean;
  readonly miss: MissReport | null;
  readonly durationMs: number;
  /**
   * The IGD assignment checks that verified this firmware (embedded and ROM mode), recorded by
   * the build; null when none ran (--no-verify-boot, or a backend without IGD drivers).
   */
  readonly igd: IgdVerification | null;
  /**
   * The accelerator of the boot check that verified this firmware, and why (recorded by the
   * build, so a cache hit reports the boot that verified the entry); null without a boot check.
   */
  readonly bootAccel: AcceleratorChoice | null;
}

/** `facts.boot.accel` of a cache entry's build, when its boot check ran. */
function bootAccelOf(meta: Readonly<Record<string, unknown>>): AcceleratorChoice | null {
  const facts = meta['facts'] as { boot?: { accel?: AcceleratorChoice } } | undefined;
  const accel = facts?.boot?.accel;
  return accel === undefined ? null : { accelerator: accel.accelerator, reason: accel.reason };
}

interface ValidatedInputs {
  readonly gop: {
    readonly bytes: Uint8Array;
    readonly sha256: string;
    readonly info: GopDriverInfo;
    readonly origin: unknown;
  };
  readonly vbt: {
    readonly bytes: Uint8Array;
    readonly sha256: string;
    readonly info: VbtInfo;
    readonly origin: unknown;
  };
  readonly firmware: { readonly sha256: string; readonly origin: InputOrigin } | null;
  readonly rom: RomPlan;
  readonly device: DeviceFacts;
}

/** The device's platform (device table) and what contradicts it in the GOP and VBT. */
async function deviceFacts(
  deviceId: number | undefined,
  gop: GopDriverInfo,
  vbt: VbtInfo,
): Promise<DeviceFacts> {
  if (deviceId === undefined) {
    return { deviceId: null, platform: undefined, warnings: [] };
  }
  const id = deviceId.toString(16).padStart(4, '0');
  const platform = lookupDevice(await loadIgdDeviceTable(), id);
  return { deviceId: id, platform, warnings: generationWarnings({ deviceId: id, platform, gop, vbt }) };
}

/**
 * The ROM's key input and source now; its bytes only when a build needs them (a generated
 * ROM chains the build's own helper drivers; without them, from a backend that builds none,
 * it is GOP-only).
 */
interface RomPlan {
  readonly keyInput: string;
  readonly source: PreparedRom['source'];
  readonly warnings: readonly string[];
  bytes(helpers: HelperDrivers | null): Promise<Uint8Array>;
}

/** What --device says, for the manifest, the name and the warnings. */
interface DeviceFacts {
  readonly deviceId: string | null;
  readonly platform: IgdPlatform | undefined;
  readonly warnings: readonly string[];
}

/** `facts.igd` of a cache entry's build: the IGD checks that verified it. */
function igdOf(meta: Readonly<Record<string, unknown>>): IgdVerification | null {
  const facts = meta['facts'] as { igd?: IgdVerification } | undefined;
  return facts?.igd ?? null;
}

/**
 * Runs the IGD assignment check (issue 9, item 5) on a fresh build before it is stored: our
 * firmware with the device at 00:02.0 (embedded mode) and the generated ROM on Debian's stock
 * OVMF (ROM mode), for the --device, or else a device of the GOP's generation. A failed check
 * throws E_VERIFY_IGD_CHECK_FAILED, so nothing is cached or published.
 */
async function checkIgdOfBuild(
  options: OvmfJobOptions,
  inputs: ValidatedInputs,
  built: BuiltFirmware,
  rom: Uint8Array,
): Promise<IgdVerification | null> {
  const backend = options.backend;
  if (!options.verifyBoot || backend.verifyIgd === undefined || built.helperDrivers === undefined)
    return null;
  const igd = await import('../verify/igd-check.js');
  const table = await loadIgdDeviceTable();
  const family = gopFamily(inputs.gop.info);
  let deviceId = inputs.device.platform === undefined ? null : inputs.device.deviceId;
  let deviceReason = '--device';
  if (deviceId === null) {
    deviceId = (family === null ? undefined : igd.REPRESENTATIVE_DEVICE[family.key]) ?? igd.FALLBACK_DEVICE;
    deviceReason =
      family === null
        ? 'no --device and no generation known from the GOP: a Gen9 device'
        : `no --device: a device of the GOP's generation (${family.description})`;
  }
  const platform = lookupDevice(table, deviceId);
  if (platform === undefined) return null;
  const boot = built.facts['boot'] as { accel?: { accelerator?: unknown } } | undefined;
  const accelerator = boot?.accel?.accelerator === 'kvm' ? 'kvm' : 'tcg';
  const generated = inputs.rom.source.kind === 'generated';
  const verification = await backend.verifyIgd({
    code: built.code,
    vars: built.vars,
    rom: generated ? rom : null,
    romSkipReason: 'a user ROM: ROM mode is checked only for the generated IGD ROM chain',
    vbt: inputs.vbt.bytes,
    deviceId,
    platform,
    deviceReason,
    accelerator,
    smm: options.flags.secureBoot,
    env: options.env,
    signal: options.signal,
    logger: options.logger,
  });
  options.logger.info({ igd: verification }, 'IGD assignment check');
  igd.assertIgdVerificationPassed(verification);
  return verification;
}

/** Tells the caller the key must be recomputed (the memoized environment was stale). */
class KeyChanged extends Error {}

async function validateInputs(options: OvmfJobOptions): Promise<ValidatedInputs> {
  const downloadDir = path.join(userCacheDir(options.env), 'downloads');
  const common = { cwd: options.cwd, downloadDir, signal: options.signal, offline: options.offline };
  let gopBytes: Uint8Array;
  let vbtBytes: Uint8Array;
  let gopOrigin: unknown;
  let vbtOrigin: unknown;
  let firmware: ValidatedInputs['firmware'] = null;
  if ('firmware' in options.inputs) {
    const image = await resolveInput(options.inputs.firmware, common);
    // The firmware parser (and its decompressors) load only for --firmware.
    const { parseFirmware } = await import('../formats/firmware-tree.js');
    const { locateGopAndVbt, gopNotFoundError, vbtNotFoundError } = await import('../formats/locate.js');
    const located = locateGopAndVbt(parseFirmware(image.bytes));
    if (located.gop === null) throw gopNotFoundError(located);
    if (located.vbt === null) throw vbtNotFoundError(located);
    gopBytes = located.gop.body;
    // The VBT's own size (vbt_size) ends the table; the section may carry padding after it.
    vbtBytes = located.vbt.body.subarray(0, located.vbt.info.vbtSize);
    gopOrigin = { kind: 'firmware', path: located.gop.path, fileGuid: located.gop.guid };
    vbtOrigin = { kind: 'firmware', path: located.vbt.path, fileGuid: located.vbt.guid };
    firmware = { sha256: image.sha256, origin: image.origin };
  } else {
    // allSettled: when one input fails, the other's download has finished (and cleaned up)
    // before the error is reported, so nothing is left in flight.
    const [gopResult, vbtResult] = await Promise.allSettled([
      resolveInput(options.inputs.gop, common),
      resolveInput(options.inputs.vbt, common),
    ]);
    if (gopResult.status === 'rejected') throw gopResult.reason;
    if (vbtResult.status === 'rejected') throw vbtResult.reason;
    const gop = gopResult.value;
    const vbt = vbtResult.value;
    gopBytes = gop.bytes;
    vbtBytes = vbt.bytes;
    gopOrigin = gop.origin;
    vbtOrigin = vbt.origin;
  }
  const gopInfo = assertGopDriver(gopBytes);
  const vbtInfo = assertVbt(vbtBytes);
  let rom: RomPlan;
  if (options.rom !== undefined) {
    const user = await resolveInput(options.rom, common);
    // The ROM parser loads only for --rom; a bad ROM fails here, before any build.
    const { prepareRom } = await import('./rom.js');
    // Our OVMF carries IgdAssignmentDxe (embedded mode), so a GOP-only user ROM is fine here.
    const prepared = prepareRom({
      kind: 'user',
      bytes: user.bytes,
      origin: user.origin,
      firmwareHasIgdAssignment: true,
    });
    rom = {
      keyInput: prepared.keyInput,
      source: prepared.source,
      warnings: prepared.warnings,
      bytes: () => Promise.resolve(prepared.bytes),
    };
  } else {
    const deviceId = options.deviceId ?? DEFAULT_DEVICE_ID;
    rom = {
      keyInput: generatedRomKeyInput(deviceId),
      source: {
        kind: 'generated',
        vendorId: INTEL_VENDOR_ID,
        deviceId,
        generatorVersion: ROM_GENERATOR_VERSION,
      },
      warnings: [],
      bytes: async (helpers) => {
        const { buildIgdRom, prepareRom } = await import('./rom.js');
        if (helpers === null) return buildIgdRom({ gop: gopBytes, helpers: null, deviceId }).bytes;
        return prepareRom({ kind: 'generated', gop: gopBytes, helpers, deviceId }).bytes;
      },
    };
  }
  const device = await deviceFacts(options.deviceId, gopInfo, vbtInfo);
  return {
    device,
    gop: { bytes: gopBytes, sha256: gopInfo.sha256, info: gopInfo, origin: gopOrigin },
    vbt: { bytes: vbtBytes, sha256: sha256(vbtBytes), info: vbtInfo, origin: vbtOrigin },
    firmware,
    rom,
  };
}

/** The key of a request, from validated inputs and the build environment. */
export function keyFor(
  inputs: Pick<ValidatedInputs, 'gop' | 'vbt' | 'rom'>,
  environment: BuildEnvironment,
  flags: BuildFlags,
  machine: 'q35' | 'i440fx',
): CacheKey {
  return computeCacheKey({
    edk2Source: environment.edk2SourceDigest,
    overlay: environment.overlayDigest,
    builderImage: environment.builderImageId,
    flags: digestOf(flags),
    target: flags.target,
    gop: inputs.gop.sha256,
    vbt: inputs.vbt.sha256,
    machine,
    rom: inputs.rom.keyInput,
    buildLogicVersion: BUILD_LOGIC_VERSION,
  });
}

function sameEnvironment(a: BuildEnvironment, b: BuildEnvironment): boolean {
  return (
    a.edk2SourceDigest === b.edk2SourceDigest &&
    a.overlayDigest === b.overlayDigest &&
    a.builderImageId === b.builderImageId
  );
}

/** Validates inputs and computes the key without building: for `cache why --gop ...`. */
export async function requestKey(
  options: Omit<OvmfJobOptions, 'storeDir' | 'onEvent' | 'toolVersion'>,
): Promise<{ key: CacheKey; environment: BuildEnvironment }> {
  const inputs = await validateInputs(options as OvmfJobOptions);
  if (options.flags.secureBoot && options.machine === 'i440fx') {
    throw new UsageError('--secure-boot needs SMM, which QEMU emulates only on q35; use --machine q35');
  }
  const context = backendContext(options as OvmfJobOptions);
  const environment = await options.backend.resolveEnvironment(context, { verify: false });
  return { key: keyFor(inputs, environment, options.flags, options.machine), environment };
}

function backendContext(options: OvmfJobOptions): BackendContext {
  return {
    env: options.env,
    logger: options.logger,
    signal: options.signal,
    jobId: options.jobId,
    source: options.source,
    flags: options.flags,
    offline: options.offline,
  };
}

export async function runOvmfJob(options: OvmfJobOptions): Promise<OvmfJobResult> {
  const started = performance.now();
  const { logger } = options;
  const emit = (event: JobEvent): void => options.onEvent?.(event);
  if (options.flags.secureBoot && options.machine === 'i440fx') {
    throw new UsageError('--secure-boot needs SMM, which QEMU emulates only on q35; use --machine q35');
  }
  if (options.name !== undefined) {
    try {
      assertArtifactName(options.name);
    } catch (error) {
      throw new UsageError((error as Error).message, { name: options.name });
    }
  }
  emit({ type: 'phase', phase: 'validate', message: 'checking the GOP driver, VBT and ROM' });
  const inputs = await validateInputs(options);
  logger.info(
    {
      gop: { sha256: inputs.gop.sha256, build: inputs.gop.info.build },
      vbt: { sha256: inputs.vbt.sha256, signature: inputs.vbt.info.signature },
      rom: inputs.rom.source,
    },
    'inputs validated',
  );
  for (const warning of [...inputs.device.warnings, ...inputs.rom.warnings]) {
    logger.warn({ warning }, 'input warning');
    emit({ type: 'note', message: `warning: ${warning}` });
  }
  const family = gopFamily(inputs.gop.info);
  if (inputs.device.deviceId === null && options.name === undefined && options.recipe === undefined) {
    emit({
      type: 'note',
      message:
        family === null
          ? 'no --device: the GOP driver does not tell its generation, so the artifact is named by GOP build only; give --device 8086:XXXX (lspci -n -s 00:02.0)'
          : `no --device: generation inferred from the GOP driver, ${family.description}; give --device 8086:XXXX (lspci -n -s 00:02.0) to name the platform`,
    });
  }
  const name =
    options.name ??
    options.recipe?.name ??
    generationArtifactName({
      platformKey: inputs.device.platform?.key ?? null,
      deviceId: inputs.device.platform === undefined ? null : inputs.device.deviceId,
      gopFamilyKey: family?.key ?? null,
      gopBuild: inputs.gop.info.build,
    });
  const store = new CacheStore({ root: buildCacheDir(options.env) });
  const context = backendContext(options);

  emit({ type: 'phase', phase: 'key', message: 'computing the cache key' });
  let environment = await options.backend.resolveEnvironment(context, { verify: false });
  let miss: MissReport | null = null;
  for (let attempt = 1; ; attempt += 1) {
    throwIfAborted(options.signal);
    const key = keyFor(inputs, environment, options.flags, options.machine);
    await store.recordRequest(key);
    logger.info(
      { key: key.value, details: key.details, environmentFromMemo: environment.fromMemo },
      'cache key',
    );
    try {
      const result = await getOrBuild(
        store,
        key,
        async () => {
          emit({
            type: 'phase',
            phase: 'prepare',
            message: 'preparing the build (engine, builder image, EDK2 source)',
          });
          const removed = await options.backend.removeLeftovers(context);
          if (removed.length > 0) {
            emit({ type: 'note', message: `removed ${removed.length} container(s) left by killed runs` });
          }
          const verified = await options.backend.resolveEnvironment(context, { verify: true });
          if (!sameEnvironment(verified, environment)) {
            logger.info(
              { memo: environment, verified },
              'memoized build environment was stale; recomputing the key',
            );
            environment = verified;
            throw new KeyChanged();
          }
          emit({ type: 'phase', phase: 'build', message: 'building OVMF with EDK2 in a container' });
          const built = await options.backend.build({
            ...context,
            gop: inputs.gop.bytes,
            vbt: inputs.vbt.bytes,
            machine: options.machine,
            verifyBoot: options.verifyBoot,
            bootAccel: options.bootAccel ?? 'auto',
            cleanBuild: options.cleanBuild === true,
            onProgress: (line) => emit({ type: 'progress', line }),
          });
          if (
            built.builderImageId !== environment.builderImageId ||
            built.edk2SourceDigest !== environment.edk2SourceDigest
          ) {
            throw new OvmfBuildError(
              'E_CACHE_KEY_STALE',
              'the build used another builder image or EDK2 source than the cache key names',
              {
                key: { builderImage: environment.builderImageId, edk2Source: environment.edk2SourceDigest },
                build: { builderImage: built.builderImageId, edk2Source: built.edk2SourceDigest },
              },
            );
          }
          const romBytes = await inputs.rom.bytes(built.helperDrivers ?? null);
          emit({
            type: 'phase',
            phase: 'verify-igd',
            message: 'checking IGD assignment in QEMU (embedded and ROM mode)',
          });
          const igd = await checkIgdOfBuild(options, inputs, built, romBytes);
          emit({ type: 'phase', phase: 'store', message: 'writing the cache entry' });
          return {
            files: {
              [CODE_ENTRY_FILE]: built.code,
              [VARS_ENTRY_FILE]: built.vars,
              [ROM_ENTRY_FILE]: romBytes,
            },
            meta: {
              jobId: options.jobId,
              buildDurationMs: built.durationMs,
              facts: igd === null ? built.facts : { ...built.facts, igd },
              miss,
              builderImageRef: environment.builderImageRef,
              edk2SourceDescription: environment.edk2SourceDescription,
            },
          };
        },
        {
          signal: options.signal,
          onMiss: async (reason, corruption) => {
            const explanation = await store.explainMiss(key.details, { excludeKey: key.value });
            miss = {
              reason,
              corruption,
              nearestKey: explanation.nearest?.key ?? null,
              differences: explanation.differences,
              lines: explanation.lines,
            };
            logger.info({ miss }, 'cache miss');
            const why =
              reason === 'corrupt' ? 'the cached entry was corrupt and was discarded' : 'not in the cache';
            emit({
              type: 'phase',
              phase: 'miss',
              message: `cache miss (${why}): ${explanation.lines.join('; ')}`,
            });
          },
          onWait: (owner) => {
            const by = owner === null ? 'another process' : `process ${owner.pid} on ${owner.host}`;
            emit({ type: 'note', message: `${by} is building the same key; waiting for it` });
            logger.info({ owner }, 'waiting for the key lock');
          },
          onLockBroken: (owner, reason) => logger.warn({ owner, reason }, 'broke a stale cache lock'),
        },
      );
      emit({ type: 'phase', phase: 'publish', message: 'publishing the artifact' });
      const published = await publishResult(
        options,
        name,
        key,
        result.entry.createdAt,
        result.files,
        inputs,
        environment,
        result.entry.meta,
      );
      const durationMs = Math.round(performance.now() - started);
      logger.info({ artifactDir: published.artifactDir, cacheHit: result.cacheHit, durationMs }, 'job done');
      return {
        cacheHit: result.cacheHit,
        key: key.value,
        details: key.details,
        name,
        version: published.version,
        artifactDir: published.artifactDir,
        files: published.files,
        reusedArtifact: published.reused,
        waitedForLock: result.waitedForLock,
        miss: result.cacheHit && !result.waitedForLock ? null : miss,
        durationMs,
        igd: igdOf(result.entry.meta),
        bootAccel: bootAccelOf(result.entry.meta),
      };
    } catch (error) {
      if (error instanceof KeyChanged && attempt < MAX_KEY_RESOLUTIONS) continue;
      if (error instanceof KeyChanged) {
        throw new OvmfBuildError(
          'E_CACHE_KEY_UNSTABLE',
          'the build environment kept changing while computing the key',
        );
      }
      throw error;
    }
  }
}

async function publishResult(
  options: OvmfJobOptions,
  name: string,
  key: CacheKey,
  builtAt: string,
  files: ReadonlyMap<string, Uint8Array>,
  inputs: ValidatedInputs,
  environment: BuildEnvironment,
  meta: Readonly<Record<string, unknown>>,
): Promise<PublishedArtifact> {
  const configDir = userConfigDir(options.env);
  const keyPem = await readFile(path.join(configDir, 'signing-key.pub'), 'utf8').catch(() => undefined);
  const existing = await findPublished(
    options.storeDir,
    name,
    key.value,
    keyPem === undefined ? {} : { publicKeyPem: keyPem },
  );
  if (existing !== null) return existing;
  const code = files.get(CODE_ENTRY_FILE);
  const vars = files.get(VARS_ENTRY_FILE);
  const rom = files.get(ROM_ENTRY_FILE);
  if (code === undefined || vars === undefined || rom === undefined) {
    throw new OvmfBuildError(
      'E_CACHE_ENTRY_INCOMPLETE',
      `cache entry ${key.value} lacks a firmware or ROM file`,
      {
        key: key.value,
      },
    );
  }
  // Which delivery modes the published files serve: embedded (our OVMF does everything) always;
  // ROM mode (the ROM alone makes a stock OVMF do IGD assignment) when the ROM carries the helpers.
  const { classifyRomChain } = await import('../formats/rom-chain.js');
  const romChain = classifyRomChain(rom);
  const romMode = romChain.hasIgdAssignment && romChain.hasGopPolicy && romChain.hasGop;
  const platform = inputs.device.platform;
  const wiring = platform === undefined ? undefined : igdWiring(platform);
  return publishArtifact({
    name,
    keyValue: key.value,
    files: { code, vars, rom },
    storeDir: options.storeDir,
    configDir,
    machine: options.machine,
    target: options.flags.target,
    secureBoot: options.flags.secureBoot,
    romMode,
    ...(platform === undefined || wiring === undefined
      ? {}
      : {
          igd: {
            deviceId: `8086:${inputs.device.deviceId ?? ''}`,
            platformName: platform.name,
            graphicsVersion: platform.graphicsVersion,
            legacyMode: wiring.legacyMode,
            minQemu: wiring.minQemu,
            bdsm: platform.bdsm,
          },
        }),
    manifest: {
      formatVersion: 1,
      deliveryModes: {
        embedded: {
          files: [CODE_ENTRY_FILE, VARS_ENTRY_FILE],
          what: 'this OVMF carries the GOP, PlatformGopPolicyDxe (VBT from the host OpRegion, the built-in VBT only as fallback) and IgdAssignmentDxe',
        },
        rom: romMode
          ? {
              files: [DEFAULT_ROM_FILE],
              what: "the ROM alone makes a stock OVMF (Debian's or Proxmox's OVMF_CODE_4M.fd) do IGD assignment: fastest path when the VM's OVMF is stock",
              images: romChain.images.map((image) => image.role),
            }
          : {
              files: [],
              what: 'not available: the ROM carries no IGD assignment and GOP policy images',
              images: romChain.images.map((image) => image.role),
            },
      },
      tool: { name: 'ovmf-build', version: options.toolVersion },
      builtAt,
      inputs: {
        gop: {
          sha256: inputs.gop.sha256,
          sizeInBytes: inputs.gop.bytes.length,
          origin: inputs.gop.origin,
          build: inputs.gop.info.build,
          buildNote: inputs.gop.info.buildNote,
          controllerName: inputs.gop.info.controllerName,
        },
        vbt: {
          sha256: inputs.vbt.sha256,
          sizeInBytes: inputs.vbt.bytes.length,
          origin: inputs.vbt.origin,
          signature: inputs.vbt.info.signature,
          version: inputs.vbt.info.version,
          bdbVersion: inputs.vbt.info.bdbVersion,
        },
        ...(inputs.firmware === null ? {} : { firmware: inputs.firmware }),
        rom: { sha256: sha256(rom), sizeInBytes: rom.length, source: inputs.rom.source },
        device:
          inputs.device.deviceId === null
            ? null
            : {
                id: `8086:${inputs.device.deviceId}`,
                platform:
                  inputs.device.platform === undefined
                    ? null
                    : {
                        key: inputs.device.platform.key,
                        name: inputs.device.platform.name,
                        graphicsVersion: inputs.device.platform.graphicsVersion,
                        bdsm: inputs.device.platform.bdsm,
                      },
              },
        gopFamily: gopFamily(inputs.gop.info)?.description ?? null,
        warnings: [...inputs.device.warnings, ...inputs.rom.warnings],
        ...(options.recipe === undefined ? {} : { recipe: options.recipe }),
      },
      edk2: {
        source: options.source,
        sourceDigest: environment.edk2SourceDigest,
        description: environment.edk2SourceDescription,
      },
      overlayDigest: environment.overlayDigest,
      builderImage: { id: environment.builderImageId, ref: environment.builderImageRef },
      flags: options.flags,
      machine: options.machine,
      cache: { key: key.value, details: key.details },
      igdChecks: igdOf(meta),
      build: meta,
    },
  });
}
