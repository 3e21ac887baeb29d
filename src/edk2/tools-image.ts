// The tools image: the builder image plus one EDK2 source tree at /edk2 with BaseTools' C tools
// compiled, committed once per EDK2 source digest and builder image. A clean build starts from
// it instead of copying the source in and running `make -C BaseTools/Source/C` (28-38 s,
// BUILD-NOTES) every time; it still compiles every firmware module. The tools do not end up in
// the firmware, so the output is the same bytes (test/reproducible.int.test.ts).
import type { Logger } from 'pino';
import type { BuilderImage, ContainerEngine } from '../container/index.js';
import { sha256 } from '../core/digest.js';
import { BuildLogParser, parseBuildFailure } from './build-log.js';
import { STAGING, toolsScript, WORKSPACE } from './build-script.js';
import { BuildError } from './errors.js';
import type { Edk2Source } from './source.js';

/** Committed tools images: `<repository>:<tag>` (tag from toolsImageRef). */
export const TOOLS_REPOSITORY = 'localhost/ovmf-build/edk2-tools';
/** The default `imagePrefix` of a build: workspace and tools repositories sit under it. */
export const DEFAULT_IMAGE_PREFIX = 'localhost/ovmf-build';
/** Bumped when the tools script or the tree layout changes in a way the key does not show. */
const TOOLS_LAYOUT_VERSION = 1;
const TOOLS_SCRIPT_PATH = `${STAGING}/tools.sh`;
const LOG_TAIL_LINES = 30;

/** The tools image of one source tree and builder image. */
export function toolsImageRef(
  sourceDigest: string,
  builderImageId: string,
  repository: string = TOOLS_REPOSITORY,
): string {
  const tag = sha256(
    JSON.stringify({ layout: TOOLS_LAYOUT_VERSION, source: sourceDigest, builderImage: builderImageId }),
  ).slice(0, 24);
  return `${repository}:${tag}`;
}

export interface EnsureToolsImageOptions {
  readonly engine: ContainerEngine;
  readonly builder: Pick<BuilderImage, 'id' | 'ref'>;
  /** @default TOOLS_REPOSITORY */
  readonly repository?: string;
  readonly source: Edk2Source;
  /** Labels the container that compiles the tools (and so the committed image). */
  readonly jobId: string;
  readonly logger: Logger;
  readonly signal?: AbortSignal;
  /**
   * Serializes making the tools image across processes (the job passes its `builder-image`
   * lock); a second process waits, then finds the image.
   */
  readonly lock?: () => Promise<AsyncDisposable>;
  /** `make -j`. @default 2 */
  readonly jobs?: number;
  /** Container limits, as the build's. */
  readonly limits: { readonly memoryBytes: number; readonly pids: number; readonly cpuShares?: number };
  /** Each log line (the build's progress parser shows the basetools stage). */
  readonly onLine?: (line: string) => void;
}

export interface ToolsImage {
  readonly ref: string;
  /** Whether this call compiled the tools (false: the image existed). */
  readonly built: boolean;
  /** Time spent making the image (0 when it existed). */
  readonly durationMs: number;
}

/**
 * Returns the tools image of `source` and `builder`, making it when missing: a container of the
 * builder image (no network, uid 1000) gets the source tree at /edk2, compiles BaseTools and is
 * committed. A failed compile is BuildError E_BUILD_FAILED (failingModule 'BaseTools').
 */
export async function ensureToolsImage(options: EnsureToolsImageOptions): Promise<ToolsImage> {
  const { engine, logger, signal } = options;
  const ref = toolsImageRef(options.source.digest, options.builder.id, options.repository);
  if ((await engine.imageId(ref)) !== null) return { ref, built: false, durationMs: 0 };
  const lock = await options.lock?.();
  try {
    // Whoever held the lock may have made it meanwhile.
    if ((await engine.imageId(ref)) !== null) return { ref, built: false, durationMs: 0 };
    const started = performance.now();
    logger.info(
      { ref, source: options.source.description },
      'build: compiling BaseTools into the tools image',
    );
    const parser = new BuildLogParser();
    const kept: string[] = [];
    const run = await engine.run({
      image: options.builder.ref,
      cmd: ['/bin/bash', TOOLS_SCRIPT_PATH],
      user: '1000:1000',
      workingDir: WORKSPACE,
      env: { LC_ALL: 'C', TZ: 'UTC' },
      files: [
        { path: TOOLS_SCRIPT_PATH, data: new TextEncoder().encode(toolsScript(options.jobs)), mode: 0o755 },
      ],
      directories: [{ hostDir: options.source.dir, containerDir: WORKSPACE }],
      network: 'none',
      limits: options.limits,
      jobId: options.jobId,
      purpose: 'edk2-tools',
      onLine: (line) => {
        kept.push(line);
        if (kept.length > 400) kept.shift();
        parser.push(line);
        options.onLine?.(line);
      },
      commitAs: ref,
      logger,
      ...(signal === undefined ? {} : { signal }),
    });
    if (run.exitCode !== 0) {
      const failure = parseBuildFailure(kept.length > 0 ? kept : run.tailLines, parser.stage, LOG_TAIL_LINES);
      throw new BuildError(
        'E_BUILD_FAILED',
        `EDK2 BaseTools failed to compile (exit ${run.exitCode})${failure.errorLines[0] === undefined ? '' : `: ${failure.errorLines[0].trim()}`}`,
        {
          failingModule: 'BaseTools',
          stage: 'basetools',
          exitCode: run.exitCode,
          errorLines: failure.errorLines,
          lastLines: failure.lastLines,
          containerId: run.containerId,
          jobId: options.jobId,
          mode: 'clean',
        },
      );
    }
    const durationMs = Math.round(performance.now() - started);
    logger.info({ ref, ms: durationMs }, 'build: tools image committed');
    return { ref, built: true, durationMs };
  } finally {
    await lock?.[Symbol.asyncDispose]();
  }
}
