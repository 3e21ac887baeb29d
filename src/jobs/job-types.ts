// The values that flow between the job's stages (pipeline.ts): what a caller asks for, what
// each stage returns, and the events a terminal shows. Kept apart from the stages so a stand-in
// stage (tests) or the nightly runner can name them without loading any stage's machinery.
import type { CacheKey, CacheKeyDetails, MissExplanation } from '../cache/index.js';
import type { BuildFlags } from '../edk2/flags.js';
import type { BuildOvmfResult } from '../edk2/build.js';
import type { Edk2SourceSpec } from '../edk2/source.js';
import type { InputOrigin, InputSpec } from '../fetch/index.js';
import type { GopDriverInfo } from '../formats/gop.js';
import type { VbtInfo } from '../formats/vbt.js';
import type { IgdPlatform } from '../igd/device-table.js';
import type { AccelMode, AcceleratorChoice } from '../verify/accel.js';
import type { BootVerification } from '../verify/boot.js';
import type { IgdVerification } from '../verify/igd-modes.js';
import type { StructureReport } from '../verify/structural.js';
import type { HelperDrivers, PreparedRom } from './rom.js';

export type JobInputs =
  { readonly gop: InputSpec; readonly vbt: InputSpec } | { readonly firmware: InputSpec };

export type JobEvent =
  | { readonly type: 'phase'; readonly phase: string; readonly message: string }
  | { readonly type: 'progress'; readonly line: string }
  | { readonly type: 'note'; readonly message: string };

/** What a job is asked to make: the same for the main command, `build`, `cache why` and a recipe. */
export interface JobRequest {
  readonly inputs: JobInputs;
  /** @default 'q35' */
  readonly machine: 'q35' | 'i440fx';
  /** The artifact store (--out); only the publish stage reads it. */
  readonly storeDir: string;
  /** Artifact name; derived from the device, GOP generation and GOP build when absent. */
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
   * Compile everything instead of starting from a committed EDK2 workspace; the clean build is
   * committed as the new workspace. Not part of the key: a warm and a clean build give the same
   * bytes (the reproducibility int test). @default false
   */
  readonly cleanBuild?: boolean;
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
  readonly jobId: string;
  /** Recipe facts recorded in the manifest. */
  readonly recipe?: { readonly name: string; readonly file: string };
  /** Tool version recorded in the manifest. */
  readonly toolVersion: string;
}

/** What --device says, for the manifest, the name and the warnings. */
export interface DeviceFacts {
  readonly deviceId: string | null;
  readonly platform: IgdPlatform | undefined;
  readonly warnings: readonly string[];
}

/**
 * The ROM's key input and source now; its bytes only once a build gave the helper drivers (a
 * generated ROM chains the build's own helpers; a build without them gives a GOP-only ROM).
 */
export interface RomPlan {
  readonly keyInput: string;
  readonly source: PreparedRom['source'];
  readonly warnings: readonly string[];
  bytes(helpers: HelperDrivers | null): Promise<Uint8Array>;
}

/** The resolveInputs stage's value: validated GOP, VBT, ROM plan, device facts and the name. */
export interface ResolvedInputs {
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
  /** The artifact name (--name, the recipe's, or from the device and GOP). */
  readonly name: string;
}

/** The build-environment inputs of the cache key, resolved cheaply (memoized). */
export interface BuildEnvironment {
  /** e.g. "sha256-<hex>" (Debian .dsc or tarball) or "git-<commit>". */
  readonly edk2SourceDigest: string;
  readonly edk2SourceDescription: string;
  /** Digest of our overlay package, the patched DSC/FDF and the build script. */
  readonly overlayDigest: string;
  readonly builderImageId: string;
  readonly builderImageRef: string;
  /** True when every value came from the memo (no engine, no apt-get). */
  readonly fromMemo: boolean;
}

/** The build stage's firmware: bytes and facts, not yet verified. */
export interface BuiltFirmware {
  readonly code: Uint8Array;
  readonly vars: Uint8Array;
  /** What the build really used: the job checks these against the key it computed. */
  readonly edk2SourceDigest: string;
  readonly builderImageId: string;
  readonly durationMs: number;
  /**
   * IgdAssignmentDxe.efi and PlatformGopPolicyDxe.efi exactly as built into the firmware, for
   * the ROM-mode option ROM and the structural check; absent from stand-in builds (tests),
   * whose ROM is then GOP-only and whose firmware gets no IGD check.
   */
  readonly helperDrivers?: HelperDrivers;
  /** Facts for the manifest (build mode, workspace, module count). */
  readonly facts: Readonly<Record<string, unknown>>;
  /** The EDK2 build's own report (absent from stand-in builds): `ovmf-build build` prints it. */
  readonly edk2?: BuildOvmfResult;
}

/** The verify stage's value: firmware and ROM that passed every check, and the checks' facts. */
export interface VerifiedFirmware {
  readonly built: BuiltFirmware;
  readonly rom: Uint8Array;
  /** The build's facts plus `structure`, `boot` and (when it ran) `igd`. */
  readonly facts: Readonly<Record<string, unknown>>;
  readonly structure: StructureReport | null;
  readonly boot: BootVerification | null;
  readonly igd: IgdVerification | null;
  readonly bootAccel: AcceleratorChoice | null;
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
   * the build; null when none ran (--no-verify-boot, or a stand-in build without IGD drivers).
   */
  readonly igd: IgdVerification | null;
  /**
   * The accelerator of the boot check that verified this firmware, and why (recorded by the
   * build, so a cache hit reports the boot that verified the entry); null without a boot check.
   */
  readonly bootAccel: AcceleratorChoice | null;
}

/** A run of the stages up to `key`: what `cache why` explains. */
export interface KeyRunResult {
  readonly inputs: ResolvedInputs;
  readonly environment: BuildEnvironment;
  readonly key: CacheKey;
}

/** A run of the stages up to `verify`: what `ovmf-build build` writes out. */
export interface VerifyRunResult extends KeyRunResult {
  readonly verified: VerifiedFirmware;
  readonly durationMs: number;
}
