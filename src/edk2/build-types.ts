// The options and result of buildOvmf (build.ts): what a caller gives an EDK2 build and the
// bytes and facts it gets back. Types only.
import type { Logger } from 'pino';
import type { ContainerEngine } from '../container/index.js';
import type { PrepareBuildOptions, PreparedBuild } from './build-inputs.js';
import type { BuildEnvironment, BuildProgress } from './build-log.js';
import type { BuildPath } from './build-script.js';
import type { BuildFlags } from './flags.js';
import type { Edk2Source } from './source.js';
import type { ToolsImage } from './tools-image.js';
import type { VariantTemplates } from './variant-templates.js';
import type { WorkspaceRetention } from './workspace-retention.js';

export interface BuildOvmfOptions {
  /** The Intel GOP driver (.efi, PE32+ x64 EFI boot-service driver). */
  readonly gop: Uint8Array;
  /** The VBT ($VBT header). */
  readonly vbt: Uint8Array;
  /** An unpacked EDK2 tree (acquireEdk2Source). */
  readonly source: Edk2Source;
  /** @default DEFAULT_BUILD_FLAGS (4MB, DEBUG, network, no secure boot) */
  readonly flags?: Partial<BuildFlags>;
  readonly engine: ContainerEngine;
  readonly logger: Logger;
  readonly signal?: AbortSignal;
  /** Labels the container (and a committed workspace). */
  readonly jobId: string;
  /** Stage changes and each module EDK2 starts building. */
  readonly onProgress?: (event: BuildProgress) => void;
  /**
   * Warm workspace: `reuse` starts from a committed workspace with the same key (source,
   * overlay, platform patch, builder image, flags) and only swaps the GOP and VBT; `commit`
   * commits the container of a clean build as that workspace. `variant` lets a build from the
   * workspace whose compiled inputs all match it regenerate only the IGD volume (the variant path); false runs
   * the full `build` in the workspace instead (the warm path, e.g. to compare the two).
   * @default { reuse: true, commit: true, variant: true }
   */
  readonly workspace?: { readonly reuse?: boolean; readonly commit?: boolean; readonly variant?: boolean };
  /**
   * Serializes making the tools image (source + compiled BaseTools, tools-image.ts) across
   * processes; the job passes its `builder-image` lock. Only taken when the image is missing.
   */
  readonly toolsLock?: () => Promise<AsyncDisposable>;
  /**
   * Where the warm workspaces (`<prefix>/edk2-workspace`) and tools images (`<prefix>/edk2-tools`)
   * live: another prefix gives a cold start beside the user's images (bench:nightly). The builder
   * image is shared.
   * @default 'localhost/ovmf-build'
   */
  readonly imagePrefix?: string;
  /**
   * Serializes clean builds of one workspace across processes: called with the workspace key
   * before a clean build that would commit it. A second process wanting the same workspace
   * waits here, then finds the committed workspace and builds warm (about 40 s) instead of
   * compiling everything again. Released once the build (and its commit) is over.
   */
  readonly workspaceLock?: (key: string, signal?: AbortSignal) => Promise<AsyncDisposable>;
  /**
   * The session's templates for the variant path without a container (variant-templates.ts):
   * a build of a workspace key with a template there makes only the IGD volume again over the
   * template's images, in this process; a build waiting for the workspace lock of a clean build
   * takes the template that build leaves when its outputs are out, before its commit; and every
   * build from unsubstituted inputs leaves one. With a store (template-store.ts), a key this
   * process has no template of is looked up on disk once the builder image is known, and every
   * template left is written there too. Used only with `reuse` and `variant` and without a
   * stand-in `prepare`.
   */
  readonly variantTemplates?: VariantTemplates;
  /**
   * The builder image id the caller's key names (the job's environment): a template of that
   * image is used without asking the engine for the builder image.
   */
  readonly builderImageId?: string;
  /** Recorded in the template this build leaves (VariantTemplate.compiled). */
  readonly compiledInputsKey?: string;
  /**
   * Called with the helper drivers once the container's outputs are out, before a clean build
   * commits its workspace (about 10 s): work that needs only them (the ROM-mode check of the
   * jobs waiting for this workspace, jobs/early-rom.ts) can run meanwhile. Not called when the
   * outputs lack them (the build then fails with E_BUILD_OUTPUT_INVALID).
   */
  readonly onHelperDrivers?: (helpers: BuildOvmfResult['helperDrivers']) => void;
  /** @default containers/edk2-builder and 'localhost/ovmf-build/edk2-builder' */
  readonly builder?: { readonly contextDir?: string; readonly repository?: string };
  /**
   * Container limits; `cpuShares` is the build containers' relative CPU weight (unset: the
   * engine's default, 1024).
   * @default { memoryBytes: 4 GiB, pids: 4096 }
   */
  readonly limits?: { readonly memoryBytes?: number; readonly pids?: number; readonly cpuShares?: number };
  /** `make -j` and `build -n`. @default 2 */
  readonly jobs?: number;
  /**
   * A stand-in for the input preparation (build-inputs.ts), e.g. a test that breaks the build on
   * purpose. The warm workspace key still comes from the real preparation, and a build from
   * substituted inputs is never committed as a workspace.
   * @default prepareBuildInputs
   */
  readonly prepare?: (options: PrepareBuildOptions) => Promise<PreparedBuild>;
  /**
   * Records each use of a warm workspace (before the build looks for it) and, after a commit,
   * removes the workspaces of the same repository beyond the ones kept
   * (workspace-retention.ts). Unset: no record, nothing removed.
   */
  readonly workspaceRetention?: WorkspaceRetention;
}

