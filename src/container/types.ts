// The container layer's contract. Only src/container/** imports dockerode and
// tar-stream; everything else talks to these interfaces.
import type { Logger } from 'pino';

export interface EngineInfo {
  readonly kind: 'docker' | 'podman';
  readonly version: string;
  readonly apiVersion: string;
  /** Where the engine was found: 'DOCKER_HOST' | 'docker-rootful' | 'podman-rootful' | 'podman-rootless' | 'podman-private-service' */
  readonly source: string;
  readonly socketPath: string;
  /** Pid of the private `podman system service` this engine object started (source 'podman-private-service'). */
  readonly servicePid?: number;
}

export interface ConnectOptions {
  /** Environment to read DOCKER_HOST / XDG_RUNTIME_DIR from (passed in, never process.env implicitly). */
  readonly env: NodeJS.ProcessEnv;
  readonly logger: Logger;
  readonly signal?: AbortSignal;
  /**
   * Start `podman system service` on a private socket when no engine answers and podman exists.
   * @default true
   */
  readonly startPrivateService?: boolean;
  /**
   * Platform whose well-known socket paths are tried.
   * @default process.platform
   */
  readonly platform?: NodeJS.Platform;
  /**
   * Prefix of the well-known rootful socket paths (tests pass a temp dir).
   * @default '/'
   */
  readonly fileSystemRoot?: string;
  /**
   * Timeout of each candidate's /_ping and /version.
   * @default 2_000
   */
  readonly pingTimeoutMs?: number;
  /**
   * How long the private podman service may take to answer.
   * @default 20_000
   */
  readonly serviceStartTimeoutMs?: number;
}

export interface BuilderImageSpec {
  /** Directory holding the Containerfile and its context (containers/edk2-builder). */
  readonly contextDir: string;
  /** Image repository name, e.g. 'localhost/ovmf-build/edk2-builder'. */
  readonly repository: string;
  readonly logger: Logger;
  readonly signal?: AbortSignal;
  /**
   * Base image given to the Containerfile as BASE_IMAGE when present locally or pullable.
   * @default 'debian:bookworm-slim'
   */
  readonly baseImage?: string;
  /**
   * Skip the registry pull and go straight to debootstrap when no base image is local.
   * @default true when the engine's env has OVMF_BUILD_OFFLINE=1, else false
   */
  readonly offline?: boolean;
  /**
   * Bound on the registry pull attempt.
   * @default 20_000
   */
  readonly pullTimeoutMs?: number;
  /**
   * apt configuration directory whose first bookworm `deb` entry is the debootstrap mirror.
   * @default '/etc/apt'
   */
  readonly aptDir?: string;
}

export interface BuilderImage {
  readonly id: string;
  /** repository:tag, the tag being a digest of the Containerfile, its context and the base image. */
  readonly ref: string;
  /** True when this call built it, false when an existing image was reused. */
  readonly built: boolean;
  readonly sizeInBytes: number;
  /** The base the image was built FROM and where it came from. */
  readonly baseImage: {
    readonly ref: string;
    readonly id: string;
    readonly source: 'local' | 'pulled' | 'debootstrap';
  };
  /** The inputs of the tag digest (cache-key style, to explain a rebuild). */
  readonly details: {
    readonly context: string;
    readonly files: Readonly<Record<string, string>>;
    readonly baseImage: string;
    readonly baseRef: string;
  };
}

/** A file placed into the container (via putArchive) before it starts. */
export interface InputFile {
  /** Absolute path inside the container. */
  readonly path: string;
  readonly data: Uint8Array;
  /** @default 0o644 */
  readonly mode?: number;
}

/**
 * A host directory copied into the container (tar-streamed through putArchive) before
 * start. A symlink that is absolute or leaves the tree refuses the whole input with
 * E_INPUT_UNSAFE_ENTRY before a byte is sent: exclude it.
 */
export interface InputDirectory {
  readonly hostDir: string;
  /** Absolute directory inside the container; created if missing. */
  readonly containerDir: string;
  /** Relative paths (files or whole directories, '/'-separated) left out. @default [] */
  readonly exclude?: readonly string[];
}

