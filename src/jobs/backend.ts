// What the job needs from the build machinery, as an interface so the job's cache,
// lock and publish logic can be tested with a stand-in build (test/cache-*.test.ts) and
// run for real with EDK2 in a container (real-backend.ts).
import type { Logger } from 'pino';
import type { BuildFlags } from '../edk2/flags.js';
import type { Edk2SourceSpec } from '../edk2/source.js';
import type { IgdVerification, IgdVerifyRequest } from '../verify/igd-check.js';
import type { AccelMode } from '../verify/accel.js';

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

export interface BackendContext {
  readonly env: NodeJS.ProcessEnv;
  readonly logger: Logger;
  readonly signal: AbortSignal;
  readonly jobId: string;
  readonly source: Edk2SourceSpec;
  readonly flags: BuildFlags;
  readonly offline: boolean;
}

export interface BuildRequest extends BackendContext {
  readonly gop: Uint8Array;
  readonly vbt: Uint8Array;
  readonly machine: 'q35' | 'i440fx';
  readonly verifyBoot: boolean;
  /** QEMU accelerator of the boot check. @default 'auto' */
  readonly bootAccel?: AccelMode;
  /** Compile everything; do not start from a committed EDK2 workspace. */
  readonly cleanBuild: boolean;
  /** One line per build progress step (stage changes, module counts). */
  readonly onProgress: (line: string) => void;
}

export interface BuiltFirmware {
  readonly code: Uint8Array;
  readonly vars: Uint8Array;
  /** What the build really used: the job checks these against the key it computed. */
  readonly edk2SourceDigest: string;
  readonly builderImageId: string;
  readonly durationMs: number;
  /**
   * IgdAssignmentDxe.efi and PlatformGopPolicyDxe.efi exactly as built into the firmware,
   * for the ROM-mode option ROM; absent from backends that do not build them (test stand-ins),
   * whose ROM is then GOP-only.
   */
  readonly helperDrivers?: { readonly igdAssignment: Uint8Array; readonly gopPolicy: Uint8Array };
  /** Facts for the manifest (structure report, boot result, build details). */
  readonly facts: Readonly<Record<string, unknown>>;
}

export interface JobBackend {
  /**
   * The key's environment inputs. With `verify`, each value is checked against the real
   * source and engine (done before a build, so a stale memo never labels a build wrongly).
   */
  resolveEnvironment(
    context: BackendContext,
    options: { readonly verify: boolean },
  ): Promise<BuildEnvironment>;
  /** Removes containers left by killed runs (by label). */
  removeLeftovers(context: BackendContext): Promise<readonly string[]>;
  /** Builds OVMF and verifies it (structure always, boot unless disabled). */
  build(request: BuildRequest): Promise<BuiltFirmware>;
  /**
   * The IGD assignment check in QEMU (verify/igd-check.ts) of a built firmware, embedded mode
   * and ROM mode; absent from stand-in backends, whose firmware does no IGD assignment.
   */
  verifyIgd?(request: IgdVerifyRequest): Promise<IgdVerification>;
  /** Releases engine connections and services. */
  dispose(): Promise<void>;
}