export interface BuildOvmfResult {
  readonly code: Uint8Array;
  readonly vars: Uint8Array;
  /** OVMF.fd (vars + code in one image). */
  readonly combined: Uint8Array;
  /**
   * The helper drivers exactly as built into `code` (the PE32 images GenFds placed in the DXE
   * volume), for option ROMs that carry them: IgdAssignmentDxe.efi and PlatformGopPolicyDxe.efi.
   */
  readonly helperDrivers: { readonly igdAssignment: Uint8Array; readonly gopPolicy: Uint8Array };
  readonly flags: BuildFlags;
  readonly builderImage: { readonly id: string; readonly ref: string; readonly built: boolean };
  readonly sourceDigest: string;
  readonly sourceDescription: string;
  readonly overlayDigest: string;
  /** 'warm' when the build started from a committed workspace. */
  readonly mode: 'clean' | 'warm';
  /**
   * What ran: 'clean' (every module compiled, from the tools image), 'warm' (`build` again in a
   * committed workspace: an input that is compiled differs from the workspace's, e.g. a stand-in
   * overlay file) or 'variant' (only the IGD volume made again: every compiled input equals the
   * workspace's, only the GOP and VBT, which that volume packages, may differ).
   */
  readonly buildPath: BuildPath;
  /**
   * Where a variant's other bytes came from: 'workspace' (GenSec, GenFfs and GenFv in a container
   * of the committed workspace), 'template' (the IGD volume written in this process over the
   * images of an earlier build of the same workspace key, `variantOf` its job); null otherwise.
   */
  readonly variantFrom: 'workspace' | 'template' | null;
  readonly variantOf?: string;
  /** The tools image a clean build started from (null for warm and variant builds). */
  readonly toolsImage: ToolsImage | null;
  readonly workspace: { readonly ref: string; readonly key: string; readonly committed: boolean } | null;
  readonly containerId: string;
  /** Inputs validated to outputs collected. */
  readonly durationMs: number;
  /** The container run (create to removal, including inputs and outputs). */
  readonly containerDurationMs: number;
  readonly modulesBuilt: number;
  /** uid/gid and network interfaces the build script saw in the container. */
  readonly environment: BuildEnvironment | null;
  readonly logTail: readonly string[];
}
