// ROM-mode checks run ahead of the verify stage (issue 11). A clean EDK2 build has its outputs,
// the helper drivers among them, about 10 s before its workspace is committed, and the jobs
// waiting for that workspace cannot build until then. ROM mode (our ROM on Debian's stock OVMF)
// needs only the helper drivers, which are the same for every build compiled from the same
// source, overlay, builder image and flags, plus the job's own GOP, VBT and device. So each job
// in the build stage leaves a plan here, and the first build of its compiled inputs to get its
// outputs out starts the job's ROM-mode check, which then runs beside the commit (or beside the
// job's own GenFds) instead of after its build.
// Sound by construction: the verify stage takes a verdict only under the digest of exactly the
// ROM-mode inputs it would check (verify/igd-modes.ts romModeDigest), so a check started from
// other helper drivers is never used, only wasted, and ROM mode then runs as before. A job that
// ends without taking its check (a failed build) stops it, so a long-lived worker's session
// keeps nothing.
import type { Logger } from 'pino';
import { sha256 } from '../core/digest.js';
import type { BuildFlags } from '../edk2/flags.js';
import type { IgdModeSummary } from '../verify/igd-modes.js';
import type { BuildEnvironment } from './job-types.js';
import type { HelperDrivers } from './rom.js';

/** A job's ROM-mode check for given helper drivers: its digest and how to run it; null: none. */
export type EarlyRomPlan = (helpers: HelperDrivers) => Promise<{
  readonly digest: string;
  readonly run: (signal: AbortSignal) => Promise<IgdModeSummary>;
} | null>;

/** What decides the helper drivers' bytes: the compiled inputs of the build (not GOP or VBT). */
export function compiledInputsKey(
  environment: BuildEnvironment,
  flags: BuildFlags | Partial<BuildFlags>,
): string {
  return sha256(
    JSON.stringify({
      source: environment.edk2SourceDigest,
      overlay: environment.overlayDigest,
      builder: environment.builderImageId,
      flags,
    }),
  );
}

/** A job's place in EarlyRomChecks: its plan until it starts, then its check until taken. */
export interface EarlyRomTicket {
  /** Drops the plan if no build has started it yet (the job's own build is over). */
  withdraw(): void;
  /** The job is done with ROM mode: also stops and drops its check if nobody took it. */
  release(): void;
}

export class EarlyRomChecks implements AsyncDisposable {
  readonly #plans = new Map<
    symbol,
    { readonly compiled: string; readonly plan: EarlyRomPlan; readonly job: string }
  >();
  readonly #runs = new Map<
    string,
    { readonly promise: Promise<IgdModeSummary>; readonly owner: symbol; readonly stop: AbortController }
  >();
  readonly #started = new Set<Promise<unknown>>();
  readonly #stop = new AbortController();

  /**
   * Leaves a job's plan until the first build of the same compiled inputs offers its helper
   * drivers. `job` names it in the log.
   */
  wait(compiled: string, plan: EarlyRomPlan, job: string): EarlyRomTicket {
    const id = Symbol('early-rom-plan');
    this.#plans.set(id, { compiled, plan, job });
    return {
      withdraw: () => {
        this.#plans.delete(id);
      },
      release: () => {
        this.#plans.delete(id);
        for (const [digest, run] of this.#runs) {
          if (run.owner !== id) continue;
          this.#runs.delete(digest);
          run.stop.abort(new Error('the job no longer needs this ROM-mode check'));
        }
      },
    };
  }

  /** A build's helper drivers are out: start the ROM-mode check of each job waiting on them. */
  offer(compiled: string, helpers: HelperDrivers, logger: Pick<Logger, 'info' | 'warn'>): void {
    if (this.#stop.signal.aborted) return;
    for (const [id, waiting] of this.#plans) {
      if (waiting.compiled !== compiled) continue;
      this.#plans.delete(id);
      const started = waiting
        .plan(helpers)
        .then((start) => {
          if (start === null || this.#runs.has(start.digest) || this.#stop.signal.aborted) return;
          const stop = new AbortController();
          const onStop = (): void => stop.abort(this.#stop.signal.reason);
          this.#stop.signal.addEventListener('abort', onStop, { once: true });
          const promise = start.run(stop.signal);
          this.#runs.set(start.digest, { promise, owner: id, stop });
          this.#track(promise.finally(() => this.#stop.signal.removeEventListener('abort', onStop)));
          logger.info(
            { romModeDigest: start.digest, forJob: waiting.job },
            'IGD check: ROM mode started ahead for a job waiting on these helper drivers',
          );
        })
        .catch((error: unknown) => {
          logger.warn({ err: error, forJob: waiting.job }, 'IGD check: could not start ROM mode ahead');
        });
      this.#track(started);
    }
  }

  /**
   * The verdict under way for this ROM-mode digest, handed out once; undefined: none. From then
   * on `signal` stops it too: the taker's own ROM mode ends when its embedded mode failed.
   */
  take(digest: string, signal?: AbortSignal): Promise<IgdModeSummary> | undefined {
    const run = this.#runs.get(digest);
    this.#runs.delete(digest);
    if (run === undefined || signal === undefined) return run?.promise;
    const onAbort = (): void => run.stop.abort(signal.reason);
    if (signal.aborted) onAbort();
    else {
      signal.addEventListener('abort', onAbort, { once: true });
      void run.promise.then(
        () => signal.removeEventListener('abort', onAbort),
        () => signal.removeEventListener('abort', onAbort),
      );
    }
    return run.promise;
  }

  #track(promise: Promise<unknown>): void {
    const settled = promise.then(
      () => undefined,
      () => undefined,
    );
    this.#started.add(settled);
    void settled.then(() => this.#started.delete(settled));
  }

  /** Stops the checks nobody took and waits for every QEMU started here to be gone. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.#stop.abort();
    this.#plans.clear();
    this.#runs.clear();
    await Promise.all([...this.#started]);
  }
}
