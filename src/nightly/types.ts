// The contract between the nightly runner and the job it runs per recipe (issue 11). The runner
// knows nothing of EDK2: it gets a job with a `key` stage (the cache key, which names the job)
// and a `run` stage (cache, build, verify, publish), so tests give a stand-in job and the CLI
// gives the real pipeline.
import type { Logger } from 'pino';
import type { Recipe } from '../jobs/recipe.js';

/** What a stage of a nightly job gets. */
export interface NightlyStageContext {
  readonly signal: AbortSignal;
  readonly logger: Logger;
  /** The job's own phases (validate, build, verify, publish...), shown as progress. */
  readonly onPhase: (phase: string) => void;
}

/** What one recipe's run produced. */
export interface NightlyOutcome {
  readonly cacheHit: boolean;
  /** The published artifact's version directory name. */
  readonly version: string;
  readonly artifactDir: string;
  /**
   * Which build path produced the firmware when this run built it (the build facts'
   * `buildPath`, else their `mode`: clean, warm, variant...); null for a cache hit.
   */
  readonly buildPath?: string | null;
}

export interface NightlyJob {
  /** The recipe's cache key (64 hex digits): the same inputs give the same key. */
  key(recipe: Recipe, context: NightlyStageContext): Promise<string>;
  /** Cache, build, verify and publish the recipe; identical inputs are a cache hit. */
  run(recipe: Recipe, context: NightlyStageContext): Promise<NightlyOutcome>;
}

export type RecipeStatus = 'succeeded' | 'failed';

/** One line of a night's summary. */
export interface RecipeReport {
  readonly recipe: string;
  /** `<recipe>-<first 16 hex digits of the cache key>`; null when the key could not be computed. */
  readonly jobId: string | null;
  readonly status: RecipeStatus;
  readonly attempts: number;
  readonly durationMs: number;
  /** 'hit' or 'miss' for a finished job, null for a failed one. */
  readonly cache: 'hit' | 'miss' | null;
  readonly artifactVersion: string | null;
  readonly artifactDir: string | null;
  /**
   * The build path this run took (NightlyOutcome.buildPath); null for a hit or a failure. The
   * embedded runner always sets it; optional for reports made elsewhere (src/queue).
   */
  readonly buildPath?: string | null;
  readonly errorCode: string | null;
  readonly exitCode: number | null;
  readonly message: string | null;
  /** The queue's worker (`<host>:<pid>`) that finished the job; only on a queued night. */
  readonly worker?: string | null;
  /** The job was left running by a runner that died (kill -9, power loss) or was stopped, and was finished here. */
  readonly recovered: boolean;
}

export interface NightlySummary {
  readonly runId: string;
  readonly status: RecipeStatus;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly durationMs: number;
  /**
   * Jobs at once: the embedded runner's --concurrency; on the queue, the global limit when one
   * was set, else null (each worker's --concurrency decides; see `queue`).
   */
  readonly concurrency: number | null;
  /** Set when the night ran on the BullMQ queue (`nightly --queue`). */
  readonly queue?: QueueRunFacts;
  /** Runs that died before finishing and whose jobs this run took over. */
  readonly resumedRuns: readonly string[];
  readonly counts: {
    readonly recipes: number;
    readonly succeeded: number;
    readonly failed: number;
    readonly cacheHits: number;
    readonly built: number;
  };
  readonly recipes: readonly RecipeReport[];
}

/** How a queued night ran: where, by whom, and how many of its jobs this run added. */
export interface QueueRunFacts {
  /** The Redis URL, password left out. */
  readonly url: string;
  /** BullMQ's global concurrency set by this run, or null (the workers' own limits apply). */
  readonly globalConcurrency: number | null;
  /** The workers (`<host>:<pid>`) that ran the night's jobs, sorted. */
  readonly workers: readonly string[];
  /** Jobs this run added to the queue. */
  readonly enqueued: number;
  /** Jobs already in the queue (waiting, running or completed by an earlier run) that it joined. */
  readonly joined: number;
}

/** Progress events of a run, in order, for the terminal. */
export type NightlyEvent =
  | { readonly type: 'start'; readonly runId: string; readonly recipes: readonly string[] }
  | {
      readonly type: 'phase';
      readonly recipe: string;
      readonly phase: string;
      readonly attempt: number;
    }
  | { readonly type: 'done'; readonly report: RecipeReport }
  | { readonly type: 'end'; readonly summary: NightlySummary };