export interface RunSpec {
  readonly image: string;
  readonly cmd: readonly string[];
  /** @default '1000:1000' (root is refused unless `allowRoot`) */
  readonly user?: string;
  /**
   * Allow `user` to be root (uid 0).
   * @default false
   */
  readonly allowRoot?: boolean;
  readonly workingDir?: string;
  readonly env?: Readonly<Record<string, string>>;
  readonly files?: readonly InputFile[];
  readonly directories?: readonly InputDirectory[];
  /**
   * `cpuShares` is the container's relative CPU weight (the engine's `--cpu-shares`; 1024 when
   * unset; on cgroup v2 the engine turns it into `cpu.weight`).
   * @default { memoryBytes: 4 GiB, pids: 4096 }
   */
  readonly limits?: {
    readonly memoryBytes?: number;
    readonly pids?: number;
    readonly nanoCpus?: number;
    readonly cpuShares?: number;
  };
  /** @default 'none' */
  readonly network?: 'none' | 'default';
  /** Labels added to the container besides the tool's own (job id, owner pid, purpose). */
  readonly jobId: string;
  readonly purpose: string;
  /** Container paths (files or directories) fetched with getArchive after a zero exit. */
  readonly outputs?: readonly string[];
  /** Called once per log line, demultiplexed, without buffering the whole log. */
  readonly onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
  readonly signal?: AbortSignal;
  /** Commit the container to this image reference after a zero exit. */
  readonly commitAs?: string;
  /**
   * Called with the outputs after a zero exit, before the commit (which takes about 10 s for
   * a clean EDK2 build's workspace): a caller can start work that needs the outputs meanwhile.
   * It must not throw; the run's result still carries the same outputs.
   */
  readonly onOutputs?: (outputs: ReadonlyMap<string, Uint8Array>) => void;
  readonly logger: Logger;
  /**
   * Bound on the total bytes of all outputs.
   * @default 512 MiB
   */
  readonly maxOutputBytes?: number;
  /**
   * Grace period of the stop sent on abort before the engine kills the container.
   * @default 2
   */
  readonly stopTimeoutSeconds?: number;
}

export interface RunResult {
  readonly containerId: string;
  readonly exitCode: number;
  /** Keyed by path relative to the requested output root, e.g. 'FV/OVMF_CODE.fd'. */
  readonly outputs: ReadonlyMap<string, Uint8Array>;
  readonly durationMs: number;
  readonly committedImageId?: string;
  /**
   * Where the time went: create, inputs (putArchive), start, run (start to
   * exit, log drain excluded), outputs (log drain, getArchive, commit).
   */
  readonly phasesMs?: {
    readonly create: number;
    readonly inputs: number;
    readonly start: number;
    readonly run: number;
    readonly outputs: number;
  };
  /** The last (up to 200) log lines, stdout and stderr interleaved as received. */
  readonly tailLines: readonly string[];
}

export type ImageRemoval = 'removed' | 'absent' | 'in-use';

export interface ImagePruneResult {
  /** Ids (or refs, for tagged workspaces) of removed images. */
  readonly removed: readonly string[];
  /** Images kept because a container still uses them. */
  readonly inUse: readonly string[];
}

export interface TaggedImage {
  /** `repository:tag` */
  readonly ref: string;
  readonly id: string;
  /** When the image was created (the engine's `Created`, whole seconds), in ms since the epoch. */
  readonly createdMs: number;
}

export interface ContainerEngine extends AsyncDisposable {
  readonly info: EngineInfo;
  ensureBuilderImage(spec: BuilderImageSpec): Promise<BuilderImage>;
  imageId(ref: string): Promise<string | null>;
  /**
   * Removes an image (by default forced). Without `force`, an image that a container still
   * uses is kept and the result is 'in-use', so a build running from it is never killed.
   */
  removeImage(ref: string, options?: { readonly force?: boolean }): Promise<ImageRemoval>;
  /**
   * Removes, without force, untagged images committed by ovmf-build (warm workspaces replaced
   * by a newer commit) and every tagged image of `repositories`. Images that a container
   * still uses are kept. Returns what was removed and what was kept as in use.
   */
  pruneImages(options?: { readonly repositories?: readonly string[] }): Promise<ImagePruneResult>;
  /** Every tag of `repository` (`repository:tag`), with its image id and the image's creation time. */
  taggedImages(repository: string): Promise<readonly TaggedImage[]>;
  /** Creates, fills, starts, streams, waits for and removes a container. Removes it on every path. */
  run(spec: RunSpec): Promise<RunResult>;
  /**
   * Removes containers labelled by ovmf-build whose owning process is gone on
   * this host (or all of them with `all`), only those of one job with `jobId`;
   * also removes sockets of private podman services whose owner is gone.
   */
  removeLeftovers(options?: { readonly all?: boolean; readonly jobId?: string }): Promise<readonly string[]>;
  /** CPU seconds (utime + stime) used so far by the private podman service this object started, else null. */
  serviceCpuSeconds(): number | null;
}
